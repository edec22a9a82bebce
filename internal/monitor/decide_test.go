package monitor

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"gotest.tools/v3/assert"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
)

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

var testRules = rules{
	FailFastReasons:        []string{"InvalidImageName"},
	GraceReasons:           []string{"ImagePullBackOff"},
	Grace:                  2 * time.Minute,
	DeletionDelay:          10 * time.Minute,
	DisruptionRequeueLimit: 1,
}

func job(uid string, end batchv1.JobConditionType) *batchv1.Job {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "clearml-id-t1", UID: types.UID(uid)}}
	j.Spec.PodFailurePolicy = disruptionIgnored()
	if end != "" {
		j.Status.Conditions = []batchv1.JobCondition{{Type: end, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded"}}
	}
	return j
}

func disruptionIgnored() *batchv1.PodFailurePolicy {
	return &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{Action: batchv1.PodFailurePolicyActionIgnore,
		OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}}}}
}

type podOpt func(*corev1.Pod)

func pod(uid string, phase corev1.PodPhase, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "clearml-id-t1-" + uid, UID: types.UID(uid)}, Status: corev1.PodStatus{Phase: phase}}
	p.OwnerReferences = []metav1.OwnerReference{{Kind: "Job", Name: "clearml-id-t1", Controller: new(true)}}
	for _, o := range opts {
		o(p)
	}
	return p
}

func bare(p *corev1.Pod) { p.OwnerReferences = nil }

func waiting(reason string) podOpt {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "task", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}}}
	}
}

func disruptedBy(reason string) podOpt {
	return func(p *corev1.Pod) {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: reason})
	}
}

func exited(code int32) podOpt {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "task", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: code}}}}
	}
}

