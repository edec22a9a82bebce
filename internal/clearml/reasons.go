package clearml

// Status reasons and messages written on tasks, by the glue and by the in-pod agent. They keep
// the Python glue's and the agent's wording, which the ClearML UI shows and the Python glue's
// cleanup keys on (docs/clearml-protocol.md, "Reasons, messages and log lines").
const (
	// PendingQueueReason marks a task pushed into the glue's pending queue.
	PendingQueueReason = "k8s pending scheduler"
	// GlueErrorReasonPrefix prefixes the reason of a task failed by the glue (e.g. image pull).
	GlueErrorReasonPrefix = "K8S glue error: "
	// ChangedByGlueMessage is the status_message of tasks the glue failed.
	ChangedByGlueMessage = "Changed by K8S glue"
	// GlueStatusMessagePrefix prefixes the pending-pod status shown on a task.
	GlueStatusMessagePrefix = "K8S glue status: "
	// StartingReason, DoneReason and ExitCodeReasonFormat are what the in-pod agent writes.
	StartingReason       = "starting execution soon"
	DoneReason           = "worker execution done"
	ExitCodeReasonFormat = "worker execution exit code %d"
)

// Log lines the glue sends with events.add_batch (docs/clearml-protocol.md, "Launch" and
// "Monitor").
const (
	PulledLogFormat    = "task %s pulled from %s by worker %s" // task id, queue name, worker id
	PodStatusLogPrefix = "Kubernetes Pod status: "
	K8SErrorLogPrefix  = "K8S Error: "
)

// Task statuses the glue reads or writes (docs/clearml-protocol.md, "Task statuses").
const (
	StatusCreated    = "created"
	StatusQueued     = "queued"
	StatusInProgress = "in_progress"
	StatusStopped    = "stopped"
	StatusPublished  = "published"
	StatusClosed     = "closed"
	StatusFailed     = "failed"
	StatusCompleted  = "completed"
)

// PendingQueueName and PendingQueueTag are the defaults of the glue's hidden pending queue.
const (
	PendingQueueName = "k8s_scheduler"
	PendingQueueTag  = "k8s-glue"
)
