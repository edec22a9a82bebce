package emulator

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// taskUpdateTimeout is apiserver.workers.task_update_timeout: a worker that reported on a
// task this recently is "active" for tasks.stop.
const taskUpdateTimeout = 600 * time.Second

// minTaskNameLength is the shortest (stripped) name the Task document takes.
const minTaskNameLength = 3

var taskTypes = []string{"training", "testing", "inference", "data_processing", "application",
	"monitor", "controller", "optimizer", "service", "qc", "custom"}

func (s *Server) taskByID(c *call, id string) (*Task, *apiError) {
	t, ok := s.tasks[id]
	if !ok {
		return nil, errInvalidTaskID(c.identity.Company, id)
	}
	return t, nil
}

// addNewTask stores a task in status created, owned by the caller unless t.User is set. Like
// the server's, a new task has no status_changed until its first status change.
func (s *Server) addNewTask(c *call, t *Task) {
	t.ID = newID()
	t.Status = statusCreated
	t.Company = c.identity.Company
	t.User = orDefault(t.User, c.identity.User)
	t.Created, t.LastUpdate, t.LastChange = c.now, c.now, c.now
	t.LastChangedBy = c.identity.User
	t.order = len(s.taskOrder)
	s.tasks[t.ID] = t
	s.taskOrder = append(s.taskOrder, t.ID)
}

// legacyContainer converts a pre-2.13 execution.docker_cmd write into container fields,
// as the server does for old clients.
func legacyContainer(c *call, execution map[string]any) map[string]any {
	cmd, ok := execution["docker_cmd"].(string)
	if !ok || !c.version.less(version{2, 13}) {
		return nil
	}
	delete(execution, "docker_cmd")
	image, args, _ := strings.Cut(strings.TrimSpace(cmd), " ")
	return map[string]any{"image": image, "arguments": args}
}

// taskFields are the writable task fields of tasks.create, tasks.edit and tasks.update; each
// endpoint clears the ones it does not take.
type taskFields struct {
	Name        *string                          `json:"name"`
	Type        *string                          `json:"type"`
	Comment     *string                          `json:"comment"`
	Project     *string                          `json:"project"`
	Parent      *string                          `json:"parent"`
	Tags        []string                         `json:"tags"`
	SystemTags  []string                         `json:"system_tags"`
	Container   map[string]any                   `json:"container"`
	Execution   map[string]any                   `json:"execution"`
	Script      map[string]any                   `json:"script"`
	Hyperparams map[string]map[string]HyperParam `json:"hyperparams"`
	Runtime     map[string]any                   `json:"runtime"`
	// Status is set directly, with no state-machine check (tasks.edit, tasks.update).
	Status        *string `json:"status"`
	StatusReason  *string `json:"status_reason"`
	StatusMessage *string `json:"status_message"`
}

func (f *taskFields) validate(c *call) *apiError {
	if f.Type != nil && !slices.Contains(taskTypes, *f.Type) {
		return errValidation(fmt.Sprintf("error for field 'type'. value should be one of (%s)", strings.Join(taskTypes, ", ")))
	}
	if f.Status != nil && !validStatus(*f.Status) {
		return errValidation("Invalid task status: " + *f.Status)
	}
	if container := legacyContainer(c, f.Execution); container != nil {
		f.Container = container
	}
	return nil
}

