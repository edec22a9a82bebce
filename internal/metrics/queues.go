package metrics

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Pending reasons: the reason label of clearml_glue_pending_tasks and
// clearml_glue_oldest_pending_task_age_seconds. Kubernetes reasons are folded into these few
// classes (PendingReason) so the label stays small; the exact reason goes to the task's status
// message.
const (
	// ReasonUnschedulable: the scheduler found no node (resources, taints, affinity, GPUs).
	ReasonUnschedulable = "Unschedulable"
	// ReasonImagePull: ErrImagePull, ImagePullBackOff, InvalidImageName, ErrImageNeverPull.
	ReasonImagePull = "ImagePull"
	// ReasonContainerConfig: CreateContainerConfigError, CreateContainerError (a missing Secret
	// or ConfigMap, a bad volume).
	ReasonContainerConfig = "ContainerConfig"
	// ReasonPodNotCreated: the Job exists but has no pod yet (a ResourceQuota or LimitRange
	// refusing it, an admission webhook, or the Job controller not yet done).
	ReasonPodNotCreated = "PodNotCreated"
	// ReasonStarting: scheduled, no waiting reason yet (ContainerCreating, PodInitializing).
	ReasonStarting = "Starting"
	// ReasonOther: any other waiting reason.
	ReasonOther = "Other"
)

// PendingReasons lists every reason label value, in display order.
var PendingReasons = []string{ReasonUnschedulable, ReasonImagePull, ReasonContainerConfig, ReasonPodNotCreated, ReasonStarting, ReasonOther}

// PendingReason folds a Kubernetes waiting reason or PodScheduled condition reason (as the
// monitor's pendingReason returns it; "" when there is none) into a reason label.
func PendingReason(k8sReason string) string {
	switch k8sReason {
	case "Unschedulable", "SchedulingGated":
		return ReasonUnschedulable
	case "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "RegistryUnavailable", "ImageInspectError":
		return ReasonImagePull
	case "CreateContainerConfigError", "CreateContainerError":
		return ReasonContainerConfig
	case "", "ContainerCreating", "PodInitializing":
		return ReasonStarting
	case ReasonPodNotCreated, ReasonImagePull, ReasonContainerConfig, ReasonStarting, ReasonOther:
		return k8sReason // already a label value
	}
	return ReasonOther
}

// Limits: the limit label of clearml_glue_queue_at_limit, what stops the glue from pulling one
// more task from a queue.
const (
	LimitQueueMaxPods   = "queue_max_pods"  // the queue's maxPods
	LimitMaxPods        = "max_pods"        // the global maxPods
	LimitMaxResources   = "max_resources"   // monitoredResources.maxResources
	LimitSessionService = "session_service" // every port-mode session Service is taken
)

// Limits lists every limit label value.
var Limits = []string{LimitQueueMaxPods, LimitMaxPods, LimitMaxResources, LimitSessionService}

var (
	// QueueDepth is the number of tasks waiting in each served ClearML queue.
	QueueDepth = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "queue_depth", Help: "Tasks waiting in the ClearML queue, per served queue.",
	}, []string{"queue"})
	// QueueAtLimit is 1 for the limit that keeps the glue from pulling from a queue, else 0.
	QueueAtLimit = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "queue_at_limit",
		Help: "1 while the queue takes no more tasks because of limit (queue_max_pods, max_pods, max_resources, session_service).",
	}, []string{"queue", "limit"})
)

// waitState holds what the age and pending collectors compute at scrape time, so ages are
// always current without anyone updating them.
type waitState struct {
	mu      sync.Mutex
	served  []string             // served queue names: their series exist even at zero
	names   map[string]string    // queue id -> name, of every queue served since the start
	oldest  map[string]time.Time // queue -> when its oldest waiting entry was added
	pending map[string]pendingTask
	now     func() time.Time
}

type pendingTask struct {
	queue, reason string
	since         time.Time
}

var wait = &waitState{names: map[string]string{}, oldest: map[string]time.Time{}, pending: map[string]pendingTask{}, now: time.Now}

var (
	oldestQueuedDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "oldest_queued_task_age_seconds"),
		"Age of the oldest task waiting in the ClearML queue (0 when the queue is empty), per served queue.", []string{"queue"}, nil)
	pendingDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "pending_tasks"),
		"Launched tasks whose pod is not running yet, per queue and reason.", []string{"queue", "reason"}, nil)
	oldestPendingDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "oldest_pending_task_age_seconds"),
		"Time the oldest pending task of the queue has been pending for this reason (0 when none).", []string{"queue", "reason"}, nil)
)

