package chart

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gotest.tools/v3/golden"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/metrics"
)

const (
	chartDir  = "../../charts/clearml-agent"
	release   = "glue"
	namespace = "clearml"
	fullname  = "glue-clearml-agent"
)

// ciValuesFiles are the chart's ci/<feature>-values.yaml files, each rendered by the tests.
func ciValuesFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 9 {
		t.Fatalf("want at least 9 ci values files, found %v", files)
	}
	return files
}

func feature(file string) string { return strings.TrimSuffix(filepath.Base(file), "-values.yaml") }

func render(t *testing.T, files []string, set ...string) *Rendered {
	t.Helper()
	r, err := Render(RenderOptions{ChartDir: chartDir, ValuesFiles: files, Set: set, ReleaseName: release, Namespace: namespace})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// withCreds renders on top of the default ci file, which holds the required credentials.
func withCreds(t *testing.T, set ...string) *Rendered {
	t.Helper()
	return render(t, []string{filepath.Join(chartDir, "ci", "default-values.yaml")}, set...)
}

// writeValues writes a values file for one test.
func writeValues(t *testing.T, yaml string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(f, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func objects(t *testing.T, r *Rendered) []unstructured.Unstructured {
	t.Helper()
	objs, err := r.Objects()
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func object(t *testing.T, r *Rendered, kind, name string) unstructured.Unstructured {
	t.Helper()
	for _, o := range objects(t, r) {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s rendered", kind, name)
	return unstructured.Unstructured{}
}

func glueConfig(t *testing.T, r *Rendered) *config.File {
	t.Helper()
	cfg, err := r.GlueConfig()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func rawGlueYAML(t *testing.T, r *Rendered) string {
	t.Helper()
	data, _, _ := unstructured.NestedString(object(t, r, "ConfigMap", fullname).Object, "data", config.FileKey)
	return data
}

func TestGolden(t *testing.T) {
	for _, f := range ciValuesFiles(t) {
		t.Run(feature(f), func(t *testing.T) {
			r := render(t, []string{f})
			golden.Assert(t, r.YAML()+"# NOTES.txt\n"+r.Notes, feature(f)+".golden")
		})
	}
}

// TestNoStaleGolden keeps testdata in step with ci/: a removed values file takes its golden file.
func TestNoStaleGolden(t *testing.T) {
	want := map[string]bool{}
	for _, f := range ciValuesFiles(t) {
		want[feature(f)+".golden"] = true
	}
	goldens, _ := filepath.Glob(filepath.Join("testdata", "*.golden"))
	for _, g := range goldens {
		if !want[filepath.Base(g)] {
			t.Errorf("%s has no ci values file", g)
		}
	}
}

// TestGlueConfigContract renders every ci values file with known fake credentials: the ConfigMap
// must decode strictly into config.File and pass its validation, and no credential may appear,
// plain or base64, in any object but a Secret.
func TestGlueConfigContract(t *testing.T) {
	secrets := map[string]string{
		"clearml.agentk8sglueKey":    "FAKE-ACCESS-KEY-7d1c",
		"clearml.agentk8sglueSecret": "FAKE-SECRET-KEY-93ab",
		"clearml.clearmlConfig":      "FAKE-CLEARML-CONF-4e2f",
		"imageCredentials.password":  "FAKE-REGISTRY-PASSWORD-0b5d",
	}
	var set []string
	for k, v := range secrets {
		set = append(set, k+"="+v)
	}
	for _, f := range ciValuesFiles(t) {
		t.Run(feature(f), func(t *testing.T) {
			r := render(t, []string{f}, set...)
			cfg := glueConfig(t, r)
			if cfg.Namespace != namespace || cfg.AgentName != fullname {
				t.Errorf("namespace/agentName = %q/%q, want %q/%q", cfg.Namespace, cfg.AgentName, namespace, fullname)
			}
			if cfg.ClearML.CredentialsSecret == "" {
				t.Error("clearml.credentialsSecret is empty")
			}
			inSecrets := ""
			for _, o := range objects(t, r) {
				js, err := json.Marshal(o.Object)
				if err != nil {
					t.Fatal(err)
				}
				if o.GetKind() == "Secret" {
					inSecrets += string(js)
					continue
				}
				for key, v := range secrets {
					for _, form := range []string{v, base64.StdEncoding.EncodeToString([]byte(v))} {
						if strings.Contains(string(js), form) {
							t.Errorf("%s %s holds the value of %s", o.GetKind(), o.GetName(), key)
						}
					}
				}
			}
			// Not vacuous: when the chart owns the credentials Secret, the fake key is in it.
			if cfg.ClearML.CredentialsSecret == fullname+"-credentials" &&
				!strings.Contains(inSecrets, base64.StdEncoding.EncodeToString([]byte(secrets["clearml.agentk8sglueKey"]))) {
				t.Error("the fake access key is in no Secret")
			}
		})
	}
}

// TestGlueConfigVerbatim: template strings reach the controller untouched (no tpl) and queue
// priorities survive Helm's unordered maps.
func TestGlueConfigVerbatim(t *testing.T) {
	cfg := glueConfig(t, render(t, []string{filepath.Join(chartDir, "ci", "multi-queue-values.yaml")}))
	labels, _ := cfg.BasePodTemplate["labels"].(map[string]any)
	annotations, _ := cfg.BasePodTemplate["annotations"].(map[string]any)
	if got := labels["task-name"]; got != "${CLEARML_TASK.name|lower}" {
		t.Errorf("ClearML template became %q", got)
	}
	if got := annotations["clearml/project"]; got != "{{ .Task.ProjectName | trunc 60 }}" {
		t.Errorf("Go template became %q", got)
	}
	if got := cfg.Queues["gpu-a100"].QueueSettings.CustomWorkerIDTemplate; got != "gpu-{{ .Task.ID }}" {
		t.Errorf("customWorkerIdTemplate became %q", got)
	}
	if diff := cmp.Diff([]string{"gpu-a100", "services.batch", "cpu-small", "empty-entry"}, cfg.QueueNames()); diff != "" {
		t.Errorf("queue order (-want +got):\n%s", diff)
	}
	if cfg.Queue != "" {
		t.Errorf("queue = %q, want it left out when queues is set", cfg.Queue)
	}
	if !cfg.CreateQueues || cfg.MaxPods != 20 || cfg.MonitoredResources.MaxResources.String() != "8" {
		t.Errorf("createQueues/maxPods/maxResources = %v/%d/%s", cfg.CreateQueues, cfg.MaxPods, cfg.MonitoredResources.MaxResources.String())
	}
}

// TestGlueConfigOmitsEmpty: the chart's empty defaults never reach the ConfigMap as empty keys
// (the open-source chart rendered "priorityClassName:" into every pod).
func TestGlueConfigOmitsEmpty(t *testing.T) {
	for _, f := range []string{"default", "open-source-compatibility"} {
		t.Run(f, func(t *testing.T) {
			var tree map[string]any
			if err := yaml.Unmarshal([]byte(rawGlueYAML(t, render(t, []string{filepath.Join(chartDir, "ci", f+"-values.yaml")}))), &tree); err != nil {
				t.Fatal(err)
			}
			for _, path := range emptyPaths("", tree) {
				t.Errorf("glue.yaml has an empty %s", path)
			}
		})
	}
	// An empty reason list means "no reasons", so it is kept rather than replaced by the default.
	cfg := glueConfig(t, render(t, []string{
		filepath.Join(chartDir, "ci", "default-values.yaml"),
		writeValues(t, "agentk8sglue: {imagePull: {graceReasons: []}}"),
	}))
	if cfg.ImagePull.GraceReasons == nil || len(cfg.ImagePull.GraceReasons) != 0 {
		t.Errorf("graceReasons = %#v, want an empty list", cfg.ImagePull.GraceReasons)
	}
}

// emptyPaths lists the paths under v whose value is null, "", {} or [].
func emptyPaths(path string, v any) []string {
	var out []string
	switch v := v.(type) {
	case nil:
		return []string{path}
	case string:
		if v == "" {
			return []string{path}
		}
	case map[string]any:
		if len(v) == 0 {
			return []string{path}
		}
		for k, sub := range v {
			out = append(out, emptyPaths(path+"."+k, sub)...)
		}
	case []any:
		if len(v) == 0 {
			return []string{path}
		}
		for i, sub := range v {
			out = append(out, emptyPaths(fmt.Sprintf("%s[%d]", path, i), sub)...)
		}
	}
	return out
}

func TestGlueConfigRefs(t *testing.T) {
	r := render(t, []string{filepath.Join(chartDir, "ci", "existing-secrets-values.yaml")})
	cfg := glueConfig(t, r)
	if cfg.ClearML.CredentialsSecret != "clearml-glue-credentials" || cfg.ClearML.ConfigSecret != "clearml-conf" {
		t.Errorf("existing secrets: credentials %q, config %q", cfg.ClearML.CredentialsSecret, cfg.ClearML.ConfigSecret)
	}
	for _, o := range objects(t, r) {
		if o.GetKind() == "Secret" || o.GetKind() == "ServiceAccount" {
			t.Errorf("%s %s rendered although an existing one is named", o.GetKind(), o.GetName())
		}
	}
	cfg = glueConfig(t, render(t, []string{filepath.Join(chartDir, "ci", "image-credentials-values.yaml")}))
	if diff := cmp.Diff([]string{fullname + "-registry"}, cfg.ImagePullSecrets); diff != "" {
		t.Errorf("imagePullSecrets (-want +got):\n%s", diff)
	}
	cfg = glueConfig(t, render(t, []string{filepath.Join(chartDir, "ci", "open-source-compatibility-values.yaml")}))
	if cfg.ClearML.CheckCertificate == nil || *cfg.ClearML.CheckCertificate {
		t.Error("clearmlcheckCertificate=false did not reach clearml.checkCertificate")
	}
	if diff := cmp.Diff([]string{"default", "gpu_queue", "cpu.queue"}, cfg.QueueNames()); diff != "" {
		t.Errorf("legacy queue list (-want +got):\n%s", diff)
	}
	cfg = glueConfig(t, render(t, []string{filepath.Join(chartDir, "ci", "port-mode-values.yaml")}))
	want := config.Sessions{PortModeEnabled: true, SvcType: "NodePort", ExternalIP: "10.0.0.10", StartingPort: 31000, MaxServices: 3,
		SvcAnnotations: map[string]string{"example.com/purpose": "clearml-session"}}
	if diff := cmp.Diff(want, cfg.Sessions); diff != "" {
		t.Errorf("sessions (-want +got):\n%s", diff)
	}
}

// TestGlueConfigKeepsMeaningfulZeros: a zero the user sets reaches the controller as zero, not
// as the controller's default; a zero poll interval reaches it too, to be refused there.
func TestGlueConfigKeepsMeaningfulZeros(t *testing.T) {
	r := withCreds(t, "agentk8sglue.disruptionRequeueLimit=0", "agentk8sglue.pendingQueueName=team-a-pending",
		"agentk8sglue.pythonGlueNamespaces={legacy}")
	cfg := glueConfig(t, r)
	if cfg.DisruptionRequeueLimit != 0 || cfg.CompletedPodDeletionDelayMinutes != 0 {
		t.Errorf("zeros replaced: disruptionRequeueLimit %d, completedPodDeletionDelayMinutes %d", cfg.DisruptionRequeueLimit, cfg.CompletedPodDeletionDelayMinutes)
	}
	if cfg.PendingQueue != "team-a-pending" || !slices.Equal(cfg.PythonGlueNamespaces, []string{"legacy"}) {
		t.Errorf("pendingQueue %q, pythonGlueNamespaces %v", cfg.PendingQueue, cfg.PythonGlueNamespaces)
	}
	_, err := Render(RenderOptions{ChartDir: chartDir, ValuesFiles: []string{filepath.Join(chartDir, "ci", "default-values.yaml")},
		Set: []string{"agentk8sglue.pollIntervalSeconds=0"}, ReleaseName: release, Namespace: namespace})
	if err == nil || !strings.Contains(err.Error(), "pollIntervalSeconds") {
		t.Errorf("pollIntervalSeconds=0: want an error naming it, got %v", err)
	}
}

// TestSchemaTemplateKeys: the schema accepts exactly the template keys the controller accepts.
func TestSchemaTemplateKeys(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Definitions struct {
			PodTemplate struct {
				Properties map[string]any `json:"properties"`
			} `json:"podTemplate"`
		} `json:"definitions"`
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	var got []string
	for k := range schema.Definitions.PodTemplate.Properties {
		got = append(got, k)
	}
	want := append([]string(nil), config.TemplateKeys...)
	sort.Strings(got)
	sort.Strings(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("schema podTemplate keys vs config.TemplateKeys (-want +got):\n%s", diff)
	}
}

func TestRenderMergesFilesThenSet(t *testing.T) {
	r := render(t, []string{filepath.Join(chartDir, "ci", "default-values.yaml"), filepath.Join(chartDir, "ci", "leader-election-values.yaml")},
		"agentk8sglue.replicaCount=3")
	replicas, _, _ := unstructured.NestedInt64(object(t, r, "Deployment", fullname).Object, "spec", "replicas")
	if replicas != 3 {
		t.Errorf("replicas = %d, want 3 (--set wins over files)", replicas)
	}
}

func TestSessionServices(t *testing.T) {
	r := render(t, []string{filepath.Join(chartDir, "ci", "port-mode-values.yaml")})
	for n, port := range map[int]int64{1: 31001, 2: 31002, 3: 31003} {
		svc := object(t, r, "Service", fmt.Sprintf("%s-session-%d", fullname, n))
		ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
		got, _, _ := unstructured.NestedInt64(ports[0].(map[string]any), "nodePort")
		sel, _, _ := unstructured.NestedString(svc.Object, "spec", "selector", "ai.allegro.agent.serial")
		if got != port || sel != fmt.Sprintf("pod-%d", n) {
			t.Errorf("session %d: nodePort %d selector %q", n, got, sel)
		}
	}
	if _, ok := withCreds(t).Manifests["clearml-agent/templates/sessions-services.yaml"]; ok {
		t.Error("session Services rendered without port mode")
	}
}

// TestHelmTestPod: a test hook that reads /diagnosis through a Service that reaches the glue even
// while it is not ready, and is never selected by a Service.
func TestHelmTestPod(t *testing.T) {
	r := withCreds(t)
	pod := object(t, r, "Pod", fullname+"-test")
	if pod.GetAnnotations()["helm.sh/hook"] != "test" {
		t.Errorf("test pod annotations %v", pod.GetAnnotations())
	}
	deploySel, _, _ := unstructured.NestedStringMap(object(t, r, "Deployment", fullname).Object, "spec", "selector", "matchLabels")
	for _, name := range []string{fullname, fullname + "-diagnosis"} {
		sel, _, _ := unstructured.NestedStringMap(object(t, r, "Service", name).Object, "spec", "selector")
		matches := true
		for k, v := range sel {
			matches = matches && pod.GetLabels()[k] == v
		}
		if matches {
			t.Errorf("the Service %s selector %v selects the test pod", name, sel)
		}
		if diff := cmp.Diff(deploySel, sel); diff != "" {
			t.Errorf("the Service %s does not select the glue (-deployment +service):\n%s", name, diff)
		}
	}
	// The glue says why it is not ready, so the Service the test reads must reach a pod that is not.
	diag := object(t, r, "Service", fullname+"-diagnosis")
	if v, _, _ := unstructured.NestedBool(diag.Object, "spec", "publishNotReadyAddresses"); !v {
		t.Error("the diagnosis Service does not publish not-ready pods")
	}
	if !strings.Contains(r.Manifests["clearml-agent/templates/tests/test-ready.yaml"], "http://"+fullname+"-diagnosis."+namespace+".svc:8081/diagnosis") {
		t.Error("the test pod does not read /diagnosis through the diagnosis Service")
	}
}

// TestHelmTestPodPrintsTheReasons runs the test pod's script against a glue's /diagnosis: ready
// passes; not ready fails and prints every line of the diagnosis, each failed check with its fix.
func TestHelmTestPodPrintsTheReasons(t *testing.T) {
	for _, tool := range []string{"sh", "wget", "timeout"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s here: %v", tool, err)
		}
	}
	r := withCreds(t)
	var spec struct {
		Spec corev1.PodSpec `json:"spec"`
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(object(t, r, "Pod", fullname+"-test").Object, &spec); err != nil {
		t.Fatal(err)
	}
	script := spec.Spec.Containers[0].Command[2]
	probes := &metrics.Probes{}
	srv := httptest.NewServer(http.HandlerFunc(probes.Diagnosis))
	defer srv.Close()
	script = strings.NewReplacer("http://"+fullname+"-diagnosis."+namespace+".svc:8081", srv.URL,
		"seq 30", "seq 2", "sleep 5", "sleep 0").Replace(script)
	run := func() (string, error) {
		out, err := exec.Command("sh", "-c", script).CombinedOutput()
		return string(out), err
	}

	probes.SetDiagnosis("CHECK                  RESULT  DETAIL\nClearML API reachable  FAIL    http://clearml:8009: nothing answers on clearml port 8009; fix: agentk8sglue.apiServerUrlReference\n", true)
	out, err := run()
	if err == nil {
		t.Fatalf("the test passed while the glue is not ready:\n%s", out)
	}
	for _, want := range []string{"the glue is not ready:", "not ready: a preflight check failed", "nothing answers on clearml port 8009; fix: agentk8sglue.apiServerUrlReference"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	probes.SetReady(true)
	probes.SetDiagnosis("CHECK  RESULT  DETAIL\n", false)
	if out, err := run(); err != nil {
		t.Errorf("the test failed while the glue is ready: %v\n%s", err, out)
	}
}

// TestObjectsAreValid decodes every rendered object into its Kubernetes type, refusing unknown
// fields, so a misspelt field fails here rather than at install time.
func TestObjectsAreValid(t *testing.T) {
	typed := map[string]func() any{
		"ConfigMap":          func() any { return &corev1.ConfigMap{} },
		"Secret":             func() any { return &corev1.Secret{} },
		"Service":            func() any { return &corev1.Service{} },
		"ServiceAccount":     func() any { return &corev1.ServiceAccount{} },
		"Pod":                func() any { return &corev1.Pod{} },
		"Deployment":         func() any { return &appsv1.Deployment{} },
		"Role":               func() any { return &rbacv1.Role{} },
		"RoleBinding":        func() any { return &rbacv1.RoleBinding{} },
		"ClusterRoleBinding": func() any { return &rbacv1.ClusterRoleBinding{} },
		"PrometheusRule":     func() any { return &prometheusRuleObject{} },
		"ServiceMonitor":     func() any { return &serviceMonitorObject{} },
	}
	for _, f := range ciValuesFiles(t) {
		t.Run(feature(f), func(t *testing.T) {
			for _, o := range objects(t, render(t, []string{f})) {
				newObj, ok := typed[o.GetKind()]
				if !ok {
					t.Errorf("%s %s: kind not checked", o.GetKind(), o.GetName())
					continue
				}
				if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, newObj(), true); err != nil {
					t.Errorf("%s %s: %v", o.GetKind(), o.GetName(), err)
				}
			}
		})
	}
}
