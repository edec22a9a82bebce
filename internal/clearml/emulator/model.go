package emulator

import (
	"maps"
	"slices"
	"strings"
	"time"
)

// Task is an emulated task; Server.Task returns copies.
type Task struct {
	ID, Name, Type, Comment             string
	Status, StatusReason, StatusMessage string
	User, Company, Project, Parent      string
	Created, StatusChanged              time.Time
	Started, Completed                  time.Time
	LastUpdate, LastChange              time.Time
	LastChangedBy, LastWorker           string
	LastWorkerReport                    time.Time
	// EnqueueStatus is the status before the last enqueue; hidden from API answers, it
	// drives tasks.dequeue and queues.remove_task(update_task_status).
	EnqueueStatus string
	Execution     map[string]any
	Container     map[string]any
	Runtime       map[string]any
	Script        map[string]any
	Hyperparams   map[string]map[string]HyperParam
	Tags          []string
	SystemTags    []string
	order         int // its place in creation order (Server.taskOrder)
}

// ExecutionQueue is execution.queue: the queue the task was last enqueued to.
func (t Task) ExecutionQueue() string {
	q, _ := t.Execution["queue"].(string)
	return q
}

// HyperParam is one hyperparameter of a task.
type HyperParam struct {
	Section     string `json:"section"`
	Name        string `json:"name"`
	Value       string `json:"value"`
	Type        string `json:"type,omitempty"`
	Description string `json:"description,omitempty"`
}

func (t *Task) clone() Task {
	c := *t
	c.Execution = cloneMap(t.Execution)
	c.Container = cloneMap(t.Container)
	c.Runtime = cloneMap(t.Runtime)
	c.Script = cloneMap(t.Script)
	c.Hyperparams = cloneParams(t.Hyperparams)
	c.Tags = slices.Clone(t.Tags)
	c.SystemTags = slices.Clone(t.SystemTags)
	return c
}

func cloneParams(p map[string]map[string]HyperParam) map[string]map[string]HyperParam {
	if p == nil {
		return nil
	}
	out := make(map[string]map[string]HyperParam, len(p))
	for section, params := range p {
		out[section] = maps.Clone(params)
	}
	return out
}

// cloneMap deep-copies a decoded JSON object.
func cloneMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = cloneValue(v)
	}
	return out
}

func cloneValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return cloneMap(v)
	case []any:
		out := make([]any, len(v))
		for i := range v {
			out[i] = cloneValue(v[i])
		}
		return out
	}
	return v
}

