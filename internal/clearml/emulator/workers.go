package emulator

import (
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"time"
)

// defaultWorkerTimeout is apiserver.workers.default_timeout.
const defaultWorkerTimeout = 600 * time.Second

// endpointTable lists the emulated endpoints with the server's minimum version per handler.
func endpointTable() map[string]endpoint {
	v := func(major, minor int) version { return version{major, minor} }
	return map[string]endpoint{
		"auth.login":                {v(1, 0), false, login},
		"debug.ping":                {v(1, 0), true, debugPing},
		"server.info":               {v(1, 0), false, serverInfo},
		"queues.get_all":            {v(2, 4), false, queuesGetAll},
		"queues.get_by_id":          {v(2, 4), false, queuesGetByID},
		"queues.get_num_entries":    {v(2, 15), false, queuesGetNumEntries},
		"queues.create":             {v(2, 4), false, queuesCreate},
		"queues.get_default":        {v(2, 4), false, queuesGetDefault},
		"queues.get_next_task":      {v(1, 0), false, queuesGetNextTask},
		"queues.add_task":           {v(2, 4), false, queuesAddTask},
		"queues.remove_task":        {v(2, 4), false, queuesRemoveTask},
		"queues.move_task_to_front": {v(2, 4), false, queuesMoveTaskToFront},
		"tasks.get_all":             {v(1, 0), false, tasksGetAll},
		"tasks.get_by_id":           {v(1, 0), false, tasksGetByID},
		"tasks.create":              {v(1, 0), false, tasksCreate},
		"tasks.enqueue":             {v(1, 0), false, tasksEnqueue},
		"tasks.enqueue_many":        {v(2, 13), false, tasksEnqueueMany},
		"tasks.dequeue":             {v(1, 0), false, tasksDequeue},
		"tasks.stop":                {v(1, 0), false, tasksStop},
		"tasks.stopped":             {v(1, 0), false, statusEndpoint(statusStopped)},
		"tasks.failed":              {v(1, 0), false, statusEndpoint(statusFailed)},
		"tasks.started":             {v(1, 0), false, statusEndpoint(statusInProgress)},
		"tasks.completed":           {v(2, 2), false, statusEndpoint(statusCompleted)},
		"tasks.update":              {v(1, 0), false, tasksUpdate},
		"tasks.edit":                {v(1, 0), false, tasksEdit},
		"tasks.edit_hyper_params":   {v(1, 0), false, tasksEditHyperParams},
		"workers.register":          {v(2, 4), false, workersRegister},
		"workers.unregister":        {v(2, 4), false, workersUnregister},
		"workers.status_report":     {v(2, 4), false, workersStatusReport},
		"events.add_batch":          {v(1, 0), false, eventsAddBatch},
		"projects.create":           {v(1, 0), false, projectsCreate},
		"projects.get_by_id":        {v(1, 0), false, projectsGetByID},
		"projects.get_all":          {v(1, 0), false, projectsGetAll},
		"users.get_by_id":           {v(1, 0), false, usersGetByID},
		"users.get_current_user":    {v(1, 0), false, usersGetCurrentUser},
	}
}

// workerKey is the server's (company, user, worker id) key.
func workerKey(c *call, id string) string {
	return c.identity.Company + "/" + c.identity.User + "/" + id
}

func (s *Server) expireWorkers(now time.Time) {
	for key, w := range s.workers {
		if now.Sub(w.LastActivity) > w.Timeout {
			delete(s.workers, key)
		}
	}
}

// queueWatched says whether a live worker serves the queue (tasks.enqueue verify_watched_queue).
func (s *Server) queueWatched(queueID string) bool {
	for _, w := range s.workers {
		if slices.Contains(w.Queues, queueID) {
			return true
		}
	}
	return false
}

func remoteIP(c *call) string {
	host, _, err := net.SplitHostPort(c.remote)
	if err != nil {
		return c.remote
	}
	return host
}

func workersRegister(s *Server, c *call) (any, *apiError) {
	req, aerr := decode[struct {
		Worker     string   `json:"worker"`
		Queues     []string `json:"queues"`
		Timeout    int      `json:"timeout"`
		Tags       []string `json:"tags"`
		SystemTags []string `json:"system_tags"`
	}](c, "worker")
	if aerr != nil {
		return nil, aerr
	}
	timeout := time.Duration(req.Timeout) * time.Second
	if req.Timeout == 0 {
		timeout = defaultWorkerTimeout
	}
	if timeout <= 0 {
		return nil, newError(400, 1002, "Worker registration failed", "invalid timeout", "timeout", req.Timeout, "worker", req.Worker)
	}
	var unknown []string
	for _, q := range req.Queues {
		if _, ok := s.queues[q]; !ok {
			unknown = append(unknown, q)
		}
	}
	if len(unknown) > 0 {
		return nil, newError(400, 701, "Invalid queue id", "", "ids", unknown)
	}
	s.workers[workerKey(c, req.Worker)] = &Worker{ID: req.Worker, User: c.identity.User, Company: c.identity.Company,
		IP: remoteIP(c), Queues: slices.Clone(req.Queues), Tags: slices.Clone(req.Tags),
		RegisterTime: c.now, LastActivity: c.now, Timeout: timeout}
	return nil, nil
}

