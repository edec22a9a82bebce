package config

import (
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

func TestParseAppliesDefaults(t *testing.T) {
	f, err := Parse([]byte("namespace: ml\nqueue: default-q\n"), "test")
	assert.NilError(t, err)
	assert.Equal(t, f.TaskKind, TaskKindJob)
	assert.Equal(t, f.PendingQueue, "k8s_scheduler")
	assert.Equal(t, f.PollIntervalSeconds, 1.2)
	assert.Equal(t, f.PollInterval(), 1200*time.Millisecond)
	assert.Equal(t, f.AbortCheckInterval(), 5*time.Second, "not every poll: it reads every live task")
	f.PollIntervalSeconds = 8
	assert.Equal(t, f.AbortCheckInterval(), 8*time.Second)
	assert.Equal(t, f.WorkerID, f.AgentName)
	assert.Equal(t, f.MonitoredResources.MaxResourcesFieldName, "resources|limits|nvidia.com/gpu")
	assert.Equal(t, f.MonitoredResources.MinResourcesFieldName, f.MonitoredResources.MaxResourcesFieldName)
	assert.DeepEqual(t, f.ImagePull.FailFastReasons, []string{"InvalidImageName"})
	assert.Equal(t, f.ImagePull.BackOffGraceSeconds, 120)
}

func TestParseKeepsExplicitZeros(t *testing.T) {
	f, err := Parse([]byte("namespace: ml\nqueue: abc\ndisruptionRequeueLimit: 0\nimagePull: {backOffGraceSeconds: 0, failFastReasons: []}\n"), "test")
	assert.NilError(t, err)
	assert.Equal(t, f.DisruptionRequeueLimit, 0)
	assert.Equal(t, f.ImagePull.BackOffGraceSeconds, 0)
	assert.Equal(t, len(f.ImagePull.FailFastReasons), 0)
	assert.DeepEqual(t, f.ImagePull.GraceReasons, []string{"ImagePullBackOff", "ErrImagePull"})
}

func TestParseRefusesBadInputNamingWhere(t *testing.T) {
	for name, tc := range map[string]struct {
		yaml string
		want []string
	}{
		"unknown top-level key":  {"namespace: ml\nqueue: abc\nqeues: {}\n", []string{"source.yaml", "qeues"}},
		"no queue":               {"namespace: ml\n", []string{"queues: Required value: no queue to serve"}},
		"no namespace":           {"queue: abc\n", []string{"namespace: Required value"}},
		"bad task kind":          {"namespace: ml\nqueue: abc\ntaskKind: CronJob\n", []string{`taskKind: Unsupported value: "CronJob": supported values: "Job", "Pod"`}},
		"short legacy queue":     {"namespace: ml\nqueue: ab,good-q\n", []string{`queue: Invalid value: "ab": not a ClearML queue name`}},
		"short queue name":       {"namespace: ml\nqueues: {' ab ': {}}\n", []string{`queues[ab]: Invalid value: "ab": not a ClearML queue name`}},
		"same name once trimmed": {"namespace: ml\nqueues: {'gpu queue': {}, ' gpu queue': {}}\n", []string{`queues[gpu queue]: Duplicate value: "gpu queue"`}},
		"multiNode not built yet": {"namespace: ml\nqueues: {multi-node-queue: {queueSettings: {multiNode: [4, 2]}}}\n",
			[]string{"queues[multi-node-queue].queueSettings.multiNode: Forbidden: multi-node scheduling (ClearML's queueSettings.multiNode) is not built in this glue yet"}},
		"negative maxResources": {"namespace: ml\nqueue: abc\nmonitoredResources: {maxResources: -0.5}\n",
			[]string{`monitoredResources.maxResources: Invalid value: "-500m": must not be negative`}},
		"negative queue maxPods": {"namespace: ml\nqueues: {gpu: {queueSettings: {maxPods: -1}}}\n",
			[]string{"queues[gpu].queueSettings.maxPods: Invalid value: -1: must not be negative"}},
		"negative global limit": {"namespace: ml\nqueue: abc\nmaxPods: -2\n", []string{"maxPods: Invalid value: -2: must not be negative"}},
		"unknown template key": {"namespace: ml\nqueue: abc\nbasePodTemplate: {nodeSelektor: {}}\n",
			[]string{`basePodTemplate.nodeSelektor: Unsupported value: "nodeSelektor"`}},
		"unknown override key": {"namespace: ml\nqueues: {cpu: {templateOverrides: {resource: {}}}}\n",
			[]string{`queues[cpu].templateOverrides.resource: Unsupported value: "resource"`}},
		"every error reported": {"namespace: ml\nqueues: {cpu: {queueSettings: {maxPods: -1}}}\nmaxPods: -1\n",
			[]string{"queues[cpu].queueSettings.maxPods", "maxPods: Invalid value: -1: must not be negative\nqueues[cpu]"}},
		"zero poll interval": {"namespace: ml\nqueue: abc\npollIntervalSeconds: 0\n", []string{"pollIntervalSeconds: Invalid value: 0: must be at least 0.1"}},
		"resource path not a resources path": {"namespace: ml\nqueue: abc\nmonitoredResources: {maxResourcesFieldName: 'nodeSelector.gpu'}\n",
			[]string{`monitoredResources.maxResourcesFieldName: Invalid value: "nodeSelector.gpu"`, "is not a path the glue reads"}},
		// The pipe is a path separator, not an "or" (the earlier, wrong reading of this chart).
		"pipe alternatives": {"namespace: ml\nqueue: abc\nmonitoredResources: {minResourcesFieldName: 'resources.limits.a|resources.requests.b'}\n",
			[]string{`monitoredResources.minResourcesFieldName: Invalid value: "resources.limits.a|resources.requests.b"`}},
		"short pending queue": {"namespace: ml\nqueue: abc\npendingQueue: k8\n", []string{`pendingQueue: Invalid value: "k8"`}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), "source.yaml")
			assert.Assert(t, err != nil)
			for _, w := range tc.want {
				assert.Assert(t, strings.Contains(err.Error(), w), "error %q lacks %q", err, w)
			}
		})
	}
}

