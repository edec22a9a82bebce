package chart

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clearml-glue/clearml-glue/internal/config"
)

func envValue(t *testing.T, r *Rendered, name string) string {
	t.Helper()
	for _, e := range glueContainer(t, deployment(t, r)).Env {
		if e.Name == name {
			return e.Value
		}
	}
	t.Fatalf("no %s in the Deployment", name)
	return ""
}

// TestDocumentedKeysInstall: every key ClearML documents for this chart installs and changes what
// the docs say it changes.
func TestDocumentedKeysInstall(t *testing.T) {
	r := render(t, []string{filepath.Join(chartDir, "ci", "enterprise-documented-values.yaml")})
	cfg := glueConfig(t, r)
	if cfg.WorkerID != "k8s:my-agent" || cfg.TaskWorkerIDTemplate != "k8s:my-group:{task_id}" {
		t.Errorf("workerId %q, taskWorkerIdTemplate %q", cfg.WorkerID, cfg.TaskWorkerIDTemplate)
	}
	if cfg.CustomBashScript != "echo preparing the task pod" || !strings.Contains(cfg.ContainerCustomBashScript, "{default_execution_agent_args} --id {task_id}") {
		t.Errorf("bash scripts %q / %q", cfg.CustomBashScript, cfg.ContainerCustomBashScript)
	}
	if got := envValue(t, r, "GLUE_LOG_LEVEL"); got != "debug" {
		t.Errorf("debugMode: GLUE_LOG_LEVEL %q", got)
	}
	m := cfg.MonitoredResources
	if m.MaxResources.String() != "1" || m.MinResourcesFieldName != "metadata|labels|clear.ml/resource-usage" || m.MaxResourcesFieldName != m.MinResourcesFieldName {
		t.Errorf("monitoredResources %+v", m)
	}
	if diff := cmp.Diff([]string{"1g-GPU", "3g-GPU", "full-GPU", "gpu queue"}, cfg.QueueNames()); diff != "" {
		t.Errorf("queues (-want +got):\n%s", diff)
	}
	if cfg.BasePodTemplate["serviceAccountName"] != "clearml-tasks" || cfg.Queues["gpu queue"].TemplateOverrides["serviceAccountName"] != "trainer-irsa" {
		t.Errorf("serviceAccountName: base %v, queue %v", cfg.BasePodTemplate["serviceAccountName"], cfg.Queues["gpu queue"].TemplateOverrides)
	}
	if cfg.MaxPods != 6 {
		t.Errorf("K8S_GLUE_MAX_PODS: maxPods %d, want 6", cfg.MaxPods)
	}
	if !strings.Contains(r.Notes, "K8S_GLUE_MAX_PODS: honoured as agentk8sglue.maxPods") || !strings.Contains(r.Notes, "The worker k8s:my-agent should") {
		t.Errorf("NOTES.txt:\n%s", r.Notes)
	}

	for set, want := range map[string]string{
		"agentk8sglue.taskAsJob=true":  config.TaskKindJob,
		"agentk8sglue.taskAsJob=false": config.TaskKindPod,
		"agentk8sglue.taskAsJob=null":  config.TaskKindJob,
	} {
		if got := glueConfig(t, withCreds(t, set)).TaskKind; got != want {
			t.Errorf("%s: taskKind %s, want %s", set, got, want)
		}
	}
	if got := glueConfig(t, withCreds(t, "agentk8sglue.monitoredResources.maxResources=0.5")).MonitoredResources.MaxResources; got.String() != "500m" {
		t.Errorf("decimal maxResources: %s", got.String())
	}
	cfg = glueConfig(t, withCreds(t, "agentk8sglue.queue=gpu queue\\, cpu "))
	if diff := cmp.Diff([]string{"gpu queue", "cpu"}, cfg.QueueNames()); diff != "" {
		t.Errorf("legacy list with a space (-want +got):\n%s", diff)
	}
}

