package monitor

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

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
	// Config returns the config in force; settings such as grace periods follow hot reloads.
	Config   func() *config.File
	Recorder record.EventRecorder
	Logger   *slog.Logger
	// Now is the clock; tests may replace it.
	Now func() time.Time
}

// Monitor watches the glue's objects. Create it with New, then Run it.
type Monitor struct {
	opts    Options
	Tracker *Tracker
	factory informers.SharedInformerFactory
	jobs    batchlisters.JobLister
	pods    cache.Indexer
	synced  []cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]

	mu       sync.Mutex
	state    map[string]*taskState
	requeues map[string]int // disruption requeues per task; kept across objects
}

// taskState is what the monitor remembers of one task's object between events.
type taskState struct {
	lastPod    *corev1.Pod // last pod seen, kept after deletion to explain it
	podEnded   *corev1.Pod // a Job's pod that failed or vanished before succeeding
	seenLive   bool
	pending    bool
	lastMsg    string    // last pending message sent to ClearML (deduplication)
	graceSince time.Time // when a grace-period image reason was first seen
	failedWith string    // set once the task was failed for an image problem
	handled    bool      // the object's end was reported
	deleting   bool      // the glue deletes the object itself
	finishedAt time.Time
}

// New builds the informers (label-selected on this agent, managedFields trimmed).
func New(opts Options) *Monitor {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	selector := labels.Set{podtemplate.LabelAgent: podtemplate.SanitizeLabelValue(opts.AgentName)}.String()
	factory := informers.NewSharedInformerFactoryWithOptions(opts.Clientset, 0,
		informers.WithNamespace(opts.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector }),
		informers.WithTransform(trim))
	m := &Monitor{
		opts:     opts,
		Tracker:  NewTracker(),
		factory:  factory,
		queue:    workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
		state:    map[string]*taskState{},
		requeues: map[string]int{},
	}
	jobInf := factory.Batch().V1().Jobs()
	podInf := factory.Core().V1().Pods()
	_ = podInf.Informer().AddIndexers(cache.Indexers{byTaskIndex: func(obj any) ([]string, error) {
		if p, ok := obj.(*corev1.Pod); ok && p.Labels[podtemplate.LabelTaskID] != "" {
			return []string{p.Labels[podtemplate.LabelTaskID]}, nil
		}
		return nil, nil
	}})
	_, _ = jobInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: m.onJob, UpdateFunc: func(_, o any) { m.onJob(o) }, DeleteFunc: m.onJobDelete,
	})
	_, _ = podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: m.onPod, UpdateFunc: func(_, o any) { m.onPod(o) }, DeleteFunc: m.onPodDelete,
	})
	m.jobs = jobInf.Lister()
	m.pods = podInf.Informer().GetIndexer()
	m.synced = []cache.InformerSynced{jobInf.Informer().HasSynced, podInf.Informer().HasSynced}
	return m
}

// trim keeps in the cache only what the monitor reads: metadata but managedFields and
// annotations (fileMounts content lives there), the status, and of the pod spec the container
// names and resources. The rest (bootstrap script, env, volumes) is most of an object's size.
func trim(obj any) (any, error) {
	switch o := obj.(type) {
	case *batchv1.Job:
		o.ManagedFields, o.Annotations = nil, nil
		o.Spec.Template.Annotations = nil
		o.Spec.Template.Spec = slimPodSpec(o.Spec.Template.Spec)
	case *corev1.Pod:
		o.ManagedFields, o.Annotations = nil, nil
		o.Spec = slimPodSpec(o.Spec)
	case metav1.Object:
		o.SetManagedFields(nil)
	}
	return obj, nil
}

