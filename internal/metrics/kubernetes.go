package metrics

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientmetrics "k8s.io/client-go/tools/metrics"
)

var (
	// KubernetesRequestSeconds times the glue's Kubernetes API requests (client-go's Do and
	// DoRaw: gets, lists, creates, updates, deletes; not the open time of watches), per HTTP
	// verb and resource.
	KubernetesRequestSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "kubernetes_request_duration_seconds",
		Help:    "Kubernetes API request latency, per verb and resource.",
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
	}, []string{"verb", "resource"})
	// KubernetesRequests counts Kubernetes API requests per verb and HTTP code ("<error>" when
	// no response came).
	KubernetesRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "kubernetes_requests_total",
		Help: "Kubernetes API requests, per verb and HTTP code (\"<error>\": no response).",
	}, []string{"verb", "code"})
	// KubernetesRateLimiterSeconds is the time requests waited for the client's own rate limiter
	// (agentk8sglue.kubeApi.qps and burst), per verb.
	KubernetesRateLimiterSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "kubernetes_rate_limiter_duration_seconds",
		Help:    "Time Kubernetes API requests waited for the client-side rate limiter, per verb.",
		Buckets: []float64{0.001, 0.01, 0.1, 0.5, 1, 5, 30},
	}, []string{"verb"})
)

// client-go reports every REST client's requests to the adapters registered here; registering
// in init makes every client of the process report, whoever builds it.
func init() {
	clientmetrics.Register(clientmetrics.RegisterOpts{
		RequestLatency:     latencyAdapter{KubernetesRequestSeconds, true},
		RateLimiterLatency: latencyAdapter{KubernetesRateLimiterSeconds, false},
		RequestResult:      resultAdapter{},
	})
}

type latencyAdapter struct {
	h            *prometheus.HistogramVec
	withResource bool
}

func (a latencyAdapter) Observe(_ context.Context, verb string, u url.URL, latency time.Duration) {
	if a.withResource {
		a.h.WithLabelValues(verb, KubernetesResource(u.Path)).Observe(latency.Seconds())
		return
	}
	a.h.WithLabelValues(verb).Observe(latency.Seconds())
}

type resultAdapter struct{}

func (resultAdapter) Increment(_ context.Context, code, method, _ string) {
	KubernetesRequests.WithLabelValues(method, code).Inc()
}

// KubernetesResource returns the resource (and subresource) of an API path, without namespace or
// name: /api/v1/namespaces/ns/pods/p/status is "pods/status", /apis/batch/v1/namespaces/ns/jobs
// "jobs"; "other" when the path is not a resource path.
func KubernetesResource(p string) string {
	s := strings.Split(strings.Trim(p, "/"), "/")
	// A server URL may carry a path prefix (a proxy such as /k8s/clusters/c-1): skip to the API.
	if i := slices.IndexFunc(s, func(seg string) bool { return seg == "api" || seg == "apis" }); i > 0 {
		s = s[i:]
	}
	switch {
	case len(s) >= 3 && s[0] == "api":
		s = s[2:]
	case len(s) >= 4 && s[0] == "apis":
		s = s[3:]
	default:
		return "other"
	}
	if len(s) >= 3 && s[0] == "namespaces" {
		s = s[2:] // a namespaced resource; "namespaces/x" alone is the namespace itself
	}
	switch len(s) {
	case 0:
		return "namespaces"
	case 1, 2:
		return s[0]
	default:
		return s[0] + "/" + s[2]
	}
}
