package chart

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/chart/loader"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/process"
)

func deployment(t *testing.T, r *Rendered) appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(object(t, r, "Deployment", fullname).Object, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func glueContainer(t *testing.T, d appsv1.Deployment) corev1.Container {
	t.Helper()
	if n := len(d.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("%d containers, want 1", n)
	}
	return d.Spec.Template.Spec.Containers[0]
}

// TestDeploymentEnvMatchesSettings: the controller's environment is exactly what
// config.LoadSettings reads, plus the container's memory limit for the process (internal/process):
// every required variable set, no unknown CLEARML_/GLUE_ name.
func TestDeploymentEnvMatchesSettings(t *testing.T) {
	known, required := map[string]bool{process.EnvContainerMemoryLimit: true}, map[string]bool{}
	st := reflect.TypeOf(config.Settings{})
	for i := range st.NumField() {
		f := st.Field(i)
		name := f.Tag.Get("envconfig")
		known[name] = true
		required[name] = f.Tag.Get("required") == "true"
	}
	r := withCreds(t)
	c := glueContainer(t, deployment(t, r))
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
		if (strings.HasPrefix(e.Name, "CLEARML_") || strings.HasPrefix(e.Name, "GLUE_")) && !known[e.Name] {
			t.Errorf("env %s is not a config.Settings variable", e.Name)
		}
	}
	for name, req := range required {
		if _, ok := env[name]; req && !ok {
			t.Errorf("required env %s is not set", name)
		}
	}
	cfg := glueConfig(t, r)
	for name, key := range map[string]string{"CLEARML_API_ACCESS_KEY": config.CredentialsAccessKeyKey, "CLEARML_API_SECRET_KEY": config.CredentialsSecretKeyKey} {
		ref := env[name].ValueFrom
		if ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != cfg.ClearML.CredentialsSecret || ref.SecretKeyRef.Key != key {
			t.Errorf("%s = %+v, want secret %s key %s", name, ref, cfg.ClearML.CredentialsSecret, key)
		}
	}
	if ref := env[process.EnvContainerMemoryLimit].ValueFrom; ref == nil || ref.ResourceFieldRef == nil || ref.ResourceFieldRef.Resource != "limits.memory" {
		t.Errorf("%s = %+v, want resourceFieldRef limits.memory", process.EnvContainerMemoryLimit, ref)
	}
	for name, field := range map[string]string{"GLUE_NAMESPACE": "metadata.namespace", "GLUE_POD_NAME": "metadata.name"} {
		if ref := env[name].ValueFrom; ref == nil || ref.FieldRef == nil || ref.FieldRef.FieldPath != field {
			t.Errorf("%s = %+v, want fieldRef %s", name, ref, field)
		}
	}
	want := map[string]string{
		"CLEARML_API_HOST": "https://api.clear.ml", "GLUE_CONFIGMAP": fullname, "GLUE_LEADER_ELECTION": "false",
		"GLUE_LEASE_NAME": fullname, "GLUE_METRICS_ADDR": ":8080", "GLUE_HEALTH_ADDR": ":8081", "GLUE_LOG_LEVEL": "info",
	}
	for name, v := range want {
		if env[name].Value != v {
			t.Errorf("%s = %q, want %q", name, env[name].Value, v)
		}
	}
	if diff := cmp.Diff([]string{"clearml-glue"}, c.Command); diff != "" {
		t.Errorf("command (-want +got):\n%s", diff)
	}
}

