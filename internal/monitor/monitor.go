package monitor

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/clearml-glue/clearml-glue/internal/admission"
	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/metrics"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
	"github.com/clearml-glue/clearml-glue/internal/taskops"
)

const byTaskIndex = "task"

// Options wires a Monitor.
type Options struct {
	Clientset kubernetes.Interface
	Namespace string
	AgentName string
	Ops       *taskops.Ops
	Tracker   *admission.Tracker
	// Config returns the config in force; settings such as grace periods follow hot reloads.
	Config   func() *config.File
	Recorder record.EventRecorder
	Logger   *slog.Logger
	// Now is the clock; tests may replace it.
	Now func() time.Time
}

// Monitor watches the glue's objects. Create it with New, then Start and Run it.
//
// One writer per task: event handlers, the abort check and the start-up reconcile only record
// what they saw (a deleted pod, a ClearML hint) and enqueue the task id; the workqueue gives
// each id to one worker at a time, and only sync reads and writes that task's state.
type Monitor struct {
	opts    Options
	factory informers.SharedInformerFactory
	jobs    cache.Indexer // *batchv1.Job or *endedJob: read through jobOf
	pods    cache.Indexer // *corev1.Pod or *endedPod: read through podOf
	synced  []cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]

	mu         sync.Mutex // guards the maps, not the values: a task's entries belong to sync
	state      map[string]taskState
	hints      map[string]hint
	tombstones map[string][]*corev1.Pod // a Job's pods deleted before success, by task
}

// New builds the informers (label-selected on this agent, managedFields trimmed).
func New(opts Options) *Monitor {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Tracker == nil {
		opts.Tracker = admission.NewTracker()
	}
	selector := labels.Set{podtemplate.LabelAgent: podtemplate.SanitizeLabelValue(opts.AgentName)}.String()
	factory := informers.NewSharedInformerFactoryWithOptions(opts.Clientset, 0,
		informers.WithNamespace(opts.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector }),
		informers.WithTransform(trim))
	m := &Monitor{
		opts:       opts,
		factory:    factory,
		queue:      workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
		state:      map[string]taskState{},
		hints:      map[string]hint{},
		tombstones: map[string][]*corev1.Pod{},
	}
	jobInf := factory.Batch().V1().Jobs()
	podInf := factory.Core().V1().Pods()
	_ = podInf.Informer().AddIndexers(cache.Indexers{byTaskIndex: byTask})
	_, _ = jobInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: m.enqueue, UpdateFunc: func(_, o any) { m.enqueue(o) }, DeleteFunc: m.enqueue,
	})
	_, _ = podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: m.enqueue, UpdateFunc: func(_, o any) { m.enqueue(o) }, DeleteFunc: m.onPodDelete,
	})
	m.jobs = jobInf.Informer().GetIndexer()
	m.pods = podInf.Informer().GetIndexer()
	m.synced = []cache.InformerSynced{jobInf.Informer().HasSynced, podInf.Informer().HasSynced}
	return m
}

// byTask indexes pods by their task.
func byTask(obj any) ([]string, error) {
	if id := taskOf(obj); id != "" {
		return []string{id}, nil
	}
	return nil, nil
}

// Tracker is the admission bookkeeping the monitor keeps current.
func (m *Monitor) Tracker() *admission.Tracker { return m.opts.Tracker }

// Start starts the informers and waits for their caches.
func (m *Monitor) Start(ctx context.Context) error {
	m.factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), m.synced...) {
		return fmt.Errorf("monitor: caches did not sync: %w", ctx.Err())
	}
	return nil
}

// Run processes object changes with workers until ctx ends, and checks for tasks aborted while
// their pod is pending every interval(). Call Start first.
func (m *Monitor) Run(ctx context.Context, workers int, interval func() time.Duration) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for m.processNext(ctx) {
			}
		})
	}
	for {
		select {
		case <-ctx.Done():
			m.queue.ShutDown()
			wg.Wait()
			return
		case <-time.After(interval()):
			m.checkAborted(ctx)
		}
	}
}

func (m *Monitor) processNext(ctx context.Context) bool {
	taskID, quit := m.queue.Get()
	if quit {
		return false
	}
	defer m.queue.Done(taskID)
	after, err := m.sync(ctx, taskID)
	if err != nil {
		m.opts.Logger.Warn("monitor: will retry", "task", taskID, "err", err)
		m.queue.AddRateLimited(taskID)
		return true
	}
	m.queue.Forget(taskID)
	if after > 0 {
		m.queue.AddAfter(taskID, after)
	}
	return true
}

