package monitor

import (
	"fmt"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/clearml-glue/clearml-glue/internal/metrics"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
)

// Tracker counts live task objects per queue and the monitored resource they hold, from the
// informer cache plus launches in flight, so admission sees a launch before its object exists.
type Tracker struct {
	mu      sync.Mutex
	entries map[string]entry // by task id
}

type entry struct {
	queue    string // queue id
	res      int64
	slot     int  // sessions port-mode slot (1..maxServices), 0 when not in port mode
	reserved bool // a launch in flight, not yet seen by the informer
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker { return &Tracker{entries: map[string]entry{}} }

// Reserve counts a launch in flight for queue; it stays counted until the informer sees the
// object (observe) or the launch gives up (Release).
func (t *Tracker) Reserve(taskID, queue string, res int64, slot int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.entries[taskID]; !ok {
		t.entries[taskID] = entry{queue: queue, res: res, slot: slot, reserved: true}
		metrics.LiveObjects.WithLabelValues(queue).Inc()
	}
}

// Release drops a reservation whose launch did not create an object.
func (t *Tracker) Release(taskID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.entries[taskID]; ok && e.reserved {
		t.remove(taskID, e)
	}
}

func (t *Tracker) observe(taskID, queue string, res int64, slot int, live bool) {
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

// Resources returns the monitored resource held by live objects.
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

// FreeSlot returns the lowest sessions port-mode slot in 1..max that no live object holds, or 0
// when all are taken.
func (t *Tracker) FreeSlot(max int) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	used := map[int]bool{}
	for _, e := range t.entries {
		used[e.slot] = true
	}
	for n := 1; n <= max; n++ {
		if !used[n] {
			return n
		}
	}
	return 0
}

// slotOf reads the port-mode slot from an object's labels ("pod-<n>").
func slotOf(labels map[string]string) int {
	var n int
	if _, err := fmt.Sscanf(labels[podtemplate.LabelPortSlot], "pod-%d", &n); err != nil {
		return 0
	}
	return n
}

// ResourceAmount sums, over the pod's containers, the first resource found among fieldPaths:
// "|"-separated paths like "resources.limits.nvidia.com/gpu" (the monitoredResources syntax).
func ResourceAmount(spec *corev1.PodSpec, fieldPaths string) int64 {
	for _, path := range strings.Split(fieldPaths, "|") {
		var found bool
		var sum int64
		for _, c := range spec.Containers {
			if q, ok := lookupResource(c.Resources, strings.TrimSpace(path)); ok {
				found = true
				sum += q.Value()
			}
		}
		if found {
			return sum
		}
	}
	return 0
}

func lookupResource(r corev1.ResourceRequirements, path string) (resource.Quantity, bool) {
	var list corev1.ResourceList
	name, ok := strings.CutPrefix(path, "resources.limits.")
	if ok {
		list = r.Limits
	} else if name, ok = strings.CutPrefix(path, "resources.requests."); ok {
		list = r.Requests
	}
	q, found := list[corev1.ResourceName(name)]
	return q, ok && found
}