func workersUnregister(s *Server, c *call) (any, *apiError) {
	req, aerr := decode[struct {
		Worker string `json:"worker"`
	}](c, "worker")
	if aerr != nil {
		return nil, aerr
	}
	// auto_unregister: an unknown worker is not an error.
	delete(s.workers, workerKey(c, req.Worker))
	return nil, nil
}

func workersStatusReport(s *Server, c *call) (any, *apiError) {
	req, aerr := decode[struct {
		Worker    string   `json:"worker"`
		Timestamp int64    `json:"timestamp"`
		Task      string   `json:"task"`
		Queue     string   `json:"queue"`
		Queues    []string `json:"queues"`
		Tags      []string `json:"tags"`
	}](c, "worker", "timestamp")
	if aerr != nil {
		return nil, aerr
	}
	var task *Task
	if req.Task != "" {
		if task, aerr = s.taskByID(c, req.Task); aerr != nil {
			return nil, aerr
		}
	}
	key := workerKey(c, req.Worker)
	w, ok := s.workers[key]
	if !ok { // auto_register
		w = &Worker{ID: req.Worker, User: c.identity.User, Company: c.identity.Company, RegisterTime: c.now, Timeout: defaultWorkerTimeout}
		s.workers[key] = w
	}
	w.IP, w.LastActivity, w.Queue, w.Task = remoteIP(c), c.now, req.Queue, req.Task
	if len(req.Queues) > 0 {
		w.Queues = slices.Clone(req.Queues)
	}
	if req.Tags != nil {
		w.Tags = slices.Clone(req.Tags)
	}
	if task != nil {
		// This is what makes tasks.stop see an active worker for the next 10 minutes.
		task.LastWorker = req.Worker
		task.LastWorkerReport, task.LastUpdate, task.LastChange = c.now, c.now, c.now
	}
	return nil, nil
}

// eventTypes are the event types the server indexes.
var eventTypes = []string{"log", "training_stats_scalar", "training_stats_vector", "training_debug_image", "plot"}

func eventsAddBatch(s *Server, c *call) (any, *apiError) {
	if len(c.batch) == 0 {
		return nil, newError(400, 17, "Batch request contains no items", "")
	}
	added := 0
	errorsInfo := map[string]int{}
	for _, ev := range c.batch {
		evType, _ := ev["type"].(string)
		taskID, _ := ev["task"].(string)
		t, known := s.tasks[taskID]
		switch {
		case ev["type"] == nil:
			errorsInfo["Event must have a 'type' field"]++
		case !slices.Contains(eventTypes, strings.ReplaceAll(evType, " ", "_")):
			errorsInfo["Invalid event type "+evType]++
		case ev["task"] == nil:
			errorsInfo["Event must have a 'task' field"]++
		case !known || t.Company != c.identity.Company,
			(t.Status == statusPublished || t.Status == statusPublishing) && ev["allow_locked"] != true:
			errorsInfo[fmt.Sprintf("Invalid task id %v", ev["task"])]++
		default:
			worker, _ := ev["worker"].(string)
			level, _ := ev["level"].(string)
			msg, _ := ev["msg"].(string)
			ts := c.now.UnixMilli()
			if n, ok := ev["timestamp"].(interface{ Int64() (int64, error) }); ok {
				if v, err := n.Int64(); err == nil {
					ts = v
				}
			}
			s.events[taskID] = append(s.events[taskID], logEvent{Type: evType, Task: taskID,
				Worker: orDefault(worker, c.worker), Level: level, Msg: msg, Timestamp: ts})
			added++
		}
	}
	errorCount := 0
	pairs := make([]any, 0, 2*len(errorsInfo))
	reasons := make([]string, 0, len(errorsInfo))
	for reason, n := range errorsInfo {
		errorCount += n
		reasons = append(reasons, reason)
	}
	if added == 0 {
		sort.Strings(reasons)
		for _, reason := range reasons {
			pairs = append(pairs, reason, errorsInfo[reason])
		}
		return nil, newError(400, 131, "Events not added", "", pairs...)
	}
	return map[string]any{"added": added, "errors": errorCount, "errors_info": errorsInfo}, nil
}

func serverInfo(s *Server, c *call) (any, *apiError) {
	info := map[string]any{"version": ServerVersion, "build": "emulator", "commit": "emulator"}
	if !c.version.less(version{2, 8}) {
		info["uid"] = s.uid
	}
	if !c.version.less(version{2, 12}) {
		info["api_version"] = maxVersion.String()
	}
	return info, nil
}

func debugPing(_ *Server, c *call) (any, *apiError) {
	data := cloneMap(c.data)
	data["msg"] = "ClearML server"
	return data, nil
}
