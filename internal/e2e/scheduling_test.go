package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
)

// jobLog records every Job the glue creates, in creation order, and samples how many are live
// (not finished) per queue at every change.
type jobLog struct {
	mu       sync.Mutex
	order    []string            // task ids in the order their Job appeared
	uids     map[string][]string // task id -> distinct Job UIDs seen
	maxLive  map[string]int      // queue name -> most live Jobs at once
	maxTotal int
	live     map[string]string // task id -> queue name, for unfinished Jobs
}

func (e *env) recordJobs() *jobLog {
	l := &jobLog{uids: map[string][]string{}, maxLive: map[string]int{}, live: map[string]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	factory := informers.NewSharedInformerFactoryWithOptions(e.cs, 0, informers.WithNamespace(e.ns))
	update := func(obj any) {
		job, ok := obj.(*batchv1.Job)
		if !ok {
			return
		}
		id, queue := job.Labels[podtemplate.LabelTaskID], job.Labels[podtemplate.LabelQueueName]
		l.mu.Lock()
		defer l.mu.Unlock()
		seen := false
		for _, u := range l.uids[id] {
			seen = seen || u == string(job.UID)
		}
		if !seen {
			l.uids[id] = append(l.uids[id], string(job.UID))
			l.order = append(l.order, id)
		}
		if finished(job) {
			delete(l.live, id)
		} else {
			l.live[id] = queue
		}
		l.sample()
	}
	_, _ = factory.Batch().V1().Jobs().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: update, UpdateFunc: func(_, o any) { update(o) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if job, ok := obj.(*batchv1.Job); ok {
				l.mu.Lock()
				delete(l.live, job.Labels[podtemplate.LabelTaskID])
				l.mu.Unlock()
			}
		},
	})
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	return l
}

func (l *jobLog) sample() {
	per := map[string]int{}
	for _, q := range l.live {
		per[q]++
	}
	for q, n := range per {
		l.maxLive[q] = max(l.maxLive[q], n)
	}
	l.maxTotal = max(l.maxTotal, len(l.live))
}

func (l *jobLog) snapshot() (order []string, uids map[string][]string, maxLive map[string]int, maxTotal int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	uids = map[string][]string{}
	for k, v := range l.uids {
		uids[k] = append([]string(nil), v...)
	}
	maxLive = map[string]int{}
	for k, v := range l.maxLive {
		maxLive[k] = v
	}
	return append([]string(nil), l.order...), uids, maxLive, l.maxTotal
}

