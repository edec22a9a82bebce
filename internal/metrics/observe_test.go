package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"gotest.tools/v3/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// gather returns the exposition text of the named families.
func gather(t *testing.T, names ...string) string {
	t.Helper()
	var b strings.Builder
	families, err := Registry.Gather()
	assert.NilError(t, err)
	for _, f := range families {
		for _, n := range names {
			if f.GetName() == n {
				for _, m := range f.GetMetric() {
					b.WriteString(n + labelString(m.GetLabel()) + " ")
					switch {
					case m.GetGauge() != nil:
						b.WriteString(trimFloat(m.GetGauge().GetValue()))
					case m.GetCounter() != nil:
						b.WriteString(trimFloat(m.GetCounter().GetValue()))
					case m.GetHistogram() != nil:
						b.WriteString("count=" + trimFloat(float64(m.GetHistogram().GetSampleCount())))
					}
					b.WriteString("\n")
				}
			}
		}
	}
	return b.String()
}

func TestServedQueuesHaveZeroSeriesAndAgesAreComputedAtScrape(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	wait.mu.Lock()
	wait.now = func() time.Time { return now }
	wait.mu.Unlock()
	t.Cleanup(func() {
		wait.mu.Lock()
		wait.now = time.Now
		wait.mu.Unlock()
		SetServedQueues(nil)
	})

	SetServedQueues(map[string]string{"id-gpu": "gpu", "id-cpu": "cpu"})
	assert.Equal(t, QueueName("id-gpu"), "gpu")
	assert.Equal(t, QueueName("unknown-id"), "unknown-id")
	out := gather(t, "clearml_glue_queue_depth", "clearml_glue_oldest_queued_task_age_seconds", "clearml_glue_tasks_launched_total")
	for _, want := range []string{
		`clearml_glue_queue_depth{queue="cpu"} 0`, `clearml_glue_queue_depth{queue="gpu"} 0`,
		`clearml_glue_oldest_queued_task_age_seconds{queue="cpu"} 0`,
		`clearml_glue_tasks_launched_total{queue="gpu"} 0`,
	} {
		assert.Assert(t, strings.Contains(out, want), "missing %s in\n%s", want, out)
	}
	assert.Equal(t, strings.Count(gather(t, "clearml_glue_pending_tasks"), "\n"), 2*len(PendingReasons), "every reason of every served queue at 0")
	assert.Equal(t, strings.Count(gather(t, "clearml_glue_queue_at_limit"), "\n"), 2*len(Limits))

	SetQueueDepth("gpu", 3, now.Add(-90*time.Second))
	SetQueueLimit("gpu", LimitMaxResources)
	SetTaskPending("t1", "gpu", "Unschedulable", now.Add(-10*time.Minute))
	SetTaskPending("t2", "gpu", "ImagePullBackOff", now.Add(-time.Minute))
	SetTaskPending("t3", "gpu", "Unschedulable", now.Add(-time.Minute))
	SetTaskPending("t4", "cpu", "", now.Add(-5*time.Second))
	SetTaskPending("t5", "cpu", "SomethingNew", now.Add(-5*time.Second))
	out = gather(t, "clearml_glue_queue_depth", "clearml_glue_oldest_queued_task_age_seconds", "clearml_glue_queue_at_limit",
		"clearml_glue_pending_tasks", "clearml_glue_oldest_pending_task_age_seconds")
	for _, want := range []string{
		`clearml_glue_queue_depth{queue="gpu"} 3`,
		`clearml_glue_oldest_queued_task_age_seconds{queue="gpu"} 90`,
		`clearml_glue_queue_at_limit{limit="max_resources",queue="gpu"} 1`,
		`clearml_glue_queue_at_limit{limit="max_pods",queue="gpu"} 0`,
		`clearml_glue_pending_tasks{queue="gpu",reason="Unschedulable"} 2`,
		`clearml_glue_pending_tasks{queue="gpu",reason="ImagePull"} 1`,
		`clearml_glue_pending_tasks{queue="cpu",reason="Starting"} 1`,
		`clearml_glue_pending_tasks{queue="cpu",reason="Other"} 1`,
		`clearml_glue_oldest_pending_task_age_seconds{queue="gpu",reason="Unschedulable"} 600`,
		`clearml_glue_oldest_pending_task_age_seconds{queue="gpu",reason="ImagePull"} 60`,
		`clearml_glue_oldest_pending_task_age_seconds{queue="cpu",reason="ContainerConfig"} 0`,
	} {
		assert.Assert(t, strings.Contains(out, want), "missing %s in\n%s", want, out)
	}

	now = now.Add(time.Minute) // nobody updates: the ages grow by themselves
	ClearTaskPending("t1")
	ClearTaskPending("never-pending")
	SetTaskPending("t2", "gpu", "Unschedulable", now.Add(-2*time.Minute)) // the reason changed
	out = gather(t, "clearml_glue_oldest_queued_task_age_seconds", "clearml_glue_pending_tasks", "clearml_glue_oldest_pending_task_age_seconds")
	for _, want := range []string{
		`clearml_glue_oldest_queued_task_age_seconds{queue="gpu"} 150`,
		`clearml_glue_pending_tasks{queue="gpu",reason="Unschedulable"} 2`,
		`clearml_glue_pending_tasks{queue="gpu",reason="ImagePull"} 0`,
		`clearml_glue_oldest_pending_task_age_seconds{queue="gpu",reason="Unschedulable"} 120`,
	} {
		assert.Assert(t, strings.Contains(out, want), "missing %s in\n%s", want, out)
	}

	// An emptied queue has no oldest task; a queue no longer served loses its gauges, while its
	// still-pending tasks stay visible until they start.
	SetQueueDepth("gpu", 0, time.Time{})
	SetServedQueues(map[string]string{"id-cpu": "cpu"})
	assert.Equal(t, QueueName("id-gpu"), "gpu", "a queue served before keeps its name")
	out = gather(t, "clearml_glue_queue_depth", "clearml_glue_queue_at_limit", "clearml_glue_pending_tasks", "clearml_glue_oldest_queued_task_age_seconds")
	assert.Assert(t, !strings.Contains(out, `clearml_glue_queue_depth{queue="gpu"}`), out)
	assert.Assert(t, !strings.Contains(out, `clearml_glue_queue_at_limit{limit="max_pods",queue="gpu"}`), out)
	assert.Assert(t, !strings.Contains(out, `clearml_glue_oldest_queued_task_age_seconds{queue="gpu"}`), out)
	assert.Assert(t, strings.Contains(out, `clearml_glue_pending_tasks{queue="gpu",reason="Unschedulable"} 2`), out)
	for _, id := range []string{"t2", "t3", "t4", "t5"} {
		ClearTaskPending(id)
	}
	assert.Assert(t, !strings.Contains(gather(t, "clearml_glue_pending_tasks"), `queue="gpu"`))
}

