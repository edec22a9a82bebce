package scheduler

import (
	"context"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"github.com/clearml-glue/clearml-glue/internal/config"
)

// wire sits between the glue's client and the emulator like a remote server: every call takes
// delay (slow, for the endpoints named there), and it counts calls and the most calls of one
// endpoint in flight at once.
type wire struct {
	delay time.Duration
	slow  map[string]time.Duration
	gates map[string]chan struct{} // calls of an endpoint wait until its channel is closed
	mu    sync.Mutex
	calls map[string]int
	now   map[string]int
	peak  map[string]int

	// before runs before each call is sent (after its gate), answered after it is answered.
	before, answered func(endpoint string)
}

func newWire(delay time.Duration) *wire {
	return &wire{delay: delay, calls: map[string]int{}, now: map[string]int{}, peak: map[string]int{}}
}

func (w *wire) RoundTrip(r *http.Request) (*http.Response, error) {
	ep := path.Base(r.URL.Path)
	w.mu.Lock()
	w.calls[ep]++
	w.now[ep]++
	w.peak[ep] = max(w.peak[ep], w.now[ep])
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.now[ep]--
		w.mu.Unlock()
	}()
	if g, ok := w.gates[ep]; ok {
		<-g
	}
	if d, ok := w.slow[ep]; ok {
		time.Sleep(d)
	} else {
		time.Sleep(w.delay)
	}
	if w.before != nil {
		w.before(ep)
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if w.answered != nil {
		w.answered(ep)
	}
	return resp, err
}

func (w *wire) count(ep string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.calls[ep]
}

func (w *wire) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	clear(w.calls)
	clear(w.peak)
}

func parallel(n int) func(*config.File, *Options) {
	return func(_ *config.File, o *Options) { o.MaxParallel = n }
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }

func (r *rig) enqueue(n int) []string { return r.enqueueIn("work", n) }

// enqueueIn creates n tasks and enqueues them in queue, in order.
func (r *rig) enqueueIn(queue string, n int) []string {
	r.t.Helper()
	ids := make([]string, n)
	for i := range ids {
		// With an image: a task without one costs a tasks.edit (the image that ran is written back).
		ids[i] = r.emu.CreateTask(emulator.TaskSpec{Name: fmt.Sprintf("task %03d", i), Container: map[string]string{"image": "python:3.12"}})
		assert.NilError(r.t, r.emu.Enqueue(ids[i], queue))
	}
	return ids
}

func (r *rig) cycleAndWait() {
	r.t.Helper()
	_, err := r.sched.cycle(context.Background())
	assert.NilError(r.t, err)
	r.sched.wg.Wait()
	r.sched.opts.Ops.Flush()
}