func slimPodSpec(spec corev1.PodSpec) corev1.PodSpec {
	out := corev1.PodSpec{NodeName: spec.NodeName, Containers: make([]corev1.Container, len(spec.Containers))}
	for i, c := range spec.Containers {
		out.Containers[i] = corev1.Container{Name: c.Name, Image: c.Image, Resources: c.Resources}
	}
	return out
}

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
	defer m.queue.ShutDown()
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
	if err := m.sync(ctx, taskID); err != nil {
		m.opts.Logger.Warn("monitor: will retry", "task", taskID, "err", err)
		m.queue.AddRateLimited(taskID)
		return true
	}
	m.queue.Forget(taskID)
	return true
}

func (m *Monitor) onJob(obj any) {
	job, ok := obj.(*batchv1.Job)
	if !ok {
		return
	}
	taskID := job.Labels[podtemplate.LabelTaskID]
	if taskID == "" {
		return
	}
	live := jobEnd(job) == ""
	m.Tracker.observe(taskID, job.Labels[podtemplate.LabelQueue], ResourceAmount(&job.Spec.Template.Spec, m.opts.Config().MonitoredResources.MaxResourcesFieldName), slotOf(job.Spec.Template.Labels), live)
	m.noteLive(taskID, live)
	m.queue.Add(taskID)
}

func (m *Monitor) onJobDelete(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if job, ok := obj.(*batchv1.Job); ok && job.Labels[podtemplate.LabelTaskID] != "" {
		m.Tracker.observe(job.Labels[podtemplate.LabelTaskID], job.Labels[podtemplate.LabelQueue], 0, 0, false)
		m.queue.Add(job.Labels[podtemplate.LabelTaskID])
	}
}

func (m *Monitor) onPod(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	taskID := pod.Labels[podtemplate.LabelTaskID]
	if taskID == "" {
		return
	}
	m.mu.Lock()
	st := m.stateLocked(taskID)
	st.lastPod = pod
	if !standalone(pod) && pod.Status.Phase == corev1.PodFailed {
		st.podEnded = pod
	}
	m.mu.Unlock()
	if standalone(pod) {
		live := pod.Status.Phase == corev1.PodPending || pod.Status.Phase == corev1.PodRunning
		m.Tracker.observe(taskID, pod.Labels[podtemplate.LabelQueue], ResourceAmount(&pod.Spec, m.opts.Config().MonitoredResources.MaxResourcesFieldName), slotOf(pod.Labels), live)
		m.noteLive(taskID, live)
	}
	m.queue.Add(taskID)
}

func (m *Monitor) onPodDelete(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.Labels[podtemplate.LabelTaskID] == "" {
		return
	}
	taskID := pod.Labels[podtemplate.LabelTaskID]
	m.mu.Lock()
	st := m.stateLocked(taskID)
	st.lastPod = pod
	if !standalone(pod) && pod.Status.Phase != corev1.PodSucceeded {
		// Judge the pod itself: the Job controller may replace a vanished pod, and a second
		// agent must not run the task again.
		st.podEnded = pod
	}
	m.mu.Unlock()
	if standalone(pod) {
		m.Tracker.observe(taskID, pod.Labels[podtemplate.LabelQueue], 0, 0, false)
	}
	m.queue.Add(taskID)
}

func (m *Monitor) noteLive(taskID string, live bool) {
	if !live {
		return
	}
	m.mu.Lock()
	m.stateLocked(taskID).seenLive = true
	m.mu.Unlock()
}

func standalone(pod *corev1.Pod) bool { return metav1.GetControllerOf(pod) == nil }

func (m *Monitor) stateLocked(taskID string) *taskState {
	st, ok := m.state[taskID]
	if !ok {
		st = &taskState{}
		m.state[taskID] = st
	}
	return st
}

