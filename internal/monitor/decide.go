package monitor

import (
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
	"github.com/clearml-glue/clearml-glue/internal/taskops"
)

// observed is what sync reads for one task before deciding: the caches, the pods deleted since
// the last look, and what the periodic ClearML checks found.
type observed struct {
	Job *batchv1.Job
	// Pod is the task's newest pod in the cache (the Job's current pod, or the bare Pod).
	Pod *corev1.Pod
	// Ended are the Job's pods that failed or were deleted before succeeding, oldest first.
	Ended []*corev1.Pod
	Hint  hint
}

// hint is what a ClearML check learnt about the task outside sync.
type hint struct {
	// Aborted: the task is stopped in ClearML (checked while its pod was pending).
	Aborted bool
	// Finished: at start, a direct lookup found the task finished or gone; Gone says gone.
	Finished, Gone bool
}

// taskState is what the monitor remembers of one task's object between syncs. Only sync writes
// it; it is keyed by the object's UID, so a relaunched object starts afresh.
type taskState struct {
	UID        types.UID
	SeenLive   bool
	Done       bool // the object's end was handled (reported or left to the task's agent)
	Deleting   bool // the glue deletes the object itself
	LastMsg    string
	GraceSince time.Time
	FinishedAt time.Time
	// Disruptions counts the Job's disrupted pods put back in the pending queue; Handled holds
	// the UIDs of ended pods already judged.
	Disruptions int
	Handled     []types.UID
	LastPod     *corev1.Pod
}

// rules are the settings decide applies, from the config in force.
type rules struct {
	FailFastReasons        []string
	GraceReasons           []string
	Grace                  time.Duration
	DeletionDelay          time.Duration
	DisruptionRequeueLimit int
}

// Task statuses a conditional action checks.
var (
	whenActive          = []string{clearml.StatusInProgress, clearml.StatusQueued}
	whenQueuedInPending = []string{taskops.QueuedInPending}
)

// failure fails the task, when its status is one of When (nil: whatever it is).
type failure struct {
	Reason string
	Lines  []string
	When   []string
	// Event is the reason of the Warning Event on the object.
	Event string
}

// plan is what decide asks sync to do, in this order: push back to the pending queue, fail,
// delete, report the pending reason, write the log lines and events.
type plan struct {
	Requeue     string // message of a push back to the pending queue (when the task is active)
	Fail        *failure
	Delete      runtime.Object
	Report      string // pending reason for the task's status message
	Events      []event
	Logs        []logLine
	After       time.Duration // look again after this long (0: only on the next change)
	ForgetState bool          // the object is gone: drop the state
}

type event struct{ Type, Reason, Message string }

type logLine struct{ Level, Message string }

// decide is the monitor's whole judgement: from what is observed and remembered, what to do.
// It is pure, so every row of the monitor's table is a unit test.
func decide(obs observed, st taskState, r rules, now time.Time) (plan, taskState) {
	var p plan
	obj := object(obs)
	if obj == nil {
		if st.SeenLive && !st.Done && !st.Deleting {
			p.Fail = &failure{Reason: "object deleted while the task was running", When: whenActive, Lines: describeTermination(st.LastPod)}
		}
		p.ForgetState = true
		return p, taskState{}
	}
	if uid := uidOf(obj); st.UID != uid {
		st = taskState{UID: uid}
	}
	if obs.Pod != nil {
		st.LastPod = obs.Pod
	}
	if obs.Hint.Finished && !st.Done && !st.Deleting && live(obs) {
		// The task ended or vanished while the glue was away. A running agent ends on its own.
		if obs.Hint.Gone || obs.Pod == nil || obs.Pod.Status.Phase != corev1.PodRunning {
			st.Done, st.Deleting = true, true
			p.Delete = obj
			return p, st
		}
	}
	if obs.Job != nil {
		if done := decideJob(obs, &st, r, &p); done {
			return p, st
		}
	}
	pod := obs.Pod
	if pod == nil || st.Done {
		return p, st
	}
	switch pod.Status.Phase {
	case corev1.PodPending:
		st.SeenLive = true
		decidePending(obs, obj, &st, r, now, &p)
	case corev1.PodRunning:
		st.SeenLive = true
		st.GraceSince, st.LastMsg = time.Time{}, ""
	case corev1.PodSucceeded, corev1.PodFailed:
		if obs.Job == nil {
			decideBarePodEnd(pod, &st, r, now, &p)
		}
	}
	return p, st
}

