package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/metrics"
	"github.com/clearml-glue/clearml-glue/internal/monitor"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
	"github.com/clearml-glue/clearml-glue/internal/taskops"
)

// Snapshot is one accepted configuration with its compiled templates.
type Snapshot struct {
	File    *config.File
	Builder *podtemplate.Builder
}

// Options wires a Scheduler.
type Options struct {
	Client    *clearml.Client
	Ops       *taskops.Ops
	Clientset kubernetes.Interface
	Tracker   *monitor.Tracker
	// Config returns the snapshot in force; Wake receives when it changes.
	Config func() *Snapshot
	Wake   <-chan struct{}
	// MaxParallel bounds launches in flight.
	MaxParallel int
	// CreateRetry bounds how long a launch retries an unreachable Kubernetes API before it
	// puts the task back at the front of its queue.
	CreateRetry time.Duration
	Recorder    record.EventRecorder
	Logger      *slog.Logger
}

// Scheduler is the polling loop. Create it with New.
type Scheduler struct {
	opts     Options
	sem      chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex        // guards the three fields below, read by launches and heartbeats
	resolved *Snapshot         // the snapshot queues were resolved for
	ids      map[string]string // queue name -> id, for the served queues
	names    map[string]string // id -> name
}

// New returns a Scheduler.
func New(opts Options) *Scheduler {
	if opts.MaxParallel < 1 {
		opts.MaxParallel = 1
	}
	if opts.CreateRetry == 0 {
		opts.CreateRetry = 2 * time.Minute
	}
	return &Scheduler{opts: opts, sem: make(chan struct{}, opts.MaxParallel)}
}

// QueueIDs resolves the served queues (creating them when the config says so) and returns their
// ids in polling order. A queue that is missing and may not be created is reported in the error
// (naming it) while the others are returned and keep being served; it is looked up again on the
// next call, so creating it in ClearML is enough.
func (s *Scheduler) QueueIDs(ctx context.Context) ([]string, error) {
	snap := s.opts.Config()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.resolved == snap {
		return s.orderedIDs(snap), nil
	}
	ids, names := map[string]string{}, map[string]string{}
	var errs []error
	for _, name := range snap.File.QueueNames() {
		id, ok := s.ids[name]
		if !ok {
			var err error
			id, err = taskops.ResolveQueue(ctx, s.opts.Client, name, snap.File.ShouldCreateQueues(), nil)
			if err != nil {
				errs = append(errs, fmt.Errorf("queue %q: %w", name, err))
				continue
			}
		}
		ids[name], names[id] = id, name
	}
	s.ids, s.names = ids, names
	err := errors.Join(errs...)
	if err == nil {
		s.resolved = snap
	}
	return s.orderedIDs(snap), err
}

// Served returns the ids of the queues resolved so far, in polling order.
func (s *Scheduler) Served() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.resolved == nil {
		return nil
	}
	return s.orderedIDs(s.resolved)
}

// queueName returns the name of a served queue id.
func (s *Scheduler) queueName(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.names[id]
}

// queueID returns the id of a served queue name.
func (s *Scheduler) queueID(name string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.ids[name]
	return id, ok
}

func (s *Scheduler) orderedIDs(snap *Snapshot) []string {
	var out []string
	for _, name := range snap.File.QueueNames() {
		if id, ok := s.ids[name]; ok {
			out = append(out, id)
		}
	}
	return out
}

// Run polls until ctx ends, then waits for launches in flight. Call Recover first after a start.
func (s *Scheduler) Run(ctx context.Context) error {
	defer s.wg.Wait()
	for {
		pulled, err := s.cycle(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			s.opts.Logger.Warn("scheduling cycle failed", "err", err)
		}
		if pulled {
			metrics.PollCycles.WithLabelValues("pulled").Inc()
			continue
		}
		metrics.PollCycles.WithLabelValues("idle").Inc()
		select {
		case <-ctx.Done():
			return nil
		case <-s.opts.Wake:
		case <-time.After(time.Duration(s.opts.Config().File.PollIntervalSeconds) * time.Second):
		}
	}
}