func TestDeploymentImage(t *testing.T) {
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	want := "docker.io/clearml-glue/clearml-glue:" + chrt.Metadata.AppVersion
	if got := glueContainer(t, deployment(t, withCreds(t))).Image; got != want {
		t.Errorf("image = %s, want %s", got, want)
	}
	// A values file copied from the open-source chart names its Python glue image: replaced.
	r := render(t, []string{filepath.Join(chartDir, "ci", "open-source-compatibility-values.yaml")})
	want = "registry.example.com/clearml-glue/clearml-glue:" + chrt.Metadata.AppVersion
	if got := glueContainer(t, deployment(t, r)).Image; got != want {
		t.Errorf("open-source image: got %s, want %s", got, want)
	}
	if !strings.Contains(r.Notes, "Remove agentk8sglue.image") {
		t.Error("NOTES.txt does not say the open-source image was replaced")
	}
	// A custom Python-glue image (the golden case of a migrating home-lab user): never run, and
	// NOTES.txt names it, the key and the image the controller runs.
	r = render(t, []string{filepath.Join(chartDir, "ci", "custom-python-glue-image-values.yaml")})
	want = "docker.io/clearml-glue/clearml-glue:" + chrt.Metadata.AppVersion
	if got := glueContainer(t, deployment(t, r)).Image; got != want {
		t.Errorf("custom Python glue image: got %s, want %s", got, want)
	}
	for _, w := range []string{"agentk8sglue.image (docker.io/homelab/clearml-agent-k8s-glue-py311:latest) is not used", "agentk8sglue.controllerImage", want} {
		if !strings.Contains(r.Notes, w) {
			t.Errorf("NOTES.txt lacks %q:\n%s", w, r.Notes)
		}
	}
	// The controller's own key.
	r = withCreds(t, "agentk8sglue.controllerImage.registry=mirror.local", "agentk8sglue.controllerImage.repository=ml/glue", "agentk8sglue.controllerImage.tag=1.2.3")
	if got := glueContainer(t, deployment(t, r)).Image; got != "mirror.local/ml/glue:1.2.3" {
		t.Errorf("controllerImage: got %s", got)
	}
	if strings.Contains(r.Notes, "agentk8sglue.image") {
		t.Errorf("NOTES.txt warns about agentk8sglue.image, which is not set:\n%s", r.Notes)
	}
	// agentk8sglue.image naming a controller image, or only a tag (this chart's earlier key): refused with the key to use.
	for _, set := range [][]string{
		{"agentk8sglue.image.repository=mirror.local/clearml-glue/clearml-glue", "agentk8sglue.image.tag=0.1.0"},
		{"agentk8sglue.image.tag=0.1.0@sha256:0123"},
	} {
		_, err := Render(RenderOptions{ChartDir: chartDir, ValuesFiles: []string{filepath.Join(chartDir, "ci", "default-values.yaml")}, Set: set, ReleaseName: release, Namespace: namespace})
		if err == nil || !strings.Contains(err.Error(), "move it to agentk8sglue.controllerImage") {
			t.Errorf("%v: want a refusal naming agentk8sglue.controllerImage, got %v", set, err)
		}
	}
}

func TestDeploymentSecurityDefaults(t *testing.T) {
	d := deployment(t, withCreds(t))
	pod, c := d.Spec.Template.Spec.SecurityContext, glueContainer(t, d).SecurityContext
	switch {
	case pod == nil || c == nil:
		t.Fatal("no securityContext")
	case pod.RunAsNonRoot == nil || !*pod.RunAsNonRoot:
		t.Error("pod runAsNonRoot is not true")
	case pod.SeccompProfile == nil || pod.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Error("pod seccomp is not RuntimeDefault")
	case c.ReadOnlyRootFilesystem == nil || !*c.ReadOnlyRootFilesystem:
		t.Error("readOnlyRootFilesystem is not true")
	case c.AllowPrivilegeEscalation == nil || *c.AllowPrivilegeEscalation:
		t.Error("allowPrivilegeEscalation is not false")
	case c.Capabilities == nil || !reflect.DeepEqual(c.Capabilities.Drop, []corev1.Capability{"ALL"}):
		t.Error("capabilities do not drop ALL")
	}
}

