// Package taskops holds the ClearML task operations the scheduler and the monitor share: log to
// a task, fail it with a reason, push it to the hidden pending queue, put it back into its queue.
package taskops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/clearml-glue/clearml-glue/internal/batch"
	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/metrics"
)

// Batching of the calls many launches make at once (internal/batch): a lone call goes at once,
// calls made while one is in flight share the next. maxBatch keeps a tasks.get_all by id on
// one page (the server's 500); batchTimeout bounds a call that carries other launches' items.
const (
	maxBatch     = 500
	batchTimeout = time.Minute
	// logLinger is how long a task log line written after a launch (LogLater) waits for the lines
	// of other launches: nobody waits on it, and a burst then costs a few events.add_batch.
	logLinger = 250 * time.Millisecond
)

// Ops performs task operations as the glue's worker.
type Ops struct {
	Client   *clearml.Client
	WorkerID string
	Logger   *slog.Logger

	reads *batch.Batcher[string, map[string]any]
	logs  *batch.Batcher[clearml.Event, struct{}]
	later *batch.Batcher[clearml.Event, struct{}] // LogLater's, lingering

	mu          sync.Mutex
	pendingName string
	pendingID   string
	pushes      map[string]*batch.Batcher[string, error] // by status message (the origin queue)

	heldMu sync.Mutex        // not mu: PendingQueueID holds mu across calls
	held   map[string]string // tasks whose reports are held (HoldReports) -> the last one made
}

// New returns Ops for the given pending queue name.
func New(c *clearml.Client, workerID, pendingQueue string, logger *slog.Logger) *Ops {
	o := &Ops{Client: c, WorkerID: workerID, Logger: logger, pendingName: pendingQueue, pushes: map[string]*batch.Batcher[string, error]{},
		held: map[string]string{}}
	o.reads = batch.New(maxBatch, batchTimeout, o.ReadTasks)
	o.logs = batch.New(maxBatch, batchTimeout, o.writeLogs)
	o.later = batch.New(maxBatch, batchTimeout, o.writeLogs).Lingering(logLinger)
	return o
}

// Log writes one line to the task's console log, in one events.add_batch with the lines other
// launches write meanwhile. A failure is logged, never returned, because a lost log line must
// not stop a launch or a failure report.
func (o *Ops) Log(ctx context.Context, taskID, level, msg string) {
	_, _ = o.logs.Do(ctx, o.logEvent(taskID, level, msg))
}

// LogLater is Log without waiting for the call: for lines written after the launch is done.
func (o *Ops) LogLater(taskID, level, msg string) { o.later.Go(o.logEvent(taskID, level, msg)) }

// Flush waits until every line handed to LogLater is sent.
func (o *Ops) Flush() { o.later.Wait() }

func (o *Ops) logEvent(taskID, level, msg string) clearml.Event {
	ev := clearml.LogEvent(taskID, level, msg)
	ev.Worker = o.WorkerID
	return ev
}

func (o *Ops) writeLogs(ctx context.Context, events []clearml.Event) ([]struct{}, error) {
	if _, err := o.Client.EventsAddBatch(ctx, events); err != nil {
		metrics.ClearMLErrors.WithLabelValues("events.add_batch").Inc()
		o.Logger.Warn("could not write task log lines", "lines", len(events), "first_task", events[0].Task, "err", err)
		return nil, err
	}
	return nil, nil
}

// Task returns the whole task as a JSON map (nil when it no longer exists), so templates can read
// any field with ${CLEARML_TASK.<path>}. Launches that read at the same time share one
// tasks.get_all.
func (o *Ops) Task(ctx context.Context, taskID string) (map[string]any, error) {
	return o.reads.Do(ctx, taskID)
}

// ReadTasks reads whole tasks in one tasks.get_all: one result per id, in order, nil for a task
// that does not exist. At most maxBatch ids (the server's page).
func (o *Ops) ReadTasks(ctx context.Context, ids []string) ([]map[string]any, error) {
	var out struct {
		Tasks []map[string]any `json:"tasks"`
	}
	// All ids fit on the first page (maxBatch), so one call answers them.
	if err := o.Client.Call(ctx, "tasks.get_all", clearml.TasksGetAllRequest{ID: ids}, &out); err != nil {
		return nil, err
	}
	byID := make(map[string]map[string]any, len(out.Tasks))
	for _, t := range out.Tasks {
		if id, ok := t["id"].(string); ok {
			byID[id] = t
		}
	}
	res := make([]map[string]any, len(ids))
	for i, id := range ids {
		res[i] = byID[id]
	}
	return res, nil
}