// cycle asks once which admissible queues hold tasks (one queues.get_all whatever the number of
// queues), then pulls in priority order while admission allows.
func (s *Scheduler) cycle(ctx context.Context) (pulled bool, err error) {
	order, qerr := s.QueueIDs(ctx)
	if qerr != nil {
		s.opts.Logger.Warn("some queues are not served", "err", qerr)
	}
	snap := s.opts.Config()
	pending, err := s.opts.Ops.PendingQueueID(ctx)
	if err != nil {
		return false, err
	}
	var ask []string
	for _, id := range order {
		if s.admit(snap, id) {
			ask = append(ask, id)
		}
	}
	queues, err := s.opts.Client.QueuesGetAll(ctx, clearml.QueuesGetAllRequest{
		ID: append(ask, pending), OnlyFields: []string{"id", "entries"}, SearchHidden: true,
	})
	if err != nil {
		return false, err
	}
	waiting := map[string]int{}
	for _, q := range queues {
		if q.ID == pending {
			s.relaunchOrphans(ctx, snap, q.Entries)
			continue
		}
		waiting[q.ID] = len(q.Entries)
	}
	for {
		id := s.next(snap, ask, waiting)
		if id == "" || ctx.Err() != nil {
			return pulled, nil
		}
		// A pop must be seen through: a shutdown cancelling the call after the server popped
		// would leave the task in no queue, so the call itself is not cancelled.
		popCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		next, err := s.opts.Client.QueuesGetNextTask(popCtx, id)
		cancel()
		if err != nil {
			waiting[id] = 0
			s.opts.Logger.Warn("could not pull from queue", "queue", s.queueName(id), "err", err)
			continue
		}
		if next == nil {
			waiting[id] = 0
			continue
		}
		waiting[id]--
		pulled = true
		s.start(ctx, snap, id, next.Entry.Task, false)
	}
}

// next returns the first queue in priority order that holds tasks and is admitted now.
func (s *Scheduler) next(snap *Snapshot, order []string, waiting map[string]int) string {
	for _, id := range order {
		if waiting[id] > 0 && s.admit(snap, id) {
			return id
		}
	}
	return ""
}

// admit says whether a queue may be polled: its maxPods, the global maxPods and the monitored
// resources all leave room for one more task. Checked before pulling, so no task is pulled only
// to be pushed back.
func (s *Scheduler) admit(snap *Snapshot, queueID string) bool {
	f := snap.File
	q, _ := f.QueueConfig(s.queueName(queueID))
	t := s.opts.Tracker
	if q.QueueSettings.MaxPods > 0 && t.Live(queueID) >= q.QueueSettings.MaxPods {
		return false
	}
	if f.MaxPods > 0 && t.Total() >= f.MaxPods {
		return false
	}
	if f.Sessions.PortModeEnabled && t.FreeSlot(f.Sessions.MaxServices) == 0 {
		return false // every session Service is taken
	}
	if m := f.MonitoredResources; m.MaxResources > 0 {
		need := queueNeed(f, q, m.MinResourcesFieldName)
		if t.Resources()+need > int64(m.MaxResources) {
			return false
		}
	}
	return true
}

// queueNeed reads the monitored resource a queue's tasks ask for from its template (override
// first, then base), the way the Enterprise glue reads minResourcesFieldName.
func queueNeed(f *config.File, q config.Queue, fieldPaths string) int64 {
	for _, path := range strings.Split(fieldPaths, "|") {
		for _, tmpl := range []map[string]any{q.TemplateOverrides, f.BasePodTemplate} {
			if v, ok := lookupPath(tmpl, strings.TrimSpace(path)); ok {
				// The override replaces the base value even when it is only known per task
				// (a template string): then the need is unknown and counted as 0.
				qty, err := resource.ParseQuantity(fmt.Sprint(v))
				if err != nil {
					return 0
				}
				return qty.Value()
			}
		}
	}
	return 0
}