func TestPipeline(t *testing.T) {
	t.Run("should pop several tasks at once and never more than maxPods", func(t *testing.T) {
		w := newWire(20 * time.Millisecond)
		r := newRigOver(t, w, func(f *config.File, o *Options) {
			o.MaxParallel = 8
			f.MaxPods = 5
		})
		ids := r.enqueue(20)
		r.cycleAndWait()
		assert.Equal(t, len(r.jobs()), 5, "maxPods holds with pops in flight")
		assert.DeepEqual(t, r.emu.QueueEntries("work"), ids[5:])
		assert.Assert(t, w.peak["queues.get_next_task"] > 1, "pops were sent one at a time")
		assert.Assert(t, w.peak["queues.get_next_task"] <= 5, "a pop went out without a place: %d in flight", w.peak["queues.get_next_task"])
	})

	t.Run("should share reads, pending pushes and log lines among concurrent launches", func(t *testing.T) {
		// The shared calls are slow, so launches meet behind them whatever the machine's load.
		w := newWire(0)
		w.slow = map[string]time.Duration{"tasks.get_all": 100 * time.Millisecond, "tasks.enqueue_many": 100 * time.Millisecond}
		r := newRigOver(t, w, parallel(16))
		_, err := r.sched.QueueIDs(context.Background())
		assert.NilError(t, err)
		ids := r.enqueue(100)
		w.reset()
		r.cycleAndWait()
		assert.Equal(t, len(r.jobs()), 100)
		// In the order the launches finished, which concurrency does not fix.
		assert.DeepEqual(t, sorted(r.emu.QueueEntries("k8s_scheduler")), sorted(ids))
		for _, id := range ids {
			task := r.task(id)
			assert.Equal(t, task.Hyperparams["properties"]["k8s-queue"].Value, "work")
			assert.Assert(t, strings.Contains(strings.Join(r.emu.TaskLog(id), "\n"), "created"), "task %s has no launch line", id)
		}
		assert.Equal(t, w.count("queues.get_next_task"), 100)
		assert.Equal(t, w.count("tasks.edit_hyper_params"), 100)
		assert.Equal(t, w.count("tasks.enqueue"), 0, "pushed one by one")
		// How many share a call depends on the machine (internal/batch's tests pin the grouping;
		// the benchmarks measure calls per launch): here only that they are shared.
		for _, ep := range []string{"tasks.get_all", "tasks.enqueue_many", "events.add_batch"} {
			assert.Assert(t, w.count(ep) <= 75, "%s: %d calls for 100 launches", ep, w.count(ep))
		}
	})

	t.Run("should free the launch slot once the object exists", func(t *testing.T) {
		w := newWire(0)
		props := make(chan struct{})
		w.gates = map[string]chan struct{}{"tasks.edit_hyper_params": props}
		r := newRigOver(t, w, parallel(1))
		r.enqueue(3)
		done := make(chan struct{})
		go func() { r.cycleAndWait(); close(done) }()
		// With one slot, every task gets its Job while the first one's ClearML writes still wait.
		deadline := time.Now().Add(20 * time.Second)
		for len(r.jobs()) < 3 {
			if time.Now().After(deadline) {
				t.Fatalf("%d Jobs: the slot is held until ClearML answers", len(r.jobs()))
			}
			time.Sleep(5 * time.Millisecond)
		}
		close(props)
		<-done
		assert.Equal(t, len(r.emu.QueueEntries("k8s_scheduler")), 3)
	})

	t.Run("should push alone a task whose pending queue vanished and recreate it", func(t *testing.T) {
		r := newRig(t, nil)
		first := r.pull("first")
		assert.Assert(t, r.emu.DeleteQueue("k8s_scheduler"))
		second := r.pull("second")
		assert.DeepEqual(t, r.emu.QueueEntries("k8s_scheduler"), []string{second})
		assert.Equal(t, r.task(first).Status, clearml.StatusQueued)
	})
}

func TestQueueIDsResolveEveryQueueAndThePendingQueueInOneCall(t *testing.T) {
	w := newWire(0)
	var names []string
	r := newRigOver(t, w, func(f *config.File, _ *Options) {
		for i := range 200 {
			names = append(names, fmt.Sprintf("queue-%03d", i))
		}
		f.Queue = strings.Join(names, ",")
	})
	for _, n := range names {
		_, err := r.emu.CreateQueue(n)
		assert.NilError(t, err)
	}
	_, err := r.emu.CreateQueue("k8s_scheduler", clearml.PendingQueueTag)
	assert.NilError(t, err)
	w.reset()
	ids, err := r.sched.QueueIDs(context.Background())
	assert.NilError(t, err)
	assert.Equal(t, len(ids), 200)
	assert.Equal(t, ids[7], r.emu.QueueID("queue-007"), "ids in config order")
	pending, err := r.sched.opts.Ops.PendingQueueID(context.Background())
	assert.NilError(t, err)
	assert.Equal(t, pending, r.emu.QueueID("k8s_scheduler"))
	assert.DeepEqual(t, w.calls, map[string]int{"auth.login": 1, "queues.get_all": 1})
}
