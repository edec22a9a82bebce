package demo

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
)

// tracker follows the demo's tasks in ClearML (tasks.get_all) and in Kubernetes (informers on
// the glue's Jobs and Pods) and keeps one Row per task.
type tracker struct {
	client *clearml.Client
	jobs   batchlisters.JobLister
	pods   corelisters.PodLister
	ns     string

	queues map[string]string // queue id -> name; used by refresh only

	mu   sync.Mutex
	rows []Row
	at   map[string]int // task id -> index in rows
}

func newTracker(ctx context.Context, cs kubernetes.Interface, ns string, client *clearml.Client) (*tracker, error) {
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = podtemplate.LabelTaskID }))
	t := &tracker{client: client, ns: ns, at: map[string]int{}, queues: map[string]string{},
		jobs: factory.Batch().V1().Jobs().Lister(), pods: factory.Core().V1().Pods().Lister()}
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return nil, fmt.Errorf("informer cache of %v not synced", typ)
		}
	}
	return t, nil
}

func (t *tracker) add(id, name, queue string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.at[id]; ok {
		return
	}
	t.at[id] = len(t.rows)
	t.rows = append(t.rows, Row{ID: id, Name: name, Queue: queue, Status: clearml.StatusQueued})
}

// snapshot returns a copy of the rows.
func (t *tracker) snapshot() []Row {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Row(nil), t.rows...)
}

// discover adds a row for every task the glue launched that the tracker does not know yet (tasks
// enqueued by hand while the demo is kept running).
func (t *tracker) discover() {
	jobs, _ := t.jobs.List(labels.Everything())
	for _, j := range jobs {
		id := j.Labels[podtemplate.LabelTaskID]
		if id == "" {
			continue
		}
		t.mu.Lock()
		_, known := t.at[id]
		t.mu.Unlock()
		if !known {
			t.add(id, "", "") // name and queue come from ClearML (label values are sanitized)
		}
	}
}

// refresh reads ClearML statuses and the Jobs and Pods, and updates the rows.
func (t *tracker) refresh(ctx context.Context) error {
	rows := t.snapshot()
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	if len(ids) == 0 {
		return nil
	}
	tasks, err := t.client.TasksGetAll(ctx, clearml.TasksGetAllRequest{ID: ids, OnlyFields: []string{"name", "status"}})
	if err != nil {
		return fmt.Errorf("read task statuses: %w", err)
	}
	byID := make(map[string]clearml.Task, len(tasks))
	for _, task := range tasks {
		byID[task.ID] = task
	}
	for i := range rows {
		r := &rows[i]
		if task, ok := byID[r.ID]; ok {
			r.Status = task.Status
			if r.Name == "" {
				r.Name = task.Name
			}

		}
		if job, err := t.jobs.Jobs(t.ns).Get(podtemplate.ObjectName(r.ID)); err == nil {
			r.Job = jobState(job)
			if r.Queue == "" {
				r.Queue = t.queueName(ctx, job.Labels[podtemplate.LabelQueue])
			}
			if r.Queue == "" {
				r.Queue = job.Labels[podtemplate.LabelQueueName] // sanitized, lower case
			}
		}
		pods, _ := t.pods.Pods(t.ns).List(labels.SelectorFromSet(labels.Set{podtemplate.LabelTaskID: r.ID}))
		if pod := newest(pods); pod != nil {
			r.Pod = podPhase(pod)
			if pod.Spec.NodeName != "" {
				r.Node = pod.Spec.NodeName
			}
			if r.Job == "" {
				r.Job = "-" // taskKind Pod: no Job, but launched
			}
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range rows {
		t.rows[t.at[r.ID]] = r
	}
	return nil
}

// queueName resolves a queue id, reading the queues again when it is not known yet.
func (t *tracker) queueName(ctx context.Context, id string) string {
	if id == "" {
		return ""
	}
	if name, ok := t.queues[id]; ok {
		return name
	}
	queues, err := t.client.QueuesGetAll(ctx, clearml.QueuesGetAllRequest{OnlyFields: []string{"name"}})
	if err != nil {
		return ""
	}
	for _, q := range queues {
		t.queues[q.ID] = q.Name
	}
	return t.queues[id]
}

func jobState(j *batchv1.Job) string {
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return "Complete"
		case batchv1.JobFailed:
			return "Failed"
		}
	}
	if j.Status.Active > 0 {
		return "Active"
	}
	return "Created"
}

func newest(pods []*corev1.Pod) *corev1.Pod {
	sort.Slice(pods, func(i, j int) bool { return pods[i].CreationTimestamp.After(pods[j].CreationTimestamp.Time) })
	if len(pods) == 0 {
		return nil
	}
	return pods[0]
}

// podPhase is the pod's phase, with why it waits while Pending ("Pending (Unschedulable)").
func podPhase(p *corev1.Pod) string {
	phase := string(p.Status.Phase)
	if p.DeletionTimestamp != nil {
		return phase + " (deleting)"
	}
	if p.Status.Phase != corev1.PodPending {
		return phase
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason != "" {
			return phase + " (" + c.Reason + ")"
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Waiting != nil && cs.State.Waiting.Reason != "" {
			return phase + " (" + cs.State.Waiting.Reason + ")"
		}
	}
	return phase
}

// display shows the rows: redrawn in place on a terminal, otherwise a plain progress line
// whenever the counts changed (at most once per plainEvery).
type display struct {
	out        io.Writer
	live       bool
	plainEvery time.Duration
	start      time.Time

	lines     int // lines of the frame on screen (live)
	lastLine  string
	lastPrint time.Time
}

func (d *display) show(rows []Row, final bool) {
	elapsed := time.Since(d.start)
	if d.live {
		frame := RenderTable(rows, elapsed)
		fmt.Fprint(d.out, Redraw(d.lines, frame))
		d.lines = strings.Count(frame, "\n")
		return
	}
	if final {
		fmt.Fprint(d.out, RenderTable(rows, elapsed))
		return
	}
	c := Count(rows)
	key := fmt.Sprint(c)
	if key == d.lastLine || time.Since(d.lastPrint) < d.plainEvery {
		return
	}
	d.lastLine, d.lastPrint = key, time.Now()
	fmt.Fprintln(d.out, c.ProgressLine(elapsed))
}

// events prints one line per change of a task's ClearML status (kept-running mode).
type events struct {
	out  io.Writer
	seen map[string]string
}

func (e *events) show(rows []Row) {
	for _, r := range rows {
		if e.seen[r.ID] == r.Status {
			continue
		}
		e.seen[r.ID] = r.Status
		where := ""
		if r.Node != "" {
			where = " on " + r.Node
		}
		fmt.Fprintf(e.out, "%s  %s (%s, %s) %s%s\n", time.Now().Format("15:04:05"), r.Name, r.ID, r.Queue, r.Status, where)
	}
}
