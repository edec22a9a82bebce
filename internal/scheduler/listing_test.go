package scheduler

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"gotest.tools/v3/assert"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/metrics"
)

func TestListing(t *testing.T) {
	t.Run("should pop a long queue no further than listed, and list it again before a lower queue", func(t *testing.T) {
		r := newRig(t, func(f *config.File, o *Options) {
			o.MaxParallel = 16
			f.Queues = map[string]config.Queue{"high": {Priority: 2}, "low": {Priority: 1}}
		})
		for _, q := range []string{"high", "low"} {
			_, err := r.emu.CreateQueue(q)
			assert.NilError(t, err)
		}
		r.enqueueIn("high", maxListed+50)
		r.enqueueIn("low", 5)

		r.cycleAndWait()
		assert.Equal(t, len(r.jobs()), maxListed, "the first cycle pops what it listed of the long queue, and only that")
		assert.Equal(t, len(r.emu.QueueEntries("high")), 50)
		assert.Equal(t, len(r.emu.QueueEntries("low")), 5, "the lower queue waits while the higher one holds tasks")

		r.cycleAndWait()
		assert.Equal(t, len(r.jobs()), maxListed+55)
		assert.Equal(t, len(r.emu.QueueEntries("high"))+len(r.emu.QueueEntries("low")), 0)
	})

	t.Run("should export the exact depth of a queue longer than a cycle lists", func(t *testing.T) {
		w := newWire(0)
		r := newRigOver(t, w, func(f *config.File, _ *Options) { f.MaxPods = 1 })
		r.sched.opts.Tracker.Observe("running", "", resource.Quantity{}, 0, true) // at maxPods: cycles only list
		r.enqueueIn("work", maxListed+100)
		depth := func() float64 { return testutil.ToFloat64(metrics.QueueDepth.WithLabelValues("work")) }

		r.cycleAndWait() // the listing is full: the queue is counted apart
		assert.Equal(t, w.count("queues.get_num_entries"), 1)
		r.cycleAndWait()
		assert.Equal(t, depth(), float64(maxListed+100))
		assert.Equal(t, w.count("queues.get_num_entries"), 1, "counted at most every %s", depthRefresh)

		id := r.emu.QueueID("work")
		r.sched.deep.counted[id] = r.sched.deep.counted[id].Add(-depthRefresh) // time passes
		assert.NilError(t, r.emu.Enqueue(r.emu.CreateTask(emulator.TaskSpec{Name: "one more"}), "work"))
		r.cycleAndWait() // counts again
		r.cycleAndWait()
		assert.Equal(t, depth(), float64(maxListed+101))
		assert.Equal(t, w.count("queues.get_num_entries"), 2)
		assert.Equal(t, len(r.jobs()), 0)
	})

	t.Run("should take a short queue's depth from the listing without counting it", func(t *testing.T) {
		w := newWire(0)
		r := newRigOver(t, w, func(f *config.File, _ *Options) { f.MaxPods = 1 })
		r.sched.opts.Tracker.Observe("running", "", resource.Quantity{}, 0, true)
		r.enqueueIn("work", 30)
		r.cycleAndWait()
		r.cycleAndWait()
		assert.Equal(t, testutil.ToFloat64(metrics.QueueDepth.WithLabelValues("work")), float64(30))
		assert.Equal(t, w.count("queues.get_num_entries"), 0)
	})
}
