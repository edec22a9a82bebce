package clearml

// Status reasons and messages the glue writes on tasks. They must stay byte-identical to the
// Python glue's: its cleanup logic and the ClearML UI key on them (clearml-api.md §8).
const (
	// PendingQueueReason marks a task pushed into the glue's pending queue.
	PendingQueueReason = "k8s pending scheduler"
	// MovingToPendingReason is sent with the tasks.stop that precedes the pending push.
	MovingToPendingReason = "moving to k8s pending queue"
	// PodDeletedReason marks a task whose pod vanished before it finished; JobDeletedReason
	// is its job-mode form.
	PodDeletedReason = "Pod deleted (not pending or running)"
	JobDeletedReason = "Job deleted (not pending or running)"
	// MaxPodLimitReason marks a task returned to its queue because the pod limit was reached.
	MaxPodLimitReason = "k8s max pod limit (no free k8s service)"
	// KubectlParsingErrorReason marks a task returned to its queue after a pod-count failure.
	KubectlParsingErrorReason = "kubectl parsing error"
	// GlueErrorReasonPrefix prefixes the reason of a task failed by the glue (e.g. image pull).
	GlueErrorReasonPrefix = "K8S glue error: "
	// ChangedByGlueMessage is the status_message of tasks the glue failed.
	ChangedByGlueMessage = "Changed by K8S glue"
	// GlueStatusMessagePrefix prefixes the pending-pod status shown on a task.
	GlueStatusMessagePrefix = "K8S glue status: "
	// ReenqueueFailedReason marks a task that could not be put back into its queue.
	ReenqueueFailedReason = "Task could not be re-enqueued"
	// PolicyPushedBackReason and PolicyAllocatedReason are written by the enterprise policy
	// manager; cleanup must skip queued tasks carrying them, like PendingQueueReason.
	PolicyPushedBackReason = "pushed back by policy manager"
	PolicyAllocatedReason  = "allocated by policy manager"
	// StartingReason, DoneReason and ExitCodeReasonFormat are what the in-pod agent writes.
	StartingReason       = "starting execution soon"
	DoneReason           = "worker execution done"
	ExitCodeReasonFormat = "worker execution exit code %d"
)

// Log lines the glue sends with events.add_batch (clearml-api.md §6.2, §6.5).
const (
	PulledLogFormat    = "task %s pulled from %s by worker %s" // task id, queue id, worker id
	PodStatusLogPrefix = "Kubernetes Pod status: "
	K8SErrorLogPrefix  = "K8S Error: "
)

// Task statuses (clearml-api.md §3).
const (
	StatusCreated    = "created"
	StatusQueued     = "queued"
	StatusInProgress = "in_progress"
	StatusStopped    = "stopped"
	StatusPublishing = "publishing"
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

// DeletedMessage is the status_message written with PodDeletedReason (kind "Pod") or
// JobDeletedReason (kind "Job").
func DeletedMessage(kind, workerID string) string { return kind + " deleted by agent " + workerID }
