package monitor

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
)

// BenchmarkReconcile10k is the glue's start-up over 10,000 live task objects: from synced caches,
// the reconcile (20 paged tasks.get_all calls against an emulator paging at 500) and one sync per
// task. It reports reconcile_s_10k, the seconds that takes (setup excluded).
func BenchmarkReconcile10k(b *testing.B) {
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r, _ := manyObjects(b, 10000, clearml.StatusInProgress, corev1.PodRunning)
		b.StartTimer()
		start := time.Now()
		if err := r.mon.Reconcile(context.Background()); err != nil {
			b.Fatal(err)
		}
		r.drain()
		total += time.Since(start)
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "reconcile_s_10k")
}
