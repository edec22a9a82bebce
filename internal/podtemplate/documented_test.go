package podtemplate

import (
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

func jobSpec(t *testing.T, obj Object) *corev1.PodSpec {
	t.Helper()
	job, ok := obj.(*batchv1.Job)
	assert.Assert(t, ok, "%T", obj)
	return &job.Spec.Template.Spec
}

// The docs' mixed-GPU example: each queue's need is its label's decimal value, known from the
// template before any task is pulled, and the built Job carries it unchanged.
func TestMonitoredAmountsOfTheMixedGPUExample(t *testing.T) {
	b := newBuilder(t, loadConfig(t, "docs-mixed-gpu.yaml"))
	for queue, want := range map[string]string{"full-GPU": "1", "1g-GPU": "140m", "3g-GPU": "500m"} {
		need, hold := b.MonitoredAmounts(queue)
		assert.Assert(t, !need.PerTask && !hold.PerTask, queue)
		assert.Equal(t, need.Quantity.String(), want, queue)
		assert.Equal(t, hold.Quantity.String(), want, queue)
		obj, err := b.Build(queue, input(loadTask(t, "training.json")))
		assert.NilError(t, err)
		n, h, err := b.ObjectAmounts(obj)
		assert.NilError(t, err)
		assert.Equal(t, n.String(), want, queue)
		assert.Equal(t, h.String(), want, queue)
	}
}

// ClearML's default path reads the task container's GPU limit, the documented default.
func TestMonitoredAmountsDefaultPath(t *testing.T) {
	b := newBuilder(t, loadConfig(t, "docs-gpu-queues.yaml"))
	need, _ := b.MonitoredAmounts("2xGPU")
	assert.Equal(t, need.Quantity.String(), "2")
	obj, err := b.Build("2xGPU", input(loadTask(t, "training.json")))
	assert.NilError(t, err)
	n, _, err := b.ObjectAmounts(obj)
	assert.NilError(t, err)
	assert.Equal(t, n.String(), "2")
}

// A value rendered per task is known only once the object is built: the template says PerTask,
// the object says the amount, and a rendered label that monitoredResources reads keeps its dot.
func TestMonitoredAmountRenderedPerTask(t *testing.T) {
	b := newBuilder(t, parseConfig(t, `
namespace: clearml
monitoredResources:
  maxResourcesFieldName: "metadata|labels|clear.ml/resource-usage"
  maxResources: 1
queues:
  per-task:
    templateOverrides:
      labels:
        clear.ml/resource-usage: "${CLEARML_TASK.hyperparams.General.gpu_share.value:0.25}"
        other: "${CLEARML_TASK.hyperparams.General.gpu_share.value:0.25}"
`))
	need, hold := b.MonitoredAmounts("per-task")
	assert.Assert(t, need.PerTask && hold.PerTask)
	task := loadTask(t, "training.json")
	task["hyperparams"].(map[string]any)["General"].(map[string]any)["gpu_share"] = map[string]any{"value": "0.5"}
	obj, err := b.Build("per-task", input(task))
	assert.NilError(t, err)
	labels := obj.(*batchv1.Job).Spec.Template.Labels
	assert.Equal(t, labels["clear.ml/resource-usage"], "0.5")
	assert.Equal(t, labels["other"], "0-5", "other rendered labels are sanitized as before")
	n, h, err := b.ObjectAmounts(obj)
	assert.NilError(t, err)
	assert.Equal(t, n.String(), "500m")
	assert.Equal(t, h.String(), "500m")

	obj, err = b.Build("per-task", input(loadTask(t, "minimal.json")))
	assert.NilError(t, err)
	n, _, err = b.ObjectAmounts(obj)
	assert.NilError(t, err)
	assert.Equal(t, n.String(), "250m", "the default")
}

func TestMonitoredAmountThatIsNotAQuantityIsAQueueError(t *testing.T) {
	b, err := NewBuilder(parseConfig(t, `
namespace: clearml
monitoredResources: {maxResourcesFieldName: "metadata|labels|gpu-share"}
queues:
  bad: {templateOverrides: {labels: {gpu-share: half}}}
  good: {templateOverrides: {labels: {gpu-share: "0.5"}}}
`))
	assert.NilError(t, err)
	assert.ErrorContains(t, b.QueueErrors()["bad"], `monitoredResources.maxResourcesFieldName metadata|labels|gpu-share: "half" is not a quantity`)
	assert.Assert(t, b.QueueErrors()["good"] == nil)
}

// Task pods get no ServiceAccount token unless a ServiceAccount is chosen (basePodTemplate or a
// queue's serviceAccountName, or podSpec).
func TestServiceAccount(t *testing.T) {
	b := newBuilder(t, loadConfig(t, "docs-worker-ids.yaml"))
	for queue, want := range map[string]string{"h100_queue": "trainer-irsa", "default_queue": "task-default"} {
		obj, err := b.Build(queue, input(loadTask(t, "minimal.json")))
		assert.NilError(t, err)
		spec := jobSpec(t, obj)
		assert.Equal(t, spec.ServiceAccountName, want)
		assert.Assert(t, spec.AutomountServiceAccountToken == nil, "the ServiceAccount's own setting applies")
	}
	b = newBuilder(t, parseConfig(t, `
namespace: clearml
queues:
  none: {}
  explicit: {templateOverrides: {podSpec: {automountServiceAccountToken: true}}}
  null-base: {templateOverrides: {serviceAccountName: null}}
`))
	obj, err := b.Build("none", input(loadTask(t, "minimal.json")))
	assert.NilError(t, err)
	spec := jobSpec(t, obj)
	assert.Equal(t, spec.ServiceAccountName, "")
	assert.Assert(t, spec.AutomountServiceAccountToken != nil && !*spec.AutomountServiceAccountToken)
	obj, err = b.Build("explicit", input(loadTask(t, "minimal.json")))
	assert.NilError(t, err)
	spec = jobSpec(t, obj)
	assert.Assert(t, spec.AutomountServiceAccountToken != nil && *spec.AutomountServiceAccountToken)
}

// The worker id: a queue's customWorkerIdTemplate, else taskWorkerIdTemplate (the chart's
// taskWorkerIdOverride), else <glue worker id>:<task id>.
func TestWorkerIDTemplates(t *testing.T) {
	workerID := func(b *Builder, queue string) string {
		obj, err := b.Build(queue, input(loadTask(t, "minimal.json")))
		assert.NilError(t, err)
		for _, e := range jobSpec(t, obj).Containers[0].Env {
			if e.Name == "CLEARML_WORKER_ID" {
				return e.Value
			}
		}
		t.Fatal("no CLEARML_WORKER_ID")
		return ""
	}
	b := newBuilder(t, loadConfig(t, "docs-worker-ids.yaml"))
	assert.Equal(t, workerID(b, "h100_queue"), "k8s:H100:0d5e7f9a1b3c4d6e8f0a2b4c6d8e0f1a")
	assert.Equal(t, workerID(b, "default_queue"), "k8s:my-group:0d5e7f9a1b3c4d6e8f0a2b4c6d8e0f1a")
	b = newBuilder(t, parseConfig(t, `
namespace: ml
workerId: "k8s:glue-agent:my-agent"
taskWorkerIdTemplate: "{worker_id_parts[0]}:{worker_id_parts[2]}:{pod_name}.{namespace}"
queue: plain
`))
	assert.Equal(t, workerID(b, "plain"), "k8s:my-agent:clearml-id-0d5e7f9a1b3c4d6e8f0a2b4c6d8e0f1a.ml")
	b = newBuilder(t, parseConfig(t, "namespace: ml\nworkerId: glue\nqueue: plain\n"))
	assert.Equal(t, workerID(b, "plain"), "glue:0d5e7f9a1b3c4d6e8f0a2b4c6d8e0f1a")
}

// containerCustomBashScript: ClearML's placeholders are filled in, "{{" and "}}" are literal
// braces, the glue's clearml.conf setup runs first, and task data stays out of the text.
func TestContainerCustomBashScript(t *testing.T) {
	b := newBuilder(t, loadConfig(t, "docs-container-script.yaml"))
	task := loadTask(t, "training.json")
	obj, err := b.Build("air-gapped", input(task))
	assert.NilError(t, err)
	c := jobSpec(t, obj).Containers[0]
	script := c.Args[1]
	assert.Assert(t, strings.HasPrefix(script, preludeScript))
	for _, want := range []string{
		"for i in {20..5}; do",
		"\necho init for the task\n",
		"pip install clearml-agent${CLEARML_AGENT_UPDATE_VERSION}\n",
		`if [ -n "$CLEARML_GLUE_SETUP_SHELL_SCRIPT" ]; then eval "$CLEARML_GLUE_SETUP_SHELL_SCRIPT"; fi`,
		"-m clearml_agent execute --full-monitoring --require-queue --id 4f0c52a6e1b04c9e9c3c2b7d1e8a9f10\n",
	} {
		assert.Assert(t, strings.Contains(script, want), "script lacks %q:\n%s", want, script)
	}
	assert.Assert(t, !strings.Contains(script, "pip install timm"), "the task's setup script is not in the text")
	for _, e := range c.Env {
		assert.Assert(t, e.Name != extraBashScriptEnv, "customBashScript is in the script already")
	}

	for text, want := range map[string]string{
		"{unknown}":        "unknown placeholder {unknown}",
		"echo {task_id":    `a "{" is not closed`,
		"echo }":           `a "}" is not opened`,
		"echo {task_id!r}": "unknown placeholder {task_id!r}",
	} {
		_, err := NewBuilder(parseConfig(t, "namespace: ml\nqueue: abc\ncontainerCustomBashScript: '"+text+"'\n"))
		assert.ErrorContains(t, err, "containerCustomBashScript: "+want)
	}
}

// customBashScript alone runs in the built-in script, before the agent is installed.
func TestCustomBashScript(t *testing.T) {
	b := newBuilder(t, parseConfig(t, "namespace: ml\nqueue: abc\ncustomBashScript: \"apt-get install -y ffmpeg\"\n"))
	obj, err := b.Build("abc", input(loadTask(t, "minimal.json")))
	assert.NilError(t, err)
	c := jobSpec(t, obj).Containers[0]
	assert.Equal(t, c.Args[1], bootstrapScript)
	found := false
	for _, e := range c.Env {
		found = found || (e.Name == extraBashScriptEnv && e.Value == "apt-get install -y ffmpeg")
	}
	assert.Assert(t, found)
	init, install := strings.Index(bootstrapScript, `eval "$`+extraBashScriptEnv+`"`), strings.Index(bootstrapScript, "-m pip install")
	assert.Assert(t, init > 0 && init < install, "before the agent is installed")
}

// Project and user data are looked up only for queues whose templates read them.
func TestLookups(t *testing.T) {
	b := newBuilder(t, parseConfig(t, `
namespace: ml
customBashScript: ""
queues:
  plain-q: {templateOverrides: {labels: {a: "${CLEARML_TASK.name}", b: "{{ .Task.User }}", c: "${CLEARML_PROJECT_ID}"}}}
  project-ph: {templateOverrides: {env: [{name: P, value: "${CLEARML_PROJECT_NAME}"}]}}
  project-go: {templateOverrides: {annotations: {p: "{{ .Task.ProjectName | trunc 10 }}"}}}
  project-with: {templateOverrides: {annotations: {p: "{{ with .Task }}{{ .ProjectName }}{{ end }}"}}}
  project-worker: {queueSettings: {customWorkerIdTemplate: "k8s:{project}:{task_id}"}}
  user-ph: {templateOverrides: {env: [{name: U, value: "${CLEARML_USER.email:none}"}]}}
  user-go: {templateOverrides: {annotations: {u: "{{ .User.name }}"}}}
  user-dollar: {templateOverrides: {annotations: {u: "{{ with .Task.Name }}{{ $.User.name }}{{ end }}"}}}
  everything: {templateOverrides: {annotations: {all: "{{ toJson . }}"}}}
  files: {templateOverrides: {fileMounts: [{name: f, folderPath: /etc, fileContent: "${CLEARML_USER.name:x}"}]}}
`))
	for queue, want := range map[string][2]bool{
		"plain-q": {false, false}, "project-ph": {true, false}, "project-go": {true, false}, "project-with": {true, false},
		"project-worker": {true, false}, "user-ph": {false, true}, "user-go": {false, true}, "user-dollar": {false, true},
		"everything": {true, true}, "files": {false, true},
	} {
		p, u := b.Lookups(queue)
		assert.Equal(t, [2]bool{p, u}, want, queue)
	}
}