// sync looks at the task's object as the caches hold it now and acts on what it finds.
func (m *Monitor) sync(ctx context.Context, taskID string) error {
	name := podtemplate.ObjectName(taskID)
	job, err := m.jobs.Jobs(m.opts.Namespace).Get(name)
	if apierrors.IsNotFound(err) {
		job = nil
	} else if err != nil {
		return err
	}
	pod := m.currentPod(taskID)
	m.mu.Lock()
	st := m.stateLocked(taskID)
	m.mu.Unlock()

	if job == nil && pod == nil {
		return m.gone(ctx, taskID, st)
	}
	if job != nil {
		m.mu.Lock()
		ended := st.podEnded
		if ended != nil {
			st.lastPod = ended
		}
		m.mu.Unlock()
		switch {
		case jobEnd(job) == batchv1.JobComplete:
			m.finish(taskID, st)
			return nil
		case ended != nil:
			return m.terminated(ctx, taskID, st, job, podEnd(ended))
		case jobEnd(job) == batchv1.JobFailed:
			return m.terminated(ctx, taskID, st, job, "Job failed: "+jobFailure(job))
		}
	}
	if pod == nil {
		return nil
	}
	var obj runtime.Object = pod
	if job != nil {
		obj = job
	}
	switch pod.Status.Phase {
	case corev1.PodPending:
		return m.pending(ctx, taskID, st, obj, pod)
	case corev1.PodSucceeded:
		if job == nil {
			return m.finishPod(ctx, taskID, st, pod)
		}
	case corev1.PodFailed:
		if job == nil {
			if err := m.terminated(ctx, taskID, st, pod, "Pod failed"); err != nil {
				return err
			}
			return m.finishPod(ctx, taskID, st, pod)
		}
	}
	m.mu.Lock()
	st.pending, st.graceSince = false, time.Time{}
	m.mu.Unlock()
	return nil
}

// currentPod returns the task's newest pod from the cache.
func (m *Monitor) currentPod(taskID string) *corev1.Pod {
	objs, _ := m.pods.ByIndex(byTaskIndex, taskID)
	var newest *corev1.Pod
	for _, o := range objs {
		p := o.(*corev1.Pod)
		if newest == nil || p.CreationTimestamp.After(newest.CreationTimestamp.Time) {
			newest = p
		}
	}
	return newest
}

// gone handles a task whose object no longer exists.
func (m *Monitor) gone(ctx context.Context, taskID string, st *taskState) error {
	m.mu.Lock()
	report := st.seenLive && !st.handled && !st.deleting
	m.mu.Unlock()
	if report {
		if err := m.terminated(ctx, taskID, st, nil, "object deleted while the task was running"); err != nil {
			return err
		}
	}
	m.mu.Lock()
	delete(m.state, taskID)
	m.mu.Unlock()
	return nil
}

func (m *Monitor) finish(taskID string, st *taskState) {
	m.mu.Lock()
	st.handled, st.pending = true, false
	m.mu.Unlock()
}

// finishPod deletes a standalone finished pod once completedPodDeletionDelayMinutes have passed
// (Jobs get ttlSecondsAfterFinished instead).
func (m *Monitor) finishPod(ctx context.Context, taskID string, st *taskState, pod *corev1.Pod) error {
	m.mu.Lock()
	st.handled, st.pending = true, false
	if st.finishedAt.IsZero() {
		st.finishedAt = m.opts.Now()
	}
	wait := time.Duration(m.opts.Config().CompletedPodDeletionDelayMinutes)*time.Minute - m.opts.Now().Sub(st.finishedAt)
	m.mu.Unlock()
	if wait > 0 {
		m.queue.AddAfter(taskID, wait)
		return nil
	}
	return m.deleteObject(ctx, taskID, st, pod)
}

