package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/clearml-glue/clearml-glue/internal/admission"
	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/metrics"
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
	Tracker   *admission.Tracker
	// Owns says whether the glue has an object for the task (the monitor's caches).
	Owns func(taskID string) bool
	// Foreign says whether another glue (ClearML's Python glue) has an object for the task.
	Foreign func(ctx context.Context, taskID string) (string, bool)
	// Config returns the snapshot in force; Wake receives when it changes.
	Config func() *Snapshot
	Wake   <-chan struct{}
	// MaxParallel bounds launches in flight.
	MaxParallel int
	// CreateRetry bounds how long a launch retries an unreachable Kubernetes API before it
	// puts the task back at the front of its queue.
	CreateRetry time.Duration
	// RecoverSettle is how long Recover waits before it trusts that a popped task is a stray
	// (DefaultRecoverSettle).
	RecoverSettle time.Duration
	Logger        *slog.Logger
	// Unresolved is told once when a served queue is found missing (err) and once when it is
	// found again (nil).
	Unresolved func(queue string, err error)
}

// Scheduler is the polling loop. Create it with New.
type Scheduler struct {
	opts      Options
	sem       chan struct{} // pops and launches up to their object (MaxParallel)
	finishing chan struct{} // launches past their object, writing to ClearML (finishFactor × MaxParallel)
	wg        sync.WaitGroup
	mu        sync.Mutex        // guards the fields below, read by launches and heartbeats
	resolved  *Snapshot         // the snapshot queues were resolved for
	ids       map[string]string // queue name -> id, for the served queues
	names     map[string]string // id -> name
	missing   map[string]bool   // served queues not found on the server
	pops      atomic.Int64      // numbers the admission places of pops in flight
	lookups   lookupCache       // project names and task owners the templates read
	note      identityNote      // what task pods act as, last said (ownertoken.go)
	deep      deepCounts        // exact depths of queues longer than a cycle lists (listing.go)
}

// New returns a Scheduler.
func New(opts Options) *Scheduler {
	if opts.MaxParallel < 1 {
		opts.MaxParallel = 1
	}
	if opts.CreateRetry == 0 {
		opts.CreateRetry = DefaultCreateRetry
	}
	if opts.RecoverSettle == 0 {
		opts.RecoverSettle = DefaultRecoverSettle
	}
	return &Scheduler{opts: opts, sem: make(chan struct{}, opts.MaxParallel), finishing: make(chan struct{}, finishFactor*opts.MaxParallel)}
}

