package clearml

import "context"

// TasksGetAllRequest filters tasks.get_all. Unknown ids are silently left out; tasks with the
// "hidden" system tag are returned only with SearchHidden or ID. OnlyFields takes dotted
// paths ("execution.queue", "container"); the id is always returned. An empty ID is no id
// filter at all (every task): check for an empty id list before asking.
type TasksGetAllRequest struct {
	ID     []string `json:"id,omitempty"`
	Status []string `json:"status,omitempty"`
	// ExecutionQueue keeps tasks whose execution.queue is one of these queue ids.
	ExecutionQueue []string `json:"execution.queue,omitempty"`
	Name           string   `json:"name,omitempty"`
	Tags           []string `json:"tags,omitempty"`
	SystemTags     []string `json:"system_tags,omitempty"`
	OnlyFields     []string `json:"only_fields,omitempty"`
	SearchHidden   bool     `json:"search_hidden,omitempty"`
	// Page and PageSize ask for one page only (see TasksGetAll); leave both nil for the
	// complete list. The server caps PageSize at its maximum page (500 by default) and takes
	// that maximum when only Page is set.
	Page     *int `json:"page,omitempty"`
	PageSize *int `json:"page_size,omitempty"`
}

func (r TasksGetAllRequest) ids() []string { return r.ID }
func (r TasksGetAllRequest) onePage() bool { return r.Page != nil || r.PageSize != nil }
func (r TasksGetAllRequest) withPage(ids []string, page, size int) any {
	r.ID, r.Page, r.PageSize = ids, &page, &size
	return r
}

// TasksGetAll returns every task that matches req, however many there are: the server answers
// at most one page (500) per call, so the ids are sent in chunks of Config.PageSize and,
// without ids, pages are followed until a short one. The order is the server's, chunk by chunk;
// a failed call fails the whole listing. With req.Page or req.PageSize set it is a single call
// returning that page only.
func (c *Client) TasksGetAll(ctx context.Context, req TasksGetAllRequest) ([]Task, error) {
	return getAll(ctx, c, "tasks.get_all", "tasks", req, func(t *Task) string { return t.ID })
}

// TaskQueue is a task's id and the queue it was last enqueued to: a slim element for listings
// of many tasks, where a decoded Task costs ~0.7 KB (35 MB for 50,000 queued tasks).
type TaskQueue struct {
	ID        string `json:"id"`
	Execution struct {
		Queue string `json:"queue"`
	} `json:"execution"`
}

// TasksGetAllQueues is TasksGetAll projected on id and execution.queue (req.OnlyFields is set).
func (c *Client) TasksGetAllQueues(ctx context.Context, req TasksGetAllRequest) ([]TaskQueue, error) {
	req.OnlyFields = []string{"id", "execution.queue"}
	return getAll(ctx, c, "tasks.get_all", "tasks", req, func(t *TaskQueue) string { return t.ID })
}

// TasksGetByID returns the full task; an unknown id is 400/101 (IsInvalidTaskID).
func (c *Client) TasksGetByID(ctx context.Context, taskID string) (*Task, error) {
	out, err := callFor[struct {
		Task Task `json:"task"`
	}](ctx, c, "tasks.get_by_id", map[string]string{"task": taskID})
	if err != nil {
		return nil, err
	}
	return &out.Task, nil
}

// TasksCreateRequest creates a task in status created. Type is one of training, testing,
// inference, data_processing, application, monitor, controller, optimizer, service, qc, custom.
type TasksCreateRequest struct {
	Name        string                           `json:"name"`
	Type        string                           `json:"type"`
	Project     string                           `json:"project,omitempty"`
	Parent      string                           `json:"parent,omitempty"`
	Comment     string                           `json:"comment,omitempty"`
	Tags        []string                         `json:"tags,omitempty"`
	SystemTags  []string                         `json:"system_tags,omitempty"`
	Container   *Container                       `json:"container,omitempty"`
	Execution   *Execution                       `json:"execution,omitempty"`
	Hyperparams map[string]map[string]HyperParam `json:"hyperparams,omitempty"`
	Runtime     map[string]any                   `json:"runtime,omitempty"`
}

