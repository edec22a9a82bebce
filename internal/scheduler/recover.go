package scheduler

import (
	"context"
	"fmt"
	"slices"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/taskops"
)

// relaunchOrphans handles pending-queue entries that have no object and no launch in flight:
// left by a glue killed mid-launch, or requeued by the monitor after a disruption. A task still
// waiting for the glue is launched again for its queue (the k8s-queue property); a stale entry
// (the task failed or was aborted) is removed.
func (s *Scheduler) relaunchOrphans(ctx context.Context, snap *Snapshot, entries []clearml.QueueEntry) {
	var ids []string
	for _, e := range entries {
		if !s.opts.Tracker.Has(e.Task) {
			ids = append(ids, e.Task)
		}
	}
	if len(ids) == 0 {
		return
	}
	tasks, err := s.opts.Client.TasksGetAll(ctx, clearml.TasksGetAllRequest{
		ID: ids, OnlyFields: []string{"id", "status", "status_reason", "hyperparams.properties"},
	})
	if err != nil {
		s.opts.Logger.Warn("could not read tasks of the pending queue", "err", err)
		return
	}
	pending, _ := s.opts.Ops.PendingQueueID(ctx)
	for _, t := range tasks {
		if t.Status != clearml.StatusQueued || t.StatusReason != clearml.PendingQueueReason {
			_, _ = s.opts.Client.QueuesRemoveTask(ctx, clearml.QueuesRemoveTaskRequest{Queue: pending, Task: t.ID})
			continue
		}
		queue := t.Hyperparams["properties"]["k8s-queue"].Value
		if id, ok := s.queueID(queue); ok {
			s.opts.Logger.Info("relaunching task found in the pending queue without an object", "task", t.ID, "queue", queue)
			s.start(ctx, snap, id, t.ID, true)
			continue
		}
		s.returnToOrigin(ctx, t.ID, queue)
	}
}

// returnToOrigin sends a pending task of a queue this glue no longer serves back to that queue,
// or fails it with the reason when the queue is unknown: it is never left without an owner.
func (s *Scheduler) returnToOrigin(ctx context.Context, taskID, queue string) {
	if queue != "" {
		if id, err := taskops.ResolveQueue(ctx, s.opts.Client, queue, false, nil); err == nil {
			if err := s.opts.Ops.RequeueFront(ctx, taskID, id, "queue no longer served by this glue"); err == nil {
				return
			}
		}
	}
	reason := fmt.Sprintf("task left in the pending queue with origin queue %q, which this glue cannot serve", queue)
	if err := s.opts.Ops.Fail(ctx, taskID, reason); err != nil {
		s.opts.Logger.Error("could not fail orphaned task", "task", taskID, "err", err)
	}
}

// Recover runs once at start, before Run: a task popped from a served queue by a glue that died
// before pushing it to the pending queue is queued but in no queue; it goes back to the front of
// its queue. (Pending-queue orphans are handled by every cycle.)
func (s *Scheduler) Recover(ctx context.Context) error {
	order, err := s.QueueIDs(ctx)
	if err != nil {
		return err
	}
	queues, err := s.opts.Client.QueuesGetAll(ctx, clearml.QueuesGetAllRequest{ID: order, OnlyFields: []string{"id", "entries"}})
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	inQueue := map[string]bool{}
	for _, q := range queues {
		for _, e := range q.Entries {
			inQueue[e.Task] = true
		}
	}
	tasks, err := s.opts.Client.TasksGetAll(ctx, clearml.TasksGetAllRequest{
		Status: []string{clearml.StatusQueued}, OnlyFields: []string{"id", "execution.queue"}, SearchHidden: true,
	})
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	for _, t := range tasks {
		if !slices.Contains(order, t.Execution.Queue) || inQueue[t.ID] || s.opts.Tracker.Has(t.ID) {
			continue
		}
		s.opts.Logger.Info("recovering task popped by a glue that stopped mid-launch", "task", t.ID, "queue", s.queueName(t.Execution.Queue))
		if err := s.opts.Ops.RequeueFront(ctx, t.ID, t.Execution.Queue, "recovered after glue restart"); err != nil {
			return err
		}
	}
	return nil
}
