package clearml

import (
	"context"
	"time"
)

// WorkersRegisterRequest registers a worker serving queues (ids). The server forgets a worker
// that sends no register or status report for Timeout seconds (default 600).
type WorkersRegisterRequest struct {
	Worker     string   `json:"worker"`
	Queues     []string `json:"queues,omitempty"`
	Timeout    int      `json:"timeout,omitempty"`
	Tags       []string `json:"tags,omitempty"`
	SystemTags []string `json:"system_tags,omitempty"`
}

// WorkersRegister registers a worker; an unknown queue id is 400/701.
func (c *Client) WorkersRegister(ctx context.Context, req WorkersRegisterRequest) error {
	return c.Call(ctx, "workers.register", req, nil)
}

// WorkersUnregister removes a worker; an unknown worker is not an error.
func (c *Client) WorkersUnregister(ctx context.Context, workerID string) error {
	return c.Call(ctx, "workers.unregister", map[string]string{"worker": workerID}, nil)
}

// WorkersStatusReportRequest is a worker heartbeat. Task marks the task as run by this worker
// (it then counts as having an active worker for tasks.stop); an empty Task clears it.
type WorkersStatusReportRequest struct {
	Worker string `json:"worker"`
	// Timestamp is in epoch milliseconds, as the agent sends it; zero means now.
	Timestamp    int64          `json:"timestamp"`
	Task         string         `json:"task,omitempty"`
	Queue        string         `json:"queue,omitempty"`
	Queues       []string       `json:"queues,omitempty"`
	MachineStats map[string]any `json:"machine_stats,omitempty"`
	Tags         []string       `json:"tags,omitempty"`
}

// WorkersStatusReport sends a heartbeat; an unknown Task is 400/101.
func (c *Client) WorkersStatusReport(ctx context.Context, req WorkersStatusReportRequest) error {
	if req.Timestamp == 0 {
		req.Timestamp = time.Now().UnixMilli()
	}
	return c.Call(ctx, "workers.status_report", req, nil)
}