// TasksCreate creates a task and returns its id.
func (c *Client) TasksCreate(ctx context.Context, req TasksCreateRequest) (string, error) {
	out, err := callFor[struct {
		ID string `json:"id"`
	}](ctx, c, "tasks.create", req)
	if err != nil {
		return "", err
	}
	return out.ID, nil
}

// UpdateResult is the answer of the calls that change a task: how many tasks changed and the
// fields written (datetimes as strings).
type UpdateResult struct {
	Updated int            `json:"updated"`
	Fields  map[string]any `json:"fields,omitempty"`
}

// TaskStatusRequest drives tasks.stop, stopped, failed, started and completed. Without Force
// the server applies the status state machine (400/110 on a refused transition).
type TaskStatusRequest struct {
	Task          string `json:"task"`
	Force         bool   `json:"force,omitempty"`
	StatusReason  string `json:"status_reason,omitempty"`
	StatusMessage string `json:"status_message,omitempty"`
}

// TasksStop stops a task: a queued one is removed from its queue and stopped; one with a
// worker that reported in the last 10 minutes only gets status_message "stopping".
func (c *Client) TasksStop(ctx context.Context, req TaskStatusRequest) (*UpdateResult, error) {
	return callFor[UpdateResult](ctx, c, "tasks.stop", req)
}

// TasksStopped sets status stopped (what an agent reports after an abort).
func (c *Client) TasksStopped(ctx context.Context, req TaskStatusRequest) (*UpdateResult, error) {
	return callFor[UpdateResult](ctx, c, "tasks.stopped", req)
}

// TasksFailed sets status failed; it does not touch queues.
func (c *Client) TasksFailed(ctx context.Context, req TaskStatusRequest) (*UpdateResult, error) {
	return callFor[UpdateResult](ctx, c, "tasks.failed", req)
}

// TasksStarted sets status in_progress.
func (c *Client) TasksStarted(ctx context.Context, req TaskStatusRequest) (*UpdateResult, error) {
	return callFor[UpdateResult](ctx, c, "tasks.started", req)
}

// TasksCompleted sets status completed.
func (c *Client) TasksCompleted(ctx context.Context, req TaskStatusRequest) (*UpdateResult, error) {
	return callFor[UpdateResult](ctx, c, "tasks.completed", req)
}

// TasksEnqueueRequest puts a task at the end of a queue (Queue id, or QueueName which is
// created if missing, or neither for the default queue).
type TasksEnqueueRequest struct {
	Task          string `json:"task"`
	Queue         string `json:"queue,omitempty"`
	QueueName     string `json:"queue_name,omitempty"`
	StatusReason  string `json:"status_reason,omitempty"`
	StatusMessage string `json:"status_message,omitempty"`
	Force         bool   `json:"force,omitempty"`
	// UpdateExecutionQueue defaults to true on the server; false requires the task to be
	// queued already with execution.queue set.
	UpdateExecutionQueue *bool `json:"update_execution_queue,omitempty"`
}

// TasksEnqueue sets the task queued, appends it to the queue and removes it from every other
// queue. Errors the glue acts on: 400/701 (queue vanished: recreate it and retry once),
// 400/706 (already in that queue), 400/110 (refused transition).
func (c *Client) TasksEnqueue(ctx context.Context, req TasksEnqueueRequest) error {
	return c.Call(ctx, "tasks.enqueue", req, nil)
}

// TasksEnqueueManyRequest puts several tasks at the end of one queue with one status reason and
// message (API 2.13). The server enqueues them one by one as tasks.enqueue would, without force
// and setting execution.queue.
type TasksEnqueueManyRequest struct {
	IDs           []string `json:"ids"`
	Queue         string   `json:"queue,omitempty"`
	StatusReason  string   `json:"status_reason,omitempty"`
	StatusMessage string   `json:"status_message,omitempty"`
}

// TasksEnqueueManyResult maps each task that was not enqueued to its error; the others were.
type TasksEnqueueManyResult map[string]*APIError

