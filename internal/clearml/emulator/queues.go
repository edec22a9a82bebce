package emulator

import (
	"regexp"
	"slices"
	"strings"
)

// queueByID returns the queue or 400/701.
func (s *Server) queueByID(c *call, id string) (*queue, *apiError) {
	q, ok := s.queues[id]
	if !ok {
		return nil, errInvalidQueueID(c.identity.Company, id)
	}
	return q, nil
}

func (s *Server) queueByName(name string) *queue {
	for _, id := range s.queueOrder {
		if s.queues[id].Name == name {
			return s.queues[id]
		}
	}
	return nil
}

// createQueue validates like the server's Queue document: a stripped name of at least 3
// characters (400/800), unique in the company (400/801).
func (s *Server) createQueue(c *call, name, displayName string, tags, systemTags []string) (*queue, *apiError) {
	name = strings.TrimSpace(name)
	if len(name) < 3 {
		return nil, newError(400, 800, "Data validation error", "", "name", "String value is too short")
	}
	if s.queueByName(name) != nil {
		return nil, newError(400, 801, "Value combination already exists (unique field already contains this value)", "", "name", name)
	}
	q := &queue{ID: newID(), Name: name, DisplayName: displayName, Company: c.identity.Company,
		Created: c.now, LastUpdate: c.now, Tags: slices.Clone(tags), SystemTags: slices.Clone(systemTags)}
	s.queues[q.ID] = q
	s.queueOrder = append(s.queueOrder, q.ID)
	return q, nil
}

// addTask is queue_bll.add_task: append at the end (400/701, 400/706); no status change.
func (s *Server) addTask(c *call, queueID, taskID string) *apiError {
	q, aerr := s.queueByID(c, queueID)
	if aerr != nil {
		return aerr
	}
	if q.position(taskID) >= 0 {
		return errTaskAlreadyQueued(taskID)
	}
	q.push(entry{Task: taskID, Added: c.now})
	q.LastUpdate = c.now
	return nil
}

// removeFromAllQueues drops the task from every queue but exclude.
func (s *Server) removeFromAllQueues(c *call, taskID, exclude string) {
	for id, q := range s.queues {
		if id != exclude && q.removeTask(taskID) > 0 {
			q.LastUpdate = c.now
		}
	}
}

// tagsMatch applies a tags filter: a plain tag must be present (any of them), "-tag" absent.
func tagsMatch(have, filter []string) bool {
	include := false
	matched := false
	for _, f := range filter {
		if excluded, ok := strings.CutPrefix(f, "-"); ok {
			if slices.Contains(have, excluded) {
				return false
			}
			continue
		}
		include = true
		matched = matched || slices.Contains(have, f)
	}
	return !include || matched
}

// compileName compiles a name filter: an unanchored, case-sensitive regex search.
func compileName(name string) (*regexp.Regexp, *apiError) {
	if name == "" {
		return nil, nil
	}
	re, err := regexp.Compile(name)
	if err != nil {
		return nil, newError(400, 21, "Malformed regular expression", "", "name", name, "error", err.Error())
	}
	return re, nil
}

func queuesGetAll(s *Server, c *call) (any, *apiError) {
	pg, aerr := s.newPager(c)
	if aerr != nil {
		return nil, aerr
	}
	req, aerr := decode[struct {
		ID           stringList `json:"id"`
		Name         string     `json:"name"`
		Tags         []string   `json:"tags"`
		SystemTags   []string   `json:"system_tags"`
		OnlyFields   []string   `json:"only_fields"`
		SearchHidden bool       `json:"search_hidden"`
		// MaxTaskEntries (≥ 2.20) bounds the entries listed per queue.
		MaxTaskEntries int `json:"max_task_entries"`
	}](c)
	if aerr != nil {
		return nil, aerr
	}
	re, aerr := compileName(req.Name)
	if aerr != nil {
		return nil, aerr
	}
	ids := idSet(req.ID)
	// Hidden queues are skipped unless the caller asks for them or names/ids queues.
	skipHidden := !req.SearchHidden && ids == nil && req.Name == ""
	var matches []*queue
	for _, id := range s.queueOrder { // the server's default order: creation order
		q := s.queues[id]
		switch {
		case ids != nil && !ids[q.ID],
			re != nil && !re.MatchString(q.Name),
			!tagsMatch(q.Tags, req.Tags) || !tagsMatch(q.SystemTags, req.SystemTags),
			skipHidden && slices.ContainsFunc(q.SystemTags, func(t string) bool { return slices.Contains(s.opts.HiddenQueueTags, t) }):
			continue
		}
		matches = append(matches, q)
	}
	return s.listAnswer(c, pg, "queues", len(matches), func(i int) map[string]any {
		return project(matches[i].doc(req.MaxTaskEntries), req.OnlyFields)
	}), nil
}

func queuesGetByID(s *Server, c *call) (any, *apiError) {
	q, maxTaskEntries, aerr := requestedQueue(s, c)
	if aerr != nil {
		return nil, aerr
	}
	return map[string]any{"queue": q.doc(maxTaskEntries)}, nil
}

// queuesGetNumEntries answers how many entries one queue holds (≥ 2.15).
func queuesGetNumEntries(s *Server, c *call) (any, *apiError) {
	q, _, aerr := requestedQueue(s, c)
	if aerr != nil {
		return nil, aerr
	}
	return map[string]any{"num": len(q.Entries)}, nil
}