// TestDecide has one case per row of the monitor table in docs/architecture.md.
func TestDecide(t *testing.T) {
	running := pod("p1", corev1.PodRunning)
	tests := map[string]struct {
		obs      observed
		state    taskState
		now      time.Time
		want     plan
		check    func(t *testing.T, st taskState)
		wantDone bool
	}{
		"should report a pending pod's waiting reason once": {
			obs:   observed{Job: job("j1", ""), Pod: pod("p1", corev1.PodPending, waiting("CreateContainerConfigError"))},
			state: taskState{UID: "j1"},
			want: plan{Report: "CreateContainerConfigError", Events: []event{{"Normal", "Pending", "CreateContainerConfigError"}},
				Logs: []logLine{{"debug", clearml.PodStatusLogPrefix + "CreateContainerConfigError"}}},
		},
		"should not report the same pending reason twice": {
			obs:   observed{Job: job("j1", ""), Pod: pod("p1", corev1.PodPending, waiting("CreateContainerConfigError"))},
			state: taskState{UID: "j1", LastMsg: "CreateContainerConfigError"},
			want:  plan{},
		},
		"should report Unschedulable": {
			obs: observed{Job: job("j1", ""), Pod: pod("p1", corev1.PodPending, func(p *corev1.Pod) {
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/3 nodes"}}
			})},
			want: plan{Report: "Unschedulable (0/3 nodes)", Events: []event{{"Normal", "Pending", "Unschedulable (0/3 nodes)"}},
				Logs: []logLine{{"debug", clearml.PodStatusLogPrefix + "Unschedulable (0/3 nodes)"}}},
		},
		"should fail a fail-fast image reason at once, then delete": {
			obs:      observed{Job: job("j1", ""), Pod: pod("p1", corev1.PodPending, waiting("InvalidImageName"))},
			want:     plan{Fail: &failure{Reason: "InvalidImageName", Lines: []string{clearml.K8SErrorLogPrefix + "InvalidImageName"}, Event: "ImagePullFailed"}, Delete: job("j1", "")},
			wantDone: true,
		},
		"should wait out the grace of a grace reason": {
			obs:   observed{Job: job("j1", ""), Pod: pod("p1", corev1.PodPending, waiting("ImagePullBackOff"))},
			state: taskState{UID: "j1", GraceSince: t0.Add(-30 * time.Second)},
			want: plan{Report: "ImagePullBackOff", After: 90 * time.Second, Events: []event{{"Normal", "Pending", "ImagePullBackOff"}},
				Logs: []logLine{{"debug", clearml.PodStatusLogPrefix + "ImagePullBackOff"}}},
		},
		"should fail a grace reason after the grace": {
			obs:      observed{Job: job("j1", ""), Pod: pod("p1", corev1.PodPending, waiting("ImagePullBackOff"))},
			state:    taskState{UID: "j1", GraceSince: t0.Add(-2 * time.Minute), LastMsg: "ImagePullBackOff"},
			want:     plan{Fail: &failure{Reason: "ImagePullBackOff", Lines: []string{clearml.K8SErrorLogPrefix + "ImagePullBackOff"}, Event: "ImagePullFailed"}, Delete: job("j1", "")},
			wantDone: true,
		},
		"should delete the object of a task aborted while pending": {
			obs: observed{Job: job("j1", ""), Pod: pod("p1", corev1.PodPending), Hint: hint{Aborted: true}},
			want: plan{Delete: job("j1", ""), Events: []event{{"Normal", "Aborted", "task aborted in ClearML while pending; object deleted"}},
				Logs: []logLine{{"info", "task aborted while its pod was pending: Kubernetes object deleted"}}},
			wantDone: true,
		},
		"should push a disrupted pod's task back to pending and keep the Job": {
			obs:  observed{Job: job("j1", ""), Pod: pod("p2", corev1.PodPending), Ended: []*corev1.Pod{pod("p1", corev1.PodFailed, disruptedBy("PreemptionByScheduler"))}},
			want: plan{Requeue: "pod clearml-id-t1-p1 disrupted (PreemptionByScheduler); requeued to the pending queue"},
			check: func(t *testing.T, st taskState) {
				assert.Equal(t, st.Disruptions, 1)
				assert.DeepEqual(t, st.Handled, []types.UID{"p1"})
			},
		},
		"should fail the task after disruptionRequeueLimit disruptions": {
			obs:   observed{Job: job("j1", ""), Pod: pod("p2", corev1.PodFailed, disruptedBy("EvictionByEvictionAPI")), Ended: []*corev1.Pod{pod("p2", corev1.PodFailed, disruptedBy("EvictionByEvictionAPI"))}},
			state: taskState{UID: "j1", Disruptions: 1, Handled: []types.UID{"p1"}},
			want: plan{Fail: &failure{Reason: "pod clearml-id-t1-p2 failed", When: whenActive, Event: "TaskFailed"},
				Delete: job("j1", "")},
			wantDone: true,
		},
		"should not count an ended pod twice": {
			obs:   observed{Job: job("j1", ""), Pod: pod("p2", corev1.PodRunning), Ended: []*corev1.Pod{pod("p1", corev1.PodFailed, disruptedBy("x"))}},
			state: taskState{UID: "j1", Disruptions: 1, Handled: []types.UID{"p1"}, SeenLive: true},
			want:  plan{},
		},
		"should fail the task of a Job pod that failed and delete the Job": {
			obs: observed{Job: job("j1", ""), Pod: pod("p1", corev1.PodFailed, exited(137)), Ended: []*corev1.Pod{pod("p1", corev1.PodFailed, exited(137))}},
			want: plan{Fail: &failure{Reason: "pod clearml-id-t1-p1 failed: container task in pod clearml-id-t1-p1 terminated: Error, exit code 137",
				Lines: []string{"container task in pod clearml-id-t1-p1 terminated: Error, exit code 137"}, When: whenActive, Event: "TaskFailed"}, Delete: job("j1", "")},
			wantDone: true,
		},
		"should fail the task of a Job pod deleted while running": {
			obs: observed{Job: job("j1", ""), Ended: []*corev1.Pod{pod("p1", corev1.PodRunning)}},
			want: plan{Fail: &failure{Reason: "pod clearml-id-t1-p1 deleted before the task finished", When: whenActive, Event: "TaskFailed"},
				Delete: job("j1", "")},
			wantDone: true,
		},
		"should fail the task of a failed Job": {
			obs:      observed{Job: job("j1", batchv1.JobFailed)},
			want:     plan{Fail: &failure{Reason: "Job failed: BackoffLimitExceeded", When: whenActive, Event: "TaskFailed"}},
			wantDone: true,
		},
		"should fail a task still waiting in the pending queue when its Job completed": {
			obs:      observed{Job: job("j1", batchv1.JobComplete), Pod: pod("p1", corev1.PodSucceeded)},
			want:     plan{Fail: &failure{Reason: "the pod ended before the task's agent started it", When: whenQueuedInPending, Event: "TaskFailed"}},
			wantDone: true,
		},
		"should do nothing more for a Job already handled": {
			obs:      observed{Job: job("j1", batchv1.JobComplete), Pod: pod("p1", corev1.PodSucceeded)},
			state:    taskState{UID: "j1", Done: true},
			want:     plan{},
			wantDone: true,
		},
		"should start afresh for a new object of the same task": {
			obs:   observed{Job: job("j2", ""), Pod: pod("p9", corev1.PodPending, waiting("ErrImageNeverPull"))},
			state: taskState{UID: "j1", Done: true, Deleting: true, LastMsg: "ErrImageNeverPull"},
			want: plan{Report: "ErrImageNeverPull", Events: []event{{"Normal", "Pending", "ErrImageNeverPull"}},
				Logs: []logLine{{"debug", clearml.PodStatusLogPrefix + "ErrImageNeverPull"}}},
		},
		"should fail a task whose running object vanished": {
			obs:   observed{},
			state: taskState{UID: "j1", SeenLive: true},
			want:  plan{Fail: &failure{Reason: "object deleted while the task was running", When: whenActive}, ForgetState: true},
		},
		"should not fail a task whose object the glue deleted": {
			obs:   observed{},
			state: taskState{UID: "j1", SeenLive: true, Deleting: true},
			want:  plan{ForgetState: true},
		},
		"should fail a failed bare Pod and delete it after the delay": {
			obs:  observed{Pod: pod("p1", corev1.PodFailed, bare, exited(1))},
			want: plan{Fail: &failure{Reason: "Pod failed: container task in pod clearml-id-t1-p1 terminated: Error, exit code 1", Lines: []string{"container task in pod clearml-id-t1-p1 terminated: Error, exit code 1"}, When: whenActive, Event: "TaskFailed"}, After: 10 * time.Minute},
		},
		"should delete a finished bare Pod once the delay passed": {
			obs:      observed{Pod: pod("p1", corev1.PodSucceeded, bare)},
			state:    taskState{UID: "p1", FinishedAt: t0.Add(-10 * time.Minute)},
			want:     plan{Delete: pod("p1", corev1.PodSucceeded, bare)},
			wantDone: true,
		},
		"should say a disrupted bare Pod is not replaced": {
			obs:  observed{Pod: pod("p1", corev1.PodFailed, bare, disruptedBy("EvictionByEvictionAPI"))},
			want: plan{Fail: &failure{Reason: "Pod disrupted (EvictionByEvictionAPI); a bare Pod is not replaced, use taskKind Job", When: whenActive, Event: "TaskFailed"}, After: 10 * time.Minute},
		},
		"should delete at start the object of a finished task whose pod waits": {
			obs:      observed{Job: job("j1", ""), Pod: pod("p1", corev1.PodPending), Hint: hint{Finished: true}},
			want:     plan{Delete: job("j1", "")},
			wantDone: true,
		},
		"should leave at start a running agent of a finished task to end on its own": {
			obs:  observed{Job: job("j1", ""), Pod: running, Hint: hint{Finished: true}},
			want: plan{},
		},
		"should delete at start the object of a task that no longer exists": {
			obs:      observed{Job: job("j1", ""), Pod: running, Hint: hint{Finished: true, Gone: true}},
			want:     plan{Delete: job("j1", "")},
			wantDone: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			now := tc.now
			if now.IsZero() {
				now = t0
			}
			got, st := decide(tc.obs, tc.state, testRules, now)
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
			assert.Equal(t, st.Done, tc.wantDone, "done")
			if tc.check != nil {
				tc.check(t, st)
			}
		})
	}
}