// TestPythonGlueVariablesHonoured: ClearML's Python glue settings in extraEnvs take effect when
// the value that replaces them is unset.
func TestPythonGlueVariablesHonoured(t *testing.T) {
	env := func(name, value string) []string {
		return []string{"agentk8sglue.extraEnvs[0].name=" + name, "agentk8sglue.extraEnvs[0].value=" + value}
	}
	tests := []struct {
		name  string
		set   []string
		check func(*config.File) bool
	}{
		{"max pods", env("K8S_GLUE_MAX_PODS", "3"), func(f *config.File) bool { return f.MaxPods == 3 }},
		{"max pods that agree", append(env("K8S_GLUE_MAX_PODS", "3"), "agentk8sglue.maxPods=3"), func(f *config.File) bool { return f.MaxPods == 3 }},
		{"kind job", env("CLEARML_K8S_GLUE_KIND", "job"), func(f *config.File) bool { return f.TaskKind == config.TaskKindJob }},
		{"kind pod", env("CLEARML_K8S_GLUE_KIND", "pod"), func(f *config.File) bool { return f.TaskKind == config.TaskKindPod }},
		{"poll frequency keeps its decimals", env("CLEARML_AGENT_QUEUE_POLL_FREQ_SEC", "2.5"), func(f *config.File) bool { return f.PollIntervalSeconds == 2.5 }},
		{"queue", env("K8S_GLUE_QUEUE", "gpu\\,cpu"), func(f *config.File) bool { return f.Queue == "gpu,cpu" }},
		{"extra bash script", env("CLEARML_K8S_GLUE_EXTRA_BASH_SCRIPT", "echo hi"), func(f *config.File) bool { return f.CustomBashScript == "echo hi" }},
		{"pod bash script", env("CLEARML_K8S_GLUE_POD_BASH_SCRIPT", "python3 -m clearml_agent execute --id {task_id}"),
			func(f *config.File) bool {
				return f.ContainerCustomBashScript == "python3 -m clearml_agent execute --id {task_id}"
			}},
		{"deletion delay", env("K8S_GLUE_COMPLETED_POD_DELETION_DELAY_MINUTES", "1.5"), func(f *config.File) bool { return f.CompletedPodDeletionDelayMinutes == 2 }},
		{"image entrypoint", append(env("K8S_GLUE_POD_USE_IMAGE_ENTRYPOINT", "1"), "agentk8sglue.queues.aaa.priority=1", "agentk8sglue.queues.bbb.queueSettings.useImageEntrypoint=false"),
			func(f *config.File) bool {
				return f.Queues["aaa"].QueueSettings.UseImageEntrypoint && !f.Queues["bbb"].QueueSettings.UseImageEntrypoint
			}},
		{"namespaces", env("CLEARML_K8S_GLUE_MONITOR_ALL_NAMESPACES", "0"), func(*config.File) bool { return true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := withCreds(t, tt.set...)
			if !tt.check(glueConfig(t, r)) {
				t.Errorf("not honoured:\n%s", rawGlueYAML(t, r))
			}
			if !strings.Contains(r.Notes, "honoured as") {
				t.Errorf("NOTES.txt does not say it:\n%s", r.Notes)
			}
		})
	}
	if got := envValue(t, withCreds(t, env("CLEARML_K8S_GLUE_DEBUG", "yes")...), "GLUE_LOG_LEVEL"); got != "debug" {
		t.Errorf("CLEARML_K8S_GLUE_DEBUG: GLUE_LOG_LEVEL %q", got)
	}
	_, err := Render(RenderOptions{ChartDir: chartDir, ValuesFiles: []string{filepath.Join(chartDir, "ci", "default-values.yaml")},
		Set: append(env("CLEARML_AGENT_QUEUE_POLL_FREQ_SEC", "2"), "agentk8sglue.pollIntervalSeconds=7")})
	if err == nil || !strings.Contains(err.Error(), `"2" disagrees with agentk8sglue.pollIntervalSeconds`) {
		t.Errorf("a disagreeing value: %v", err)
	}
}