func TestPendingReasonFoldsKubernetesReasons(t *testing.T) {
	for in, want := range map[string]string{
		"Unschedulable": ReasonUnschedulable, "ErrImagePull": ReasonImagePull, "ImagePullBackOff": ReasonImagePull,
		"InvalidImageName": ReasonImagePull, "CreateContainerConfigError": ReasonContainerConfig, "": ReasonStarting,
		"ContainerCreating": ReasonStarting, "PodNotCreated": ReasonPodNotCreated, "CrashLoopBackOff": ReasonOther,
		"task-3f2a9c": ReasonOther,
	} {
		assert.Equal(t, PendingReason(in), want, in)
	}
}

func TestClearMLTransportTimesAndCountsEachRequest(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "tasks.failed") {
			http.Error(w, `{"meta":{"result_code":400}}`, http.StatusBadRequest)
			return
		}
		time.Sleep(20 * time.Millisecond)
		_, _ = w.Write([]byte(`{"data":{}}`))
	}))
	defer srv.Close()
	client := &http.Client{Transport: ClearMLTransport(nil)}
	post := func(p string) error {
		resp, err := client.Post(srv.URL+p, "application/json", strings.NewReader("{}"))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}
	before := testutil.ToFloat64(ClearMLRequests.WithLabelValues("queues.get_all", "200"))
	assert.NilError(t, post("/v2.31/queues.get_all"))
	assert.NilError(t, post("/prefix/v2.31/queues.get_all"))
	assert.NilError(t, post("/v2.31/tasks.failed"))
	assert.NilError(t, post("/v2.31/../../etc/passwd?x=1"))
	assert.Equal(t, testutil.ToFloat64(ClearMLRequests.WithLabelValues("queues.get_all", "200"))-before, 2.0)
	assert.Equal(t, testutil.ToFloat64(ClearMLRequests.WithLabelValues("tasks.failed", "400")), 1.0)
	assert.Equal(t, testutil.ToFloat64(ClearMLRequests.WithLabelValues("other", "404"))+testutil.ToFloat64(ClearMLRequests.WithLabelValues("other", "200")), 1.0)
	out := gather(t, "clearml_glue_clearml_request_duration_seconds")
	assert.Assert(t, strings.Contains(out, `{endpoint="queues.get_all"} count=2`), out)

	down := &http.Client{Transport: ClearMLTransport(roundTripFunc(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("connection refused")
	}))}
	resp, err := down.Post("http://clearml.invalid/v2.31/auth.login", "application/json", nil)
	if err == nil {
		_ = resp.Body.Close()
	}
	assert.ErrorContains(t, err, "connection refused")
	assert.Equal(t, testutil.ToFloat64(ClearMLRequests.WithLabelValues("auth.login", "error")), 1.0)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestKubernetesResourceHasNoNamespaceOrName(t *testing.T) {
	for in, want := range map[string]string{
		"/api/v1/namespaces/ns/pods":                             "pods",
		"/api/v1/namespaces/ns/pods/p":                           "pods",
		"/api/v1/namespaces/{namespace}/pods/{name}/status":      "pods/status",
		"/apis/batch/v1/namespaces/ns/jobs/clearml-id-1":         "jobs",
		"/apis/coordination.k8s.io/v1/namespaces/ns/leases/glue": "leases",
		"/api/v1/namespaces/ns":                                  "namespaces",
		"/api/v1/nodes":                                          "nodes",
		"/k8s/clusters/c-1/apis/batch/v1/namespaces/ns/jobs":     "jobs",
		"/version": "other",
		"/api":     "other",
		"/api/v1/namespaces/ns/events/clearml-id-1.17a2b3c4d5e6f7a": "events",
	} {
		assert.Equal(t, KubernetesResource(in), want, in)
	}
}

