// Package metrics holds the glue's Prometheus metrics, all in one registry with the
// clearml_glue prefix, and the HTTP server that exposes them with the health probes.
package metrics

import (
	"regexp"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

const namespace = "clearml_glue"

// Registry holds every metric below plus the Go and process collectors. It is a
// prometheus.Registry that remembers its collectors, for Names.
var Registry = &registry{Registry: prometheus.NewRegistry()}

type registry struct {
	*prometheus.Registry
	mu         sync.Mutex
	collectors []prometheus.Collector
}

// Register registers c and remembers it.
func (r *registry) Register(c prometheus.Collector) error {
	if err := r.Registry.Register(c); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.collectors = append(r.collectors, c)
	return nil
}

// MustRegister registers cs and remembers them; it panics like prometheus.MustRegister.
func (r *registry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

var (
	// TasksPulled counts tasks taken from a ClearML queue.
	TasksPulled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "tasks_pulled_total", Help: "Tasks pulled from ClearML queues.",
	}, []string{"queue"})
	// TasksLaunched counts Jobs or Pods created for tasks.
	TasksLaunched = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "tasks_launched_total", Help: "Task objects created.",
	}, []string{"queue"})
	// TasksRequeued counts tasks put back into a queue, by why.
	TasksRequeued = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "tasks_requeued_total", Help: "Tasks put back into a queue.",
	}, []string{"queue", "reason"})
	// TasksFailed counts tasks the glue failed, by why.
	TasksFailed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "tasks_failed_total", Help: "Tasks failed by the glue.",
	}, []string{"reason"})
	// LaunchSeconds is the time from a task leaving its queue to its object existing.
	LaunchSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "launch_duration_seconds", Help: "From get_next_task to the object created.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
	})
	// ConfigReloads counts ConfigMap loads by result (ok, invalid).
	ConfigReloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "config_reloads_total", Help: "Glue config loads by result.",
	}, []string{"result"})
	// ConfigValid is 1 when the newest ConfigMap content is the one serving, 0 when it was refused.
	ConfigValid = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "config_valid", Help: "1 if the newest glue config was accepted.",
	})
	// LiveObjects is the number of unfinished task objects per queue.
	LiveObjects = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "live_objects", Help: "Unfinished task Jobs/Pods per queue.",
	}, []string{"queue"})
	// PollCycles counts scheduling cycles, by whether a task was found.
	PollCycles = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "poll_cycles_total", Help: "Scheduling cycles by outcome.",
	}, []string{"outcome"})
	// ClearMLErrors counts failed ClearML calls made by the glue's own logic.
	ClearMLErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "clearml_errors_total", Help: "Failed ClearML operations.",
	}, []string{"operation"})
	// KubernetesErrors counts failed Kubernetes API calls made by the glue's own logic.
	KubernetesErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "kubernetes_errors_total", Help: "Failed Kubernetes API operations.",
	}, []string{"operation"})
	// IsLeader is 1 while this replica holds the lease (or runs without leader election).
	IsLeader = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "leader", Help: "1 if this replica is the active glue.",
	})
)

func init() {
	// go_gc_heap_live_bytes (what the last collection found live) besides the memstats: the heap
	// in use swings with the garbage between collections, the live heap is what the caches hold.
	goCollector := collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
		collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)}))
	Registry.MustRegister(goCollector, collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		TasksPulled, TasksLaunched, TasksRequeued, TasksFailed, LaunchSeconds, ConfigReloads, ConfigValid,
		LiveObjects, PollCycles, ClearMLErrors, KubernetesErrors, IsLeader,
		QueueDepth, QueueAtLimit, wait, ClearMLRequestSeconds, ClearMLRequests,
		KubernetesRequestSeconds, KubernetesRequests, KubernetesRateLimiterSeconds, BuildInfo)
	SetBuildInfo(stampedVersion())
}

var fqNameRE = regexp.MustCompile(`fqName: "([^"]+)"`)

// Names returns the name of every metric family Registry can export, samples or not: a family
// with labels has no sample before its first label set is used.
func Names() []string {
	Registry.mu.Lock()
	cs := slices.Clone(Registry.collectors)
	Registry.mu.Unlock()
	ch := make(chan *prometheus.Desc, 64)
	go func() {
		for _, c := range cs {
			c.Describe(ch)
		}
		close(ch)
	}()
	var names []string
	for d := range ch {
		if m := fqNameRE.FindStringSubmatch(d.String()); m != nil && !slices.Contains(names, m[1]) {
			names = append(names, m[1])
		}
	}
	slices.Sort(names)
	return names
}
