package podagent_test

import (
	"context"
	"testing"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"github.com/clearml-glue/clearml-glue/internal/clearml/podagent"
	"gotest.tools/v3/assert"
)

// setup creates a task and pushes it into the pending queue as the glue does.
func setup(t *testing.T) (*emulator.Server, *clearml.Client, string) {
	t.Helper()
	srv := emulator.NewTestServer(t, emulator.Options{})
	c, err := clearml.New(clearml.Config{APIHost: srv.URL(), AccessKey: emulator.DefaultAccessKey, SecretKey: emulator.DefaultSecretKey})
	assert.NilError(t, err)
	_, err = srv.CreateQueue(clearml.PendingQueueName, clearml.PendingQueueTag)
	assert.NilError(t, err)
	id := srv.CreateTask(emulator.TaskSpec{Name: "train"})
	assert.NilError(t, srv.SetTaskStatus(id, clearml.StatusStopped))
	assert.NilError(t, c.TasksEnqueue(context.Background(), clearml.TasksEnqueueRequest{Task: id,
		Queue: srv.QueueID(clearml.PendingQueueName), StatusReason: clearml.PendingQueueReason}))
	return srv, c, id
}

func TestRunToCompletion(t *testing.T) {
	tests := map[string]struct {
		exitCode   int
		wantStatus string
		wantReason string
	}{
		"success": {exitCode: 0, wantStatus: clearml.StatusCompleted, wantReason: "worker execution done"},
		"failure": {exitCode: 3, wantStatus: clearml.StatusFailed, wantReason: "worker execution exit code 3"},
		"killed":  {exitCode: 137, wantStatus: clearml.StatusFailed, wantReason: "worker execution exit code 137"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv, c, id := setup(t)
			ctx := context.Background()
			runs, err := podagent.Start(ctx, c, id)
			assert.NilError(t, err)
			assert.Assert(t, runs)
			task, _ := srv.Task(id)
			assert.Equal(t, task.Status, clearml.StatusInProgress)
			assert.Equal(t, task.StatusReason, clearml.StartingReason)
			assert.DeepEqual(t, srv.QueueEntries(clearml.PendingQueueName), []string{})

			assert.NilError(t, podagent.Finish(ctx, c, id, tc.exitCode))
			task, _ = srv.Task(id)
			assert.Equal(t, task.Status, tc.wantStatus)
			assert.Equal(t, task.StatusReason, tc.wantReason)
			assert.Assert(t, !task.Completed.IsZero())
		})
	}
}

// TestAbortedWhilePending: the user aborted the task before the pod started, so the
// pod agent must not run it.
func TestAbortedWhilePending(t *testing.T) {
	srv, c, id := setup(t)
	ctx := context.Background()
	_, err := c.TasksStop(ctx, clearml.TaskStatusRequest{Task: id})
	assert.NilError(t, err)
	runs, err := podagent.Start(ctx, c, id)
	assert.NilError(t, err)
	assert.Assert(t, !runs)
	task, _ := srv.Task(id)
	assert.Equal(t, task.Status, clearml.StatusStopped)
}

func TestErrors(t *testing.T) {
	srv, c, _ := setup(t)
	ctx := context.Background()
	runs, err := podagent.Start(ctx, c, "missing")
	assert.NilError(t, err, "an unknown task dequeues as updated:0")
	assert.Assert(t, !runs)
	err = podagent.Finish(ctx, c, "missing", 0)
	assert.Assert(t, clearml.IsSubcode(err, 400, 101), "got %v", err)
	assert.ErrorContains(t, err, "podagent: finish missing:")

	srv.InjectFault(emulator.Fault{Endpoint: "tasks.dequeue", Status: 500})
	_, err = podagent.Start(ctx, c, "x")
	assert.ErrorContains(t, err, "podagent: dequeue x:")
}
