package scheduler

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
)

// DefaultRecoverSettle is how long a task must stay popped-but-in-no-queue before Recover puts it
// back: longer than any glue's launch takes from pop to pending push, so a task another glue
// is launching right now is never taken from it.
const DefaultRecoverSettle = 15 * time.Second

// Recover runs once after a start, beside Run: a task popped from a served queue by a glue that
// died before creating its object is queued but in no queue and has no object; it goes back to
// the front of its queue. Tasks in the pending queue are never touched here: they have an
// object (ours, which the monitor watches, or another glue's).
func (s *Scheduler) Recover(ctx context.Context) error {
	first, err := s.strays(ctx)
	if err != nil || len(first) == 0 {
		return err
	}
	select {
	case <-ctx.Done():
		return nil
	case <-time.After(s.opts.RecoverSettle):
	}
	again, err := s.strays(ctx)
	if err != nil {
		return err
	}
	for id, queue := range again {
		if first[id] != queue {
			continue
		}
		s.opts.Logger.Info("recovering task popped by a glue that stopped mid-launch", "task", id, "queue", s.queueName(queue))
		if err := s.opts.Ops.RequeueFront(ctx, id, queue, "recovered after glue restart"); err != nil {
			return err
		}
	}
	return nil
}

// strays returns the queued tasks of served queues that are in no queue and have no object or
// launch here, with the queue they were popped from.
func (s *Scheduler) strays(ctx context.Context) (map[string]string, error) {
	order, err := s.QueueIDs(ctx)
	if err != nil && len(order) == 0 {
		return nil, err
	}
	queues, err := s.opts.Client.QueuesGetAll(ctx, clearml.QueuesGetAllRequest{ID: order, OnlyFields: []string{"id", "entries"}})
	if err != nil {
		return nil, fmt.Errorf("recover: %w", err)
	}
	inQueue := map[string]bool{}
	for _, q := range queues {
		for _, e := range q.Entries {
			inQueue[e.Task] = true
		}
	}
	// Only the served queues' tasks (a shared server may hold many more), as id and queue only:
	// 50,000 queued tasks decoded in full took ~90 MiB of heap.
	tasks, err := s.opts.Client.TasksGetAllQueues(ctx, clearml.TasksGetAllRequest{
		Status: []string{clearml.StatusQueued}, ExecutionQueue: order, SearchHidden: true,
	})
	if err != nil {
		return nil, fmt.Errorf("recover: %w", err)
	}
	out := map[string]string{}
	for _, t := range tasks {
		if !slices.Contains(order, t.Execution.Queue) || inQueue[t.ID] || s.opts.Tracker.Has(t.ID) || (s.opts.Owns != nil && s.opts.Owns(t.ID)) {
			continue
		}
		out[t.ID] = t.Execution.Queue
	}
	return out, nil
}
