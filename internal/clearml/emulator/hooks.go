package emulator

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Fault makes the next Count calls of Endpoint ("" = any endpoint) slow, failed or dropped.
type Fault struct {
	Endpoint string
	// Count is how many calls the fault affects; 0 means one.
	Count int
	// Status answers with this HTTP status (an envelope with result_code Status, subcode 0).
	// With Status 0 and no DropConnection, the call is only delayed by Latency.
	Status  int
	Latency time.Duration
	// DropConnection closes the connection without an answer (after Latency).
	DropConnection bool
}

// InjectFault queues a fault; faults apply in the order they were injected.
func (s *Server) InjectFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f.Count = max(f.Count, 1)
	s.faults = append(s.faults, &f)
}

// ClearFaults drops pending faults and ends an outage.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
	s.outageUntil = time.Time{}
}

// Outage makes every call (login included) answer status (default 503) for d of wall-clock time.
func (s *Server) Outage(d time.Duration, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outageUntil = time.Now().Add(d)
	s.outageStatus = status
	if status == 0 {
		s.outageStatus = http.StatusServiceUnavailable
	}
}

// injectFault counts the call and applies an outage or the first matching fault. It reports
// whether the call was answered (or dropped) here.
func (s *Server) injectFault(w http.ResponseWriter, r *http.Request, name string) bool {
	s.mu.Lock()
	s.calls[name]++
	var fault Fault
	if time.Now().Before(s.outageUntil) {
		fault.Status = s.outageStatus
	} else if i := slices.IndexFunc(s.faults, func(f *Fault) bool { return f.Endpoint == "" || f.Endpoint == name }); i >= 0 {
		fault = *s.faults[i]
		if s.faults[i].Count--; s.faults[i].Count == 0 {
			s.faults = slices.Delete(s.faults, i, i+1)
		}
	}
	s.mu.Unlock()
	if fault.Latency > 0 {
		select {
		case <-time.After(fault.Latency):
		case <-r.Context().Done():
			return true
		}
	}
	if fault.DropConnection {
		panic(http.ErrAbortHandler) // net/http closes the connection without logging
	}
	if fault.Status == 0 {
		return false
	}
	c := &call{endpoint: name, version: maxVersion}
	s.writeEnvelope(w, r, c, nil, newError(fault.Status, 0, http.StatusText(fault.Status)+" (emulator fault)", ""))
	return true
}

// Calls is how many requests reached endpoint ("queues.get_next_task"), faults included.
func (s *Server) Calls(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[endpoint]
}

// ResetCalls zeroes the call counters.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.calls)
}

// SetTokenLifetime changes the lifetime of tokens issued from now on.
func (s *Server) SetTokenLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenLifetime = d
}

// RevokeTokens makes every token issued so far invalid (401/30), like a server-side logout.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range s.sessions {
		s.sessions[id] = true
	}
}

// hookCall is the context of a test hook: the emulator's user, acting now.
func (s *Server) hookCall() *call {
	return &call{endpoint: "hook", version: maxVersion, identity: s.userIdentity(), now: s.opts.Now()}
}

func (e *apiError) Error() string { return fmt.Sprintf("%d/%d: %s", e.code, e.subcode, e.msg) }

// asError avoids returning a typed nil *apiError as a non-nil error.
func asError(e *apiError) error {
	if e == nil {
		return nil
	}
	return e
}

// TaskSpec describes a task created by a user (CreateTask).
type TaskSpec struct {
	Name    string
	Type    string // default "training"
	Project string
	Parent  string
	Comment string
	// User owns the task; default the emulator's user.
	User string
	// Container holds image, arguments and setup_shell_script.
	Container map[string]string
	// DockerCmd sets the legacy execution.docker_cmd, as an old SDK would have.
	DockerCmd   string
	Hyperparams map[string]map[string]HyperParam
	Runtime     map[string]any
	Tags        []string
	SystemTags  []string
}