// terminated reports an object that ended without success. The task's own agent normally reports
// first; only a task still in_progress or queued (the agent never got to say) is changed here.
func (m *Monitor) terminated(ctx context.Context, taskID string, st *taskState, obj runtime.Object, why string) error {
	m.mu.Lock()
	if st.handled || st.deleting {
		m.mu.Unlock()
		return nil
	}
	pod := st.lastPod
	m.mu.Unlock()
	lines := describeTermination(pod)
	task, found, err := m.opts.Ops.Status(ctx, taskID)
	if err != nil {
		return err
	}
	for _, l := range lines {
		m.opts.Ops.Log(ctx, taskID, "error", l)
	}
	if found && (task.Status == clearml.StatusInProgress || task.Status == clearml.StatusQueued) {
		if disrupted(pod) && m.takeRequeue(taskID) {
			if err := m.requeueDisrupted(ctx, taskID, st, obj, pod); err != nil {
				return err
			}
		} else {
			reason := why
			if pod != nil && len(lines) > 0 {
				reason = why + ": " + lines[0]
			}
			if err := m.opts.Ops.Fail(ctx, taskID, reason); err != nil {
				return err
			}
			m.event(obj, corev1.EventTypeWarning, "TaskFailed", reason)
			if job, ok := obj.(*batchv1.Job); ok && jobEnd(job) == "" {
				// The task is failed: no replacement pod may run it again.
				if err := m.deleteObject(ctx, taskID, st, job); err != nil {
					return err
				}
			}
		}
	}
	m.mu.Lock()
	st.handled, st.pending = true, false
	m.mu.Unlock()
	return nil
}

func (m *Monitor) takeRequeue(taskID string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.requeues[taskID] >= m.opts.Config().DisruptionRequeueLimit {
		return false
	}
	m.requeues[taskID]++
	return true
}

// requeueDisrupted puts a task whose pod was evicted or preempted back into the pending queue;
// the scheduler's reconcile launches it again.
func (m *Monitor) requeueDisrupted(ctx context.Context, taskID string, st *taskState, obj runtime.Object, pod *corev1.Pod) error {
	if obj != nil {
		if err := m.deleteObject(ctx, taskID, st, obj); err != nil {
			return err
		}
	}
	msg := fmt.Sprintf("pod %s disrupted (%s); requeued to the pending queue", pod.Name, disruptionReason(pod))
	if err := m.opts.Ops.EnqueuePending(ctx, taskID, "k8s glue: "+msg, true); err != nil {
		return err
	}
	m.opts.Ops.Log(ctx, taskID, "warning", msg)
	m.opts.Logger.Info("task requeued after disruption", "task", taskID, "pod", pod.Name)
	return nil
}

// pending reports why a pod waits and applies the image-pull rules.
func (m *Monitor) pending(ctx context.Context, taskID string, st *taskState, obj runtime.Object, pod *corev1.Pod) error {
	cfg := m.opts.Config()
	reason, text := pendingReason(pod)
	m.mu.Lock()
	st.pending = true
	failedWith := st.failedWith
	m.mu.Unlock()
	if failedWith != "" {
		return m.deleteObject(ctx, taskID, st, obj)
	}
	if slices.Contains(cfg.ImagePull.FailFastReasons, reason) {
		return m.failImage(ctx, taskID, st, obj, text)
	}
	if slices.Contains(cfg.ImagePull.GraceReasons, reason) {
		m.mu.Lock()
		if st.graceSince.IsZero() {
			st.graceSince = m.opts.Now()
		}
		left := time.Duration(cfg.ImagePull.BackOffGraceSeconds)*time.Second - m.opts.Now().Sub(st.graceSince)
		m.mu.Unlock()
		if left <= 0 {
			return m.failImage(ctx, taskID, st, obj, text)
		}
		m.queue.AddAfter(taskID, left)
	} else {
		m.mu.Lock()
		st.graceSince = time.Time{}
		m.mu.Unlock()
	}
	m.mu.Lock()
	same := text == "" || text == st.lastMsg
	m.mu.Unlock()
	if same {
		return nil
	}
	if _, err := m.opts.Ops.Client.TasksUpdate(ctx, clearml.TasksUpdateRequest{Task: taskID, StatusMessage: clearml.GlueStatusMessagePrefix + text}); err != nil {
		return fmt.Errorf("report pending status: %w", err)
	}
	m.opts.Ops.Log(ctx, taskID, "debug", "Kubernetes Pod status: "+text)
	m.event(obj, corev1.EventTypeNormal, "Pending", text)
	m.mu.Lock()
	st.lastMsg = text
	m.mu.Unlock()
	return nil
}

