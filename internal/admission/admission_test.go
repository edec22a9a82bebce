package admission

import (
	"testing"

	"gotest.tools/v3/assert"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func q(s string) resource.Quantity { return resource.MustParse(s) }

func str(v resource.Quantity) string { return v.String() }

func sign(v resource.Quantity) int { return v.Sign() }

func cmpq(a, b resource.Quantity) int { return a.Cmp(b) }

func TestParsePathRefusesWhatIsNotAPodPath(t *testing.T) {
	for _, bad := range []string{
		"nodeSelector.gpu", "resources.limits.", "resources.limit.nvidia.com/gpu",
		// The pipe is a path separator, never an "or": alternatives are not a path.
		"resources.limits.a|resources.limits.b",
		"metadata|labels", "metadata|name", "metadata|labels|", "spec|nodeSelector|gpu",
		"spec|containers|x|resources|limits|gpu", "spec|containers|-1|resources|limits|gpu", "spec|containers|01|resources|limits|gpu",
		"resources|limits", "status|phase", "",
	} {
		_, err := ParsePath(bad)
		assert.ErrorContains(t, err, "is not a path the glue reads", bad)
	}
}

func TestParsePathShapes(t *testing.T) {
	for text, want := range map[string][]string{
		// ClearML's documented default: the task container's GPU limit.
		"resources|limits|nvidia.com/gpu": {"spec", "containers", "0", "resources", "limits", "nvidia.com/gpu"},
		// The docs' example: a label whose key holds dots.
		"metadata|labels|clear.ml/resource-usage":            {"metadata", "labels", "clear.ml/resource-usage"},
		" metadata | annotations | example.com/gpu-share ":   {"metadata", "annotations", "example.com/gpu-share"},
		"spec|containers|1|resources|requests|example.com/x": {"spec", "containers", "1", "resources", "requests", "example.com/x"},
		"spec|resources|limits|nvidia.com/gpu":               {"spec", "resources", "limits", "nvidia.com/gpu"},
		// Earlier versions of this chart wrote the default with dots.
		"resources.limits.nvidia.com/gpu": {"spec", "containers", "0", "resources", "limits", "nvidia.com/gpu"},
	} {
		p, err := ParsePath(text)
		assert.NilError(t, err, text)
		assert.DeepEqual(t, p.Segments(), want)
	}
}

func TestPathReadsThePod(t *testing.T) {
	spec := &corev1.PodSpec{
		Containers: []corev1.Container{
			{Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"nvidia.com/gpu": q("2")}}},
			{Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"nvidia.com/gpu": q("1")},
				Requests: corev1.ResourceList{corev1.ResourceCPU: q("3"), "example.com/half": q("0.5")}}},
		},
		Resources: &corev1.ResourceRequirements{Limits: corev1.ResourceList{"nvidia.com/gpu": q("4")}},
	}
	labels := map[string]string{"clear.ml/resource-usage": "0.14", "bad": "high"}
	annotations := map[string]string{"example.com/share": "0.5"}
	for name, tc := range map[string]struct {
		path, want string
	}{
		"task container only, not the sidecar": {"resources|limits|nvidia.com/gpu", "2"},
		"another container":                    {"spec|containers|1|resources|requests|example.com/half", "500m"},
		"container out of range":               {"spec|containers|5|resources|limits|nvidia.com/gpu", "0"},
		"pod-level resources":                  {"spec|resources|limits|nvidia.com/gpu", "4"},
		"decimal label":                        {"metadata|labels|clear.ml/resource-usage", "140m"},
		"annotation":                           {"metadata|annotations|example.com/share", "500m"},
		"absent label":                         {"metadata|labels|nope", "0"},
		"absent resource":                      {"resources|limits|amd.com/gpu", "0"},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := MustParsePath(tc.path).Pod(labels, annotations, spec)
			assert.NilError(t, err)
			assert.Equal(t, got.Cmp(q(tc.want)), 0, "got %s, want %s", got.String(), tc.want)
		})
	}
	_, err := MustParsePath("metadata|labels|bad").Pod(labels, annotations, spec)
	assert.ErrorContains(t, err, `metadata|labels|bad: "high" is not a quantity`)

	job := &batchv1.Job{}
	job.Spec.Template.Labels = labels
	got, err := MustParsePath("metadata|labels|clear.ml/resource-usage").Object(job)
	assert.NilError(t, err)
	assert.Equal(t, got.String(), "140m")
}