func (m *Monitor) enqueue(obj any) {
	if id := taskOf(obj); id != "" {
		m.queue.Add(id)
	}
}

// onPodDelete keeps a Job's pod that vanished before succeeding: the Job controller may replace
// it, and the monitor must judge that pod itself.
func (m *Monitor) onPodDelete(obj any) {
	id := taskOf(obj)
	if id == "" {
		return
	}
	if pod := podOf(obj); !standalone(pod) && pod.Status.Phase != corev1.PodSucceeded {
		m.mu.Lock()
		m.tombstones[id] = append(m.tombstones[id], pod)
		m.mu.Unlock()
	}
	m.queue.Add(id)
}

// jobKey is the cache key of the task's Job.
func (m *Monitor) jobKey(taskID string) string {
	return cache.ObjectName{Namespace: m.opts.Namespace, Name: podtemplate.ObjectName(taskID)}.String()
}

func standalone(pod *corev1.Pod) bool { return metav1.GetControllerOf(pod) == nil }

func (m *Monitor) rules() rules {
	cfg := m.opts.Config()
	return rules{
		FailFastReasons:        cfg.ImagePull.FailFastReasons,
		GraceReasons:           cfg.ImagePull.GraceReasons,
		Grace:                  time.Duration(cfg.ImagePull.BackOffGraceSeconds) * time.Second,
		DeletionDelay:          time.Duration(cfg.CompletedPodDeletionDelayMinutes) * time.Minute,
		DisruptionRequeueLimit: cfg.DisruptionRequeueLimit,
	}
}

// sync reads the task's object from the caches and its state once, decides, applies the plan
// and stores the state once. It returns when to look again.
func (m *Monitor) sync(ctx context.Context, taskID string) (time.Duration, error) {
	obs, err := m.observe(taskID)
	if err != nil {
		return 0, err
	}
	m.track(taskID, obs)
	notePending(taskID, obs)
	m.mu.Lock()
	st := m.state[taskID]
	m.mu.Unlock()
	p, next := decide(obs, st, m.rules(), m.opts.Now())
	if err := m.apply(ctx, taskID, obs, p); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if p.ForgetState {
		delete(m.state, taskID)
		delete(m.tombstones, taskID)
	} else {
		m.state[taskID] = next
		m.tombstones[taskID] = slices.DeleteFunc(m.tombstones[taskID], func(p *corev1.Pod) bool { return slices.Contains(next.Handled, p.UID) })
		if len(m.tombstones[taskID]) == 0 {
			delete(m.tombstones, taskID)
		}
	}
	delete(m.hints, taskID)
	return p.After, nil
}

// observe collects the task's Job, pods and hints.
func (m *Monitor) observe(taskID string) (observed, error) {
	var obs observed
	obj, exists, err := m.jobs.GetByKey(m.jobKey(taskID))
	if err != nil {
		return obs, err
	}
	if exists {
		obs.Job = jobOf(obj)
	}
	objs, _ := m.pods.ByIndex(byTaskIndex, taskID)
	seen := map[types.UID]bool{}
	for _, o := range objs {
		p := podOf(o)
		if obs.Pod == nil || p.CreationTimestamp.After(obs.Pod.CreationTimestamp.Time) {
			obs.Pod = p
		}
		if obs.Job != nil && !standalone(p) && p.Status.Phase == corev1.PodFailed {
			obs.Ended = append(obs.Ended, p)
			seen[p.UID] = true
		}
	}
	m.mu.Lock()
	for _, p := range m.tombstones[taskID] {
		if !seen[p.UID] && obs.Job != nil {
			obs.Ended = append(obs.Ended, p)
		}
	}
	obs.Hint = m.hints[taskID]
	m.mu.Unlock()
	sort.SliceStable(obs.Ended, func(i, j int) bool {
		return obs.Ended[i].CreationTimestamp.Before(&obs.Ended[j].CreationTimestamp)
	})
	return obs, nil
}