// CreateTask creates a task in status created and returns its id.
func (s *Server) CreateTask(spec TaskSpec) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &Task{Name: spec.Name, Type: orDefault(spec.Type, "training"), Project: spec.Project, Parent: spec.Parent,
		Comment: spec.Comment, User: spec.User, Hyperparams: cloneParams(spec.Hyperparams), Runtime: cloneMap(spec.Runtime),
		Tags: slices.Clone(spec.Tags), SystemTags: slices.Clone(spec.SystemTags)}
	if len(spec.Container) > 0 {
		t.Container = map[string]any{}
		for k, v := range spec.Container {
			t.Container[k] = v
		}
	}
	if spec.DockerCmd != "" {
		t.Execution = map[string]any{"docker_cmd": spec.DockerCmd}
	}
	s.addNewTask(s.hookCall(), t)
	return t.ID
}

// Enqueue enqueues a task into the named queue as a user would (tasks.enqueue, not forced).
func (s *Server) Enqueue(taskID, queueName string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queueByName(queueName)
	if q == nil {
		return fmt.Errorf("emulator: no queue named %q", queueName)
	}
	_, aerr := s.enqueue(s.hookCall(), statusRequest{Task: taskID, Queue: q.ID})
	return asError(aerr)
}

// CreateQueue creates a queue, or returns the id of the queue that already has this name.
func (s *Server) CreateQueue(name string, systemTags ...string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.queueByName(name); q != nil {
		return q.ID, nil
	}
	q, aerr := s.createQueue(s.hookCall(), name, "", nil, systemTags)
	if aerr != nil {
		return "", aerr
	}
	return q.ID, nil
}

// DeleteQueue deletes a queue and its entries (tasks keep their execution.queue), so the glue
// meets 400/701 on its next use. It reports whether the queue existed.
func (s *Server) DeleteQueue(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queueByName(name)
	if q == nil {
		return false
	}
	delete(s.queues, q.ID)
	s.queueOrder = slices.DeleteFunc(s.queueOrder, func(id string) bool { return id == q.ID })
	return true
}

// QueueID returns the id of the named queue, or "".
func (s *Server) QueueID(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.queueByName(name); q != nil {
		return q.ID
	}
	return ""
}

// QueueEntries returns the task ids of the named queue, front first (nil if there is no such queue).
func (s *Server) QueueEntries(name string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queueByName(name)
	if q == nil {
		return nil
	}
	ids := make([]string, len(q.Entries))
	for i, e := range q.Entries {
		ids[i] = e.Task
	}
	return ids
}

// Task returns a copy of a task.
func (s *Server) Task(id string) (Task, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[id]
	if !ok {
		return Task{}, false
	}
	return t.clone(), true
}

// Tasks returns copies of all tasks, in creation order.
func (s *Server) Tasks() []Task {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Task, 0, len(s.taskOrder))
	for _, id := range s.taskOrder {
		if t, ok := s.tasks[id]; ok {
			out = append(out, t.clone())
		}
	}
	return out
}

// SetTaskStatus forces a task's status (no queue side effects), to set up a test.
func (s *Server) SetTaskStatus(id, status string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[id]
	if !ok {
		return errors.New("emulator: no task " + id)
	}
	if !validStatus(status) {
		return errors.New("emulator: invalid status " + status)
	}
	_, aerr := s.changeStatus(s.hookCall(), t, statusChange{to: status, force: true})
	return asError(aerr)
}

// TaskLog returns the messages of the task's log events, in arrival order.
func (s *Server) TaskLog(id string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var msgs []string
	for _, ev := range s.events[id] {
		if ev.Type == "log" {
			msgs = append(msgs, ev.Msg)
		}
	}
	return msgs
}

// Workers returns the registered, unexpired workers sorted by id.
func (s *Server) Workers() []Worker {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireWorkers(s.opts.Now())
	out := make([]Worker, 0, len(s.workers))
	for _, w := range s.workers {
		c := *w
		c.Queues, c.Tags = slices.Clone(w.Queues), slices.Clone(w.Tags)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Worker) int { return strings.Compare(a.ID, b.ID) })
	return out
}
