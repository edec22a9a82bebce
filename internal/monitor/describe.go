package monitor

import (
	"fmt"
	"slices"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// podEnd says how a Job's pod ended early.
func podEnd(pod *corev1.Pod) string {
	if pod.DeletionTimestamp != nil || pod.Status.Phase != corev1.PodFailed {
		return "pod " + pod.Name + " deleted before the task finished"
	}
	return "pod " + pod.Name + " failed"
}

func jobFailure(job *batchv1.Job) string {
	for _, c := range job.Status.Conditions {
		if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
			return strings.TrimSpace(c.Reason + " " + c.Message)
		}
	}
	return "unknown"
}

// pendingReason explains a pending pod the way the Python glue does: a container's waiting
// reason, else the scheduler's Unschedulable condition. text is "Reason (message)".
func pendingReason(pod *corev1.Pod) (reason, text string) {
	for _, cs := range slices.Concat(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses) {
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" && w.Reason != "PodInitializing" {
			return w.Reason, format(w.Reason, w.Message)
		}
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return c.Reason, format(c.Reason, c.Message)
		}
	}
	return "", ""
}

func format(reason, msg string) string {
	if msg == "" {
		return reason
	}
	return reason + " (" + msg + ")"
}

func disrupted(pod *corev1.Pod) bool {
	return pod != nil && disruptionReason(pod) != ""
}

func disruptionReason(pod *corev1.Pod) string {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue {
			return format(c.Reason, c.Message)
		}
	}
	return ""
}

// replacesDisrupted says whether the Job controller replaces a disrupted pod by itself: the Job
// ignores DisruptionTarget failures (podtemplate sets this rule on every Job it builds).
func replacesDisrupted(job *batchv1.Job) bool {
	if job.Spec.PodFailurePolicy == nil {
		return false
	}
	for _, r := range job.Spec.PodFailurePolicy.Rules {
		if r.Action != batchv1.PodFailurePolicyActionIgnore {
			continue
		}
		for _, p := range r.OnPodConditions {
			if p.Type == corev1.DisruptionTarget {
				return true
			}
		}
	}
	return false
}

// describeTermination lists what a pod's containers ended with: OOMKilled, exit codes and the
// last termination message, for the task's log.
func describeTermination(pod *corev1.Pod) []string {
	if pod == nil {
		return nil
	}
	var lines []string
	for _, cs := range slices.Concat(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses) {
		t := cs.State.Terminated
		if t == nil {
			t = cs.LastTerminationState.Terminated
		}
		if t == nil || (t.ExitCode == 0 && t.Reason != "OOMKilled") {
			continue
		}
		line := fmt.Sprintf("container %s in pod %s terminated: %s, exit code %d", cs.Name, pod.Name, t.Reason, t.ExitCode)
		if msg := strings.TrimSpace(t.Message); msg != "" {
			line += ": " + msg
		}
		lines = append(lines, line)
	}
	if pod.Status.Reason != "" {
		lines = append(lines, fmt.Sprintf("pod %s: %s", pod.Name, format(pod.Status.Reason, pod.Status.Message)))
	}
	return lines
}