// Fail logs lines to the task, then marks it failed with "K8S glue error: <reason>" so the UI
// and the Python glue's cleanup logic read it as the glue's verdict.
func (o *Ops) Fail(ctx context.Context, taskID, reason string, lines ...string) error {
	for _, l := range lines {
		o.Log(ctx, taskID, "error", l)
	}
	_, err := o.Client.TasksFailed(ctx, clearml.TaskStatusRequest{
		Task: taskID, Force: true, StatusReason: clearml.GlueErrorReasonPrefix + reason, StatusMessage: clearml.ChangedByGlueMessage,
	})
	if err != nil {
		metrics.ClearMLErrors.WithLabelValues("tasks.failed").Inc()
		return fmt.Errorf("fail task %s: %w", taskID, err)
	}
	metrics.TasksFailed.WithLabelValues(reasonLabel(reason)).Inc()
	o.Logger.Info("task failed", "task", taskID, "reason", reason)
	// tasks.failed leaves queue entries alone: a task failed while it waited in the pending
	// queue would stay listed there. Not there (703) is the usual answer.
	if pending, err := o.PendingQueueID(ctx); err == nil {
		if _, err := o.Client.QueuesRemoveTask(ctx, clearml.QueuesRemoveTaskRequest{Queue: pending, Task: taskID}); err != nil && !clearml.IsSubcode(err, 400, 703) {
			o.Logger.Warn("failed task not removed from the pending queue", "task", taskID, "err", err)
		}
	}
	return nil
}

var labelRE = regexp.MustCompile(`^[A-Za-z]+`)

// reasonLabel keeps metric cardinality bounded: the first word of the reason.
func reasonLabel(reason string) string {
	if m := labelRE.FindString(reason); m != "" {
		return m
	}
	return "other"
}

// QueuedInPending stands, in TaskStatus.In, for "queued in the glue's pending queue": a task
// its pod's agent never dequeued. A task queued elsewhere was enqueued again by a user.
const QueuedInPending = "queued-in-pending"

// TaskStatus is what a direct lookup tells of a task.
type TaskStatus struct {
	// Exists is false only when the server says the task id is invalid (400/101).
	Exists    bool
	Status    string
	InPending bool
}

// In says whether the task exists and its status is one of statuses (QueuedInPending included).
func (s TaskStatus) In(statuses []string) bool {
	if !s.Exists {
		return false
	}
	for _, st := range statuses {
		if st == s.Status || (st == QueuedInPending && s.InPending) {
			return true
		}
	}
	return false
}

// Status looks one task up. A task absent from the list answer is confirmed with
// tasks.get_by_id: only the server's invalid-task-id error says it does not exist.
func (o *Ops) Status(ctx context.Context, taskID string) (TaskStatus, error) {
	tasks, err := o.Client.TasksGetAll(ctx, clearml.TasksGetAllRequest{
		ID: []string{taskID}, OnlyFields: []string{"id", "status", "execution.queue"},
	})
	if err != nil {
		return TaskStatus{}, err
	}
	var t clearml.Task
	if len(tasks) > 0 {
		t = tasks[0]
	} else {
		full, err := o.Client.TasksGetByID(ctx, taskID)
		if clearml.IsSubcode(err, 400, 101) {
			return TaskStatus{}, nil
		}
		if err != nil {
			return TaskStatus{}, err
		}
		t = *full
	}
	s := TaskStatus{Exists: true, Status: t.Status}
	if t.Status == clearml.StatusQueued {
		pending, err := o.PendingQueueID(ctx)
		if err != nil {
			return TaskStatus{}, err
		}
		s.InPending = t.Execution.Queue == pending
	}
	return s, nil
}

// WithStatus returns those of ids whose task has the status (one paged read for all).
func (o *Ops) WithStatus(ctx context.Context, ids []string, status string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil // no id filter would list every task of the server
	}
	tasks, err := o.Client.TasksGetAll(ctx, clearml.TasksGetAllRequest{ID: ids, Status: []string{status}, OnlyFields: []string{"id"}})
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(tasks))
	for _, t := range tasks {
		out = append(out, t.ID)
	}
	return out, nil
}

