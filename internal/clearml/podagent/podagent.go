// Package podagent plays the clearml-agent that runs inside a task pod
// (`clearml-agent execute --full-monitoring --require-queue --id T`; docs/clearml-protocol.md,
// "The pod agent's side").
package podagent

import (
	"context"
	"fmt"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
)

// Start is the agent's start: tasks.dequeue with new_status in_progress, then tasks.started.
// It reports false, without error, when the task was no longer queued or running (for
// example aborted while the pod was pending): with --require-queue the agent then exits.
func Start(ctx context.Context, client *clearml.Client, taskID string) (bool, error) {
	res, err := client.TasksDequeue(ctx, clearml.TasksDequeueRequest{Task: taskID, NewStatus: clearml.StatusInProgress})
	if err != nil {
		return false, fmt.Errorf("podagent: dequeue %s: %w", taskID, err)
	}
	if res.Updated < 1 {
		return false, nil
	}
	_, err = client.TasksStarted(ctx, clearml.TaskStatusRequest{Task: taskID, Force: true, StatusReason: clearml.StartingReason})
	if err != nil {
		return false, fmt.Errorf("podagent: started %s: %w", taskID, err)
	}
	return true, nil
}

// Finish is the agent's end of run: tasks.completed for exit code 0, otherwise tasks.failed
// with status_reason "worker execution exit code N".
func Finish(ctx context.Context, client *clearml.Client, taskID string, exitCode int) error {
	var err error
	if exitCode == 0 {
		_, err = client.TasksCompleted(ctx, clearml.TaskStatusRequest{Task: taskID, StatusReason: clearml.DoneReason})
	} else {
		_, err = client.TasksFailed(ctx, clearml.TaskStatusRequest{Task: taskID, StatusReason: fmt.Sprintf(clearml.ExitCodeReasonFormat, exitCode)})
	}
	if err != nil {
		return fmt.Errorf("podagent: finish %s: %w", taskID, err)
	}
	return nil
}