// Describe implements prometheus.Collector.
func (w *waitState) Describe(ch chan<- *prometheus.Desc) {
	ch <- oldestQueuedDesc
	ch <- pendingDesc
	ch <- oldestPendingDesc
}

// Collect implements prometheus.Collector: served queues always have every series (0 when
// idle); a queue no longer served still shows its pending tasks until they start or end.
func (w *waitState) Collect(ch chan<- prometheus.Metric) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	for _, q := range w.served {
		age := 0.0
		if t, ok := w.oldest[q]; ok && !t.IsZero() {
			age = max(now.Sub(t).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(oldestQueuedDesc, prometheus.GaugeValue, age, q)
	}
	type key struct{ queue, reason string }
	count, oldest := map[key]float64{}, map[key]float64{}
	for _, q := range w.served {
		for _, r := range PendingReasons {
			count[key{q, r}], oldest[key{q, r}] = 0, 0
		}
	}
	for _, p := range w.pending {
		k := key{p.queue, p.reason}
		count[k]++
		oldest[k] = max(oldest[k], now.Sub(p.since).Seconds(), 0)
	}
	for k, n := range count {
		ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, n, k.queue, k.reason)
		ch <- prometheus.MustNewConstMetric(oldestPendingDesc, prometheus.GaugeValue, oldest[k], k.queue, k.reason)
	}
}

// SetServedQueues declares the queues the glue serves now, id -> name (call it whenever they
// change): their per-queue series exist from then on, at zero (tasks_pulled_total,
// tasks_launched_total, live_objects, queue_depth, queue_at_limit and the ages), so dashboards
// and alerts see 0 instead of nothing; the gauges of a queue no longer served are removed.
func SetServedQueues(served map[string]string) {
	queues := slices.Sorted(maps.Values(served))
	queues = slices.Compact(queues)
	wait.mu.Lock()
	old := wait.served
	wait.served = queues
	for id, name := range served {
		wait.names[id] = name
	}
	for q := range wait.oldest {
		if !slices.Contains(queues, q) {
			delete(wait.oldest, q)
		}
	}
	wait.mu.Unlock()
	for _, q := range old {
		if !slices.Contains(queues, q) {
			QueueDepth.DeleteLabelValues(q)
			QueueAtLimit.DeletePartialMatch(prometheus.Labels{"queue": q})
		}
	}
	for _, q := range queues {
		TasksPulled.WithLabelValues(q)
		TasksLaunched.WithLabelValues(q)
		LiveObjects.WithLabelValues(q)
		QueueDepth.WithLabelValues(q)
		for _, l := range Limits {
			QueueAtLimit.WithLabelValues(q, l)
		}
	}
}

// QueueName returns the name of a queue id the glue serves or served: every metric labels queues
// by name, while Kubernetes objects carry the id (podtemplate.LabelQueue). An unknown id is
// returned as it is.
func QueueName(id string) string {
	wait.mu.Lock()
	defer wait.mu.Unlock()
	if name, ok := wait.names[id]; ok {
		return name
	}
	return id
}

// SetQueueDepth records what the scheduler's queues.get_all said about a served queue: the
// number of entries and when the oldest of them was added (zero time when the queue is empty).
func SetQueueDepth(queue string, depth int, oldestAdded time.Time) {
	QueueDepth.WithLabelValues(queue).Set(float64(depth))
	wait.mu.Lock()
	defer wait.mu.Unlock()
	if depth == 0 || oldestAdded.IsZero() {
		delete(wait.oldest, queue)
		return
	}
	wait.oldest[queue] = oldestAdded
}

// SetQueueLimit records the admission of a served queue for this cycle: limit is the limit that
// refused it (one of Limits), or "" when the queue may take one more task.
func SetQueueLimit(queue, limit string) {
	for _, l := range Limits {
		v := 0.0
		if l == limit {
			v = 1
		}
		QueueAtLimit.WithLabelValues(queue, l).Set(v)
	}
}

// SetTaskPending records that a launched task's pod is not running yet: queue is the task's
// queue, reason a Kubernetes reason or a Reason* value (folded by PendingReason), since when
// the wait began (the pod's or the Job's creation time). Calling it again updates the reason;
// the task id is never a label.
func SetTaskPending(taskID, queue, reason string, since time.Time) {
	wait.mu.Lock()
	defer wait.mu.Unlock()
	wait.pending[taskID] = pendingTask{queue: queue, reason: PendingReason(reason), since: since}
}

// ClearTaskPending records that the task's pod runs, ended, or is gone. It is cheap and safe to
// call for a task that was not pending.
func ClearTaskPending(taskID string) {
	wait.mu.Lock()
	defer wait.mu.Unlock()
	delete(wait.pending, taskID)
}
