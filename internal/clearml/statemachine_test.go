package clearml_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"gotest.tools/v3/assert"
)

// movingToPending is the reason the Python glue stops a task with before its pending push; this
// glue does not stop tasks, the launch sequence test replays that glue's calls.
const movingToPending = "moving to k8s pending queue"

// allowed is the server's non-forced transition table (docs/clearml-protocol.md, "Task
// statuses"), written out independently of the emulator's copy.
var allowed = map[string][]string{
	"created":     {"queued", "in_progress"},
	"queued":      {"created", "in_progress", "stopped"},
	"in_progress": {"stopped", "failed", "created", "completed"},
	"stopped":     {"closed", "created", "failed", "queued", "in_progress", "published", "publishing", "completed"},
	"closed":      {"created", "failed", "published", "publishing", "stopped"},
	"failed":      {"created", "stopped", "published", "queued"},
	"publishing":  {"published"},
	"published":   {},
	"completed":   {"published", "in_progress", "created"},
}

// TestStatusTransitions drives every status into each status an endpoint the glue uses can
// set, with and without force: 9 × 5 × 2 = 90 cases.
func TestStatusTransitions(t *testing.T) {
	srv, _ := newEmulator(t)
	c := newClient(t, srv)
	ctx := context.Background()
	qid := mustQueue(t, srv, "work")
	endpoints := map[string]func(id string, force bool) error{
		"queued": func(id string, force bool) error {
			return c.TasksEnqueue(ctx, clearml.TasksEnqueueRequest{Task: id, Queue: qid, Force: force})
		},
		"in_progress": func(id string, force bool) error {
			_, err := c.TasksStarted(ctx, clearml.TaskStatusRequest{Task: id, Force: force})
			return err
		},
		"stopped": func(id string, force bool) error {
			_, err := c.TasksStopped(ctx, clearml.TaskStatusRequest{Task: id, Force: force})
			return err
		},
		"failed": func(id string, force bool) error {
			_, err := c.TasksFailed(ctx, clearml.TaskStatusRequest{Task: id, Force: force})
			return err
		},
		"completed": func(id string, force bool) error {
			_, err := c.TasksCompleted(ctx, clearml.TaskStatusRequest{Task: id, Force: force})
			return err
		},
	}
	type tc struct {
		from, to string
		force    bool
	}
	var cases []tc
	for from := range allowed {
		for to := range endpoints {
			cases = append(cases, tc{from, to, false}, tc{from, to, true})
		}
	}
	slices.SortFunc(cases, func(a, b tc) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
	for _, tc := range cases {
		ok := tc.force || tc.from == tc.to || slices.Contains(allowed[tc.from], tc.to)
		t.Run(fmt.Sprintf("%s->%s/force=%v", tc.from, tc.to, tc.force), func(t *testing.T) {
			id := srv.CreateTask(emulator.TaskSpec{Name: "t"})
			assert.NilError(t, srv.SetTaskStatus(id, tc.from))
			err := endpoints[tc.to](id, tc.force)
			got := task(t, srv, id)
			if !ok {
				assertAPIError(t, err, 400, 110)
				assert.ErrorContains(t, err, fmt.Sprintf("current_status=%s, new_status=%s", tc.from, tc.to))
				assert.Equal(t, got.Status, tc.from, "a refused transition changes nothing")
				return
			}
			assert.NilError(t, err)
			assert.Equal(t, got.Status, tc.to)
		})
	}
}

// TestStatusSideEffects covers the queue, enqueue_status and field effects of the status calls
// (docs/clearml-protocol.md, "Task statuses").
func TestStatusSideEffects(t *testing.T) {
	type env struct {
		srv   *emulator.Server
		clock *fakeClock
		c     *clearml.Client
		ctx   context.Context
		work  string // queue ids
		other string
		id    string // a created task
	}
	tests := map[string]func(t *testing.T, e env){
		"enqueue sets queued, reason, enqueue_status and execution.queue": func(t *testing.T, e env) {
			assert.NilError(t, e.c.TasksEnqueue(e.ctx, clearml.TasksEnqueueRequest{Task: e.id, Queue: e.work,
				StatusReason: clearml.PendingQueueReason, StatusMessage: "m"}))
			got := task(t, e.srv, e.id)
			assert.Equal(t, got.Status, "queued")
			assert.Equal(t, got.StatusReason, clearml.PendingQueueReason)
			assert.Equal(t, got.StatusMessage, "m")
			assert.Equal(t, got.EnqueueStatus, "created")
			assert.Equal(t, got.ExecutionQueue(), e.work)
			assert.DeepEqual(t, e.srv.QueueEntries("work"), []string{e.id})
		},
		"enqueue appends at the end": func(t *testing.T, e env) {
			first := e.srv.CreateTask(emulator.TaskSpec{Name: "first"})
			assert.NilError(t, e.srv.Enqueue(first, "work"))
			assert.NilError(t, e.c.TasksEnqueue(e.ctx, clearml.TasksEnqueueRequest{Task: e.id, Queue: e.work}))
			assert.DeepEqual(t, e.srv.QueueEntries("work"), []string{first, e.id})
		},
		"same-state enqueue moves the task and keeps enqueue_status": func(t *testing.T, e env) {
			assert.NilError(t, e.srv.Enqueue(e.id, "work"))
			assert.NilError(t, e.c.TasksEnqueue(e.ctx, clearml.TasksEnqueueRequest{Task: e.id, Queue: e.other}))
			got := task(t, e.srv, e.id)
			assert.Equal(t, got.EnqueueStatus, "created", "the status before the first enqueue is kept")
			assert.Equal(t, got.ExecutionQueue(), e.other)
			assert.DeepEqual(t, e.srv.QueueEntries("work"), []string{})
			assert.DeepEqual(t, e.srv.QueueEntries("other"), []string{e.id})
		},
		"enqueue into a vanished queue rolls back (701)": func(t *testing.T, e env) {
			assert.NilError(t, e.srv.SetTaskStatus(e.id, "stopped"))
			assert.Assert(t, e.srv.DeleteQueue("work"))
			err := e.c.TasksEnqueue(e.ctx, clearml.TasksEnqueueRequest{Task: e.id, Queue: e.work, StatusReason: clearml.PendingQueueReason})
			assertAPIError(t, err, 400, 701)
			got := task(t, e.srv, e.id)
			assert.Equal(t, got.Status, "stopped")
			assert.Equal(t, got.StatusReason, "failed enqueueing")
			assert.Equal(t, got.EnqueueStatus, "")
		},
		"enqueue into the queue it is already in rolls back (706)": func(t *testing.T, e env) {
			assert.NilError(t, e.c.QueuesAddTask(e.ctx, e.work, e.id))
			err := e.c.TasksEnqueue(e.ctx, clearml.TasksEnqueueRequest{Task: e.id, Queue: e.work})
			assertAPIError(t, err, 400, 706)
			assert.Equal(t, task(t, e.srv, e.id).Status, "created")
			assert.DeepEqual(t, e.srv.QueueEntries("work"), []string{e.id})
		},
		"enqueue by queue_name creates the queue": func(t *testing.T, e env) {
			assert.NilError(t, e.c.TasksEnqueue(e.ctx, clearml.TasksEnqueueRequest{Task: e.id, QueueName: "new-queue"}))
			assert.DeepEqual(t, e.srv.QueueEntries("new-queue"), []string{e.id})
		},
		"enqueue with queue and queue_name is a validation error": func(t *testing.T, e env) {
			err := e.c.TasksEnqueue(e.ctx, clearml.TasksEnqueueRequest{Task: e.id, Queue: e.work, QueueName: "work"})
			assertAPIError(t, err, 400, 12)
		},
		"enqueue without a queue uses the default queue": func(t *testing.T, e env) {
			err := e.c.TasksEnqueue(e.ctx, clearml.TasksEnqueueRequest{Task: e.id})
			assertAPIError(t, err, 400, 707)
			mustQueue(t, e.srv, "default", "default")
			assert.NilError(t, e.c.TasksEnqueue(e.ctx, clearml.TasksEnqueueRequest{Task: e.id}))
			assert.DeepEqual(t, e.srv.QueueEntries("default"), []string{e.id})
		},
		"update_execution_queue=false needs a queued task with a queue": func(t *testing.T, e env) {
			no := false
			err := e.c.TasksEnqueue(e.ctx, clearml.TasksEnqueueRequest{Task: e.id, Queue: e.work, UpdateExecutionQueue: &no})
			assertAPIError(t, err, 400, 12)
			assert.NilError(t, e.srv.Enqueue(e.id, "work"))
			assert.NilError(t, e.c.TasksEnqueue(e.ctx, clearml.TasksEnqueueRequest{Task: e.id, Queue: e.other, UpdateExecutionQueue: &no}))
			assert.Equal(t, task(t, e.srv, e.id).ExecutionQueue(), e.work, "execution.queue kept")
			assert.DeepEqual(t, e.srv.QueueEntries("other"), []string{e.id})
		},
		"enqueue of an unknown task": func(t *testing.T, e env) {
			assertAPIError(t, e.c.TasksEnqueue(e.ctx, clearml.TasksEnqueueRequest{Task: "nope", Queue: e.work}), 400, 101)
		},
		"enqueue removes the development system tag": func(t *testing.T, e env) {
			dev := e.srv.CreateTask(emulator.TaskSpec{Name: "dev", SystemTags: []string{"development", "x"}})
			assert.NilError(t, e.c.TasksEnqueue(e.ctx, clearml.TasksEnqueueRequest{Task: dev, Queue: e.work}))
			assert.DeepEqual(t, task(t, e.srv, dev).SystemTags, []string{"x"})
		},
		"dequeue returns to enqueue_status": func(t *testing.T, e env) {
			assert.NilError(t, e.srv.SetTaskStatus(e.id, "failed"))
			assert.NilError(t, e.srv.Enqueue(e.id, "work"))
			res, err := e.c.TasksDequeue(e.ctx, clearml.TasksDequeueRequest{Task: e.id})
			assert.NilError(t, err)
			assert.Equal(t, res.Updated, 1)
			got := task(t, e.srv, e.id)
			assert.Equal(t, got.Status, "failed")
			assert.Equal(t, got.EnqueueStatus, "")
			assert.DeepEqual(t, e.srv.QueueEntries("work"), []string{})
		},
		"dequeue with new_status in_progress (pod agent)": func(t *testing.T, e env) {
			assert.NilError(t, e.srv.Enqueue(e.id, "work"))
			res, err := e.c.TasksDequeue(e.ctx, clearml.TasksDequeueRequest{Task: e.id, NewStatus: "in_progress"})
			assert.NilError(t, err)
			assert.Equal(t, res.Updated, 1)
			assert.Equal(t, task(t, e.srv, e.id).Status, "in_progress")
			assert.DeepEqual(t, e.srv.QueueEntries("work"), []string{})
		},
		"dequeue of an in_progress task (cleanup)": func(t *testing.T, e env) {
			assert.NilError(t, e.srv.SetTaskStatus(e.id, "in_progress"))
			res, err := e.c.TasksDequeue(e.ctx, clearml.TasksDequeueRequest{Task: e.id, Force: true,
				StatusReason: "Pod deleted (not pending or running)", StatusMessage: "Pod deleted by agent glue"})
			assert.NilError(t, err)
			assert.Equal(t, res.Updated, 1)
			got := task(t, e.srv, e.id)
			assert.Equal(t, got.Status, "created")
			assert.Equal(t, got.StatusMessage, "Pod deleted by agent glue")
		},
		"dequeue of a stopped task changes nothing": func(t *testing.T, e env) {
			assert.NilError(t, e.srv.SetTaskStatus(e.id, "stopped"))
			res, err := e.c.TasksDequeue(e.ctx, clearml.TasksDequeueRequest{Task: e.id, NewStatus: "in_progress"})
			assert.NilError(t, err)
			assert.Equal(t, res.Updated, 0)
			assert.Equal(t, task(t, e.srv, e.id).Status, "stopped")
		},
		"dequeue of an unknown task removes it from every queue": func(t *testing.T, e env) {
			assert.NilError(t, e.c.QueuesAddTask(e.ctx, e.work, "ghost"))
			res, err := e.c.TasksDequeue(e.ctx, clearml.TasksDequeueRequest{Task: "ghost"})
			assert.NilError(t, err)
			assert.Equal(t, res.Updated, 0)
			assert.DeepEqual(t, e.srv.QueueEntries("work"), []string{})
		},
		"dequeue with an invalid new_status": func(t *testing.T, e env) {
			_, err := e.c.TasksDequeue(e.ctx, clearml.TasksDequeueRequest{Task: e.id, NewStatus: "running"})
			assertAPIError(t, err, 400, 12)
		},
		"stop of a queued task dequeues it": func(t *testing.T, e env) {
			assert.NilError(t, e.srv.Enqueue(e.id, "work"))
			res, err := e.c.TasksStop(e.ctx, clearml.TaskStatusRequest{Task: e.id, Force: true, StatusReason: movingToPending})
			assert.NilError(t, err)
			assert.Equal(t, res.Updated, 1)
			got := task(t, e.srv, e.id)
			assert.Equal(t, got.Status, "stopped")
			assert.Equal(t, got.StatusReason, movingToPending)
			assert.Equal(t, got.StatusMessage, "Stopped by Emulator User")
			assert.DeepEqual(t, e.srv.QueueEntries("work"), []string{})
		},
		"stop of a running task with an active worker only asks it to stop": func(t *testing.T, e env) {
			assert.NilError(t, e.srv.SetTaskStatus(e.id, "in_progress"))
			assert.NilError(t, e.c.WorkersStatusReport(e.ctx, clearml.WorkersStatusReportRequest{Worker: "pod", Task: e.id}))
			_, err := e.c.TasksStop(e.ctx, clearml.TaskStatusRequest{Task: e.id})
			assert.NilError(t, err)
			got := task(t, e.srv, e.id)
			assert.Equal(t, got.Status, "in_progress")
			assert.Equal(t, got.StatusMessage, "stopping")
		},
		"stop of a running task whose worker went quiet stops it": func(t *testing.T, e env) {
			assert.NilError(t, e.srv.SetTaskStatus(e.id, "in_progress"))
			assert.NilError(t, e.c.WorkersStatusReport(e.ctx, clearml.WorkersStatusReportRequest{Worker: "pod", Task: e.id}))
			e.clock.Advance(601 * time.Second)
			_, err := e.c.TasksStop(e.ctx, clearml.TaskStatusRequest{Task: e.id})
			assert.NilError(t, err)
			assert.Equal(t, task(t, e.srv, e.id).Status, "stopped")
		},
		"stop of a development task stops it despite an active worker": func(t *testing.T, e env) {
			dev := e.srv.CreateTask(emulator.TaskSpec{Name: "dev", SystemTags: []string{"development"}})
			assert.NilError(t, e.srv.SetTaskStatus(dev, "in_progress"))
			assert.NilError(t, e.c.WorkersStatusReport(e.ctx, clearml.WorkersStatusReportRequest{Worker: "pod", Task: dev}))
			_, err := e.c.TasksStop(e.ctx, clearml.TaskStatusRequest{Task: dev})
			assert.NilError(t, err)
			assert.Equal(t, task(t, e.srv, dev).Status, "stopped")
		},
		"stop of a created task is refused": func(t *testing.T, e env) {
			_, err := e.c.TasksStop(e.ctx, clearml.TaskStatusRequest{Task: e.id})
			assertAPIError(t, err, 400, 110)
		},
		"stop of a completed task is refused": func(t *testing.T, e env) {
			assert.NilError(t, e.srv.SetTaskStatus(e.id, "completed"))
			_, err := e.c.TasksStop(e.ctx, clearml.TaskStatusRequest{Task: e.id})
			assertAPIError(t, err, 400, 110)
		},
		"stop of a created task, forced": func(t *testing.T, e env) {
			_, err := e.c.TasksStop(e.ctx, clearml.TaskStatusRequest{Task: e.id, Force: true})
			assert.NilError(t, err)
			assert.Equal(t, task(t, e.srv, e.id).Status, "stopped")
		},
		"failed does not touch queues": func(t *testing.T, e env) {
			assert.NilError(t, e.srv.Enqueue(e.id, "work"))
			_, err := e.c.TasksFailed(e.ctx, clearml.TaskStatusRequest{Task: e.id, Force: true,
				StatusReason: clearml.GlueErrorReasonPrefix + "ImagePullBackOff", StatusMessage: clearml.ChangedByGlueMessage})
			assert.NilError(t, err)
			got := task(t, e.srv, e.id)
			assert.Equal(t, got.Status, "failed")
			assert.Equal(t, got.StatusReason, "K8S glue error: ImagePullBackOff")
			assert.Assert(t, !got.Completed.IsZero())
			assert.DeepEqual(t, e.srv.QueueEntries("work"), []string{e.id})
		},
		"status changes stamp the times and the caller": func(t *testing.T, e env) {
			before := task(t, e.srv, e.id)
			e.clock.Advance(time.Minute)
			_, err := e.c.TasksStarted(e.ctx, clearml.TaskStatusRequest{Task: e.id, StatusReason: clearml.StartingReason})
			assert.NilError(t, err)
			got := task(t, e.srv, e.id)
			assert.Assert(t, got.LastChange.After(before.LastChange))
			assert.Assert(t, got.StatusChanged.Equal(got.LastChange) && got.LastUpdate.Equal(got.LastChange))
			assert.Assert(t, got.Started.Equal(got.LastChange))
			assert.Equal(t, got.LastChangedBy, before.User)
			assert.Equal(t, got.StatusMessage, "", "a missing status_message clears it")
		},
		"started keeps the first start time of a running task": func(t *testing.T, e env) {
			_, err := e.c.TasksStarted(e.ctx, clearml.TaskStatusRequest{Task: e.id})
			assert.NilError(t, err)
			first := task(t, e.srv, e.id).Started
			e.clock.Advance(time.Minute)
			_, err = e.c.TasksStarted(e.ctx, clearml.TaskStatusRequest{Task: e.id})
			assert.NilError(t, err)
			assert.Assert(t, task(t, e.srv, e.id).Started.Equal(first))
		},
		"started of an unknown task is a generic invalid id": func(t *testing.T, e env) {
			_, err := e.c.TasksStarted(e.ctx, clearml.TaskStatusRequest{Task: "nope"})
			assertAPIError(t, err, 400, 10)
		},
		"status endpoints on an unknown task": func(t *testing.T, e env) {
			for _, call := range []func(context.Context, clearml.TaskStatusRequest) (*clearml.UpdateResult, error){
				e.c.TasksStop, e.c.TasksStopped, e.c.TasksFailed, e.c.TasksCompleted,
			} {
				_, err := call(e.ctx, clearml.TaskStatusRequest{Task: "nope"})
				assertAPIError(t, err, 400, 101)
			}
		},
	}
	for name, test := range tests {
		t.Run(name, func(t *testing.T) {
			srv, clock := newEmulator(t)
			e := env{srv: srv, clock: clock, c: newClient(t, srv), ctx: context.Background(),
				work: mustQueue(t, srv, "work"), other: mustQueue(t, srv, "other"),
				id: srv.CreateTask(emulator.TaskSpec{Name: "t"})}
			test(t, e)
		})
	}
}

// TestGlueLaunchSequence replays the Python glue's launch (pop, stop, pending push, the pod
// agent's dequeue) and checks the state table.
func TestGlueLaunchSequence(t *testing.T) {
	srv, _ := newEmulator(t)
	c := newClient(t, srv)
	ctx := context.Background()
	origin := mustQueue(t, srv, "gpu")
	pending, err := c.QueuesCreate(ctx, clearml.QueuesCreateRequest{Name: clearml.PendingQueueName, SystemTags: []string{clearml.PendingQueueTag}})
	assert.NilError(t, err)
	id := srv.CreateTask(emulator.TaskSpec{Name: "train"})
	assert.NilError(t, srv.Enqueue(id, "gpu"))

	state := func() [3]string {
		tk := task(t, srv, id)
		where := ""
		for _, q := range []string{"gpu", clearml.PendingQueueName} {
			if slices.Contains(srv.QueueEntries(q), id) {
				where = q
			}
		}
		return [3]string{tk.Status, where, tk.ExecutionQueue()}
	}
	assert.Equal(t, state(), [3]string{"queued", "gpu", origin})

	next, err := c.QueuesGetNextTask(ctx, origin)
	assert.NilError(t, err)
	assert.Equal(t, next.Entry.Task, id)
	assert.Equal(t, state(), [3]string{"queued", "", origin})

	_, err = c.TasksStop(ctx, clearml.TaskStatusRequest{Task: id, Force: true, StatusReason: movingToPending})
	assert.NilError(t, err)
	assert.Equal(t, state(), [3]string{"stopped", "", origin})

	_, err = c.QueuesRemoveTask(ctx, clearml.QueuesRemoveTaskRequest{Queue: pending, Task: id})
	assertAPIError(t, err, 400, 703) // the usual answer, ignored by the glue

	yes := true
	assert.NilError(t, c.TasksEnqueue(ctx, clearml.TasksEnqueueRequest{Task: id, Queue: pending,
		StatusReason: clearml.PendingQueueReason, UpdateExecutionQueue: &yes}))
	assert.Equal(t, state(), [3]string{"queued", clearml.PendingQueueName, pending})
	assert.Equal(t, task(t, srv, id).EnqueueStatus, "stopped")
	assert.Equal(t, task(t, srv, id).StatusReason, clearml.PendingQueueReason)

	_, err = c.TasksEditHyperParams(ctx, clearml.TasksEditHyperParamsRequest{Task: id,
		Hyperparams: []clearml.HyperParam{{Section: "properties", Name: "k8s-queue", Value: "gpu"}}})
	assert.NilError(t, err)

	res, err := c.TasksDequeue(ctx, clearml.TasksDequeueRequest{Task: id, NewStatus: "in_progress"})
	assert.NilError(t, err)
	assert.Equal(t, res.Updated, 1)
	assert.Equal(t, state(), [3]string{"in_progress", "", pending})

	_, err = c.TasksCompleted(ctx, clearml.TaskStatusRequest{Task: id, StatusReason: clearml.DoneReason})
	assert.NilError(t, err)
	assert.Equal(t, state(), [3]string{"completed", "", pending})
}
