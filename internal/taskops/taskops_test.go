package taskops

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
)

func newOps(t *testing.T) (*Ops, *emulator.Server) {
	t.Helper()
	emu := emulator.NewTestServer(t, emulator.Options{})
	c, err := clearml.New(clearml.Config{APIHost: emu.URL(), AccessKey: emulator.DefaultAccessKey, SecretKey: emulator.DefaultSecretKey})
	assert.NilError(t, err)
	return New(c, "glue", "k8s_scheduler", slog.New(slog.NewTextHandler(io.Discard, nil))), emu
}

// With no ids, nothing is asked: a tasks.get_all without an id filter pages through every task
// of the server (a glue with no objects did that at every start).
func TestNoIDsNoCall(t *testing.T) {
	o, emu := newOps(t)
	emu.CreateTask(emulator.TaskSpec{Name: "someone else's"})
	ended, gone, err := o.Ended(context.Background(), nil)
	assert.NilError(t, err)
	assert.Equal(t, len(ended)+len(gone), 0)
	with, err := o.WithStatus(context.Background(), nil, clearml.StatusStopped)
	assert.NilError(t, err)
	assert.Equal(t, len(with), 0)
	assert.Equal(t, emu.Calls("tasks.get_all"), 0)
}

func TestResolveQueues(t *testing.T) {
	o, emu := newOps(t)
	ctx := context.Background()
	work, err := emu.CreateQueue("work")
	assert.NilError(t, err)
	pending, err := emu.CreateQueue("k8s_scheduler", clearml.PendingQueueTag)
	assert.NilError(t, err)
	_, err = emu.CreateQueue("work-2") // a name the pattern must not take for "work"
	assert.NilError(t, err)

	ids, errs, err := o.ResolveQueues(ctx, []string{"work", "absent", "a.b"}, false)
	assert.NilError(t, err)
	assert.DeepEqual(t, ids, map[string]string{"work": work})
	assert.ErrorIs(t, errs["absent"], ErrQueueNotFound)
	assert.ErrorIs(t, errs["a.b"], ErrQueueNotFound, "names are literal, not patterns")
	assert.Equal(t, emu.Calls("queues.get_all"), 1, "one lookup, the pending queue included")
	got, err := o.PendingQueueID(ctx)
	assert.NilError(t, err)
	assert.Equal(t, got, pending)
	assert.Equal(t, emu.Calls("queues.get_all"), 1, "the pending queue was resolved by the same lookup")

	ids, errs, err = o.ResolveQueues(ctx, []string{"absent"}, true)
	assert.NilError(t, err)
	assert.Equal(t, len(errs), 0)
	assert.Equal(t, ids["absent"], emu.QueueID("absent"), "created")
}

// A first install: the lookup that resolves the served queues finds no pending queue and it is
// created at once, hidden, with no second lookup.
func TestResolveQueuesCreatesAMissingPendingQueue(t *testing.T) {
	o, emu := newOps(t)
	ctx := context.Background()
	_, err := emu.CreateQueue("work")
	assert.NilError(t, err)
	_, _, err = o.ResolveQueues(ctx, []string{"work"}, false)
	assert.NilError(t, err)
	pending, err := o.PendingQueueID(ctx)
	assert.NilError(t, err)
	assert.Equal(t, pending, emu.QueueID("k8s_scheduler"))
	assert.Equal(t, emu.Calls("queues.get_all"), 1)
	assert.Equal(t, emu.Calls("queues.create"), 1)
}

// A pending reason reported while a launch holds the task's reports survives the push that
// follows (the push writes its own status message); released without "again", nothing is sent.
func TestHoldReports(t *testing.T) {
	const report = "ImagePullBackOff (Back-off pulling image)"
	for name, tc := range map[string]struct {
		report, again bool
		want          string
	}{
		"a report made before the push is written again after it": {report: true, again: true, want: clearml.GlueStatusMessagePrefix + report},
		"no report: the push's message stays":                     {again: true, want: "from queue work"},
		"released without again: nothing written again":           {report: true, want: "from queue work"},
	} {
		t.Run(name, func(t *testing.T) {
			o, emu := newOps(t)
			ctx := context.Background()
			_, err := emu.CreateQueue("work")
			assert.NilError(t, err)
			id := emu.CreateTask(emulator.TaskSpec{Name: "t"})
			assert.NilError(t, emu.Enqueue(id, "work"))
			release := o.HoldReports(id)
			if tc.report {
				assert.NilError(t, o.ReportPending(ctx, id, report))
			}
			assert.NilError(t, o.PushPending(ctx, id, "from queue work"))
			release(ctx, tc.again)
			release(ctx, true) // a second call does nothing
			task, _ := emu.Task(id)
			assert.Equal(t, task.StatusMessage, tc.want)
			assert.Equal(t, len(o.held), 0, "the task is forgotten")
		})
	}
}
