package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
)

func logContains(e *env, id, substr string) bool {
	return slices.ContainsFunc(e.emu.TaskLog(id), func(l string) bool { return strings.Contains(l, substr) })
}

// 5. A task aborted in the UI while its pod cannot be scheduled: the pending reason reaches the
// task, then the abort deletes the Job.
func TestAbortWhilePendingDeletesJob(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  queues:
    nowhere:
      templateOverrides:
        nodeSelector: {no-such-node: "true"}
`)
	e.startGlue("glue-0")
	id := e.task("nowhere", "stuck", emulator.TaskSpec{})
	e.waitJob(id, 30*time.Second)
	e.waitFor(30*time.Second, "unschedulable status on the task", func() bool {
		return strings.HasPrefix(e.taskState(id).StatusMessage, clearml.GlueStatusMessagePrefix+"Unschedulable")
	}, func() string { return e.taskState(id).StatusMessage })
	assert.Assert(t, logContains(e, id, "Kubernetes Pod status: Unschedulable"), "log: %q", e.emu.TaskLog(id))

	_, err := e.user.TasksStop(context.Background(), clearml.TaskStatusRequest{Task: id})
	assert.NilError(t, err)
	e.waitNoJob(id, 15*time.Second)
	assert.Equal(t, e.taskState(id).Status, clearml.StatusStopped)
}

// 6a. InvalidImageName fails the task at once and deletes its Job.
func TestInvalidImageNameFailsTaskAtOnce(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  imagePull: {backOffGraceSeconds: 600}
  queues:
    bad-image:
      templateOverrides:
        labels: {e2e.glue/behavior: invalid-image}
`)
	e.startGlue("glue-0")
	id := e.task("bad-image", "typo", emulator.TaskSpec{})
	task := e.waitStatus(id, clearml.StatusFailed, 20*time.Second)
	assert.Assert(t, strings.HasPrefix(task.StatusReason, "K8S glue error: InvalidImageName"), task.StatusReason)
	assert.Equal(t, task.StatusMessage, clearml.ChangedByGlueMessage)
	assert.Assert(t, logContains(e, id, "K8S Error: InvalidImageName"))
	e.waitNoJob(id, 15*time.Second)
}

// 6b. ImagePullBackOff fails the task only after the grace period, not before.
func TestImagePullBackOffFailsAfterGraceNotBefore(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  imagePull: {backOffGraceSeconds: 6}
  queues:
    slow-registry:
      templateOverrides:
        labels: {e2e.glue/behavior: image-backoff}
`)
	e.startGlue("glue-0")
	id := e.task("slow-registry", "big-image", emulator.TaskSpec{})
	e.waitFor(20*time.Second, "backoff status on the task", func() bool {
		return strings.Contains(e.taskState(id).StatusMessage, "ImagePullBackOff")
	}, func() string { return e.taskState(id).StatusMessage })
	seen := time.Now()
	time.Sleep(3 * time.Second)
	assert.Equal(t, e.taskState(id).Status, clearml.StatusQueued, "failed before the grace period")
	_, err := e.job(id)
	assert.NilError(t, err, "job deleted before the grace period")
	task := e.waitStatus(id, clearml.StatusFailed, 15*time.Second)
	assert.Assert(t, time.Since(seen) >= 4*time.Second, "failed after only %s", time.Since(seen))
	assert.Assert(t, strings.HasPrefix(task.StatusReason, "K8S glue error: ImagePullBackOff"), task.StatusReason)
	e.waitNoJob(id, 15*time.Second)
}

// 7a. A running pod deleted by someone: the task is failed with the reason.
func TestRunningPodDeletedFailsTask(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  queues:
    long:
      templateOverrides:
        labels: {e2e.glue/behavior: hold}
`)
	e.startGlue("glue-0")
	id := e.task("long", "long-run", emulator.TaskSpec{})
	e.waitStatus(id, clearml.StatusInProgress, 30*time.Second)
	pod := e.podOf(id)
	assert.NilError(t, e.cs.CoreV1().Pods(e.ns).Delete(context.Background(), pod, metav1.DeleteOptions{}))
	task := e.waitStatus(id, clearml.StatusFailed, 30*time.Second)
	assert.Assert(t, strings.HasPrefix(task.StatusReason, "K8S glue error: pod "+pod+" deleted before the task finished"), task.StatusReason)
	e.waitNoJob(id, 15*time.Second) // no replacement pod may run the failed task again
}

