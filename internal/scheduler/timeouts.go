package scheduler

import "time"

// Launch timing. DefaultRecoverSettle (recover.go) is the other named duration of the package.
const (
	// DefaultCreateRetry is Options.CreateRetry's default: how long a launch retries an
	// unreachable Kubernetes API before the task goes back to the front of its queue. Longer
	// than an API server restart or a control-plane upgrade step, short enough that a task does
	// not sit in no queue for long during a real outage.
	DefaultCreateRetry = 2 * time.Minute
	// createRetryInitial and createRetryMax shape the backoff of the task object's create (and
	// of its owner token Secret's): the first retry soon (a conflict with a finishing earlier
	// run clears in well under a second), then at most every few seconds so a recovered API
	// server is used at once.
	createRetryInitial = 200 * time.Millisecond
	createRetryMax     = 5 * time.Second
	// popTimeout bounds queues.get_next_task, which a shutdown does not cancel (a pop whose
	// answer is lost strands the task): it caps the ClearML client's retries (5 minutes by
	// default) so a shutdown waits at most this long for a pop. A cycle's read ahead of its pops
	// (readahead.go) has the same bound.
	popTimeout = time.Minute
	// launchSlack is what a launch gets beyond CreateRetry for its ClearML calls (read the task,
	// push it to the pending queue, or give it back) once shutdown has started.
	launchSlack = time.Minute
)

// finishFactor sizes the stage after the create (pending push, properties) against the launch
// slots: its writes take about as long as a pop and a read, so a few times as many places keep
// it from holding the creates back unless ClearML is much slower than Kubernetes.
const finishFactor = 4