// TasksEnqueueMany enqueues req.IDs in one call. A task's own error (400/110 refused
// transition, 400/701 queue vanished, ...) is in the result under its id, as an *APIError for
// IsSubcode; an error of the call itself is returned.
func (c *Client) TasksEnqueueMany(ctx context.Context, req TasksEnqueueManyRequest) (TasksEnqueueManyResult, error) {
	var out struct {
		Failed []struct {
			ID    string `json:"id"`
			Error struct {
				Codes []int          `json:"codes"`
				Msg   string         `json:"msg"`
				Data  map[string]any `json:"data"`
			} `json:"error"`
		} `json:"failed"`
	}
	if err := c.Call(ctx, "tasks.enqueue_many", req, &out); err != nil {
		return nil, err
	}
	failed := TasksEnqueueManyResult{}
	for _, f := range out.Failed {
		e := &APIError{Msg: f.Error.Msg, ErrorData: f.Error.Data, Endpoint: "tasks.enqueue_many"}
		if len(f.Error.Codes) == 2 {
			e.ResultCode, e.Subcode, e.HTTPStatus = f.Error.Codes[0], f.Error.Codes[1], f.Error.Codes[0]
		}
		failed[f.ID] = e
	}
	return failed, nil
}

// TasksDequeueRequest takes a task out of its queue. The status becomes NewStatus, or the
// status before the enqueue, or created.
type TasksDequeueRequest struct {
	Task                string `json:"task"`
	StatusReason        string `json:"status_reason,omitempty"`
	StatusMessage       string `json:"status_message,omitempty"`
	Force               bool   `json:"force,omitempty"`
	RemoveFromAllQueues bool   `json:"remove_from_all_queues,omitempty"`
	NewStatus           string `json:"new_status,omitempty"`
}

// TasksDequeue returns Updated 0 when the task was neither queued nor in_progress (for
// example aborted meanwhile), which tells an in-pod agent not to run it.
func (c *Client) TasksDequeue(ctx context.Context, req TasksDequeueRequest) (*UpdateResult, error) {
	return callFor[UpdateResult](ctx, c, "tasks.dequeue", req)
}

// TasksUpdateRequest changes plain task fields, with no status check. Empty fields are not sent.
type TasksUpdateRequest struct {
	Task          string   `json:"task"`
	Name          string   `json:"name,omitempty"`
	Comment       string   `json:"comment,omitempty"`
	StatusReason  string   `json:"status_reason,omitempty"`
	StatusMessage string   `json:"status_message,omitempty"`
	Tags          []string `json:"tags,omitempty"`
	SystemTags    []string `json:"system_tags,omitempty"`
}

// TasksUpdate updates fields; the glue uses it for the pending-pod status_message.
func (c *Client) TasksUpdate(ctx context.Context, req TasksUpdateRequest) (*UpdateResult, error) {
	return callFor[UpdateResult](ctx, c, "tasks.update", req)
}

// TasksEditRequest edits a task; without Force the task must be created (400/110).
// Container and Runtime replace the stored values whole, so send the merged result.
type TasksEditRequest struct {
	Task      string         `json:"task"`
	Force     bool           `json:"force,omitempty"`
	Name      string         `json:"name,omitempty"`
	Container *Container     `json:"container,omitempty"`
	Runtime   map[string]any `json:"runtime,omitempty"`
}

// TasksEdit edits a task.
func (c *Client) TasksEdit(ctx context.Context, req TasksEditRequest) (*UpdateResult, error) {
	return callFor[UpdateResult](ctx, c, "tasks.edit", req)
}

// TasksEditHyperParamsRequest upserts hyperparameters. Items only in section "properties"
// are allowed in any status; others need status created (or Force with queued/in_progress).
type TasksEditHyperParamsRequest struct {
	Task        string       `json:"task"`
	Hyperparams []HyperParam `json:"hyperparams"`
	// ReplaceHyperparams is "none" (default), "section" or "all".
	ReplaceHyperparams string `json:"replace_hyperparams,omitempty"`
	Force              bool   `json:"force,omitempty"`
}

// TasksEditHyperParams edits hyperparameters, e.g. the glue's properties/k8s-queue.
// A 404 means the server predates the endpoint (API < 2.9).
func (c *Client) TasksEditHyperParams(ctx context.Context, req TasksEditHyperParamsRequest) (*UpdateResult, error) {
	return callFor[UpdateResult](ctx, c, "tasks.edit_hyper_params", req)
}