// 7b. A running pod evicted (DisruptionTarget): the task goes back to the pending queue and its
// Job's controller starts a new pod, at most disruptionRequeueLimit times. The Job keeps its
// place meanwhile: with maxPods 1 the next task waits.
func TestEvictedPodRequeuesTaskOnDisruptionTarget(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  disruptionRequeueLimit: 1
  maxPods: 1
  queues:
    long:
      templateOverrides:
        labels: {e2e.glue/behavior: hold}
`)
	jobs := e.recordJobs()
	e.startGlue("glue-0")
	id := e.task("long", "preemptible", emulator.TaskSpec{})
	e.waitStatus(id, clearml.StatusInProgress, 30*time.Second)
	next := e.task("long", "waits", emulator.TaskSpec{})
	first := e.podOf(id)
	e.evict(first)
	e.waitFor(30*time.Second, "a second pod of the task's Job", func() bool {
		p := e.podOf(id)
		return p != first
	}, func() string { return e.taskState(id).Status + " " + strings.Join(e.emu.TaskLog(id), "|") })
	e.waitStatus(id, clearml.StatusInProgress, 30*time.Second)
	assert.Assert(t, logContains(e, id, "requeued to the pending queue"))
	_, uids, _, _ := jobs.snapshot()
	assert.Equal(t, len(uids[id]), 1, "the Job is kept, its controller replaces the pod")
	assert.Equal(t, e.taskState(next).Status, clearml.StatusQueued)
	assert.Equal(t, len(uids[next]), 0, "maxPods 1: the next task was launched while the relaunch held the place")

	// The limit is 1: the second eviction fails the task.
	e.evict(e.podOf(id))
	task := e.waitStatus(id, clearml.StatusFailed, 30*time.Second)
	assert.Assert(t, strings.Contains(task.StatusReason, "clearml-id-"+id), task.StatusReason)
	e.waitStatus(next, clearml.StatusInProgress, 30*time.Second)
}

// A disruption while ClearML refuses the push back to the pending queue: the monitor retries,
// the task still ends in the pending queue and runs again.
func TestEvictionWhileClearMLFailsStillRequeues(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  queues:
    long:
      templateOverrides:
        labels: {e2e.glue/behavior: hold}
`)
	e.startGlue("glue-0")
	id := e.task("long", "preemptible", emulator.TaskSpec{})
	e.waitStatus(id, clearml.StatusInProgress, 30*time.Second)
	e.emu.InjectFault(emulator.Fault{Endpoint: "tasks.enqueue", Count: 3, Status: 500})
	first := e.podOf(id)
	e.evict(first)
	e.waitFor(60*time.Second, "the task running again in a new pod", func() bool {
		return e.taskState(id).Status == clearml.StatusInProgress && e.podOf(id) != first
	}, func() string { return e.taskState(id).Status + " " + strings.Join(e.emu.TaskLog(id), "|") })
	assert.Assert(t, logContains(e, id, "requeued to the pending queue"))
}

// podOf waits for the task's running pod and returns its name.
func (e *env) podOf(id string) string {
	e.t.Helper()
	var name string
	e.waitFor(30*time.Second, "running pod of task "+id, func() bool {
		pods, err := e.cs.CoreV1().Pods(e.ns).List(context.Background(), metav1.ListOptions{LabelSelector: podtemplate.LabelTaskID + "=" + id})
		if err != nil {
			return false
		}
		for _, p := range pods.Items {
			if p.Status.Phase == "Running" && p.DeletionTimestamp == nil {
				name = p.Name
				return true
			}
		}
		return false
	}, func() string { return "no running pod" })
	return name
}

func (e *env) evict(pod string) {
	e.t.Helper()
	err := e.cs.CoreV1().Pods(e.ns).EvictV1(context.Background(), &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: e.ns}})
	assert.NilError(e.t, err)
}

// 10. A queue whose template is invalid: its tasks fail with the message naming the field and
// value; the other queues keep running.
func TestInvalidTemplateFailsOnlyThatQueuesTasks(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  queues:
    broken:
      templateOverrides:
        resources: {limits: {memory: "12 GB"}}
    healthy: {}
`)
	e.startGlue("glue-0")
	bad := e.task("broken", "doomed", emulator.TaskSpec{})
	good := e.task("healthy", "fine", emulator.TaskSpec{})
	task := e.waitStatus(bad, clearml.StatusFailed, 30*time.Second)
	assert.Assert(t, strings.Contains(task.StatusReason, `"12 GB"`), task.StatusReason)
	assert.Assert(t, strings.Contains(task.StatusReason, "broken"), task.StatusReason)
	assert.Assert(t, logContains(e, bad, "could not launch"))
	e.waitStatus(good, clearml.StatusCompleted, 30*time.Second)
	_, err := e.job(bad)
	assert.Assert(t, err != nil, "a Job was created for the invalid template")
	assert.Equal(t, len(e.emu.QueueEntries("k8s_scheduler")), 0, "failed task left in the pending queue")
}

// 4. helm upgrade adds a queue: served within 5 s, no restart, nothing lost or duplicated.
func TestHelmUpgradeAddsQueueServedWithin5sWithoutRestart(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  queues:
    first:
      templateOverrides:
        annotations: {e2e.glue/run-ms: "200ms"}
`)
	jobs := e.recordJobs()
	e.startGlue("glue-0")
	a := e.task("first", "a", emulator.TaskSpec{})
	e.waitStatus(a, clearml.StatusCompleted, 30*time.Second)
	b := e.task("second", "b", emulator.TaskSpec{})
	time.Sleep(2 * time.Second)
	assert.Equal(t, e.taskState(b).Status, clearml.StatusQueued, "queue served before the upgrade")
	assert.DeepEqual(t, e.emu.QueueEntries("second"), []string{b})

	e.upgrade(`
agentk8sglue:
  queues:
    second:
      templateOverrides:
        annotations: {e2e.glue/run-ms: "200ms"}
`)
	upgraded := time.Now()
	e.waitJob(b, 10*time.Second)
	assert.Assert(t, time.Since(upgraded) <= 5*time.Second, "served %s after the upgrade", time.Since(upgraded))
	a2 := e.task("first", "a2", emulator.TaskSpec{})
	for _, id := range []string{b, a2} {
		e.waitStatus(id, clearml.StatusCompleted, 30*time.Second)
	}
	select {
	case err := <-e.glueErrs:
		t.Fatalf("glue stopped: %v", err)
	default:
	}
	_, uids, _, _ := jobs.snapshot()
	for _, id := range []string{a, b, a2} {
		assert.Equal(t, len(uids[id]), 1, "task %s got %d Jobs", id, len(uids[id]))
	}
}