// Ended sorts ids into tasks that finished (stopped, failed, completed, published, closed) and
// tasks that no longer exist. A task missing from the list answer is looked up directly, and
// counts as gone only when the server says its id is invalid.
func (o *Ops) Ended(ctx context.Context, ids []string) (ended, gone []string, err error) {
	if len(ids) == 0 {
		return nil, nil, nil // no id filter would list every task of the server
	}
	tasks, err := o.Client.TasksGetAll(ctx, clearml.TasksGetAllRequest{ID: ids, OnlyFields: []string{"id", "status"}})
	if err != nil {
		return nil, nil, err
	}
	status := make(map[string]string, len(tasks))
	for _, t := range tasks {
		status[t.ID] = t.Status
	}
	for _, id := range ids {
		s, listed := status[id]
		if !listed {
			ts, err := o.Status(ctx, id)
			if err != nil {
				return nil, nil, err
			}
			if !ts.Exists {
				gone = append(gone, id)
				continue
			}
			s = ts.Status
		}
		switch s {
		case clearml.StatusStopped, clearml.StatusFailed, clearml.StatusCompleted, clearml.StatusPublished, clearml.StatusClosed:
			ended = append(ended, id)
		}
	}
	return ended, gone, nil
}

// SetProperties writes user properties (the section "properties") of the task.
func (o *Ops) SetProperties(ctx context.Context, taskID string, props []clearml.HyperParam) error {
	if _, err := o.Client.TasksEditHyperParams(ctx, clearml.TasksEditHyperParamsRequest{Task: taskID, Hyperparams: props}); err != nil {
		metrics.ClearMLErrors.WithLabelValues("tasks.edit_hyper_params").Inc()
		return fmt.Errorf("set properties of task %s: %w", taskID, err)
	}
	return nil
}

// SetContainer replaces the task's container section (image, arguments, setup script).
func (o *Ops) SetContainer(ctx context.Context, taskID string, c *clearml.Container) error {
	if _, err := o.Client.TasksEdit(ctx, clearml.TasksEditRequest{Task: taskID, Force: true, Container: c}); err != nil {
		metrics.ClearMLErrors.WithLabelValues("tasks.edit").Inc()
		return fmt.Errorf("set container of task %s: %w", taskID, err)
	}
	return nil
}

// ReportPending shows why the task's pod waits as its status message.
func (o *Ops) ReportPending(ctx context.Context, taskID, text string) error {
	o.heldMu.Lock()
	if _, ok := o.held[taskID]; ok {
		o.held[taskID] = text
	}
	o.heldMu.Unlock()
	if _, err := o.Client.TasksUpdate(ctx, clearml.TasksUpdateRequest{Task: taskID, StatusMessage: clearml.GlueStatusMessagePrefix + text}); err != nil {
		metrics.ClearMLErrors.WithLabelValues("tasks.update").Inc()
		return fmt.Errorf("report pending status of task %s: %w", taskID, err)
	}
	return nil
}

// HoldReports is called before a launch creates the task's object. The pending push that follows
// writes its own status message, which would hide a pending reason reported in between (the
// monitor can see the pod waiting before the create's answer is back). The returned release,
// called with again once the push is done, writes the last such report again; called without
// (or a second time), it only forgets the task.
func (o *Ops) HoldReports(taskID string) (release func(ctx context.Context, again bool)) {
	o.heldMu.Lock()
	o.held[taskID] = ""
	o.heldMu.Unlock()
	return func(ctx context.Context, again bool) {
		o.heldMu.Lock()
		text, ok := o.held[taskID]
		delete(o.held, taskID)
		o.heldMu.Unlock()
		if !ok || !again || text == "" {
			return
		}
		if err := o.ReportPending(ctx, taskID, text); err != nil {
			o.Logger.Warn("could not report the pending reason again after the push", "task", taskID, "err", err)
		}
	}
}

// PendingQueueID resolves the hidden pending queue, creating it with the k8s-glue system tag
// when missing (so the UI hides it, as with the Python glue).
func (o *Ops) PendingQueueID(ctx context.Context) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pendingID != "" {
		return o.pendingID, nil
	}
	id, err := ResolveQueue(ctx, o.Client, o.pendingName, true, []string{clearml.PendingQueueTag})
	if err != nil {
		return "", fmt.Errorf("pending queue %q: %w", o.pendingName, err)
	}
	o.pendingID = id
	return id, nil
}