func TestPathTree(t *testing.T) {
	pod := map[string]any{
		"metadata": map[string]any{"labels": map[string]any{"clear.ml/resource-usage": "0.5"}},
		"spec": map[string]any{"containers": []any{map[string]any{"name": "task",
			"resources": map[string]any{"limits": map[string]any{"nvidia.com/gpu": 1}}}}},
	}
	v, ok := MustParsePath("metadata|labels|clear.ml/resource-usage").Tree(pod)
	assert.Assert(t, ok)
	assert.Equal(t, v, "0.5")
	v, ok = MustParsePath("resources|limits|nvidia.com/gpu").Tree(pod)
	assert.Assert(t, ok)
	assert.Equal(t, v, 1)
	_, ok = MustParsePath("resources|limits|amd.com/gpu").Tree(pod)
	assert.Assert(t, !ok)
}

func TestParseAmount(t *testing.T) {
	for in, want := range map[any]string{"1": "1", "0.5": "500m", "0.14": "140m", 2: "2", 0.25: "250m", "0.1428571": "0.1428571"} {
		got, err := ParseAmount(in)
		assert.NilError(t, err, in)
		assert.Equal(t, got.Cmp(q(want)), 0, "%v: got %s", in, got.String())
	}
	for _, bad := range []any{"-1", "lots", true, nil} {
		_, err := ParseAmount(bad)
		assert.Assert(t, err != nil, bad)
	}
}

func TestTrackerCountsReservationsUntilObserved(t *testing.T) {
	tr := NewTracker()
	tr.Reserve("t1", "q1", q("2"), 0)
	tr.Reserve("t2", "q1", q("1"), 0)
	assert.Assert(t, !tr.Reserve("t2", "q1", q("1"), 0), "a task holds one reservation")
	assert.Equal(t, tr.Live("q1"), 2)
	assert.Equal(t, str(tr.Resources()), "3")

	tr.Observe("t1", "q1", q("2"), 0, true) // the informer sees t1's object: no longer a reservation
	tr.Release("t1")                        // so a late Release does not drop it
	assert.Assert(t, tr.Has("t1"))
	tr.Release("t2") // a launch that gave up
	assert.Assert(t, !tr.Has("t2"))
	assert.Equal(t, tr.Total(), 1)

	tr.Observe("t1", "q1", q("2"), 0, false) // finished
	assert.Equal(t, tr.Total(), 0)
	assert.Equal(t, sign(tr.Resources()), 0)
}

func TestTrackerRenameMovesAPopsPlaceToItsTask(t *testing.T) {
	tr := NewTracker()
	tr.Reserve("pop/1", "q1", q("1"), 1)
	assert.Assert(t, tr.Rename("pop/1", "t1"))
	assert.Assert(t, tr.Has("t1") && !tr.Has("pop/1"))
	assert.Equal(t, tr.Live("q1"), 1)
	assert.Equal(t, tr.FreeSlot(1), 0, "its port-mode slot moved with it")
	assert.Equal(t, str(tr.Resources()), "1")

	// A task counted already keeps its one place; the pop's is dropped.
	tr.Reserve("pop/2", "q1", q("1"), 0)
	assert.Assert(t, !tr.Rename("pop/2", "t1"))
	assert.Assert(t, !tr.Has("pop/2"))
	assert.Equal(t, tr.Total(), 1)
	assert.Assert(t, !tr.Rename("no-such-key", "t9"))
}