// QueueIDs resolves the served queues (creating them when the config says so) and returns their
// ids in polling order. A queue that is missing and may not be created is reported in the error
// (naming it) while the others are returned and keep being served; it is looked up again on the
// next call, so creating it in ClearML is enough.
func (s *Scheduler) QueueIDs(ctx context.Context) ([]string, error) {
	snap := s.opts.Config()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noteIdentity(snap)
	if s.resolved == snap {
		return s.orderedIDs(snap), nil
	}
	ids, names, missing := map[string]string{}, map[string]string{}, map[string]bool{}
	var errs []error
	var unknown []string
	for _, name := range snap.File.QueueNames() {
		if id, ok := s.ids[name]; ok {
			ids[name], names[id] = id, name
		} else {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		found, failed, err := s.opts.Ops.ResolveQueues(ctx, unknown, snap.File.ShouldCreateQueues())
		if err != nil {
			failed = map[string]error{}
			for _, name := range unknown {
				failed[name] = err
			}
		}
		for name, id := range found {
			ids[name], names[id] = id, name
		}
		for _, name := range unknown { // in config order, so errors read the same every time
			err, ok := failed[name]
			if !ok {
				continue
			}
			err = fmt.Errorf("queue %q: %w", name, err)
			errs = append(errs, err)
			missing[name] = true
			if !s.missing[name] {
				s.unresolved(name, err)
			}
		}
	}
	for name := range s.missing {
		if !missing[name] {
			s.unresolved(name, nil)
		}
	}
	s.ids, s.names, s.missing = ids, names, missing
	metrics.SetServedQueues(names)
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

func (s *Scheduler) unresolved(queue string, err error) {
	v := 0.0
	if err != nil {
		v = 1
	}
	metrics.QueueUnresolved.WithLabelValues(queue).Set(v)
	if s.opts.Unresolved != nil {
		s.opts.Unresolved(queue, err)
	}
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

// Run polls until ctx ends, then waits for launches in flight and their log lines.
func (s *Scheduler) Run(ctx context.Context) error {
	defer s.opts.Ops.Flush()
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
		case <-time.After(s.opts.Config().File.PollInterval()):
		}
	}
}

// cycle asks once which admissible queues hold tasks (one queues.get_all whatever the number of
// queues), then pulls in priority order while admission allows, up to MaxParallel pops and
// launches at once: against a server 20 ms away, serial pops alone would cap launches at 50/s.
// Each pop holds its place in the admission tracker before it is sent, so pops in flight never
// take more than the limits allow; the tasks they will return are read ahead of them
// (readahead.go). The cycle returns once its pops have answered; their launches go on. The
// pending queue is not read: what waits there is either ours (and has an object the monitor
// watches) or another glue's.
func (s *Scheduler) cycle(ctx context.Context) (bool, error) {
	order, qerr := s.QueueIDs(ctx)
	if qerr != nil {
		s.opts.Logger.Warn("some queues are not served", "err", qerr)
	}
	snap := s.opts.Config()
	var ask []string
	for _, id := range order {
		limit := s.limit(snap, id)
		metrics.SetQueueLimit(s.queueName(id), limit)
		if limit == "" {
			ask = append(ask, id)
		}
	}
	if len(order) == 0 {
		return false, nil
	}
	// Every served queue, admitted or not: the depth of a full queue is what an operator needs,
	// and it is the same one call.
	queues, err := s.opts.Client.QueuesGetAll(ctx, clearml.QueuesGetAllRequest{
		ID: order, OnlyFields: []string{"id", "entries"}, SearchHidden: true, MaxTaskEntries: maxListed,
	})
	if err != nil {
		return false, err
	}
	ahead := s.readAhead(ctx, queues)
	waiting, more := map[string]int{}, map[string]bool{}
	for _, q := range queues {
		var oldest time.Time // of the entries listed: the oldest is near the front
		for _, e := range q.Entries {
			if oldest.IsZero() || e.Added.Before(oldest) {
				oldest = e.Added.Time
			}
		}
		metrics.SetQueueDepth(s.queueName(q.ID), s.depth(ctx, q.ID, len(q.Entries)), oldest)
		if slices.Contains(ask, q.ID) {
			waiting[q.ID], more[q.ID] = len(q.Entries), len(q.Entries) >= maxListed
		}
	}
	var pops sync.WaitGroup
	var mu sync.Mutex // guards drained, written by the pops
	drained := map[string]bool{}
	var got atomic.Bool
	for ctx.Err() == nil {
		mu.Lock()
		id := s.next(snap, ask, waiting, more, drained)
		mu.Unlock()
		if id == "" {
			break
		}
		waiting[id]--
		p := s.hold(snap, id)
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			s.opts.Tracker.Release(p.key)
			continue
		}
		pops.Add(1)
		ahead.popping(id)
		s.wg.Go(func() {
			release := sync.OnceFunc(func() { <-s.sem })
			defer release()
			entry := s.pop(ctx, p)
			if entry == nil {
				mu.Lock()
				drained[id] = true
				mu.Unlock()
			} else {
				got.Store(true)
			}
			pops.Done()
			if entry == nil {
				return
			}
			// A launch finishes even when shutdown starts, so the task ends in a Job or a queue.
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.CreateRetry+launchSlack)
			defer cancel()
			pulled := time.Now()
			s.launch(lctx, snap, id, entry.Task, ahead.claim(lctx, *entry), p.slot, pulled, release)
		})
	}
	pops.Wait()
	return got.Load(), nil
}

// place is what a pop holds in the admission tracker before it is sent.
type place struct {
	key, queueID string
	slot         int
}

// hold reserves one task's place in queueID under a key of the pop's own.
func (s *Scheduler) hold(snap *Snapshot, queueID string) place {
	p := place{key: fmt.Sprintf("pop/%d", s.pops.Add(1)), queueID: queueID}
	if snap.File.Sessions.PortModeEnabled {
		p.slot = s.opts.Tracker.FreeSlot(snap.File.Sessions.MaxServices)
	}
	// What the template says; a value rendered per task is known once the object is built.
	_, need := snap.Builder.MonitoredAmounts(s.queueName(queueID))
	s.opts.Tracker.Reserve(p.key, queueID, need.Quantity, p.slot)
	return p
}

