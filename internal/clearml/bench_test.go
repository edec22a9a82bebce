package clearml_test

import (
	"context"
	"testing"
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