func (o *Ops) forgetPendingQueue(id string) {
	o.mu.Lock()
	if o.pendingID == id {
		o.pendingID = ""
	}
	o.mu.Unlock()
}

// PushPending pushes a task the glue just launched to the end of the pending queue, in one
// tasks.enqueue_many with the other launches of the same origin (message) pushed meanwhile. A
// failed batch call, or a task refused because the pending queue vanished, is pushed alone with
// EnqueuePending, which recreates the queue.
func (o *Ops) PushPending(ctx context.Context, taskID, message string) error {
	o.mu.Lock()
	b, ok := o.pushes[message]
	if !ok {
		b = batch.New(maxBatch, batchTimeout, func(ctx context.Context, ids []string) ([]error, error) {
			return o.pushMany(ctx, ids, message)
		})
		o.pushes[message] = b
	}
	o.mu.Unlock()
	err, callErr := b.Do(ctx, taskID)
	if callErr != nil || clearml.IsInvalidQueueID(err) {
		return o.EnqueuePending(ctx, taskID, message, false)
	}
	if err != nil {
		metrics.ClearMLErrors.WithLabelValues("tasks.enqueue_many").Inc()
		return fmt.Errorf("push task %s to pending queue: %w", taskID, err)
	}
	return nil
}

func (o *Ops) pushMany(ctx context.Context, ids []string, message string) ([]error, error) {
	pending, err := o.PendingQueueID(ctx)
	if err != nil {
		return nil, err
	}
	failed, err := o.Client.TasksEnqueueMany(ctx, clearml.TasksEnqueueManyRequest{
		IDs: ids, Queue: pending, StatusReason: clearml.PendingQueueReason, StatusMessage: message,
	})
	if err != nil {
		return nil, err
	}
	res := make([]error, len(ids))
	for i, id := range ids {
		if e, ok := failed[id]; ok {
			res[i] = e
		}
	}
	return res, nil
}

// EnqueuePending pushes the task to the end of the pending queue with the Python glue's reason.
// message is kept on the task (the glue writes the origin queue there, so a restart can find
// it). A vanished pending queue (400/701) is recreated and the push retried once.
func (o *Ops) EnqueuePending(ctx context.Context, taskID, message string, force bool) error {
	for attempt := 0; ; attempt++ {
		pending, err := o.PendingQueueID(ctx)
		if err != nil {
			return err
		}
		err = o.Client.TasksEnqueue(ctx, clearml.TasksEnqueueRequest{
			Task: taskID, Queue: pending, StatusReason: clearml.PendingQueueReason, StatusMessage: message,
			Force: force, UpdateExecutionQueue: new(true),
		})
		if err != nil && attempt == 0 && clearml.IsSubcode(err, 400, 701) {
			o.forgetPendingQueue(pending)
			continue
		}
		if err != nil {
			metrics.ClearMLErrors.WithLabelValues("tasks.enqueue").Inc()
			return fmt.Errorf("push task %s to pending queue: %w", taskID, err)
		}
		return nil
	}
}

// RequeueFront puts a task back at the FRONT of its queue, so a task the glue pulled but could
// not launch loses no place. A queued task moves with a same-state enqueue; a task in another
// state is stopped first (the OSS state machine refuses e.g. in_progress -> queued).
func (o *Ops) RequeueFront(ctx context.Context, taskID, queueID, why string) error {
	req := clearml.TasksEnqueueRequest{Task: taskID, Queue: queueID, StatusReason: "k8s glue: " + why}
	err := o.Client.TasksEnqueue(ctx, req)
	if clearml.IsSubcode(err, 400, 110) {
		if _, serr := o.Client.TasksStop(ctx, clearml.TaskStatusRequest{Task: taskID, Force: true}); serr == nil {
			err = o.Client.TasksEnqueue(ctx, req)
		}
	}
	if err != nil && !clearml.IsSubcode(err, 400, 706) {
		metrics.ClearMLErrors.WithLabelValues("requeue").Inc()
		return fmt.Errorf("requeue task %s: %w", taskID, err)
	}
	if _, err := o.Client.QueuesMoveTaskToFront(ctx, queueID, taskID); err != nil {
		// The task is back in its queue, only not first; losing the place beats losing the task.
		o.Logger.Warn("requeued task not moved to the front", "task", taskID, "err", err)
	}
	return nil
}