// pop takes the next entry of the place's queue and moves the place to its task; nil when the
// queue had none left (or the call failed), the place released.
func (s *Scheduler) pop(ctx context.Context, p place) *clearml.QueueEntry {
	// A pop must be seen through: a shutdown cancelling the call after the server popped
	// would leave the task in no queue, so the call itself is not cancelled.
	popCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), popTimeout)
	next, err := s.opts.Client.QueuesGetNextTask(popCtx, p.queueID)
	cancel()
	if err != nil || next == nil {
		s.opts.Tracker.Release(p.key)
		if err != nil {
			s.opts.Logger.Warn("could not pull from queue", "queue", s.queueName(p.queueID), "err", err)
		}
		return nil
	}
	metrics.TasksPulled.WithLabelValues(s.queueName(p.queueID)).Inc()
	s.opts.Tracker.Rename(p.key, next.Entry.Task)
	return &next.Entry
}

// next returns the first queue in priority order that holds tasks and is admitted now; none
// when that queue holds more than the cycle listed and its listed entries are all popped.
func (s *Scheduler) next(snap *Snapshot, order []string, waiting map[string]int, more, drained map[string]bool) string {
	for _, id := range order {
		if drained[id] || !s.admit(snap, id) {
			continue
		}
		if waiting[id] > 0 {
			return id
		}
		if more[id] {
			return "" // popped as far as listed, and more wait: list again before a lower queue
		}
	}
	return ""
}

// admit says whether a queue may be polled: its maxPods, the global maxPods and the monitored
// resources all leave room for one more task. Checked before pulling, so no task is pulled only
// to be pushed back.
func (s *Scheduler) admit(snap *Snapshot, queueID string) bool { return s.limit(snap, queueID) == "" }

// limit returns the limit that keeps queueID from taking one more task (a metrics.Limit* value),
// "" when it may.
func (s *Scheduler) limit(snap *Snapshot, queueID string) string {
	f := snap.File
	q, _ := f.QueueConfig(s.queueName(queueID))
	t := s.opts.Tracker
	if q.QueueSettings.MaxPods > 0 && t.Live(queueID) >= q.QueueSettings.MaxPods {
		return metrics.LimitQueueMaxPods
	}
	if f.MaxPods > 0 && t.Total() >= f.MaxPods {
		return metrics.LimitMaxPods
	}
	if f.Sessions.PortModeEnabled && t.FreeSlot(f.Sessions.MaxServices) == 0 {
		return metrics.LimitSessionService // every session Service is taken
	}
	if m := f.MonitoredResources; m.Limited() {
		need, _ := snap.Builder.MonitoredAmounts(s.queueName(queueID))
		if need.PerTask && t.Unfitted(queueID) {
			return metrics.LimitMaxResources // one task at a time until its rendered need is known (launch: Fit)
		}
		if !t.Admits(queueID, need.Quantity, m.MaxResources) {
			return metrics.LimitMaxResources
		}
	}
	return ""
}