// The docs' mixed-GPU example: maxResources 1 admits one full-GPU task, or two 0.5 tasks, or
// seven 0.14 slices; nothing is rounded.
func TestTrackerDecimalsAreExact(t *testing.T) {
	limit := q("1")
	tr := NewTracker()
	assert.Assert(t, tr.Admits("half", q("0.5"), limit))
	tr.Reserve("a", "half", q("0.5"), 0)
	tr.Observe("b", "half", q("0.5"), 0, true)
	assert.Assert(t, !tr.Admits("half", q("0.5"), limit), "a third half does not fit")
	assert.Assert(t, !tr.Admits("full", q("1"), limit))
	assert.Assert(t, tr.Admits("other", resource.Quantity{}, limit), "a task that needs nothing fits")

	tr = NewTracker()
	for i := range 7 {
		id := string(rune('a' + i))
		assert.Assert(t, tr.Admits("1g", q("0.14"), limit), i)
		tr.Observe(id, "1g", q("0.14"), 0, true)
	}
	assert.Equal(t, str(tr.Resources()), "980m")
	assert.Assert(t, !tr.Admits("1g", q("0.14"), limit))

	// Beyond milli precision: seven sevenths of a GPU still fit in one.
	tr = NewTracker()
	for i := range 7 {
		tr.Observe(string(rune('a'+i)), "q", q("0.142857"), 0, true)
	}
	assert.Assert(t, cmpq(tr.Resources(), limit) < 0)
}

func TestTrackerFitChecksTheRenderedNeedAndWaits(t *testing.T) {
	limit := q("1")
	tr := NewTracker()
	tr.Observe("live", "q", q("0.5"), 0, true)
	tr.Reserve("t1", "q", resource.Quantity{}, 0) // rendered per task: unknown before the build
	assert.Assert(t, !tr.Fit("t1", "q", q("0.75"), q("0.75"), limit, true), "0.5 + 0.75 > 1")
	w, ok := tr.Waiting("q")
	assert.Assert(t, ok)
	assert.Equal(t, w.String(), "750m")
	tr.Release("t1")
	// The queue is not polled while its first task cannot fit, whatever its template says.
	assert.Assert(t, !tr.Admits("q", resource.Quantity{}, limit))
	assert.Assert(t, tr.Admits("other", q("0.5"), limit))

	tr.Observe("live", "q", resource.Quantity{}, 0, false) // the live pod ended
	assert.Assert(t, tr.Admits("q", resource.Quantity{}, limit))
	tr.Reserve("t1", "q", resource.Quantity{}, 0)
	assert.Assert(t, tr.Fit("t1", "q", q("0.75"), q("0.75"), limit, true))
	_, ok = tr.Waiting("q")
	assert.Assert(t, !ok, "a task that fits ends the wait")
	assert.Equal(t, str(tr.Resources()), "750m", "the reservation holds the rendered amount")
	assert.Assert(t, tr.Fit("t2", "q", q("5"), q("5"), limit, false), "no limit")
}

func TestFreeSlotSkipsSlotsInUse(t *testing.T) {
	tr := NewTracker()
	assert.Equal(t, tr.FreeSlot(2), 1)
	tr.Reserve("a", "q", resource.Quantity{}, 1)
	tr.Observe("b", "q", resource.Quantity{}, SlotOf("pod-2"), true)
	assert.Equal(t, tr.FreeSlot(3), 3)
	assert.Equal(t, tr.FreeSlot(2), 0)
	tr.Release("a")
	assert.Equal(t, tr.FreeSlot(2), 1)
	tr.Observe("b", "q", resource.Quantity{}, 2, false) // its pod ended: the slot is free again
	assert.Equal(t, tr.FreeSlot(2), 1)
	tr.Reserve("c", "q", resource.Quantity{}, 1)
	assert.Equal(t, tr.FreeSlot(2), 2)
}
