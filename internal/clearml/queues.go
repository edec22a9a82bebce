package clearml

import "context"

// callFor calls endpoint and returns its decoded data.
func callFor[T any](ctx context.Context, c *Client, endpoint string, req any) (*T, error) {
	out := new(T)
	if err := c.Call(ctx, endpoint, req, out); err != nil {
		return nil, err
	}
	return out, nil
}

// QueuesGetAllRequest filters queues.get_all. Name is an unanchored, case-sensitive regular
// expression (use regexp.QuoteMeta for a literal name); hidden queues (system tag k8s-glue)
// are returned only with SearchHidden, ID or Name. An empty ID is no id filter at all.
type QueuesGetAllRequest struct {
	ID           []string `json:"id,omitempty"`
	Name         string   `json:"name,omitempty"`
	Tags         []string `json:"tags,omitempty"`
	SystemTags   []string `json:"system_tags,omitempty"`
	OnlyFields   []string `json:"only_fields,omitempty"`
	SearchHidden bool     `json:"search_hidden,omitempty"`
	// MaxTaskEntries lists at most this many entries of each queue, front first (0: all).
	MaxTaskEntries int `json:"max_task_entries,omitempty"`
	// Page and PageSize ask for one page only, as in TasksGetAllRequest.
	Page     *int `json:"page,omitempty"`
	PageSize *int `json:"page_size,omitempty"`
}

func (r QueuesGetAllRequest) ids() []string { return r.ID }
func (r QueuesGetAllRequest) onePage() bool { return r.Page != nil || r.PageSize != nil }
func (r QueuesGetAllRequest) withPage(ids []string, page, size int) any {
	r.ID, r.Page, r.PageSize = ids, &page, &size
	return r
}

// QueuesGetAll returns every queue that matches req (no match is an empty list), in id chunks
// and pages like TasksGetAll; with req.Page or req.PageSize set, that page only.
func (c *Client) QueuesGetAll(ctx context.Context, req QueuesGetAllRequest) ([]Queue, error) {
	return getAll(ctx, c, "queues.get_all", "queues", req, func(q *Queue) string { return q.ID })
}

// QueuesGetByID returns a queue with its entries; a missing queue is 400/701 (IsInvalidQueueID).
func (c *Client) QueuesGetByID(ctx context.Context, queueID string) (*Queue, error) {
	out, err := callFor[struct {
		Queue Queue `json:"queue"`
	}](ctx, c, "queues.get_by_id", map[string]string{"queue": queueID})
	if err != nil {
		return nil, err
	}
	return &out.Queue, nil
}

// QueuesGetNumEntries returns how many entries a queue holds; a missing queue is 400/701.
func (c *Client) QueuesGetNumEntries(ctx context.Context, queueID string) (int, error) {
	out, err := callFor[struct {
		Num int `json:"num"`
	}](ctx, c, "queues.get_num_entries", map[string]string{"queue": queueID})
	if err != nil {
		return 0, err
	}
	return out.Num, nil
}

// QueuesCreateRequest creates a queue; the glue's pending queue carries SystemTags [k8s-glue].
type QueuesCreateRequest struct {
	Name        string   `json:"name"`
	DisplayName string   `json:"display_name,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	SystemTags  []string `json:"system_tags,omitempty"`
}

// QueuesCreate creates a queue and returns its id: 400/801 for a duplicate name, 400/800 for a
// name shorter than 3 characters.
func (c *Client) QueuesCreate(ctx context.Context, req QueuesCreateRequest) (string, error) {
	out, err := callFor[struct {
		ID string `json:"id"`
	}](ctx, c, "queues.create", req)
	if err != nil {
		return "", err
	}
	return out.ID, nil
}

// QueueRef names a queue.
type QueueRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// QueuesGetDefault returns the queue with system tag "default" (400/707 none, 400/708 several).
func (c *Client) QueuesGetDefault(ctx context.Context) (*QueueRef, error) {
	return callFor[QueueRef](ctx, c, "queues.get_default", nil)
}

// NextTask is a task popped from a queue.
type NextTask struct {
	Entry QueueEntry `json:"entry"`
	// TaskInfo is the owner of the task (company and user ids), when the server sends it.
	TaskInfo *TaskInfo `json:"task_info,omitempty"`
}

// TaskInfo identifies a popped task's owner.
type TaskInfo struct {
	Company string `json:"company"`
	User    string `json:"user"`
}

// QueuesGetNextTask pops the front entry of a queue. An empty queue returns (nil, nil); a
// missing queue is 400/701. The task's status is left queued.
func (c *Client) QueuesGetNextTask(ctx context.Context, queueID string) (*NextTask, error) {
	var out struct {
		Entry    *QueueEntry `json:"entry"`
		TaskInfo *TaskInfo   `json:"task_info"`
	}
	req := map[string]any{"queue": queueID, "get_task_info": true}
	if err := c.Call(ctx, "queues.get_next_task", req, &out); err != nil {
		return nil, err
	}
	if out.Entry == nil || out.Entry.Task == "" {
		return nil, nil
	}
	return &NextTask{Entry: *out.Entry, TaskInfo: out.TaskInfo}, nil
}

// QueuesAddTask appends a task to a queue without changing its status, and points its
// execution.queue at the queue (400/701 missing queue, 400/706 already in it).
func (c *Client) QueuesAddTask(ctx context.Context, queueID, taskID string) error {
	return c.Call(ctx, "queues.add_task", map[string]string{"queue": queueID, "task": taskID}, nil)
}

// QueuesRemoveTaskRequest removes a task from a queue. With UpdateTaskStatus the task goes back
// to its status before the enqueue when the queue is its execution.queue.
type QueuesRemoveTaskRequest struct {
	Queue            string `json:"queue"`
	Task             string `json:"task"`
	UpdateTaskStatus bool   `json:"update_task_status,omitempty"`
}

// QueuesRemoveTask returns how many entries were removed; a task not in the queue (or a
// missing queue) is 400/703, which the glue treats as "already gone".
func (c *Client) QueuesRemoveTask(ctx context.Context, req QueuesRemoveTaskRequest) (int, error) {
	out, err := callFor[struct {
		Removed int `json:"removed"`
	}](ctx, c, "queues.remove_task", req)
	if err != nil {
		return 0, err
	}
	return out.Removed, nil
}

// QueuesMoveTaskToFront makes a queued task the next one popped (400/703 when not in the queue).
func (c *Client) QueuesMoveTaskToFront(ctx context.Context, queueID, taskID string) (position int, err error) {
	out, err := callFor[struct {
		Position int `json:"position"`
	}](ctx, c, "queues.move_task_to_front", map[string]string{"queue": queueID, "task": taskID})
	if err != nil {
		return 0, err
	}
	return out.Position, nil
}