// apply sets the given fields and returns them as answer fields. Execution is shallow-merged;
// container, runtime and hyperparams replace the stored values whole (tasks.edit semantics).
func (f *taskFields) apply(t *Task) map[string]any {
	out := map[string]any{}
	for _, field := range []struct {
		key      string
		from, to *string
	}{
		{"name", f.Name, &t.Name}, {"type", f.Type, &t.Type}, {"comment", f.Comment, &t.Comment},
		{"project", f.Project, &t.Project}, {"parent", f.Parent, &t.Parent}, {"status", f.Status, &t.Status},
		{"status_reason", f.StatusReason, &t.StatusReason}, {"status_message", f.StatusMessage, &t.StatusMessage},
	} {
		if field.from != nil {
			*field.to, out[field.key] = *field.from, *field.from
		}
	}
	if f.Tags != nil {
		t.Tags, out["tags"] = slices.Clone(f.Tags), f.Tags
	}
	if f.SystemTags != nil {
		t.SystemTags, out["system_tags"] = slices.Clone(f.SystemTags), f.SystemTags
	}
	if f.Container != nil {
		t.Container, out["container"] = cloneMap(f.Container), f.Container
	}
	if f.Runtime != nil {
		t.Runtime, out["runtime"] = cloneMap(f.Runtime), f.Runtime
	}
	if f.Script != nil {
		t.Script, out["script"] = cloneMap(f.Script), f.Script
	}
	if f.Hyperparams != nil {
		t.Hyperparams, out["hyperparams"] = cloneParams(f.Hyperparams), f.Hyperparams
	}
	if f.Execution != nil {
		if t.Execution == nil {
			t.Execution = map[string]any{}
		}
		maps.Copy(t.Execution, cloneMap(f.Execution))
		out["execution"] = cloneMap(t.Execution)
	}
	return out
}

func tasksCreate(s *Server, c *call) (any, *apiError) {
	f, aerr := decode[taskFields](c, "name", "type")
	if aerr != nil {
		return nil, aerr
	}
	f.Status, f.StatusReason, f.StatusMessage = nil, nil, nil // a new task is always created
	if aerr := f.validate(c); aerr != nil {
		return nil, aerr
	}
	if utf8.RuneCountInString(strings.TrimSpace(*f.Name)) < minTaskNameLength {
		// The Task document's name is a stripped string of at least 3 characters, checked on save.
		return nil, newError(400, 800, "Data validation error", "", "name", "String value is too short")
	}
	*f.Name = strings.TrimSpace(*f.Name)
	t := &Task{}
	f.apply(t)
	s.addNewTask(c, t)
	return map[string]any{"id": t.ID}, nil
}

func tasksGetByID(s *Server, c *call) (any, *apiError) {
	req, aerr := decode[struct {
		Task string `json:"task"`
	}](c, "task")
	if aerr != nil {
		return nil, aerr
	}
	t, aerr := s.taskByID(c, req.Task)
	if aerr != nil {
		return nil, aerr
	}
	return map[string]any{"task": project(t.doc(c.version), nil, "enqueue_status")}, nil
}

func tasksGetAll(s *Server, c *call) (any, *apiError) {
	pg, aerr := s.newPager(c)
	if aerr != nil {
		return nil, aerr
	}
	req, aerr := decode[struct {
		ID             stringList `json:"id"`
		Status         stringList `json:"status"`
		User           stringList `json:"user"`
		Project        stringList `json:"project"`
		Type           stringList `json:"type"`
		Parent         stringList `json:"parent"`
		ExecutionQueue stringList `json:"execution.queue"`
		Name           string     `json:"name"`
		Tags           []string   `json:"tags"`
		SystemTags     []string   `json:"system_tags"`
		OnlyFields     []string   `json:"only_fields"`
		SearchHidden   bool       `json:"search_hidden"`
	}](c)
	if aerr != nil {
		return nil, aerr
	}
	re, aerr := compileName(req.Name)
	if aerr != nil {
		return nil, aerr
	}
	ids := idSet(req.ID)
	in := func(filter stringList, v string) bool { return len(filter) == 0 || slices.Contains(filter, v) }
	var matches []*Task
	for _, t := range s.candidates(ids) {
		switch {
		case !in(req.Status, t.Status), !in(req.User, t.User),
			!in(req.Project, t.Project), !in(req.Type, t.Type), !in(req.Parent, t.Parent),
			!in(req.ExecutionQueue, t.ExecutionQueue()),
			re != nil && !re.MatchString(t.Name),
			!tagsMatch(t.Tags, req.Tags) || !tagsMatch(t.SystemTags, req.SystemTags),
			!req.SearchHidden && ids == nil && slices.Contains(t.SystemTags, "hidden"):
			continue
		}
		matches = append(matches, t)
	}
	return s.listAnswer(c, pg, "tasks", len(matches), func(i int) map[string]any {
		return project(matches[i].doc(c.version), req.OnlyFields, "enqueue_status")
	}), nil
}