// failImage fails the task first and deletes its object second, so a ClearML outage retries the
// failure instead of leaving a queued task with no object.
func (m *Monitor) failImage(ctx context.Context, taskID string, st *taskState, obj runtime.Object, text string) error {
	if err := m.opts.Ops.Fail(ctx, taskID, text, "K8S Error: "+text); err != nil {
		return err
	}
	m.event(obj, corev1.EventTypeWarning, "ImagePullFailed", text)
	m.mu.Lock()
	st.failedWith, st.handled = text, true
	m.mu.Unlock()
	return m.deleteObject(ctx, taskID, st, obj)
}

func (m *Monitor) deleteObject(ctx context.Context, taskID string, st *taskState, obj runtime.Object) error {
	m.mu.Lock()
	st.deleting = true
	m.mu.Unlock()
	bg := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &bg}
	var err error
	switch o := obj.(type) {
	case *batchv1.Job:
		err = m.opts.Clientset.BatchV1().Jobs(o.Namespace).Delete(ctx, o.Name, opts)
	case *corev1.Pod:
		err = m.opts.Clientset.CoreV1().Pods(o.Namespace).Delete(ctx, o.Name, opts)
	}
	if err != nil && !apierrors.IsNotFound(err) {
		metrics.KubernetesErrors.WithLabelValues("delete").Inc()
		return fmt.Errorf("delete object of task %s: %w", taskID, err)
	}
	return nil
}

// checkAborted deletes the objects of tasks stopped (aborted in the UI) while their pod was
// pending: one tasks.get_all for all pending pods.
func (m *Monitor) checkAborted(ctx context.Context) {
	m.mu.Lock()
	var ids []string
	for id, st := range m.state {
		if st.pending && !st.deleting {
			ids = append(ids, id)
		}
	}
	m.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	sort.Strings(ids)
	tasks, err := m.opts.Ops.Client.TasksGetAll(ctx, clearml.TasksGetAllRequest{ID: ids, Status: []string{clearml.StatusStopped}, OnlyFields: []string{"id"}})
	if err != nil {
		m.opts.Logger.Warn("abort check failed", "err", err)
		return
	}
	for _, t := range tasks {
		var obj runtime.Object
		if job, err := m.jobs.Jobs(m.opts.Namespace).Get(podtemplate.ObjectName(t.ID)); err == nil {
			obj = job
		} else if pod := m.currentPod(t.ID); pod != nil && standalone(pod) {
			obj = pod
		}
		if obj == nil {
			continue
		}
		m.mu.Lock()
		st := m.stateLocked(t.ID)
		st.handled = true
		m.mu.Unlock()
		if err := m.deleteObject(ctx, t.ID, st, obj); err != nil {
			m.opts.Logger.Warn("could not delete aborted task's object", "task", t.ID, "err", err)
			continue
		}
		m.event(obj, corev1.EventTypeNormal, "Aborted", "task aborted in ClearML while pending; object deleted")
		m.opts.Ops.Log(ctx, t.ID, "info", "task aborted while its pod was pending: Kubernetes object deleted")
		m.opts.Logger.Info("deleted object of task aborted while pending", "task", t.ID)
	}
}