func finished(job *batchv1.Job) bool {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// 2. Three queues with different templates: each Job carries its queue's template, and with one
// slot at a time the queues are served strictly by priority, each in its own FIFO order.
func TestThreeQueuesWithOwnTemplatesServedInPriorityOrder(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  maxPods: 1
  basePodTemplate:
    annotations: {e2e.glue/run-ms: "200ms"}
  queues:
    urgent:
      priority: 10
      templateOverrides:
        labels: {tier: urgent}
        resources: {limits: {cpu: "4"}}
    normal:
      priority: 5
      templateOverrides:
        labels: {tier: normal}
        resources: {limits: {cpu: "2"}}
    batch:
      templateOverrides:
        labels: {tier: batch}
        resources: {limits: {cpu: "1"}}
`)
	jobs := e.recordJobs()
	var want []string
	byQueue := map[string][]string{}
	for _, q := range []string{"batch", "normal", "urgent"} { // enqueued lowest priority first
		for i := range 3 {
			byQueue[q] = append(byQueue[q], e.task(q, fmt.Sprintf("%s-%d", q, i), emulator.TaskSpec{}))
		}
	}
	want = append(append(append(want, byQueue["urgent"]...), byQueue["normal"]...), byQueue["batch"]...)
	e.startGlue("glue-0")
	for _, id := range want {
		e.waitStatus(id, clearml.StatusCompleted, 60*time.Second)
	}
	order, _, _, _ := jobs.snapshot()
	assert.DeepEqual(t, order, want)
	for q, cpu := range map[string]string{"urgent": "4", "normal": "2", "batch": "1"} {
		list, err := e.cs.BatchV1().Jobs(e.ns).List(context.Background(), metav1.ListOptions{LabelSelector: "tier=" + q})
		assert.NilError(t, err)
		for _, j := range list.Items {
			lim := j.Spec.Template.Spec.Containers[0].Resources.Limits[corev1.ResourceCPU]
			assert.Equal(t, lim.String(), cpu, "job %s of queue %s", j.Name, q)
		}
	}
}

// 3. Per-queue maxPods and the global maxPods are never exceeded, and admission happens before
// pulling: no task is pushed back, so each queue keeps its FIFO order.
func TestMaxPodsPerQueueAndGlobalNeverExceededAndNoQueueReordered(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  maxPods: 3
  basePodTemplate:
    annotations: {e2e.glue/run-ms: "1500ms"}
  queues:
    limited:
      priority: 10
      queueSettings: {maxPods: 2}
    open: {}
`)
	jobs := e.recordJobs()
	byQueue := map[string][]string{}
	for i := range 6 {
		for _, q := range []string{"limited", "open"} {
			byQueue[q] = append(byQueue[q], e.task(q, fmt.Sprintf("%s-%d", q, i), emulator.TaskSpec{}))
		}
	}
	// Launches run in parallel, so Jobs may appear out of order by milliseconds; what must hold
	// is that each queue only ever loses entries at its front.
	stopWatch := e.watchQueuesOnlyShrinkFromFront(byQueue)
	e.startGlue("glue-0")
	for _, ids := range byQueue {
		for _, id := range ids {
			e.waitStatus(id, clearml.StatusCompleted, 90*time.Second)
		}
	}
	stopWatch()
	_, uids, maxLive, maxTotal := jobs.snapshot()
	assert.Assert(t, maxLive["limited"] <= 2, "queue maxPods exceeded: %d live", maxLive["limited"])
	assert.Assert(t, maxTotal <= 3, "global maxPods exceeded: %d live", maxTotal)
	assert.Equal(t, maxTotal, 3, "the limit was never reached: the test proves nothing")
	for id, u := range uids {
		assert.Equal(t, len(u), 1, "task %s got %d Jobs", id, len(u))
	}
	assert.Equal(t, e.emu.Calls("queues.move_task_to_front"), 0, "a task was pushed back")
}

// watchQueuesOnlyShrinkFromFront samples the queues until stopped and fails the test if a
// queue's entries are ever anything but a suffix of the order they were enqueued in.
func (e *env) watchQueuesOnlyShrinkFromFront(byQueue map[string][]string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			for q, want := range byQueue {
				got := e.emu.QueueEntries(q)
				suffix := want[len(want)-min(len(got), len(want)):]
				if len(got) > len(want) || fmt.Sprint(got) != fmt.Sprint(suffix) {
					e.t.Errorf("queue %s reordered: entries %v, enqueued %v", q, got, want)
					return
				}
			}
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// Sessions port mode: each task gets a free session slot (the label the chart's Services select),
// and no task is pulled while every slot is taken.
func TestPortModeGivesEachTaskAFreeSessionSlot(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  queues:
    interactive:
      templateOverrides:
        labels: {e2e.glue/behavior: hold}
sessions:
  portModeEnabled: true
  svcType: NodePort
  startingPort: 31000
  maxServices: 2
`)
	e.startGlue("glue-0")
	a := e.task("interactive", "a", emulator.TaskSpec{})
	b := e.task("interactive", "b", emulator.TaskSpec{})
	c := e.task("interactive", "c", emulator.TaskSpec{})
	slots := map[string]bool{}
	slotOf := map[string]string{}
	for _, id := range []string{a, b} {
		job := e.waitJob(id, 30*time.Second)
		slotOf[id] = job.Spec.Template.Labels[podtemplate.LabelPortSlot]
		slots[slotOf[id]] = true
	}
	// a and b are popped at once, so which of them holds which slot is not fixed.
	assert.DeepEqual(t, slots, map[string]bool{"pod-1": true, "pod-2": true})
	time.Sleep(3 * time.Second)
	assert.DeepEqual(t, e.emu.QueueEntries("interactive"), []string{c})

	// a's slot frees up: the waiting task takes it.
	assert.NilError(t, e.cs.CoreV1().Pods(e.ns).Delete(context.Background(), e.podOf(a), metav1.DeleteOptions{}))
	job := e.waitJob(c, 30*time.Second)
	assert.Equal(t, job.Spec.Template.Labels[podtemplate.LabelPortSlot], slotOf[a])
}