// candidates returns the tasks of ids (all tasks when nil) in the server's default order,
// creation order. By id they are looked up, not searched for: a glue reads a few tasks at a time
// out of many thousands.
func (s *Server) candidates(ids map[string]bool) []*Task {
	if ids == nil {
		out := make([]*Task, len(s.taskOrder))
		for i, id := range s.taskOrder {
			out[i] = s.tasks[id]
		}
		return out
	}
	out := make([]*Task, 0, len(ids))
	for id := range ids {
		if t, ok := s.tasks[id]; ok {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b *Task) int { return a.order - b.order })
	return out
}

// statusRequest is the server's UpdateRequest and its extensions.
type statusRequest struct {
	Task          string `json:"task"`
	Force         bool   `json:"force"`
	StatusReason  string `json:"status_reason"`
	StatusMessage string `json:"status_message"`
	// tasks.dequeue
	RemoveFromAllQueues bool   `json:"remove_from_all_queues"`
	NewStatus           string `json:"new_status"`
	// tasks.enqueue
	Queue                string `json:"queue"`
	QueueName            string `json:"queue_name"`
	UpdateExecutionQueue *bool  `json:"update_execution_queue"`
	VerifyWatchedQueue   bool   `json:"verify_watched_queue"`
}

func decodeStatus(c *call) (statusRequest, *apiError) {
	return decode[statusRequest](c, "task")
}

// statusEndpoint is tasks.stopped, failed, started and completed.
func statusEndpoint(to string) func(*Server, *call) (any, *apiError) {
	return func(s *Server, c *call) (any, *apiError) {
		req, aerr := decodeStatus(c)
		if aerr != nil {
			return nil, aerr
		}
		t, ok := s.tasks[req.Task]
		if !ok {
			if to == statusInProgress {
				// tasks.started looks the task up itself and reports a generic invalid id.
				return nil, newError(400, 10, "Invalid object id", "", "task", nil)
			}
			return nil, errInvalidTaskID(c.identity.Company, req.Task)
		}
		wasRunning := t.Status == statusInProgress && !t.Started.IsZero()
		fields, aerr := s.changeStatus(c, t, statusChange{to: to, reason: req.StatusReason, message: req.StatusMessage, force: req.Force})
		if aerr != nil {
			return nil, aerr
		}
		result := map[string]any{"updated": 1, "fields": fields}
		switch to {
		case statusInProgress:
			if !wasRunning { // keep the first start time of a running task
				t.Started, t.Completed = c.now, time.Time{}
				fields["started"] = wireTime(c.now)
			}
			result["started"] = 1
		default:
			t.Completed = c.now
			fields["completed"] = wireTime(c.now)
		}
		return result, nil
	}
}