// TestDeploymentStrategy: without leader election two controllers must never overlap.
func TestDeploymentStrategy(t *testing.T) {
	if got := deployment(t, withCreds(t)).Spec.Strategy.Type; got != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("without leader election: %s, want Recreate", got)
	}
	r := render(t, []string{filepath.Join(chartDir, "ci", "leader-election-values.yaml")})
	d := deployment(t, r)
	if got := d.Spec.Strategy.Type; got != appsv1.RollingUpdateDeploymentStrategyType {
		t.Errorf("with leader election: %s, want RollingUpdate", got)
	}
	for _, e := range glueContainer(t, d).Env {
		if e.Name == "GLUE_LEADER_ELECTION" && e.Value != "true" {
			t.Errorf("GLUE_LEADER_ELECTION = %q", e.Value)
		}
	}
}

// TestRollsOnlyOnSecretChange: the pod template changes when a Secret the chart renders
// changes, and not when only the glue configuration does (the controller reloads it live).
func TestRollsOnlyOnSecretChange(t *testing.T) {
	podTemplate := func(r *Rendered) corev1.PodTemplateSpec { return deployment(t, r).Spec.Template }
	fileMount := func(content string) []string {
		return []string{"agentk8sglue.fileMounts[0].name=a.txt", "agentk8sglue.fileMounts[0].folderPath=/etc/x", "agentk8sglue.fileMounts[0].fileContent=" + content}
	}
	registry := func(password string) []string {
		return []string{"imageCredentials.enabled=true", "imageCredentials.username=bot", "imageCredentials.password=" + password}
	}
	tests := []struct {
		name     string
		from, to []string // --set of the two renders compared, over the default ci file
		rolls    bool
	}{
		{"access key", nil, []string{"clearml.agentk8sglueKey=OTHER-KEY"}, true},
		{"secret key", nil, []string{"clearml.agentk8sglueSecret=OTHER-SECRET"}, true},
		{"clearml.conf", nil, []string{"clearml.clearmlConfig=sdk {}"}, true},
		// Mounted with subPath, so a changed file reaches the pod only through a restart.
		{"controller file content", fileMount("a"), fileMount("b"), true},
		{"registry password", registry("one"), registry("two"), true},
		{"new queue", nil, []string{"agentk8sglue.queues.new-queue.priority=1"}, false},
		{"queue override", nil, []string{"agentk8sglue.queues.new-queue.templateOverrides.nodeSelector.pool=gpu"}, false},
		{"base template and limits", nil, []string{"agentk8sglue.basePodTemplate.nodeSelector.pool=cpu", "agentk8sglue.maxPods=3"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from, to := withCreds(t, tt.from...), withCreds(t, tt.to...)
			diff := cmp.Diff(podTemplate(from), podTemplate(to))
			if rolls := diff != ""; rolls != tt.rolls {
				t.Errorf("pod template changed = %v, want %v:\n%s", rolls, tt.rolls, diff)
			}
			if !tt.rolls && rawGlueYAML(t, from) == rawGlueYAML(t, to) {
				t.Error("the glue configuration did not change either: the case tests nothing")
			}
		})
	}
}

// TestMetrics: the Service always exposes metrics and health; the ServiceMonitor only on request.
func TestMetrics(t *testing.T) {
	if _, ok := withCreds(t).Manifests["clearml-agent/templates/servicemonitor.yaml"]; ok {
		t.Error("ServiceMonitor rendered by default")
	}
	r := withCreds(t, "agentk8sglue.metrics.serviceMonitor.enabled=true", "agentk8sglue.metrics.serviceMonitor.labels.release=prom")
	sm := object(t, r, "ServiceMonitor", fullname)
	svc := object(t, r, "Service", fullname)
	sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	for k, v := range sel {
		if svc.GetLabels()[k] != v {
			t.Errorf("ServiceMonitor selector %s=%s does not match the Service", k, v)
		}
	}
	if sm.GetLabels()["release"] != "prom" {
		t.Errorf("ServiceMonitor labels %v", sm.GetLabels())
	}
	var ports []string
	spec, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	for _, p := range spec {
		ports = append(ports, p.(map[string]any)["name"].(string))
	}
	if diff := cmp.Diff([]string{"metrics", "health"}, ports); diff != "" {
		t.Errorf("Service ports (-want +got):\n%s", diff)
	}
}