// doc is the task as the API shows it: the fields the server stores for every task with their
// defaults (an empty container, runtime and hyperparams, execution and script defaults, ...),
// and the optional ones only once set. status_reason and status_message appear with the first
// status change; enqueue_status only when projected explicitly.
func (t *Task) doc(v version) map[string]any {
	execution := map[string]any{"test_split": 0, "parameters": map[string]any{}, "model_desc": map[string]any{},
		"model_labels": map[string]any{}, "artifacts": []any{}}
	maps.Copy(execution, cloneMap(t.Execution))
	script := map[string]any{"binary": "python", "repository": "", "entry_point": "", "requirements": map[string]any{}}
	maps.Copy(script, cloneMap(t.Script))
	d := map[string]any{
		"id":             t.ID,
		"name":           t.Name,
		"type":           t.Type,
		"status":         t.Status,
		"user":           t.User,
		"company":        t.Company,
		"tags":           nonNil(t.Tags),
		"system_tags":    nonNil(t.SystemTags),
		"execution":      execution,
		"script":         script,
		"container":      orEmpty(cloneMap(t.Container)),
		"runtime":        orEmpty(cloneMap(t.Runtime)),
		"hyperparams":    map[string]any{},
		"configuration":  map[string]any{},
		"output":         map[string]any{},
		"models":         map[string]any{"input": []any{}, "output": []any{}},
		"last_iteration": 0,
		"last_metrics":   map[string]any{},
		"metric_stats":   map[string]any{},
		"report_assets":  []any{},
	}
	if v.less(version{2, 13}) {
		// Legacy clients read the container as execution.docker_cmd.
		if image, _ := t.Container["image"].(string); image != "" {
			args, _ := t.Container["arguments"].(string)
			execution["docker_cmd"] = strings.TrimSpace(image + " " + args)
		}
	}
	if t.StatusReason != "" || t.StatusMessage != "" || !t.StatusChanged.IsZero() {
		d["status_reason"], d["status_message"] = t.StatusReason, t.StatusMessage
	}
	for key, value := range map[string]string{"project": t.Project, "parent": t.Parent, "comment": t.Comment,
		"last_changed_by": t.LastChangedBy, "last_worker": t.LastWorker, "enqueue_status": t.EnqueueStatus} {
		if value != "" {
			d[key] = value
		}
	}
	for key, value := range map[string]time.Time{"created": t.Created, "status_changed": t.StatusChanged,
		"started": t.Started, "completed": t.Completed, "last_update": t.LastUpdate,
		"last_change": t.LastChange, "last_worker_report": t.LastWorkerReport} {
		if !value.IsZero() {
			d[key] = wireTime(value)
		}
	}
	if len(t.Hyperparams) > 0 {
		hp := d["hyperparams"].(map[string]any)
		for section, params := range t.Hyperparams {
			items := map[string]any{}
			for name, p := range params {
				items[name] = p
			}
			hp[section] = items
		}
	}
	return d
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

// project keeps the dotted only_fields paths of a document, and always its id, the way the
// server projects: a path through a list projects every element, and the objects on a path are
// kept (possibly empty) even when its last field is missing. Without fields it returns the
// document minus the hidden keys.
func project(doc map[string]any, fields []string, hidden ...string) map[string]any {
	if len(fields) == 0 {
		for _, k := range hidden {
			delete(doc, k)
		}
		return doc
	}
	out := map[string]any{"id": doc["id"]}
	for _, f := range slices.Sorted(slices.Values(fields)) {
		copyPath(strings.Split(f, "."), doc, out)
	}
	return out
}

// copyPath copies the value at path from src into dst, creating the objects on the way.
func copyPath(path []string, src, dst map[string]any) {
	for i, part := range path[:len(path)-1] {
		switch next := src[part].(type) {
		case map[string]any:
			child, ok := dst[part].(map[string]any)
			if !ok {
				child = map[string]any{}
				dst[part] = child
			}
			src, dst = next, child
		case []any:
			items, ok := dst[part].([]any)
			if !ok || len(items) != len(next) {
				items = make([]any, len(next))
				for j := range items {
					items[j] = map[string]any{}
				}
				dst[part] = items
			}
			for j, item := range next {
				from, fromOK := item.(map[string]any)
				to, toOK := items[j].(map[string]any)
				if fromOK && toOK {
					copyPath(path[i+1:], from, to)
				}
			}
			return
		default:
			return // a missing field (or a scalar, which the server cannot project either)
		}
	}
	if v, ok := src[path[len(path)-1]]; ok {
		dst[path[len(path)-1]] = v
	}
}

// queue is an emulated queue. Entries[0] is popped next.
type queue struct {
	ID, Name, DisplayName, Company string
	Created, LastUpdate            time.Time
	Tags, SystemTags               []string
	Entries                        []entry
	// queued counts each task's entries: a task not in the queue, the common case when a task is
	// enqueued (the server removes it from every other queue), is answered without a scan.
	queued map[string]int
}

// entry is one queued task.
type entry struct {
	Task  string
	Added time.Time
}

// doc is the queue as the server returns it; maxTaskEntries is the request's max_task_entries,
// which the server applies as a MongoDB $slice projection: n > 0 the first n entries, n < 0 the
// last -n, 0 all of them.
func (q *queue) doc(maxTaskEntries int) map[string]any {
	listed := q.Entries
	switch n := maxTaskEntries; {
	case n > 0 && n < len(listed):
		listed = listed[:n]
	case n < 0 && -n < len(listed):
		listed = listed[len(listed)+n:]
	}
	entries := make([]any, len(listed))
	for i, e := range listed {
		entries[i] = map[string]any{"task": e.Task, "added": wireTime(e.Added)}
	}
	d := map[string]any{
		"id":          q.ID,
		"name":        q.Name,
		"company":     q.Company,
		"created":     wireTime(q.Created),
		"last_update": wireTime(q.LastUpdate),
		"tags":        nonNil(q.Tags),
		"system_tags": nonNil(q.SystemTags),
		"entries":     entries,
		"metadata":    map[string]any{},
	}
	if q.DisplayName != "" {
		d["display_name"] = q.DisplayName
	}
	return d
}

func (q *queue) position(taskID string) int {
	if q.queued[taskID] == 0 {
		return -1
	}
	return slices.IndexFunc(q.Entries, func(e entry) bool { return e.Task == taskID })
}

// push appends an entry.
func (q *queue) push(e entry) {
	if q.queued == nil {
		q.queued = map[string]int{}
	}
	q.Entries = append(q.Entries, e)
	q.queued[e.Task]++
}

// popFront removes and returns the first entry; the queue must not be empty.
func (q *queue) popFront() entry {
	e := q.Entries[0]
	q.Entries = q.Entries[1:]
	if q.queued[e.Task]--; q.queued[e.Task] <= 0 {
		delete(q.queued, e.Task)
	}
	return e
}

// removeTask drops every entry of the task and says how many there were.
func (q *queue) removeTask(taskID string) int {
	if q.queued[taskID] == 0 {
		return 0
	}
	before := len(q.Entries)
	q.Entries = slices.DeleteFunc(q.Entries, func(e entry) bool { return e.Task == taskID })
	delete(q.queued, taskID)
	return before - len(q.Entries)
}

// Worker is an emulated worker (the server keeps them in Redis with an expiry).
type Worker struct {
	ID, User, Company, IP string
	Queues                []string
	Queue, Task           string
	Tags                  []string
	RegisterTime          time.Time
	LastActivity          time.Time
	Timeout               time.Duration
}

// logEvent is a stored events.add_batch item.
type logEvent struct {
	Type, Task, Worker, Level, Msg string
	Timestamp                      int64
}

// Task statuses.
const (
	statusCreated    = "created"
	statusQueued     = "queued"
	statusInProgress = "in_progress"
	statusStopped    = "stopped"
	statusPublishing = "publishing"
	statusPublished  = "published"
	statusClosed     = "closed"
	statusFailed     = "failed"
	statusCompleted  = "completed"
	statusUnknown    = "unknown"
)

// transitions is the server's non-forced status state machine (docs/clearml-protocol.md,
// "Task statuses").
// Staying in the same status is always allowed.
var transitions = map[string][]string{
	statusCreated:    {statusQueued, statusInProgress},
	statusQueued:     {statusCreated, statusInProgress, statusStopped},
	statusInProgress: {statusStopped, statusFailed, statusCreated, statusCompleted},
	statusStopped: {statusClosed, statusCreated, statusFailed, statusQueued, statusInProgress,
		statusPublished, statusPublishing, statusCompleted},
	statusClosed:     {statusCreated, statusFailed, statusPublished, statusPublishing, statusStopped},
	statusFailed:     {statusCreated, statusStopped, statusPublished, statusQueued},
	statusPublishing: {statusPublished},
	statusPublished:  {},
	statusCompleted:  {statusPublished, statusInProgress, statusCreated},
}

func validStatus(s string) bool {
	_, ok := transitions[s]
	return ok || s == statusUnknown
}

// statusChange is one ChangeStatusRequest of the server.
type statusChange struct {
	to, reason, message string
	force               bool
}

// changeStatus validates (unless forced) and applies a status change, returning the
// "fields" of the answer. Callers hold s.mu, so the server's 400/121 race cannot happen.
func (s *Server) changeStatus(c *call, t *Task, ch statusChange) (map[string]any, *apiError) {
	if !ch.force && ch.to != t.Status && !slices.Contains(transitions[t.Status], ch.to) {
		return nil, errInvalidTaskStatus("Invalid status change", "current_status", t.Status, "new_status", ch.to)
	}
	t.Status, t.StatusReason, t.StatusMessage = ch.to, ch.reason, ch.message
	t.StatusChanged, t.LastUpdate, t.LastChange = c.now, c.now, c.now
	t.LastChangedBy = c.identity.User
	if ch.to == statusQueued {
		t.SystemTags = slices.DeleteFunc(t.SystemTags, func(tag string) bool { return tag == "development" })
	}
	return map[string]any{
		"status":          t.Status,
		"status_reason":   t.StatusReason,
		"status_message":  t.StatusMessage,
		"status_changed":  wireTime(c.now),
		"last_update":     wireTime(c.now),
		"last_change":     wireTime(c.now),
		"last_changed_by": t.LastChangedBy,
	}, nil
}

func (t *Task) setExecutionQueue(queueID string) {
	if t.Execution == nil {
		t.Execution = map[string]any{}
	}
	t.Execution["queue"] = queueID
}
