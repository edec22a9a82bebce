package admission

import (
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/clearml-glue/clearml-glue/internal/metrics"
)

// Tracker counts live task objects per queue and the monitored resource they hold, from the
// informer cache plus launches in flight, so admission sees a launch before its object exists.
// The monitor feeds it from informer events; the scheduler reserves and releases.
type Tracker struct {
	mu      sync.Mutex
	entries map[string]entry             // by task id
	waiting map[string]resource.Quantity // by queue id: the need of a task that did not fit
}

type entry struct {
	queue    string            // queue id
	res      resource.Quantity // monitored resource held, exact (decimals are never rounded)
	slot     int               // sessions port-mode slot (1..maxServices), 0 when not in port mode
	reserved bool              // a launch in flight, not yet seen by the informer
	fitted   bool              // its built object passed Fit
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker {
	return &Tracker{entries: map[string]entry{}, waiting: map[string]resource.Quantity{}}
}

// Reserve counts a launch in flight for queue; it stays counted until the informer sees the
// object (Observe) or the launch gives up (Release). It reports false when the task is counted
// already (a launch or a live object), so one task never holds two reservations.
func (t *Tracker) Reserve(taskID, queue string, res resource.Quantity, slot int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.entries[taskID]; ok {
		return false
	}
	t.entries[taskID] = entry{queue: queue, res: res.DeepCopy(), slot: slot, reserved: true}
	metrics.LiveObjects.WithLabelValues(metrics.QueueName(queue)).Inc()
	return true
}

// Rename moves a reservation made before its task was known (a pop in flight holds a place
// under a key of its own) to the task's id. It reports false, dropping the reservation, when the
// task is counted already.
func (t *Tracker) Rename(from, to string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[from]
	if !ok || !e.reserved {
		return false
	}
	if _, dup := t.entries[to]; dup {
		t.remove(from, e)
		return false
	}
	delete(t.entries, from)
	t.entries[to] = e
	return true
}

// Release drops a reservation whose launch did not create an object.
func (t *Tracker) Release(taskID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.entries[taskID]; ok && e.reserved {
		t.remove(taskID, e)
	}
}

// Observe records what the informer shows of a task's object: live (pending or running) with
// the resource it holds, or ended/deleted (live false), which frees its place.
func (t *Tracker) Observe(taskID, queue string, res resource.Quantity, slot int, live bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[taskID]
	switch {
	case live && !ok:
		t.entries[taskID] = entry{queue: queue, res: res.DeepCopy(), slot: slot}
		metrics.LiveObjects.WithLabelValues(metrics.QueueName(queue)).Inc()
	case live:
		e.reserved, e.res, e.slot = false, res.DeepCopy(), slot
		t.entries[taskID] = e
	case ok:
		t.remove(taskID, e)
	}
}

func (t *Tracker) remove(taskID string, e entry) {
	delete(t.entries, taskID)
	metrics.LiveObjects.WithLabelValues(metrics.QueueName(e.queue)).Dec()
}

// Live returns the number of live objects of queue (an id).
func (t *Tracker) Live(queue string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, e := range t.entries {
		if e.queue == queue {
			n++
		}
	}
	return n
}

// Total returns the number of live objects over all queues.
func (t *Tracker) Total() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

// Resources returns the monitored resource held by live objects and launches in flight.
func (t *Tracker) Resources() resource.Quantity {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sum("")
}

// sum adds up what every entry but the task except holds, exactly.
func (t *Tracker) sum(except string) resource.Quantity {
	var sum resource.Quantity
	for id, e := range t.entries {
		if id != except {
			sum.Add(e.res)
		}
	}
	return sum
}

// Admits says whether a task that needs need fits under limit next to what is held now (live
// objects and launches in flight): held + need <= limit. The queue's waiting need (Wait) counts
// when larger, so a queue whose first task did not fit is not polled until that task fits.
func (t *Tracker) Admits(queue string, need, limit resource.Quantity) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if w, ok := t.waiting[queue]; ok && w.Cmp(need) > 0 {
		need = w
	}
	sum := t.sum("")
	sum.Add(need)
	return sum.Cmp(limit) <= 0
}

// Fit is the check of a task whose object is built: it fits when what every other task holds
// plus need stays within limit. When it fits, the task's reservation is set to hold (the amount
// its object will be counted for) and its queue stops waiting; when it does not, the queue waits
// for need (see Admits) and the reservation is left for the caller to release.
func (t *Tracker) Fit(taskID, queue string, need, hold, limit resource.Quantity, limited bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if limited {
		sum := t.sum(taskID)
		sum.Add(need)
		if sum.Cmp(limit) > 0 {
			t.waiting[queue] = need.DeepCopy()
			return false
		}
	}
	delete(t.waiting, queue)
	if e, ok := t.entries[taskID]; ok && e.reserved {
		e.res, e.fitted = hold.DeepCopy(), true
		t.entries[taskID] = e
	}
	return true
}

// Unfitted says whether a launch of queue is in flight whose object has not passed Fit yet.
// A queue whose need is rendered per task is pulled one task at a time, so a task that does not
// fit goes back to the front of its queue before the next one is pulled: order is kept.
func (t *Tracker) Unfitted(queue string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range t.entries {
		if e.queue == queue && e.reserved && !e.fitted {
			return true
		}
	}
	return false
}

// Waiting returns the need of the task of queue that last did not fit, if it still waits.
func (t *Tracker) Waiting(queue string) (resource.Quantity, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	w, ok := t.waiting[queue]
	return w.DeepCopy(), ok
}

// Has says whether the task has a live or reserved object.
func (t *Tracker) Has(taskID string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.entries[taskID]
	return ok
}

// FreeSlot returns the lowest sessions port-mode slot in 1..maxSlots that no live object holds,
// or 0 when all are taken.
func (t *Tracker) FreeSlot(maxSlots int) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	used := map[int]bool{}
	for _, e := range t.entries {
		used[e.slot] = true
	}
	for n := 1; n <= maxSlots; n++ {
		if !used[n] {
			return n
		}
	}
	return 0
}

// SlotOf reads the port-mode slot from an object's label value ("pod-<n>"); 0 when absent.
func SlotOf(value string) int {
	var n int
	if _, err := fmt.Sscanf(value, "pod-%d", &n); err != nil {
		return 0
	}
	return n
}