// enqueue is tasks.enqueue (task_operations.enqueue_task), shared with the Enqueue hook.
func (s *Server) enqueue(c *call, req statusRequest) (map[string]any, *apiError) {
	updateQueue := req.UpdateExecutionQueue == nil || *req.UpdateExecutionQueue
	if req.VerifyWatchedQueue && !updateQueue {
		return nil, errValidation("verify_watched_queue cannot be used with update_execution_queue=False")
	}
	if req.Queue != "" && req.QueueName != "" {
		return nil, errValidation("Either queue id or queue name should be provided")
	}
	t, aerr := s.taskByID(c, req.Task)
	if aerr != nil {
		return nil, aerr
	}
	if !updateQueue && (t.Status != statusQueued || t.ExecutionQueue() == "") {
		return nil, errValidation("Cannot skip setting execution queue for a task that is not enqueued or does not have execution queue set")
	}
	queueID := req.Queue
	if req.QueueName != "" {
		q := s.queueByName(req.QueueName)
		if q == nil {
			if q, aerr = s.createQueue(c, req.QueueName, "", nil, nil); aerr != nil {
				return nil, aerr
			}
		}
		queueID = q.ID
	}
	if queueID == "" {
		q, aerr := s.defaultQueue()
		if aerr != nil {
			return nil, aerr
		}
		queueID = q.ID
	}
	previous, beforeEnqueue := t.Status, t.Status
	if t.Status == statusQueued && t.EnqueueStatus != "" {
		beforeEnqueue = t.EnqueueStatus
	}
	fields, aerr := s.changeStatus(c, t, statusChange{to: statusQueued, reason: req.StatusReason, message: req.StatusMessage, force: req.Force})
	if aerr != nil {
		return nil, aerr
	}
	t.EnqueueStatus, fields["enqueue_status"] = beforeEnqueue, beforeEnqueue
	if aerr := s.addTask(c, queueID, t.ID); aerr != nil {
		// The server reverts the status (forced) and clears enqueue_status.
		_, _ = s.changeStatus(c, t, statusChange{to: previous, reason: "failed enqueueing", force: true})
		t.EnqueueStatus = ""
		return nil, aerr
	}
	if updateQueue {
		t.setExecutionQueue(queueID)
		fields["execution.queue"] = queueID
	}
	s.removeFromAllQueues(c, t.ID, queueID)
	result := map[string]any{"queued": 1, "updated": 1, "fields": fields}
	if req.VerifyWatchedQueue {
		result["queue_watched"] = s.queueWatched(queueID)
	}
	return result, nil
}

func tasksEnqueue(s *Server, c *call) (any, *apiError) {
	req, aerr := decodeStatus(c)
	if aerr != nil {
		return nil, aerr
	}
	return s.enqueue(c, req)
}

// enqueueManyRequest is tasks.enqueue_many's (EnqueueManyRequest): one queue, status reason and
// message for every id; no force and no update_execution_queue (the server's defaults apply).
type enqueueManyRequest struct {
	IDs                []string `json:"ids"`
	Queue              string   `json:"queue"`
	QueueName          string   `json:"queue_name"`
	StatusReason       string   `json:"status_reason"`
	StatusMessage      string   `json:"status_message"`
	ValidateTasks      bool     `json:"validate_tasks"`
	VerifyWatchedQueue bool     `json:"verify_watched_queue"`
}

// tasksEnqueueMany is tasks.enqueue_many (2.13): enqueue_task for each id as the server's
// run_batch_operation does, so one task's error lands in "failed" (with its codes) and never
// stops the others.
func tasksEnqueueMany(s *Server, c *call) (any, *apiError) {
	req, aerr := decode[enqueueManyRequest](c, "ids")
	if aerr != nil {
		return nil, aerr
	}
	if len(req.IDs) == 0 {
		return nil, errValidation("error for field 'ids'. length should be at least 1")
	}
	if req.ValidateTasks {
		// TaskBLL.validate checks references the emulator does not model (models, parents).
		return nil, errValidation("validate_tasks is not emulated")
	}
	succeeded, failed := []map[string]any{}, []map[string]any{}
	for _, id := range req.IDs {
		res, aerr := s.enqueue(c, statusRequest{Task: id, Queue: req.Queue, QueueName: req.QueueName,
			StatusReason: req.StatusReason, StatusMessage: req.StatusMessage})
		if aerr != nil {
			failed = append(failed, map[string]any{"id": id, "error": map[string]any{
				"codes": []int{aerr.code, aerr.subcode}, "msg": aerr.msg, "data": aerr.data}})
			continue
		}
		succeeded = append(succeeded, map[string]any{"id": id, "queued": res["queued"] == 1, "updated": res["updated"], "fields": res["fields"]})
	}
	out := map[string]any{"succeeded": succeeded, "failed": failed}
	if req.VerifyWatchedQueue && len(succeeded) > 0 {
		if q, ok := succeeded[0]["fields"].(map[string]any)["execution.queue"].(string); ok {
			out["queue_watched"] = s.queueWatched(q)
		}
	}
	return out, nil
}