// ClearML's documented values: decimal maxResources, pipe paths into the Pod, queue names the
// server takes (3 characters once trimmed, spaces inside allowed).
func TestParseDocumentedValues(t *testing.T) {
	f, err := Parse([]byte(`namespace: ml
monitoredResources:
  minResourcesFieldName: "metadata|labels|clear.ml/resource-usage"
  maxResourcesFieldName: "metadata|labels|clear.ml/resource-usage"
  maxResources: 1.5
queues:
  "gpu queue": {}
  " 1g-GPU ": {}
  "äöü": {}
`), "test")
	assert.NilError(t, err)
	assert.Equal(t, f.MonitoredResources.MaxResources.String(), "1500m")
	assert.Assert(t, f.MonitoredResources.Limited())
	assert.DeepEqual(t, f.QueueNames(), []string{"1g-GPU", "gpu queue", "äöü"})
	f, err = Parse([]byte("namespace: ml\nqueue: abc\nmonitoredResources: {maxResources: \"0.5\"}\n"), "test")
	assert.NilError(t, err)
	assert.Equal(t, f.MonitoredResources.MaxResources.String(), "500m")
	f, err = Parse([]byte("namespace: ml\nqueue: abc\n"), "test")
	assert.NilError(t, err)
	assert.Assert(t, !f.MonitoredResources.Limited())
}

func TestQueueNamesOrder(t *testing.T) {
	for name, tc := range map[string]struct {
		file File
		want []string
	}{
		"legacy comma list keeps its order": {File{Queue: " zeta, alpha ,mid"}, []string{"zeta", "alpha", "mid"}},
		"priority first, then name": {File{Queue: "ignored", Queues: map[string]Queue{
			"bbb": {}, "aaa": {}, "urgent": {Priority: 10}, "normal": {Priority: 5},
		}}, []string{"urgent", "normal", "aaa", "bbb"}},
	} {
		t.Run(name, func(t *testing.T) {
			assert.DeepEqual(t, tc.file.QueueNames(), tc.want)
			for _, q := range tc.want {
				_, ok := tc.file.QueueConfig(q)
				assert.Assert(t, ok, q)
			}
			_, ok := tc.file.QueueConfig("not-served")
			assert.Assert(t, !ok)
		})
	}
}

func TestLoadSettingsNamesTheVariable(t *testing.T) {
	t.Setenv("CLEARML_API_HOST", "http://api")
	t.Setenv("CLEARML_API_ACCESS_KEY", "k")
	t.Setenv("CLEARML_API_SECRET_KEY", "s")
	t.Setenv("GLUE_NAMESPACE", "ml")
	_, err := LoadSettings()
	assert.ErrorContains(t, err, "GLUE_CONFIGMAP")
	t.Setenv("GLUE_CONFIGMAP", "glue")
	t.Setenv("GLUE_MAX_PARALLEL_LAUNCHES", "0")
	t.Setenv("GLUE_LOG_LEVEL", "loud")
	_, err = LoadSettings()
	assert.ErrorContains(t, err, "GLUE_MAX_PARALLEL_LAUNCHES: must be at least 1")
	assert.ErrorContains(t, err, `GLUE_LOG_LEVEL: "loud"`)
	t.Setenv("GLUE_MAX_PARALLEL_LAUNCHES", "4")
	t.Setenv("GLUE_LOG_LEVEL", "debug")
	s, err := LoadSettings()
	assert.NilError(t, err)
	assert.Equal(t, s.VerifyCert, true)
	qps, _ := s.KubeClientRate()
	assert.Equal(t, qps, float32(-1), "no client-side limit by default")
	qps, burst := s.EventClientRate()
	assert.Equal(t, qps, float32(50))
	assert.Equal(t, burst, 100)
	s.KubeAPIQPS, s.KubeAPIBurst = 200, 0
	qps, burst = s.KubeClientRate()
	assert.Equal(t, qps, float32(200))
	assert.Equal(t, burst, 200, "a burst below the rate is raised to it")
	qps, burst = s.EventClientRate()
	assert.Equal(t, qps, float32(20))
	assert.Equal(t, burst, 20)
	t.Setenv("GLUE_KUBE_API_QPS", "-1")
	_, err = LoadSettings()
	assert.ErrorContains(t, err, "GLUE_KUBE_API_QPS/GLUE_KUBE_API_BURST: must not be negative")
	assert.Assert(t, s.PodName != "", "pod name defaults to the hostname")
}