// decideJob judges a Job's end and its ended pods; it reports true when nothing more is to do.
func decideJob(obs observed, st *taskState, r rules, p *plan) bool {
	job := obs.Job
	end := podtemplate.JobEnd(job)
	if end == "" {
		st.SeenLive = true
	}
	for _, pod := range obs.Ended {
		if st.Done || slices.Contains(st.Handled, pod.UID) {
			continue
		}
		st.Handled = append(st.Handled, pod.UID)
		st.LastPod = pod
		if disrupted(pod) && replacesDisrupted(job) && end == "" && st.Disruptions < r.DisruptionRequeueLimit {
			// The Job controller starts a new pod; the task waits for it in the pending queue.
			st.Disruptions++
			p.Requeue = "pod " + pod.Name + " disrupted (" + disruptionReason(pod) + "); requeued to the pending queue"
			continue
		}
		lines := describeTermination(pod)
		reason := podEnd(pod)
		if len(lines) > 0 {
			reason += ": " + lines[0]
		}
		st.Done = true
		p.Fail = &failure{Reason: reason, Lines: lines, When: whenActive, Event: "TaskFailed"}
		if end == "" {
			// The task is failed: no replacement pod may run it again.
			st.Deleting = true
			p.Delete = job
		}
	}
	if st.Done {
		return true
	}
	switch end {
	case batchv1.JobComplete:
		st.Done = true
		// A pod that ended before its agent took the task (a wrong entrypoint, a crash at start)
		// leaves the task waiting in the pending queue: fail it with what the pod said, once.
		lines := describeTermination(st.LastPod)
		p.Fail = &failure{Reason: "the pod ended before the task's agent started it", Lines: lines, When: whenQueuedInPending, Event: "TaskFailed"}
		return true
	case batchv1.JobFailed:
		st.Done = true
		lines := describeTermination(st.LastPod)
		p.Fail = &failure{Reason: "Job failed: " + jobFailure(job), Lines: lines, When: whenActive, Event: "TaskFailed"}
		return true
	}
	return false
}

// decidePending reports why a pod waits, applies the image-pull rules and deletes the object
// of a task aborted in ClearML.
func decidePending(obs observed, obj runtime.Object, st *taskState, r rules, now time.Time, p *plan) {
	if obs.Hint.Aborted {
		st.Done, st.Deleting = true, true
		p.Delete = obj
		p.Events = append(p.Events, event{corev1.EventTypeNormal, "Aborted", "task aborted in ClearML while pending; object deleted"})
		p.Logs = append(p.Logs, logLine{"info", "task aborted while its pod was pending: Kubernetes object deleted"})
		return
	}
	reason, text := pendingReason(obs.Pod)
	imageFailure := slices.Contains(r.FailFastReasons, reason)
	if slices.Contains(r.GraceReasons, reason) {
		if st.GraceSince.IsZero() {
			st.GraceSince = now
		}
		left := r.Grace - now.Sub(st.GraceSince)
		imageFailure = left <= 0
		p.After = left
	} else {
		st.GraceSince = time.Time{}
	}
	if imageFailure {
		// Fail first, delete second: a ClearML outage retries the failure instead of leaving a
		// queued task with no object.
		st.Done, st.Deleting = true, true
		p.After = 0
		p.Fail = &failure{Reason: text, Lines: []string{clearml.K8SErrorLogPrefix + text}, Event: "ImagePullFailed"}
		p.Delete = obj
		return
	}
	if text != "" && text != st.LastMsg {
		st.LastMsg = text
		p.Report = text
		p.Events = append(p.Events, event{corev1.EventTypeNormal, "Pending", text})
		p.Logs = append(p.Logs, logLine{"debug", clearml.PodStatusLogPrefix + text})
	}
}

// decideBarePodEnd reports a bare Pod (taskKind Pod) that ended and deletes it after the
// configured delay (Jobs get ttlSecondsAfterFinished instead).
func decideBarePodEnd(pod *corev1.Pod, st *taskState, r rules, now time.Time, p *plan) {
	if st.FinishedAt.IsZero() {
		st.FinishedAt = now
		lines := describeTermination(pod)
		if pod.Status.Phase == corev1.PodFailed {
			reason := "Pod failed"
			if disrupted(pod) {
				reason = "Pod disrupted (" + disruptionReason(pod) + "); a bare Pod is not replaced, use taskKind Job"
			}
			if len(lines) > 0 {
				reason += ": " + lines[0]
			}
			p.Fail = &failure{Reason: reason, Lines: lines, When: whenActive, Event: "TaskFailed"}
		} else {
			p.Fail = &failure{Reason: "the pod ended before the task's agent started it", Lines: lines, When: whenQueuedInPending, Event: "TaskFailed"}
		}
	}
	if wait := r.DeletionDelay - now.Sub(st.FinishedAt); wait > 0 {
		p.After = wait
		return
	}
	st.Done, st.Deleting = true, true
	p.Delete = pod
}

func object(obs observed) runtime.Object {
	switch {
	case obs.Job != nil:
		return obs.Job
	case obs.Pod != nil && standalone(obs.Pod):
		return obs.Pod
	}
	return nil
}

func uidOf(obj runtime.Object) types.UID {
	switch o := obj.(type) {
	case *batchv1.Job:
		return o.UID
	case *corev1.Pod:
		return o.UID
	}
	return ""
}

// live says whether the task's object is still pending or running.
func live(obs observed) bool {
	if obs.Job != nil {
		return podtemplate.JobEnd(obs.Job) == ""
	}
	return obs.Pod != nil && (obs.Pod.Status.Phase == corev1.PodPending || obs.Pod.Status.Phase == corev1.PodRunning)
}