func tasksDequeue(s *Server, c *call) (any, *apiError) {
	req, aerr := decodeStatus(c)
	if aerr != nil {
		return nil, aerr
	}
	if req.NewStatus != "" && !validStatus(req.NewStatus) {
		return nil, errValidation("Invalid task status: " + req.NewStatus)
	}
	t, ok := s.tasks[req.Task]
	if !ok {
		s.removeFromAllQueues(c, req.Task, "")
		return map[string]any{"dequeued": 1, "updated": 0}, nil
	}
	if t.Status == statusQueued {
		if q, ok := s.queues[t.ExecutionQueue()]; ok && q.removeTask(t.ID) > 0 {
			q.LastUpdate = c.now
		}
	}
	if req.RemoveFromAllQueues {
		s.removeFromAllQueues(c, t.ID, "")
	}
	if t.Status != statusQueued && t.Status != statusInProgress {
		return map[string]any{"dequeued": 1, "updated": 0}, nil
	}
	to := orDefault(req.NewStatus, orDefault(t.EnqueueStatus, statusCreated))
	fields, _ := s.changeStatus(c, t, statusChange{to: to, reason: req.StatusReason, message: req.StatusMessage, force: true})
	t.EnqueueStatus, fields["enqueue_status"] = "", nil
	return map[string]any{"dequeued": 1, "updated": 1, "fields": fields}, nil
}

func tasksStop(s *Server, c *call) (any, *apiError) {
	req, aerr := decodeStatus(c)
	if aerr != nil {
		return nil, aerr
	}
	t, aerr := s.taskByID(c, req.Task)
	if aerr != nil {
		return nil, aerr
	}
	queued := t.Status == statusQueued
	runByWorker := t.LastWorker != "" && !t.LastUpdate.IsZero() && c.now.Sub(t.LastUpdate) < taskUpdateTimeout
	ch := statusChange{to: t.Status, reason: req.StatusReason, message: "stopping", force: req.Force}
	if queued || slices.Contains(t.SystemTags, "development") || !runByWorker {
		if q, ok := s.queues[t.ExecutionQueue()]; ok && queued && q.removeTask(t.ID) > 0 {
			q.LastUpdate = c.now
		}
		ch.to, ch.message = statusStopped, "Stopped by "+c.identity.UserName
	}
	fields, aerr := s.changeStatus(c, t, ch)
	if aerr != nil {
		return nil, aerr
	}
	return map[string]any{"updated": 1, "fields": fields}, nil
}

func tasksUpdate(s *Server, c *call) (any, *apiError) {
	req, aerr := decode[struct {
		Task string `json:"task"`
		taskFields
	}](c, "task")
	if aerr != nil {
		return nil, aerr
	}
	t, aerr := s.taskByID(c, req.Task)
	if aerr != nil {
		return nil, aerr
	}
	// Only plain fields are updatable here; the rest needs tasks.edit.
	req.Type, req.Container, req.Execution, req.Hyperparams, req.Runtime, req.Script = nil, nil, nil, nil, nil, nil
	if aerr := req.validate(c); aerr != nil {
		return nil, aerr
	}
	fields := req.apply(t)
	if len(fields) == 0 {
		return map[string]any{"updated": 0}, nil
	}
	t.LastChange, t.LastChangedBy = c.now, c.identity.User
	fields["last_change"], fields["last_changed_by"] = wireTime(c.now), c.identity.User
	return map[string]any{"updated": 1, "fields": fields}, nil
}

