package admission

import (
	"testing"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func amount(t *testing.T, spec *corev1.PodSpec, paths string) int64 {
	t.Helper()
	p, err := ParsePaths(paths)
	assert.NilError(t, err)
	return p.Amount(spec)
}

func TestParsePathsRefusesWhatIsNotAResourcePath(t *testing.T) {
	for _, bad := range []string{"nodeSelector.gpu", "resources.limits.", "resources.limit.nvidia.com/gpu", "resources.limits.a|x"} {
		_, err := ParsePaths(bad)
		assert.ErrorContains(t, err, "is not resources.limits.<name> or resources.requests.<name>", bad)
	}
}

func TestResourceAmount(t *testing.T) {
	spec := &corev1.PodSpec{Containers: []corev1.Container{
		{Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("2")}}},
		{Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")},
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3"), "example.com/half": resource.MustParse("0.5")}}},
	}}
	for name, tc := range map[string]struct {
		paths string
		want  int64
	}{
		"limits summed over containers": {"resources.limits.nvidia.com/gpu", 3000},
		"first path found wins":         {"resources.limits.amd.com/gpu | resources.requests.cpu", 3000},
		"nothing found":                 {"resources.limits.amd.com/gpu", 0},
		"decimal limits in milli-units": {"resources.requests.example.com/half", 500},
	} {
		t.Run(name, func(t *testing.T) { assert.Equal(t, amount(t, spec, tc.paths), tc.want) })
	}
}

func TestTrackerCountsReservationsUntilObserved(t *testing.T) {
	tr := NewTracker()
	tr.Reserve("t1", "q1", 2, 0)
	tr.Reserve("t2", "q1", 1, 0)
	assert.Assert(t, !tr.Reserve("t2", "q1", 1, 0), "a task holds one reservation")
	assert.Equal(t, tr.Live("q1"), 2)
	assert.Equal(t, tr.Resources(), int64(3))

	tr.Observe("t1", "q1", 2, 0, true) // the informer sees t1's object: no longer a reservation
	tr.Release("t1")                   // so a late Release does not drop it
	assert.Assert(t, tr.Has("t1"))
	tr.Release("t2") // a launch that gave up
	assert.Assert(t, !tr.Has("t2"))
	assert.Equal(t, tr.Total(), 1)

	tr.Observe("t1", "q1", 2, 0, false) // finished
	assert.Equal(t, tr.Total(), 0)
	assert.Equal(t, tr.Resources(), int64(0))
}

func TestFreeSlotSkipsSlotsInUse(t *testing.T) {
	tr := NewTracker()
	assert.Equal(t, tr.FreeSlot(2), 1)
	tr.Reserve("a", "q", 0, 1)
	tr.Observe("b", "q", 0, SlotOf("pod-2"), true)
	assert.Equal(t, tr.FreeSlot(3), 3)
	assert.Equal(t, tr.FreeSlot(2), 0)
	tr.Release("a")
	assert.Equal(t, tr.FreeSlot(2), 1)
}

func TestTemplateNeedReadsOverrideThenBase(t *testing.T) {
	base := map[string]any{"resources": map[string]any{"limits": map[string]any{"nvidia.com/gpu": "1"}}}
	two := map[string]any{"resources": map[string]any{"limits": map[string]any{"nvidia.com/gpu": 2}}}
	for name, tc := range map[string]struct {
		override map[string]any
		paths    string
		want     int64
	}{
		"override wins":           {two, "resources.limits.nvidia.com/gpu", 2000},
		"base when no override":   {map[string]any(nil), "resources.limits.nvidia.com/gpu", 1000},
		"alternatives":            {map[string]any(nil), "resources.limits.amd.com/gpu|resources.limits.nvidia.com/gpu", 1000},
		"absent":                  {map[string]any(nil), "resources.requests.cpu", 0},
		"templated is not a need": {map[string]any{"resources": map[string]any{"limits": map[string]any{"nvidia.com/gpu": "{{ .Task.X }}"}}}, "resources.limits.nvidia.com/gpu", 0},
	} {
		t.Run(name, func(t *testing.T) { assert.Equal(t, MustParsePaths(tc.paths).TemplateNeed(tc.override, base), tc.want) })
	}
}