// ResolveQueue returns the id of the queue named name, creating it (with systemTags) when
// create is set. A name matching several queues is an error, as in the Python glue.
func ResolveQueue(ctx context.Context, c *clearml.Client, name string, create bool, systemTags []string) (string, error) {
	found, err := LookupQueues(ctx, c, []string{name})
	if err != nil {
		return "", err
	}
	return resolveFound(ctx, c, name, found[name], create, systemTags)
}

// resolveFound turns the ids found for name into its one id, creating the queue when none was
// found and create is set.
func resolveFound(ctx context.Context, c *clearml.Client, name string, ids []string, create bool, systemTags []string) (string, error) {
	switch {
	case len(ids) == 1:
		return ids[0], nil
	case len(ids) > 1:
		return "", fmt.Errorf("queue name %q matches %d queues", name, len(ids))
	case !create:
		return "", ErrQueueNotFound
	}
	id, err := c.QueuesCreate(ctx, clearml.QueuesCreateRequest{Name: name, SystemTags: systemTags})
	if clearml.IsSubcode(err, 400, 801) {
		// Created meanwhile by someone else: resolve again.
		return ResolveQueue(ctx, c, name, false, nil)
	}
	return id, err
}

// lookupChunk is how many names one queues.get_all looks up: the pattern stays a few KiB.
const lookupChunk = 250

// LookupQueues returns the ids of the queues of each name (hidden ones included), with one
// queues.get_all per lookupChunk names whatever their number: the name filter is one anchored
// alternation of the literal names. A name with no queue is absent from the map.
func LookupQueues(ctx context.Context, c *clearml.Client, names []string) (map[string][]string, error) {
	found := map[string][]string{}
	for chunk := range slices.Chunk(names, lookupChunk) {
		quoted := make([]string, len(chunk))
		for i, n := range chunk {
			quoted[i] = regexp.QuoteMeta(n)
		}
		queues, err := c.QueuesGetAll(ctx, clearml.QueuesGetAllRequest{
			Name: "^(?:" + strings.Join(quoted, "|") + ")$", OnlyFields: []string{"id", "name"}, SearchHidden: true,
		})
		if err != nil {
			return nil, err
		}
		for _, q := range queues {
			if slices.Contains(chunk, q.Name) && !slices.Contains(found[q.Name], q.ID) {
				found[q.Name] = append(found[q.Name], q.ID)
			}
		}
	}
	return found, nil
}

// ResolveQueues resolves served queue names with one lookup (LookupQueues) that also resolves
// the pending queue when it is not known yet, so a start with any number of queues costs one
// call. Missing queues are created when create is set; errs says, per name, why it has no id.
// err is the lookup's own failure.
func (o *Ops) ResolveQueues(ctx context.Context, names []string, create bool) (ids map[string]string, errs map[string]error, err error) {
	o.mu.Lock()
	pendingKnown := o.pendingID != ""
	o.mu.Unlock()
	look := names
	if !pendingKnown && !slices.Contains(names, o.pendingName) {
		look = append(slices.Clip(names), o.pendingName)
	}
	found, err := LookupQueues(ctx, o.Client, look)
	if err != nil {
		return nil, nil, err
	}
	if !pendingKnown {
		// The same answer tells whether the pending queue exists: it is created now if not.
		if id, err := resolveFound(ctx, o.Client, o.pendingName, found[o.pendingName], true, []string{clearml.PendingQueueTag}); err == nil {
			o.mu.Lock()
			o.pendingID = id
			o.mu.Unlock()
		}
	}
	ids, errs = map[string]string{}, map[string]error{}
	for _, name := range names {
		id, err := resolveFound(ctx, o.Client, name, found[name], create, nil)
		if err != nil {
			errs[name] = err
			continue
		}
		ids[name] = id
	}
	return ids, errs, nil
}

// ErrQueueNotFound says a queue does not exist and was not to be created.
var ErrQueueNotFound = errors.New("queue does not exist (set agentk8sglue.createQueues to create it)")