// launch runs one pulled task (task is the task as read ahead, nil to read it). The object is
// created first: it is the glue's own record that the task is its (in its namespace, with its
// agent label and the queue it was pulled from), and only then is the task pushed to the shared
// pending queue. A template error fails the task; a transient failure puts it back at the front
// of its queue.
func (s *Scheduler) launch(ctx context.Context, snap *Snapshot, queueID, taskID string, task map[string]any, slot int, pulledAt time.Time, release func()) {
	name := s.queueName(queueID)
	log := s.opts.Logger.With("task", taskID, "queue", name)
	var err error
	if task == nil {
		task, err = s.opts.Ops.Task(ctx, taskID)
	}
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
	if s.opts.Foreign != nil {
		if where, ok := s.opts.Foreign(ctx, taskID); ok {
			// ClearML's Python glue runs this task already: its pod's agent takes it from here.
			log.Warn("task has an object of another glue; left to it", "object", where)
			s.opts.Ops.Log(ctx, taskID, "warning", "k8s glue "+s.opts.Ops.WorkerID+": not launched, "+where+" runs this task already")
			s.opts.Tracker.Release(taskID)
			return
		}
	}
	in := podtemplate.Input{Task: task, QueueID: queueID, QueueName: name, PodNumber: slot}
	if snap.File.UseOwnerToken {
		in.OwnerTokenSecret = podtemplate.OwnerTokenSecretName(taskID, ownerTokenSuffix())
	}
	if err := s.lookUp(ctx, snap, name, task, &in); err != nil {
		log.Warn("could not read what the queue's templates need; task goes back to the front of its queue", "err", err)
		s.giveBack(ctx, taskID, queueID, "could not read project or user")
		return
	}
	obj, err := snap.Builder.Build(name, in)
	if err != nil {
		s.failLaunch(ctx, taskID, "invalid pod template: "+err.Error())
		return
	}
	// Admission of what the object says, values rendered per task included, before it exists.
	need, hold, err := snap.Builder.ObjectAmounts(obj)
	if err != nil {
		s.failLaunch(ctx, taskID, fmt.Sprintf("queue %q: %v", name, err))
		return
	}
	m := snap.File.MonitoredResources
	if !s.opts.Tracker.Fit(taskID, queueID, need, hold, m.MaxResources, m.Limited()) {
		log.Info("task does not fit in monitoredResources.maxResources; it goes back to the front of its queue",
			"need", need.String(), "max", m.MaxResources.String())
		s.giveBack(ctx, taskID, queueID, "monitored resources in use")
		return
	}
	var token clearml.OwnerToken
	if snap.File.UseOwnerToken {
		var ok bool
		if token, ok = s.ownerToken(ctx, log, task, taskID, queueID); !ok {
			return
		}
	}
	// The push below writes its own status message: a pending reason the monitor reports before
	// it is done is written again after it (taskops.HoldReports).
	reports := s.opts.Ops.HoldReports(taskID)
	defer reports(ctx, false)
	if err := s.create(ctx, obj); err != nil {
		if transient(err) {
			log.Warn("kubernetes API unavailable; task goes back to the front of its queue", "err", err)
			s.giveBack(ctx, taskID, queueID, "kubernetes API unavailable")
			return
		}
		s.failLaunch(ctx, taskID, fmt.Sprintf("%s %s refused by Kubernetes: %v", kindOf(obj), obj.GetName(), err))
		return
	}
	if snap.File.UseOwnerToken && !s.storeOwnerToken(ctx, log, obj, in.OwnerTokenSecret, token, taskID) {
		return
	}
	// The object exists: the ClearML writes that follow no longer hold a launch slot, so the
	// next pop goes out now and launches run at the pace of the creates. They hold a place of
	// their own, so a slow server holds launches back rather than piling writes up.
	s.finishing <- struct{}{}
	defer func() { <-s.finishing }()
	release()
	// The push and the properties do not depend on each other: one round trip, not two.
	var push sync.WaitGroup
	push.Go(func() {
		if err := s.opts.Ops.PushPending(ctx, taskID, "k8s glue "+s.opts.Ops.WorkerID+": from queue "+name); err != nil {
			// The object exists, so the task is not lost: its pod's agent dequeues it from where it
			// is. Refused (400/110) means that agent was first.
			if !clearml.IsSubcode(err, 400, 110) {
				log.Warn("could not push task to the pending queue; its pod runs it anyway", "err", err)
			}
		}
	})
	s.setProperties(ctx, snap, taskID, name, slot, log)
	push.Wait()
	reports(ctx, true)
	s.recordImage(ctx, task, obj, log)
	metrics.TasksLaunched.WithLabelValues(name).Inc()
	metrics.LaunchSeconds.Observe(time.Since(pulledAt).Seconds())
	// The task log line is sent off the launch path (one events.add_batch for the lines of many
	// launches). No Kubernetes Event: a Normal Event per launch cost the controller 7 % of its CPU
	// in a burst and the API server one create more per Job (see docs/benchmarks.md); the Job's
	// own controller records SuccessfulCreate, and Warning Events stay.
	s.opts.Ops.LogLater(taskID, "info", fmt.Sprintf(clearml.PulledLogFormat+"; %s %s created",
		taskID, name, s.opts.Ops.WorkerID, kindOf(obj), obj.GetName()))
	log.Info("launched", "object", obj.GetName())
}