// track feeds admission: a live object holds its queue's place and its monitored resource,
// read from the Pod (a Job's pod template) at maxResourcesFieldName.
func (m *Monitor) track(taskID string, obs observed) {
	path := admission.MustParsePath(cmp.Or(m.opts.Config().MonitoredResources.MaxResourcesFieldName, config.DefaultResourcesFieldName))
	// An ended object holds nothing (and its ended form keeps no resources to read).
	amount := func(obj runtime.Object, live bool) resource.Quantity {
		if !live {
			return resource.Quantity{}
		}
		q, err := path.Object(obj)
		if err != nil {
			m.opts.Logger.Warn("monitored resource not counted", "task", taskID, "err", err)
		}
		return q
	}
	switch {
	case obs.Job != nil:
		t, isLive := obs.Job.Spec.Template, podtemplate.JobEnd(obs.Job) == ""
		m.opts.Tracker.Observe(taskID, obs.Job.Labels[podtemplate.LabelQueue], amount(obs.Job, isLive),
			admission.SlotOf(t.Labels[podtemplate.LabelPortSlot]), isLive)
	case obs.Pod != nil && standalone(obs.Pod):
		p, isLive := obs.Pod, live(obs)
		m.opts.Tracker.Observe(taskID, p.Labels[podtemplate.LabelQueue], amount(p, isLive),
			admission.SlotOf(p.Labels[podtemplate.LabelPortSlot]), isLive)
	default:
		m.opts.Tracker.Observe(taskID, "", resource.Quantity{}, 0, false)
	}
}

// apply carries out a plan: ClearML first (push back, fail), Kubernetes second (delete), so an
// outage of either is retried without losing the task.
func (m *Monitor) apply(ctx context.Context, taskID string, obs observed, p plan) error {
	obj := object(obs)
	var status taskops.TaskStatus
	needStatus := p.Requeue != "" || (p.Fail != nil && p.Fail.When != nil)
	if needStatus {
		var err error
		if status, err = m.opts.Ops.Status(ctx, taskID); err != nil {
			return err
		}
	}
	if p.Requeue != "" && status.In(whenActive) {
		if err := m.opts.Ops.EnqueuePending(ctx, taskID, "k8s glue: "+p.Requeue, true); err != nil {
			return err
		}
		m.opts.Ops.Log(ctx, taskID, "warning", p.Requeue)
		m.event(obj, corev1.EventTypeNormal, "Requeued", p.Requeue)
		m.opts.Logger.Info("task requeued after disruption", "task", taskID)
	}
	if f := p.Fail; f != nil && slices.Equal(f.When, whenQueuedInPending) {
		// The cache lags: a newer run of the task may have replaced this object already and
		// pushed the task to the pending queue, which is not this object's doing.
		same, err := m.stillThere(ctx, obj)
		if err != nil {
			return err
		}
		if !same {
			p.Fail = nil
		}
	}
	if f := p.Fail; f != nil && (f.When == nil || status.In(f.When)) {
		if err := m.opts.Ops.Fail(ctx, taskID, f.Reason, f.Lines...); err != nil {
			return err
		}
		if f.Event != "" {
			m.event(obj, corev1.EventTypeWarning, f.Event, f.Reason)
		}
	}
	if p.Delete != nil {
		if err := m.deleteObject(ctx, p.Delete); err != nil {
			return fmt.Errorf("delete object of task %s: %w", taskID, err)
		}
	}
	// The log line first: whoever sees the status message finds its line in the task's log.
	for _, l := range p.Logs {
		m.opts.Ops.Log(ctx, taskID, l.Level, l.Message)
	}
	if p.Report != "" {
		if err := m.opts.Ops.ReportPending(ctx, taskID, p.Report); err != nil {
			return err
		}
	}
	for _, e := range p.Events {
		m.event(obj, e.Type, e.Reason, e.Message)
	}
	return nil
}

// stillThere asks the API server (not the cache) whether obj still exists as this same object.
func (m *Monitor) stillThere(ctx context.Context, obj runtime.Object) (bool, error) {
	var cur metav1.Object
	var err error
	switch o := obj.(type) {
	case *batchv1.Job:
		cur, err = m.opts.Clientset.BatchV1().Jobs(o.Namespace).Get(ctx, o.Name, metav1.GetOptions{})
	case *corev1.Pod:
		cur, err = m.opts.Clientset.CoreV1().Pods(o.Namespace).Get(ctx, o.Name, metav1.GetOptions{})
	default:
		return false, nil
	}
	if apierrors.IsNotFound(err) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return cur.GetUID() == uidOf(obj), nil
}

func (m *Monitor) deleteObject(ctx context.Context, obj runtime.Object) error {
	bg := metav1.DeletePropagationBackground
	uid := uidOf(obj)
	opts := metav1.DeleteOptions{PropagationPolicy: &bg, Preconditions: &metav1.Preconditions{UID: &uid}}
	var err error
	switch o := obj.(type) {
	case *batchv1.Job:
		err = m.opts.Clientset.BatchV1().Jobs(o.Namespace).Delete(ctx, o.Name, opts)
	case *corev1.Pod:
		err = m.opts.Clientset.CoreV1().Pods(o.Namespace).Delete(ctx, o.Name, opts)
	}
	// NotFound or a UID conflict: that object is gone already.
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		metrics.KubernetesErrors.WithLabelValues("delete").Inc()
		return err
	}
	return nil
}