// lookupPath follows "resources.limits.nvidia.com/gpu": the first two segments are keys, the
// rest (dots included) is the resource name.
func lookupPath(tree map[string]any, path string) (any, bool) {
	parts := strings.SplitN(path, ".", 3)
	var cur any = tree
	for _, p := range parts {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// start reserves the task's slot and launches it in the background, bounded by MaxParallel.
func (s *Scheduler) start(ctx context.Context, snap *Snapshot, queueID, taskID string, inPending bool) {
	pulledAt := time.Now()
	name := s.queueName(queueID)
	metrics.TasksPulled.WithLabelValues(name).Inc()
	q, _ := snap.File.QueueConfig(name)
	slot := 0
	if snap.File.Sessions.PortModeEnabled {
		slot = s.opts.Tracker.FreeSlot(snap.File.Sessions.MaxServices)
	}
	s.opts.Tracker.Reserve(taskID, queueID, queueNeed(snap.File, q, snap.File.MonitoredResources.MaxResourcesFieldName), slot)
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		// Shutting down with a pulled task: it must not be lost.
		s.giveBack(context.WithoutCancel(ctx), taskID, queueID, "glue shutting down")
		return
	}
	s.wg.Go(func() {
		defer func() { <-s.sem }()
		// A launch finishes even when shutdown starts, so the task ends in a Job or a queue.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.CreateRetry+time.Minute)
		defer cancel()
		s.launch(lctx, snap, queueID, taskID, slot, pulledAt, inPending)
	})
}

// launch follows the Python glue's sequence (clearml-api.md 6.3) with the glue's own rules:
// the task waits in the pending queue while its object is created; a template error fails it;
// a transient failure puts it back at the front of its queue. inPending says the task is in the
// pending queue already (a relaunch).
func (s *Scheduler) launch(ctx context.Context, snap *Snapshot, queueID, taskID string, slot int, pulledAt time.Time, inPending bool) {
	name := s.queueName(queueID)
	log := s.opts.Logger.With("task", taskID, "queue", name)
	task, err := s.fetchTask(ctx, taskID)
	if err != nil {
		log.Warn("could not read pulled task", "err", err)
		s.giveBack(ctx, taskID, queueID, "could not read task")
		return
	}
	if task == nil {
		log.Warn("pulled task no longer exists")
		s.opts.Tracker.Release(taskID)
		return
	}
	if !inPending {
		// The property first: a glue killed after the pending push finds the origin queue there
		// (one killed before the push finds the task by its execution.queue, see Recover).
		s.setQueueProperty(ctx, taskID, name, log)
		if err := s.opts.Ops.EnqueuePending(ctx, taskID, "k8s glue: from queue "+name, false); err != nil {
			log.Warn("could not push task to the pending queue", "err", err)
			s.giveBack(ctx, taskID, queueID, "pending queue unavailable")
			return
		}
	}
	obj, err := snap.Builder.Build(name, podtemplate.Input{Task: task, QueueID: queueID, QueueName: name, PodNumber: slot})
	if err != nil {
		s.failLaunch(ctx, taskID, "invalid pod template: "+err.Error())
		return
	}
	if err := s.create(ctx, obj); err != nil {
		if transient(err) {
			log.Warn("kubernetes API unavailable; task goes back to the front of its queue", "err", err)
			s.giveBack(ctx, taskID, queueID, "kubernetes API unavailable")
			return
		}
		s.failLaunch(ctx, taskID, fmt.Sprintf("%s %s refused by Kubernetes: %v", kindOf(obj), obj.GetName(), err))
		return
	}
	metrics.TasksLaunched.WithLabelValues(name).Inc()
	metrics.LaunchSeconds.Observe(time.Since(pulledAt).Seconds())
	s.event(obj, corev1.EventTypeNormal, "Launched", fmt.Sprintf("task %s from queue %s", taskID, name))
	s.opts.Ops.Log(ctx, taskID, "info", fmt.Sprintf("task %s pulled from %s by worker %s; %s %s created",
		taskID, name, s.opts.Ops.WorkerID, kindOf(obj), obj.GetName()))
	log.Info("launched", "object", obj.GetName())
}

// fetchTask returns the full task as a JSON map (nil if it vanished), so templates can read any
// field with ${CLEARML_TASK.<path>}.
func (s *Scheduler) fetchTask(ctx context.Context, taskID string) (map[string]any, error) {
	var out struct {
		Tasks []map[string]any `json:"tasks"`
	}
	if err := s.opts.Client.Call(ctx, "tasks.get_all", clearml.TasksGetAllRequest{ID: []string{taskID}}, &out); err != nil {
		return nil, err
	}
	if len(out.Tasks) == 0 {
		return nil, nil
	}
	return out.Tasks[0], nil
}

// setQueueProperty records the origin queue as the k8s-queue user property, as the Python glue
// does; the glue also reads it back to relaunch a task found in the pending queue after a restart.
func (s *Scheduler) setQueueProperty(ctx context.Context, taskID, queue string, log *slog.Logger) {
	_, err := s.opts.Client.TasksEditHyperParams(ctx, clearml.TasksEditHyperParamsRequest{
		Task: taskID, Hyperparams: []clearml.HyperParam{{Section: "properties", Name: "k8s-queue", Value: queue}},
	})
	if err != nil {
		log.Warn("could not set the k8s-queue property", "err", err)
	}
}

// create creates the object, retrying while the API server is unreachable. An object that
// already exists is this task's (names are per task), so a repeated launch is a no-op.
func (s *Scheduler) create(ctx context.Context, obj podtemplate.Object) error {
	op := func() (struct{}, error) {
		var err error
		switch o := obj.(type) {
		case *batchv1.Job:
			_, err = s.opts.Clientset.BatchV1().Jobs(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *corev1.Pod:
			_, err = s.opts.Clientset.CoreV1().Pods(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		default:
			return struct{}{}, backoff.Permanent(fmt.Errorf("unexpected object %T", obj))
		}
		if err == nil || apierrors.IsAlreadyExists(err) {
			return struct{}{}, nil
		}
		metrics.KubernetesErrors.WithLabelValues("create").Inc()
		if !transient(err) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}
	_, err := backoff.Retry(ctx, op, backoff.WithMaxElapsedTime(s.opts.CreateRetry),
		backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: 200 * time.Millisecond, RandomizationFactor: 0.3, Multiplier: 2, MaxInterval: 5 * time.Second}))
	return err
}

// transient says whether a Kubernetes error may pass by itself (connection refused, timeouts,
// throttling, 5xx) rather than being a refusal of the object.
func transient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return true // transport error: no answer from the API server
	}
	return apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err) || status.Status().Code >= 500
}