// requestedQueue finds the queue a request names in its required "queue" field, and returns
// the request's max_task_entries with it.
func requestedQueue(s *Server, c *call) (*queue, int, *apiError) {
	req, aerr := decode[struct {
		Queue          string `json:"queue"`
		MaxTaskEntries int    `json:"max_task_entries"`
	}](c, "queue")
	if aerr != nil {
		return nil, 0, aerr
	}
	q, aerr := s.queueByID(c, req.Queue)
	return q, req.MaxTaskEntries, aerr
}

func queuesCreate(s *Server, c *call) (any, *apiError) {
	req, aerr := decode[struct {
		Name        string   `json:"name"`
		DisplayName string   `json:"display_name"`
		Tags        []string `json:"tags"`
		SystemTags  []string `json:"system_tags"`
	}](c, "name")
	if aerr != nil {
		return nil, aerr
	}
	q, aerr := s.createQueue(c, req.Name, req.DisplayName, req.Tags, req.SystemTags)
	if aerr != nil {
		return nil, aerr
	}
	return map[string]any{"id": q.ID}, nil
}

func (s *Server) defaultQueue() (*queue, *apiError) {
	var found []*queue
	for _, id := range s.queueOrder {
		if slices.Contains(s.queues[id].SystemTags, "default") {
			found = append(found, s.queues[id])
		}
	}
	switch len(found) {
	case 0:
		return nil, newError(400, 707, "No queue is tagged as the default queue for this company", "")
	case 1:
		return found[0], nil
	}
	ids := make([]string, len(found))
	for i, q := range found {
		ids[i] = q.ID
	}
	return nil, newError(400, 708, "More than one queue is tagged as the default queue for this company", "", "queues", ids)
}

func queuesGetDefault(s *Server, _ *call) (any, *apiError) {
	q, aerr := s.defaultQueue()
	if aerr != nil {
		return nil, aerr
	}
	return map[string]any{"id": q.ID, "name": q.Name}, nil
}

func queuesGetNextTask(s *Server, c *call) (any, *apiError) {
	req, aerr := decode[struct {
		Queue       string `json:"queue"`
		GetTaskInfo bool   `json:"get_task_info"`
		Task        string `json:"task"`
	}](c, "queue")
	if aerr != nil {
		return nil, aerr
	}
	q, aerr := s.queueByID(c, req.Queue)
	if aerr != nil {
		return nil, aerr
	}
	if len(q.Entries) == 0 || (req.Task != "" && q.Entries[0].Task != req.Task) {
		return nil, nil
	}
	entry := q.popFront()
	q.LastUpdate = c.now
	data := map[string]any{"entry": map[string]any{"task": entry.Task, "added": wireTime(entry.Added)}}
	if t, ok := s.tasks[entry.Task]; ok {
		// The server's race fix: a task aborted after it was queued is queued again.
		if t.Status == statusStopped {
			t.Status = statusQueued
		}
		if req.GetTaskInfo {
			data["task_info"] = map[string]any{"company": t.Company, "user": t.User}
		}
	}
	return data, nil
}

// queueTaskRequest is the body of queues.add_task/remove_task/move_task_*.
type queueTaskRequest struct {
	Queue                string `json:"queue"`
	Task                 string `json:"task"`
	UpdateExecutionQueue *bool  `json:"update_execution_queue"`
	UpdateTaskStatus     bool   `json:"update_task_status"`
}

func decodeQueueTask(c *call) (queueTaskRequest, *apiError) {
	return decode[queueTaskRequest](c, "queue", "task")
}

func queuesAddTask(s *Server, c *call) (any, *apiError) {
	req, aerr := decodeQueueTask(c)
	if aerr != nil {
		return nil, aerr
	}
	if aerr := s.addTask(c, req.Queue, req.Task); aerr != nil {
		return nil, aerr
	}
	if t, ok := s.tasks[req.Task]; ok && (req.UpdateExecutionQueue == nil || *req.UpdateExecutionQueue) {
		t.setExecutionQueue(req.Queue)
	}
	return map[string]any{"added": 1}, nil
}

func queuesRemoveTask(s *Server, c *call) (any, *apiError) {
	req, aerr := decodeQueueTask(c)
	if aerr != nil {
		return nil, aerr
	}
	q, ok := s.queues[req.Queue]
	if !ok || q.position(req.Task) < 0 {
		return nil, errTaskNotQueued(c.identity.Company, req.Queue, req.Task)
	}
	removed := q.removeTask(req.Task)
	q.LastUpdate = c.now
	if t, ok := s.tasks[req.Task]; ok && req.UpdateTaskStatus && t.ExecutionQueue() == req.Queue {
		// Forced back to the status before the enqueue; a forced change cannot fail.
		_, _ = s.changeStatus(c, t, statusChange{to: orDefault(t.EnqueueStatus, statusCreated),
			reason: "Task was removed from the queue " + req.Queue, force: true})
		t.EnqueueStatus = ""
		delete(t.Execution, "queue")
	}
	return map[string]any{"removed": removed}, nil
}

func queuesMoveTaskToFront(s *Server, c *call) (any, *apiError) {
	req, aerr := decodeQueueTask(c)
	if aerr != nil {
		return nil, aerr
	}
	q, ok := s.queues[req.Queue]
	if !ok {
		return nil, errTaskNotQueued(c.identity.Company, req.Queue, req.Task)
	}
	i := q.position(req.Task)
	if i < 0 {
		return nil, errTaskNotQueued(c.identity.Company, req.Queue, req.Task)
	}
	entry := q.Entries[i]
	q.Entries = slices.Insert(slices.Delete(q.Entries, i, i+1), 0, entry)
	q.LastUpdate = c.now
	return map[string]any{"position": 0}, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