// create creates the object, retrying while the API server is unreachable. A task pulled from
// a queue has no object of this glue (Recover never returns a task that has one), so an object of
// the same name is an earlier run of a task that was reset and enqueued again: once it finished
// (at once, usually) it is deleted and the task runs again.
func (s *Scheduler) create(ctx context.Context, obj podtemplate.Object) error {
	op := func() (struct{}, error) {
		err := s.createOnce(ctx, obj)
		if apierrors.IsAlreadyExists(err) {
			err = s.removeFinished(ctx, obj)
		}
		if err == nil {
			return struct{}{}, nil
		}
		if errors.Is(err, errEarlierRun) {
			return struct{}{}, err
		}
		metrics.KubernetesErrors.WithLabelValues("create").Inc()
		if !transient(err) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}
	_, err := backoff.Retry(ctx, op, backoff.WithMaxElapsedTime(s.opts.CreateRetry),
		backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: createRetryInitial, RandomizationFactor: 0.3, Multiplier: 2, MaxInterval: createRetryMax}))
	return err
}

// errEarlierRun retries a create whose name is held by an earlier run of the task: one still
// finishing, or a finished one being deleted. It counts as transient, so a run that does not
// finish within CreateRetry sends the task back to the front of its queue.
var errEarlierRun = errors.New("an earlier run's object of the task is still there")

func (s *Scheduler) createOnce(ctx context.Context, obj podtemplate.Object) error {
	uid, err := createObject(ctx, s.opts.Clientset, obj)
	if err == nil {
		obj.SetUID(uid) // an owner token Secret's ownerReference names it
	}
	return err
}

// removeFinished deletes the existing object of obj's name if it finished, and returns
// errEarlierRun so the create is tried again (nil when the object is gone already).
func (s *Scheduler) removeFinished(ctx context.Context, obj podtemplate.Object) error {
	bg := metav1.DeletePropagationBackground
	var uid types.UID
	var finished bool
	var err error
	switch o := obj.(type) {
	case *batchv1.Job:
		var cur *batchv1.Job
		if cur, err = s.opts.Clientset.BatchV1().Jobs(o.Namespace).Get(ctx, o.Name, metav1.GetOptions{}); err == nil {
			uid, finished = cur.UID, podtemplate.JobEnd(cur) != "" || (cur.Status.Active == 0 && cur.Status.Succeeded+cur.Status.Failed > 0)
			if finished {
				err = s.opts.Clientset.BatchV1().Jobs(o.Namespace).Delete(ctx, o.Name, metav1.DeleteOptions{PropagationPolicy: &bg, Preconditions: &metav1.Preconditions{UID: &uid}})
			}
		}
	case *corev1.Pod:
		var cur *corev1.Pod
		if cur, err = s.opts.Clientset.CoreV1().Pods(o.Namespace).Get(ctx, o.Name, metav1.GetOptions{}); err == nil {
			uid, finished = cur.UID, cur.Status.Phase == corev1.PodSucceeded || cur.Status.Phase == corev1.PodFailed
			if finished {
				err = s.opts.Clientset.CoreV1().Pods(o.Namespace).Delete(ctx, o.Name, metav1.DeleteOptions{PropagationPolicy: &bg, Preconditions: &metav1.Preconditions{UID: &uid}})
			}
		}
	default:
		return fmt.Errorf("unexpected object %T", obj)
	}
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return err
	}
	return errEarlierRun
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

// failLaunch fails a task the glue cannot run. It was popped and never pushed to the pending
// queue, so it is in no queue.
func (s *Scheduler) failLaunch(ctx context.Context, taskID, reason string) {
	defer s.opts.Tracker.Release(taskID)
	if err := s.opts.Ops.Fail(ctx, taskID, reason, "K8S glue could not launch the task: "+reason); err != nil {
		s.opts.Logger.Error("could not fail task", "task", taskID, "err", err)
	}
}

func kindOf(obj podtemplate.Object) string {
	if _, ok := obj.(*batchv1.Job); ok {
		return "Job"
	}
	return "Pod"
}