// giveBack returns a pulled task to the FRONT of its queue and frees its slot.
func (s *Scheduler) giveBack(ctx context.Context, taskID, queueID, why string) {
	defer s.opts.Tracker.Release(taskID)
	metrics.TasksRequeued.WithLabelValues(s.queueName(queueID), why).Inc()
	if err := s.opts.Ops.RequeueFront(ctx, taskID, queueID, why); err != nil {
		// Still queued in the pending queue (or popped): Recover finds it on the next start.
		s.opts.Logger.Error("could not requeue task", "task", taskID, "err", err)
	}
}

// failLaunch fails a task the glue cannot run and takes it out of the pending queue.
func (s *Scheduler) failLaunch(ctx context.Context, taskID, reason string) {
	defer s.opts.Tracker.Release(taskID)
	if err := s.opts.Ops.Fail(ctx, taskID, reason, "K8S glue could not launch the task: "+reason); err != nil {
		s.opts.Logger.Error("could not fail task", "task", taskID, "err", err)
		return
	}
	if pending, err := s.opts.Ops.PendingQueueID(ctx); err == nil {
		_, _ = s.opts.Client.QueuesRemoveTask(ctx, clearml.QueuesRemoveTaskRequest{Queue: pending, Task: taskID})
	}
}

func (s *Scheduler) event(obj podtemplate.Object, kind, reason, msg string) {
	if s.opts.Recorder != nil {
		s.opts.Recorder.Event(obj, kind, reason, msg)
	}
}

func kindOf(obj podtemplate.Object) string {
	if _, ok := obj.(*batchv1.Job); ok {
		return "Job"
	}
	return "Pod"
}
