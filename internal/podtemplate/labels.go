package podtemplate

import "strings"

// Label keys on every object the glue creates. The first four are the Python glue's, which the
// ClearML UI and tooling read; LabelAgent selects the objects of one glue instance.
const (
	LabelQueue        = "clearml-agent-queue"
	LabelQueueName    = "clearml-agent-queue-name"
	LabelTaskID       = "clearml-task-id"
	LabelParentTaskID = "clearml-parent-task-id"
	LabelAgent        = "clearml-agent"
	// LabelPortSlot carries "pod-<n>" in sessions port mode; the open-source chart's Services
	// select on it.
	LabelPortSlot = "ai.allegro.agent.serial"
)

const objectNamePrefix = "clearml-id-"

// ObjectName is the name of the Job or Pod that runs a task.
func ObjectName(taskID string) string { return objectNamePrefix + taskID }

// TaskIDFromName returns the task id in an object name made by ObjectName, also for the names of
// a Job's Pods ("clearml-id-<id>-<suffix>"): task ids never contain '-'.
func TaskIDFromName(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, objectNamePrefix)
	if !ok {
		return "", false
	}
	id, _, _ := strings.Cut(rest, "-")
	return id, id != ""
}

// maxLabelValue is the longest valid label value.
const maxLabelValue = 63

// SanitizeLabelValue makes s a valid label value the way the Python glue does: lower case, each run
// of other characters than a-z and 0-9 becomes one '-', no leading or trailing '-', at most 63
// characters. Unlike Python, non-ASCII letters are replaced too, so the result is always valid.
func SanitizeLabelValue(s string) string {
	var b strings.Builder
	pendingDash := false
	for _, r := range strings.ToLower(s) {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') {
			pendingDash = true
			continue
		}
		if pendingDash && b.Len() > 0 {
			b.WriteByte('-')
		}
		pendingDash = false
		b.WriteRune(r)
		if b.Len() >= maxLabelValue {
			break
		}
	}
	out := b.String()
	if len(out) > maxLabelValue {
		out = out[:maxLabelValue]
	}
	return strings.TrimRight(out, "-")
}