// checkAborted looks up, in one paged read, which tasks with a pending pod were stopped in
// ClearML, and hands each to sync.
func (m *Monitor) checkAborted(ctx context.Context) {
	seen := map[string]bool{}
	var ids []string
	for _, o := range m.pods.List() {
		p, ok := o.(*corev1.Pod) // an ended pod is not pending
		if !ok {
			continue
		}
		id := p.Labels[podtemplate.LabelTaskID]
		if p.Status.Phase == corev1.PodPending && p.DeletionTimestamp == nil && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return
	}
	sort.Strings(ids)
	stopped, err := m.opts.Ops.WithStatus(ctx, ids, clearml.StatusStopped)
	if err != nil {
		m.opts.Logger.Warn("abort check failed", "err", err)
		return
	}
	for _, id := range stopped {
		m.hint(id, func(h *hint) { h.Aborted = true })
	}
}

func (m *Monitor) hint(taskID string, set func(*hint)) {
	m.mu.Lock()
	h := m.hints[taskID]
	set(&h)
	m.hints[taskID] = h
	m.mu.Unlock()
	m.queue.Add(taskID)
}

// Reconcile runs once after the caches sync: live objects whose task finished or no longer
// exists (a direct lookup says so, never an absence from a list) are handed to sync, which
// deletes them.
func (m *Monitor) Reconcile(ctx context.Context) error {
	ids := map[string]bool{}
	for _, o := range m.jobs.List() {
		if j, ok := o.(*batchv1.Job); ok { // live: the transform caches an ended Job as an endedJob
			ids[j.Labels[podtemplate.LabelTaskID]] = true
		}
	}
	for _, o := range m.pods.List() {
		if p, ok := o.(*corev1.Pod); ok && standalone(p) && (p.Status.Phase == corev1.PodPending || p.Status.Phase == corev1.PodRunning) {
			ids[p.Labels[podtemplate.LabelTaskID]] = true
		}
	}
	delete(ids, "")
	ended, gone, err := m.opts.Ops.Ended(ctx, slices.Sorted(maps.Keys(ids)))
	if err != nil {
		return fmt.Errorf("reconcile objects: %w", err)
	}
	for _, id := range ended {
		m.hint(id, func(h *hint) { h.Finished = true })
	}
	for _, id := range gone {
		m.hint(id, func(h *hint) { h.Finished, h.Gone = true, true })
	}
	if n := len(ended) + len(gone); n > 0 {
		m.opts.Logger.Info("reconcile: objects of finished or deleted tasks handed to the monitor", "finished", len(ended), "gone", len(gone))
	}
	return nil
}

// Watching says whether the task has an object the monitor sees (for tests and the scheduler's
// recovery).
func (m *Monitor) Watching(taskID string) bool {
	if _, exists, err := m.jobs.GetByKey(m.jobKey(taskID)); err == nil && exists {
		return true
	}
	objs, _ := m.pods.ByIndex(byTaskIndex, taskID)
	return len(objs) > 0
}

func (m *Monitor) event(obj runtime.Object, kind, reason, msg string) {
	if obj != nil && m.opts.Recorder != nil {
		m.opts.Recorder.Event(obj, kind, reason, msg)
	}
}

// notePending feeds clearml_glue_pending_tasks and the oldest pending age: a Job without a pod
// yet, or a pending pod (with the reason it waits); anything else is not pending.
func notePending(taskID string, obs observed) {
	var obj metav1.Object
	switch {
	case obs.Job != nil:
		obj = obs.Job
	case obs.Pod != nil:
		obj = obs.Pod
	default:
		metrics.ClearTaskPending(taskID)
		return
	}
	queue := metrics.QueueName(obj.GetLabels()[podtemplate.LabelQueue])
	switch {
	case obs.Job != nil && podtemplate.JobEnd(obs.Job) == "" && obs.Pod == nil:
		metrics.SetTaskPending(taskID, queue, metrics.ReasonPodNotCreated, obs.Job.CreationTimestamp.Time)
	case obs.Pod != nil && obs.Pod.Status.Phase == corev1.PodPending && obs.Pod.DeletionTimestamp == nil:
		reason, _ := pendingReason(obs.Pod)
		metrics.SetTaskPending(taskID, queue, reason, obs.Pod.CreationTimestamp.Time)
	default:
		metrics.ClearTaskPending(taskID)
	}
}