func tasksEdit(s *Server, c *call) (any, *apiError) {
	req, aerr := decode[struct {
		Task  string `json:"task"`
		Force bool   `json:"force"`
		taskFields
	}](c, "task")
	if aerr != nil {
		return nil, aerr
	}
	t, aerr := s.taskByID(c, req.Task)
	if aerr != nil {
		return nil, aerr
	}
	if !req.Force && t.Status != statusCreated {
		return nil, errInvalidTaskStatus("", "expected", statusCreated, "status", t.Status)
	}
	req.StatusReason, req.StatusMessage = nil, nil // not editable
	if aerr := req.validate(c); aerr != nil {
		return nil, aerr
	}
	fields := req.apply(t)
	if len(fields) == 0 {
		return map[string]any{"updated": 0}, nil
	}
	t.LastUpdate, t.LastChange, t.LastChangedBy = c.now, c.now, c.identity.User
	fields["last_update"], fields["last_change"], fields["last_changed_by"] = wireTime(c.now), wireTime(c.now), c.identity.User
	return map[string]any{"updated": 1, "fields": fields}, nil
}

func tasksEditHyperParams(s *Server, c *call) (any, *apiError) {
	req, aerr := decode[struct {
		Task        string `json:"task"`
		Force       bool   `json:"force"`
		Replace     string `json:"replace_hyperparams"`
		Hyperparams []struct {
			Section     string  `json:"section"`
			Name        string  `json:"name"`
			Value       *string `json:"value"`
			Type        string  `json:"type"`
			Description string  `json:"description"`
		} `json:"hyperparams"`
	}](c, "task", "hyperparams")
	if aerr != nil {
		return nil, aerr
	}
	if len(req.Hyperparams) == 0 {
		return nil, errValidation("error for field 'hyperparams'. at least one item is required")
	}
	if !slices.Contains([]string{"", "none", "section", "all"}, req.Replace) {
		return nil, errValidation("error for field 'replace_hyperparams'. value should be one of (none, section, all)")
	}
	params := map[string]map[string]HyperParam{}
	propertiesOnly := true
	for _, p := range req.Hyperparams {
		if p.Section == "" || p.Name == "" || p.Value == nil {
			return nil, errValidation("error for field 'hyperparams'. section, name and value are required")
		}
		if strings.EqualFold(p.Section, "properties") {
			p.Section = "properties"
		} else {
			propertiesOnly = false
		}
		if params[p.Section] == nil {
			params[p.Section] = map[string]HyperParam{}
		}
		params[p.Section][p.Name] = HyperParam{Section: p.Section, Name: p.Name, Value: *p.Value, Type: p.Type, Description: p.Description}
	}
	t, aerr := s.taskByID(c, req.Task)
	if aerr != nil {
		return nil, aerr
	}
	// Only user properties may change on a task that left status created.
	allowed := t.Status == statusCreated || propertiesOnly ||
		(req.Force && (t.Status == statusQueued || t.Status == statusInProgress))
	if !allowed {
		return nil, errInvalidTaskStatus("", "expected", statusCreated, "status", t.Status)
	}
	if req.Replace == "all" || t.Hyperparams == nil {
		t.Hyperparams = map[string]map[string]HyperParam{}
	}
	for section, items := range params {
		if req.Replace == "section" || t.Hyperparams[section] == nil {
			t.Hyperparams[section] = map[string]HyperParam{}
		}
		maps.Copy(t.Hyperparams[section], items)
	}
	t.LastChange, t.LastChangedBy = c.now, c.identity.User
	if !propertiesOnly {
		t.LastUpdate = c.now
	}
	return map[string]any{"updated": 1}, nil
}
