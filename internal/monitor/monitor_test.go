package monitor

import (
	"testing"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
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
