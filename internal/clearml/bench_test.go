package clearml_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
)

// BenchmarkGetNextTaskEmptyQueue measures client round trips against the in-process emulator:
// the poll the glue makes most often.
func BenchmarkGetNextTaskEmptyQueue(b *testing.B) {
	srv, _ := newEmulator(b)
	c := newClient(b, srv)
	qid := mustQueue(b, srv, "work")
	ctx := context.Background()
	if err := c.Login(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		next, err := c.QueuesGetNextTask(ctx, qid)
		if err != nil || next != nil {
			b.Fatalf("got %v, %v", next, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// BenchmarkRequeueBehindLongQueues is the glue's burst as the emulator sees it: a task popped
// from a queue with 2,000 waiting and enqueued into another holding 2,000 (the pending queue),
// which removes it from every other queue. The emulator used to scan every queue's entries for
// it on each enqueue; the benchmark process of `make bench` runs that emulator beside the glue.
func BenchmarkRequeueBehindLongQueues(b *testing.B) {
	const waiting = 2000
	srv, _ := newEmulator(b)
	c := newClient(b, srv)
	work, pending := mustQueue(b, srv, "work"), mustQueue(b, srv, "pending")
	for i := range 2 * waiting {
		queue := "pending"
		if i < waiting {
			queue = "work"
		}
		id := srv.CreateTask(emulator.TaskSpec{Name: fmt.Sprintf("task-%d", i)})
		if err := srv.Enqueue(id, queue); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	if err := c.Login(ctx); err != nil {
		b.Fatal(err)
	}
	from, to := work, pending
	b.ReportAllocs()
	for b.Loop() {
		next, err := c.QueuesGetNextTask(ctx, from)
		if err != nil || next == nil {
			b.Fatalf("pop: %v, %v", next, err)
		}
		failed, err := c.TasksEnqueueMany(ctx, clearml.TasksEnqueueManyRequest{IDs: []string{next.Entry.Task}, Queue: to})
		if err != nil || len(failed) > 0 {
			b.Fatalf("enqueue: %v, %v", failed, err)
		}
		from, to = to, from
	}
}
