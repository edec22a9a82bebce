package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
)

// Two releases in two namespaces share one ClearML server and its pending queue; their tasks'
// agents start 10 s after the pods run (an image pull, a pip install). Every task runs once, in
// its own release's namespace; nothing is failed or moved by the other release.
func TestTwoReleasesShareThePendingQueue(t *testing.T) {
	const perTeam = 8
	values := func(queue string) string {
		return fmt.Sprintf(`
agentk8sglue:
  queues:
    %s:
      templateOverrides:
        annotations: {e2e.glue/agent-delay: "10s", e2e.glue/run-ms: "12s"}
`, queue)
	}
	a := newEnv(t, values("team-a"))
	b := newEnvOn(t, a.emu, values("team-b"))
	jobsA, jobsB := a.recordJobs(), b.recordJobs()
	a.startGlue("glue-a")
	b.startGlue("glue-b")
	var idsA, idsB []string
	for i := range perTeam {
		idsA = append(idsA, a.task("team-a", fmt.Sprintf("a-%d", i), emulator.TaskSpec{}))
		idsB = append(idsB, b.task("team-b", fmt.Sprintf("b-%d", i), emulator.TaskSpec{}))
	}
	for _, id := range append(append([]string(nil), idsA...), idsB...) {
		task := a.waitStatus(id, clearml.StatusCompleted, 120*time.Second)
		assert.Assert(t, !strings.Contains(task.StatusReason, "K8S glue error"), "task %s: %s", id, task.StatusReason)
	}
	_, uidsA, _, _ := jobsA.snapshot()
	_, uidsB, _, _ := jobsB.snapshot()
	for _, id := range idsA {
		assert.Equal(t, len(uidsA[id]), 1, "team-a task %s has %d Jobs in its namespace", id, len(uidsA[id]))
		assert.Equal(t, len(uidsB[id]), 0, "team-a task %s got a Job from release b", id)
	}
	for _, id := range idsB {
		assert.Equal(t, len(uidsB[id]), 1, "team-b task %s has %d Jobs in its namespace", id, len(uidsB[id]))
		assert.Equal(t, len(uidsA[id]), 0, "team-b task %s got a Job from release a", id)
	}
	for _, e := range []*env{a, b} {
		assert.Equal(t, strings.Count(e.logs.all(), "msg=launched"), perTeam, "each glue launches each of its tasks once")
	}
}

// Entries in the pending queue that this glue did not push stay untouched for many cycles: one
// with no k8s-queue property (the Python glue sets it only after kubectl apply), one whose
// property names a queue this glue serves, one naming a queue it does not serve, and a user's
// direct enqueue into the pending queue.
func TestForeignPendingEntriesStayUntouched(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  queue: served
`)
	_, err := e.emu.CreateQueue("k8s_scheduler", clearml.PendingQueueTag)
	assert.NilError(t, err)
	prop := func(queue string) map[string]map[string]emulator.HyperParam {
		return map[string]map[string]emulator.HyperParam{"properties": {"k8s-queue": {Section: "properties", Name: "k8s-queue", Value: queue}}}
	}
	foreign := map[string]string{}
	for name, spec := range map[string]emulator.TaskSpec{
		"no property":         {},
		"served property":     {Hyperparams: prop("served")},
		"other glue's queue":  {Hyperparams: prop("elsewhere")},
		"user direct enqueue": {},
	} {
		spec.Name = name
		id := e.emu.CreateTask(spec)
		assert.NilError(t, e.emu.Enqueue(id, "k8s_scheduler"))
		foreign[name] = id
	}
	before := e.emu.QueueEntries("k8s_scheduler")
	e.startGlue("glue-0")
	own := e.task("served", "own", emulator.TaskSpec{})
	e.waitStatus(own, clearml.StatusCompleted, 60*time.Second)
	time.Sleep(4 * time.Second) // at least three more cycles at pollIntervalSeconds 1
	assert.DeepEqual(t, e.emu.QueueEntries("k8s_scheduler"), before)
	for name, id := range foreign {
		task := e.taskState(id)
		assert.Equal(t, task.Status, clearml.StatusQueued, name)
		_, err := e.job(id)
		assert.Assert(t, err != nil, "%s: a Job was created for a foreign entry", name)
	}
}

// A task reset and enqueued again while its finished Job still waits for its TTL runs again, at
// once, in a new Job.
func TestReEnqueuedTaskWithFinishedJobRunsAgain(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  completedPodDeletionDelayMinutes: 10
  queue: work
`)
	jobs := e.recordJobs()
	e.startGlue("glue-0")
	id := e.task("work", "twice", emulator.TaskSpec{})
	e.waitStatus(id, clearml.StatusCompleted, 60*time.Second)
	assert.NilError(t, e.emu.SetTaskStatus(id, clearml.StatusCreated)) // the user resets it
	assert.NilError(t, e.emu.Enqueue(id, "work"))
	e.waitFor(60*time.Second, "a second Job", func() bool {
		_, uids, _, _ := jobs.snapshot()
		return len(uids[id]) == 2
	}, func() string { return e.taskState(id).Status })
	e.waitStatus(id, clearml.StatusCompleted, 60*time.Second)
}

// A pod that ends before its agent takes the task (a wrong entrypoint, a crash at start) fails
// the task once with what the pod said; it is not launched again.
func TestPodEndingBeforeItsAgentFailsTheTaskOnce(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  completedPodDeletionDelayMinutes: 10
  queue: work
  basePodTemplate:
    annotations: {e2e.glue/agent-delay: "30s", e2e.glue/run-ms: "100ms"}
`)
	e.startGlue("glue-0")
	id := e.task("work", "quick exit", emulator.TaskSpec{})
	task := e.waitStatus(id, clearml.StatusFailed, 60*time.Second)
	assert.Assert(t, strings.Contains(task.StatusReason, "the pod ended before the task's agent started it"), task.StatusReason)
	time.Sleep(3 * time.Second)
	assert.Equal(t, strings.Count(e.logs.all(), "msg=launched"), 1)
	assert.Equal(t, len(e.emu.QueueEntries("k8s_scheduler")), 0, "the failed task was left in the pending queue")
	job, err := e.job(id)
	assert.NilError(t, err)
	assert.Equal(t, job.Labels[podtemplate.LabelTaskID], id)
}