// client-go's own request path reports to the adapters registered in init.
func TestKubernetesClientRequestsAreObserved(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/missing") {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`))
			return
		}
		_, _ = w.Write([]byte(`{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"glue","namespace":"ns"}}`))
	}))
	defer srv.Close()
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
	assert.NilError(t, err)
	ok := KubernetesRequests.WithLabelValues("GET", "200")
	before := testutil.ToFloat64(ok)
	_, err = cs.CoreV1().ConfigMaps("ns").Get(context.Background(), "glue", metav1.GetOptions{})
	assert.NilError(t, err)
	_, err = cs.CoreV1().ConfigMaps("ns").Get(context.Background(), "missing", metav1.GetOptions{})
	assert.ErrorContains(t, err, "")
	assert.Equal(t, testutil.ToFloat64(ok)-before, 1.0)
	assert.Assert(t, testutil.ToFloat64(KubernetesRequests.WithLabelValues("GET", "404")) >= 1)
	out := gather(t, "clearml_glue_kubernetes_request_duration_seconds")
	assert.Assert(t, strings.Contains(out, `{resource="configmaps",verb="GET"} count=`), out)
	assert.Assert(t, !strings.Contains(out, `"glue"`) && !strings.Contains(out, `"ns"`), "no names in labels: %s", out)
}

func TestBuildInfo(t *testing.T) {
	SetBuildInfo("v1.2.3")
	out := gather(t, "clearml_glue_build_info")
	assert.Assert(t, strings.Contains(out, `version="v1.2.3"`) && strings.HasSuffix(out, " 1\n"), out)
	assert.Equal(t, strings.Count(out, "\n"), 1, "one series: %s", out)
}

func labelString(pairs []*dto.LabelPair) string {
	if len(pairs) == 0 {
		return ""
	}
	parts := make([]string, 0, len(pairs))
	for _, p := range pairs {
		parts = append(parts, p.GetName()+`="`+p.GetValue()+`"`)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func trimFloat(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func TestNamesListsFamiliesWithoutSamples(t *testing.T) {
	names := Names()
	for _, want := range []string{"clearml_glue_tasks_requeued_total", "clearml_glue_pending_tasks", "clearml_glue_build_info", "clearml_glue_queue_unresolved", "go_goroutines", "go_gc_heap_live_bytes", "process_cpu_seconds_total"} {
		assert.Assert(t, slices.Contains(names, want), "%s not in %v", want, names)
	}
}
