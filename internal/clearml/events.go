package clearml

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Event is one events.add_batch item. The glue only sends log events (Type "log").
type Event struct {
	Type string `json:"type"`
	Task string `json:"task"`
	// Worker defaults server-side to the X-ClearML-Worker header.
	Worker    string `json:"worker,omitempty"`
	Level     string `json:"level,omitempty"`
	Msg       string `json:"msg,omitempty"`
	Timestamp int64  `json:"timestamp,omitempty"` // epoch milliseconds
}

// LogEvent is a log line for a task, stamped now.
func LogEvent(taskID, level, msg string) Event {
	return Event{Type: "log", Task: taskID, Level: level, Msg: msg, Timestamp: time.Now().UnixMilli()}
}

// AddBatchResult counts what the server stored; Errors are per-event problems (unknown task,
// missing type, ...) keyed by reason in ErrorsInfo. They do not fail the call.
type AddBatchResult struct {
	Added      int            `json:"added"`
	Errors     int            `json:"errors"`
	ErrorsInfo map[string]int `json:"errors_info,omitempty"`
}

// maxBatchBytes is the request size the Python Events helper packs up to.
const maxBatchBytes = 1 << 20

// EventsAddBatch sends events as JSON lines, in requests of at most 1 MiB, and sums the
// results. No events send nothing. If no event of a request can be stored, the server answers
// 400/131.
func (c *Client) EventsAddBatch(ctx context.Context, events []Event) (*AddBatchResult, error) {
	total := &AddBatchResult{}
	var body bytes.Buffer
	flush := func() error {
		if body.Len() == 0 {
			return nil
		}
		var out AddBatchResult
		if err := c.authorizedCall(ctx, "events.add_batch", "application/json-lines", body.Bytes(), &out); err != nil {
			return err
		}
		total.Added += out.Added
		total.Errors += out.Errors
		for reason, n := range out.ErrorsInfo {
			if total.ErrorsInfo == nil {
				total.ErrorsInfo = map[string]int{}
			}
			total.ErrorsInfo[reason] += n
		}
		body.Reset()
		return nil
	}
	for i, ev := range events {
		line, err := json.Marshal(ev)
		if err != nil {
			return total, fmt.Errorf("clearml: events.add_batch: encoding event %d: %w", i, err)
		}
		if body.Len() > 0 && body.Len()+len(line)+1 > maxBatchBytes {
			if err := flush(); err != nil {
				return total, err
			}
		}
		body.Write(line)
		body.WriteByte('\n')
	}
	return total, flush()
}
