package admission

import (
	"fmt"
	"sync"

	"github.com/clearml-glue/clearml-glue/internal/metrics"
)

// Tracker counts live task objects per queue and the monitored resource they hold, from the
// informer cache plus launches in flight, so admission sees a launch before its object exists.
// The monitor feeds it from informer events; the scheduler reserves and releases.
type Tracker struct {
	mu      sync.Mutex
	entries map[string]entry // by task id
}

type entry struct {
	queue    string // queue id
	res      int64  // monitored resource in milli-units
	slot     int    // sessions port-mode slot (1..maxServices), 0 when not in port mode
	reserved bool   // a launch in flight, not yet seen by the informer
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker { return &Tracker{entries: map[string]entry{}} }

// Reserve counts a launch in flight for queue; it stays counted until the informer sees the
// object (Observe) or the launch gives up (Release). It reports false when the task is counted
// already (a launch or a live object), so one task never holds two reservations.
func (t *Tracker) Reserve(taskID, queue string, res int64, slot int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.entries[taskID]; ok {
		return false
	}
	t.entries[taskID] = entry{queue: queue, res: res, slot: slot, reserved: true}
	metrics.LiveObjects.WithLabelValues(queue).Inc()
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
func (t *Tracker) Observe(taskID, queue string, res int64, slot int, live bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[taskID]
	switch {
	case live && !ok:
		t.entries[taskID] = entry{queue: queue, res: res, slot: slot}
		metrics.LiveObjects.WithLabelValues(queue).Inc()
	case live:
		e.reserved, e.res, e.slot = false, res, slot
		t.entries[taskID] = e
	case ok:
		t.remove(taskID, e)
	}
}

func (t *Tracker) remove(taskID string, e entry) {
	delete(t.entries, taskID)
	metrics.LiveObjects.WithLabelValues(e.queue).Dec()
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

// Resources returns the monitored resource held by live objects, in milli-units.
func (t *Tracker) Resources() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var sum int64
	for _, e := range t.entries {
		sum += e.res
	}
	return sum
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
