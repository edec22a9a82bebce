package monitor

import (
	"testing"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/clearml-glue/clearml-glue/internal/admission"
)

func TestPendingReason(t *testing.T) {
	waiting := func(reason, msg string) corev1.ContainerStatus {
		return corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}}
	}
	for name, tc := range map[string]struct {
		status corev1.PodStatus
		reason string
		text   string
	}{
		"image pull back-off": {corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{waiting("ImagePullBackOff", "Back-off pulling image")}},
			"ImagePullBackOff", "ImagePullBackOff (Back-off pulling image)"},
		"init container first": {corev1.PodStatus{
			InitContainerStatuses: []corev1.ContainerStatus{waiting("ErrImagePull", "")},
			ContainerStatuses:     []corev1.ContainerStatus{waiting("PodInitializing", "")}}, "ErrImagePull", "ErrImagePull"},
		"creating is not a reason": {corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{waiting("ContainerCreating", "")}}, "", ""},
		"unschedulable": {corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
			Reason: "Unschedulable", Message: "0/3 nodes are available"}}}, "Unschedulable", "Unschedulable (0/3 nodes are available)"},
		"nothing to say": {corev1.PodStatus{}, "", ""},
	} {
		t.Run(name, func(t *testing.T) {
			reason, text := pendingReason(&corev1.Pod{Status: tc.status})
			assert.Equal(t, reason, tc.reason)
			assert.Equal(t, text, tc.text)
		})
	}
}

func TestDescribeTerminationReportsOOMAndExitCodes(t *testing.T) {
	pod := &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{
		{Name: "task", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "OOMKilled", ExitCode: 137, Message: "memory limit\n"}}},
		{Name: "ok", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed"}}},
		{Name: "sidecar", LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 2}}},
	}, Reason: "Evicted", Message: "node low on memory"}}
	pod.Name = "p"
	assert.DeepEqual(t, describeTermination(pod), []string{
		"container task in pod p terminated: OOMKilled, exit code 137: memory limit",
		"container sidecar in pod p terminated: Error, exit code 2",
		"pod p: Evicted (node low on memory)",
	})
	assert.Assert(t, describeTermination(nil) == nil)
}

func TestDisruptedNeedsTheCondition(t *testing.T) {
	pod := &corev1.Pod{Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "EvictionByEvictionAPI"}}}}
	assert.Assert(t, disrupted(pod))
	pod.Status.Conditions[0].Status = corev1.ConditionFalse
	assert.Assert(t, !disrupted(pod))
	assert.Assert(t, !disrupted(nil))
}

func TestTrimKeepsWhatTheMonitorReads(t *testing.T) {
	limits := corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")}
	pod := &corev1.Pod{}
	pod.Labels = map[string]string{"clearml-task-id": "t1", "ai.allegro.agent.serial": "pod-1"}
	pod.Annotations = map[string]string{"clearml-glue/file-0": "big file content"}
	pod.Spec = corev1.PodSpec{NodeName: "n1", Volumes: []corev1.Volume{{Name: "v"}}, Containers: []corev1.Container{{
		Name: "task", Image: "img", Command: []string{"bash", "-c", "a long bootstrap"}, Env: []corev1.EnvVar{{Name: "A"}},
		Resources: corev1.ResourceRequirements{Limits: limits},
	}}}
	pod.Status.Phase = corev1.PodPending
	out, err := trim(pod)
	assert.NilError(t, err)
	p := out.(*corev1.Pod)
	assert.Equal(t, len(p.Annotations), 0)
	assert.Equal(t, len(p.Spec.Volumes), 0)
	assert.Equal(t, len(p.Spec.Containers[0].Command)+len(p.Spec.Containers[0].Env), 0)
	assert.Equal(t, p.Labels["clearml-task-id"], "t1")
	assert.Equal(t, p.Status.Phase, corev1.PodPending)
	gpus, err := admission.MustParsePath("resources|limits|nvidia.com/gpu").Object(p)
	assert.NilError(t, err)
	assert.Equal(t, gpus.String(), "1")
	assert.Equal(t, admission.SlotOf(p.Labels["ai.allegro.agent.serial"]), 1)
}