// Reconcile runs once after the caches sync: objects whose task is gone, or finished while its
// pod still waits, are deleted.
func (m *Monitor) Reconcile(ctx context.Context) error {
	jobs, err := m.jobs.List(labels.Everything())
	if err != nil {
		return err
	}
	byTask := map[string]runtime.Object{}
	for _, j := range jobs {
		if jobEnd(j) == "" {
			byTask[j.Labels[podtemplate.LabelTaskID]] = j
		}
	}
	for _, o := range m.pods.List() {
		if p := o.(*corev1.Pod); standalone(p) && (p.Status.Phase == corev1.PodPending || p.Status.Phase == corev1.PodRunning) {
			byTask[p.Labels[podtemplate.LabelTaskID]] = p
		}
	}
	if len(byTask) == 0 {
		return nil
	}
	ids := make([]string, 0, len(byTask))
	for id := range byTask {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	tasks, err := m.opts.Ops.Client.TasksGetAll(ctx, clearml.TasksGetAllRequest{ID: ids, OnlyFields: []string{"id", "status"}})
	if err != nil {
		return fmt.Errorf("reconcile objects: %w", err)
	}
	status := map[string]string{}
	for _, t := range tasks {
		status[t.ID] = t.Status
	}
	for _, id := range ids {
		s, ok := status[id]
		if ok && s != clearml.StatusStopped && s != clearml.StatusFailed && s != clearml.StatusCompleted && s != clearml.StatusPublished && s != clearml.StatusClosed {
			continue
		}
		if pod := m.currentPod(id); ok && pod != nil && pod.Status.Phase == corev1.PodRunning {
			continue // the task's agent still runs and will end on its own
		}
		m.mu.Lock()
		st := m.stateLocked(id)
		st.handled = true
		m.mu.Unlock()
		if err := m.deleteObject(ctx, id, st, byTask[id]); err != nil {
			return err
		}
		m.opts.Logger.Info("reconcile: deleted object of a finished or unknown task", "task", id, "status", s)
	}
	return nil
}

func (m *Monitor) event(obj runtime.Object, kind, reason, msg string) {
	if obj != nil && m.opts.Recorder != nil {
		m.opts.Recorder.Event(obj, kind, reason, msg)
	}
}

// jobEnd returns JobComplete or JobFailed for a finished Job, "" otherwise.
func jobEnd(job *batchv1.Job) batchv1.JobConditionType {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c.Type
		}
	}
	return ""
}

// podEnd says how a Job's pod ended early.
func podEnd(pod *corev1.Pod) string {
	if pod.DeletionTimestamp != nil || pod.Status.Phase != corev1.PodFailed {
		return "pod " + pod.Name + " deleted before the task finished"
	}
	return "pod " + pod.Name + " failed"
}

func jobFailure(job *batchv1.Job) string {
	for _, c := range job.Status.Conditions {
		if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
			return strings.TrimSpace(c.Reason + " " + c.Message)
		}
	}
	return "unknown"
}

// pendingReason explains a pending pod the way the Python glue does: a container's waiting
// reason, else the scheduler's Unschedulable condition. text is "Reason (message)".
func pendingReason(pod *corev1.Pod) (reason, text string) {
	for _, cs := range slices.Concat(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses) {
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" && w.Reason != "PodInitializing" {
			return w.Reason, format(w.Reason, w.Message)
		}
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return c.Reason, format(c.Reason, c.Message)
		}
	}
	return "", ""
}

func format(reason, msg string) string {
	if msg == "" {
		return reason
	}
	return reason + " (" + msg + ")"
}

func disrupted(pod *corev1.Pod) bool {
	return pod != nil && disruptionReason(pod) != ""
}

func disruptionReason(pod *corev1.Pod) string {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue {
			return format(c.Reason, c.Message)
		}
	}
	return ""
}

// describeTermination lists what a pod's containers ended with: OOMKilled, exit codes and the
// last termination message, for the task's log.
func describeTermination(pod *corev1.Pod) []string {
	if pod == nil {
		return nil
	}
	var lines []string
	for _, cs := range slices.Concat(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses) {
		t := cs.State.Terminated
		if t == nil {
			t = cs.LastTerminationState.Terminated
		}
		if t == nil || (t.ExitCode == 0 && t.Reason != "OOMKilled") {
			continue
		}
		line := fmt.Sprintf("container %s in pod %s terminated: %s, exit code %d", cs.Name, pod.Name, t.Reason, t.ExitCode)
		if msg := strings.TrimSpace(t.Message); msg != "" {
			line += ": " + msg
		}
		lines = append(lines, line)
	}
	if pod.Status.Reason != "" {
		lines = append(lines, fmt.Sprintf("pod %s: %s", pod.Name, format(pod.Status.Reason, pod.Status.Message)))
	}
	return lines
}
