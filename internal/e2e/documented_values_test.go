package e2e

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
)

// mixedGPUValues is ClearML's example "Mixed GPU Types" (docs page "ClearML Agent custom
// workload"), as written there, plus a label that keeps the test's pods running.
const mixedGPUValues = `
agentk8sglue:
  basePodTemplate:
    labels: {e2e.glue/behavior: hold}
  monitoredResources:
    # Read normalized usage from a Pod label
    minResourcesFieldName: "metadata|labels|clear.ml/resource-usage"
    maxResourcesFieldName: "metadata|labels|clear.ml/resource-usage"
    # Allow up to one full GPU equivalent
    maxResources: 1
  createQueues: true
  queues:
    full-GPU:
      templateOverrides:
        labels:
          clear.ml/resource-usage: "1"
        resources:
          limits:
            nvidia.com/gpu: "1"
    1g-GPU:
      templateOverrides:
        labels:
          clear.ml/resource-usage: "0.14"
        resources:
          limits:
            nvidia.com/mig-1g.18gb: "1"
    3g-GPU:
      templateOverrides:
        labels:
          clear.ml/resource-usage: "0.5"
        resources:
          limits:
            nvidia.com/mig-3g.71gb: "1"
`

// The docs' mixed-GPU quota holds: with maxResources 1, two 0.5 tasks are live and the third
// waits in its queue (never pulled and pushed back), as does a full-GPU task; each starts, in
// order, once enough is freed.
func TestDocumentedMixedGPUQuota(t *testing.T) {
	e := newEnv(t, mixedGPUValues)
	jobs := e.recordJobs()
	half := []string{e.task("3g-GPU", "half-a", emulator.TaskSpec{}), e.task("3g-GPU", "half-b", emulator.TaskSpec{}), e.task("3g-GPU", "half-c", emulator.TaskSpec{})}
	full := e.task("full-GPU", "full", emulator.TaskSpec{})
	e.startGlue("glue-0")
	e.waitJob(half[0], 30*time.Second)
	e.waitJob(half[1], 30*time.Second)
	time.Sleep(3 * time.Second) // several poll cycles
	// The two halves are pulled in order but launched in parallel: their Jobs may appear in
	// either order.
	order, _, _, _ := jobs.snapshot()
	assert.DeepEqual(t, sorted(order), sorted(half[:2]))
	assert.DeepEqual(t, e.emu.QueueEntries("3g-GPU"), []string{half[2]})
	assert.DeepEqual(t, e.emu.QueueEntries("full-GPU"), []string{full})
	job := e.waitJob(half[0], time.Second)
	assert.Equal(t, job.Spec.Template.Labels["clear.ml/resource-usage"], "0.5")

	// half-a ends: half-c (0.5) fits, the full GPU still does not.
	e.deleteJob(half[0])
	e.waitJob(half[2], 30*time.Second)
	time.Sleep(2 * time.Second)
	assert.DeepEqual(t, e.emu.QueueEntries("full-GPU"), []string{full})

	// Both halves end: the full GPU runs.
	e.deleteJob(half[1])
	e.deleteJob(half[2])
	e.waitJob(full, 30*time.Second)
	// The recorder's informer may see the Job a moment after the API server answered.
	e.waitFor(10*time.Second, "the recorder to see the full-GPU Job", func() bool {
		order, _, _, _ = jobs.snapshot()
		return len(order) >= 4
	}, func() string { return fmt.Sprint(order) })
	assert.Equal(t, len(order), 4)
	assert.DeepEqual(t, sorted(order[:2]), sorted(half[:2]))
	assert.DeepEqual(t, order[2:], []string{half[2], full})
	assert.Equal(t, e.emu.Calls("queues.move_task_to_front"), 0, "a task was pulled and pushed back")

	// Seven 1/7 slices fit in one GPU equivalent (0.98), an eighth does not.
	e.deleteJob(full)
	var slices []string
	for i := range 8 {
		slices = append(slices, e.task("1g-GPU", fmt.Sprintf("slice-%d", i), emulator.TaskSpec{}))
	}
	for _, id := range slices[:7] {
		e.waitJob(id, 30*time.Second)
	}
	time.Sleep(2 * time.Second)
	assert.DeepEqual(t, e.emu.QueueEntries("1g-GPU"), slices[7:])
}

func sorted(ids []string) []string {
	out := append([]string(nil), ids...)
	sort.Strings(out)
	return out
}

// deleteJob deletes a task's Job as an operator would; its task fails and its share is freed.
func (e *env) deleteJob(id string) {
	e.t.Helper()
	bg := metav1.DeletePropagationBackground
	assert.NilError(e.t, e.cs.BatchV1().Jobs(e.ns).Delete(context.Background(), podtemplate.ObjectName(id), metav1.DeleteOptions{PropagationPolicy: &bg}))
}

// Port mode: the properties clearml-session connects with match the chart's Service that selects
// the task's pod.
func TestPortModeTaskPropertiesMatchItsService(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  queues:
    interactive:
      templateOverrides:
        labels: {e2e.glue/behavior: hold}
sessions:
  portModeEnabled: true
  svcType: NodePort
  externalIP: 10.1.2.3
  startingPort: 31100
  maxServices: 2
`)
	e.startGlue("glue-0")
	ids := []string{e.task("interactive", "a", emulator.TaskSpec{}), e.task("interactive", "b", emulator.TaskSpec{})}
	services, err := e.cs.CoreV1().Services(e.ns).List(context.Background(), metav1.ListOptions{})
	assert.NilError(t, err)
	for _, id := range ids {
		job := e.waitJob(id, 30*time.Second)
		slot := job.Spec.Template.Labels[podtemplate.LabelPortSlot]
		var svc *corev1.Service
		for i := range services.Items {
			if services.Items[i].Spec.Selector[podtemplate.LabelPortSlot] == slot {
				svc = &services.Items[i]
			}
		}
		assert.Assert(t, svc != nil, "no Service selects %s", slot)
		var props map[string]emulator.HyperParam
		e.waitFor(10*time.Second, "port-mode properties of "+id, func() bool {
			props = e.taskState(id).Hyperparams["properties"]
			_, ok := props["k8s-pod-port"]
			return ok
		}, func() string { return fmt.Sprint(props) })
		n := strings.TrimPrefix(slot, "pod-")
		assert.Equal(t, props["k8s-pod-port"].Value, strconv.Itoa(int(svc.Spec.Ports[0].NodePort)))
		assert.Equal(t, props["k8s-pod-port"].Value, strconv.Itoa(31100+atoi(t, n)), "startingPort + n, as the open-source chart")
		assert.Equal(t, props["k8s-gateway-address"].Value, "10.1.2.3")
		assert.Equal(t, props["k8s-pod-number"].Value, n)
		assert.Equal(t, props["k8s-internal-pod-count"].Value, strconv.Itoa(atoi(t, n)-1))
		assert.Equal(t, props["k8s-agent"].Value, "clearml-agent="+objectName(e.manifestObject("ConfigMap")))
		assert.Equal(t, props["k8s-queue"].Value, "interactive")
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	assert.NilError(t, err)
	return n
}

// Templates that read the project's name and the owner render from what ClearML holds.
func TestProjectAndUserTemplatesRenderFromClearML(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  queues:
    vision:
      templateOverrides:
        labels:
          project: "${CLEARML_PROJECT_NAME}"
        env:
          - {name: OWNER, value: "${CLEARML_USER.name}"}
          - {name: OWNER_GIVEN, value: "{{ .User.given_name }}"}
      queueSettings:
        customWorkerIdTemplate: "k8s:{project}:{task_id}"
`)
	project, err := e.emu.CreateProject("Computer Vision/ResNet")
	assert.NilError(t, err)
	owner := e.emu.AddUser(emulator.User{Name: "Jane Doe", GivenName: "Jane"})
	e.startGlue("glue-0")
	id := e.task("vision", "train", emulator.TaskSpec{Project: project, User: owner})
	e.waitStatus(id, clearml.StatusCompleted, 60*time.Second)
	job := e.waitJob(id, time.Second)
	assert.Equal(t, job.Spec.Template.Labels["project"], "computer-vision-resnet")
	env := map[string]string{}
	for _, v := range job.Spec.Template.Spec.Containers[0].Env {
		env[v.Name] = v.Value
	}
	assert.Equal(t, env["OWNER"], "Jane Doe")
	assert.Equal(t, env["OWNER_GIVEN"], "Jane")
	assert.Equal(t, env["CLEARML_WORKER_ID"], "k8s:Computer Vision/ResNet:"+id)
}

// Each key ClearML documents installs and changes the object as documented.
func TestDocumentedKeysChangeTheObject(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  taskAsJob: false
  completedPodDeletionDelayMinutes: 5
  debugMode: true
  workerIdOverride: "k8s:my-agent"
  taskWorkerIdOverride: "k8s:my-group:{task_id}"
  customBashScript: "echo ready"
  defaultContainerImage: "python:3.11-slim"
  extraEnvs:
    - {name: K8S_GLUE_MAX_PODS, value: "5"}
  basePodTemplate:
    annotations: {e2e.glue/run-ms: "200ms"}
  queues:
    gpu queue:
      templateOverrides:
        serviceAccountName: trainer
      queueSettings:
        customWorkerIdTemplate: "k8s:H100:{task_id}"
    cpu: {}
`)
	_, err := e.cs.CoreV1().ServiceAccounts(e.ns).Create(context.Background(),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "trainer"}}, metav1.CreateOptions{})
	assert.NilError(t, err)
	assert.Equal(t, e.deploymentEnv("GLUE_LOG_LEVEL"), "debug")
	e.startGlue("glue-0")
	gpu := e.task("gpu queue", "on gpu", emulator.TaskSpec{})
	cpu := e.task("cpu", "no image", emulator.TaskSpec{Container: map[string]string{"setup_shell_script": "echo setup"}})
	pods := map[string]*corev1.Pod{}
	for _, id := range []string{gpu, cpu} {
		e.waitStatus(id, clearml.StatusCompleted, 60*time.Second)
		pod, err := e.cs.CoreV1().Pods(e.ns).Get(context.Background(), podtemplate.ObjectName(id), metav1.GetOptions{})
		assert.NilError(t, err, "taskAsJob: false launches bare Pods")
		pods[id] = pod
	}
	envOf := func(p *corev1.Pod) map[string]string {
		m := map[string]string{}
		for _, v := range p.Spec.Containers[0].Env {
			m[v.Name] = v.Value
		}
		return m
	}
	assert.Equal(t, pods[gpu].Spec.ServiceAccountName, "trainer")
	assert.Assert(t, pods[gpu].Spec.AutomountServiceAccountToken == nil)
	assert.Equal(t, pods[gpu].Labels[podtemplate.LabelQueueName], "gpu-queue")
	assert.Equal(t, envOf(pods[gpu])["CLEARML_WORKER_ID"], "k8s:H100:"+gpu)
	assert.Equal(t, pods[cpu].Spec.ServiceAccountName, "default", "the namespace's default ServiceAccount")
	assert.Assert(t, pods[cpu].Spec.AutomountServiceAccountToken != nil && !*pods[cpu].Spec.AutomountServiceAccountToken)
	assert.Equal(t, envOf(pods[cpu])["CLEARML_WORKER_ID"], "k8s:my-group:"+cpu)
	assert.Equal(t, envOf(pods[cpu])["CLEARML_GLUE_EXTRA_BASH_SCRIPT"], "echo ready")
	// The image that ran is written back to the task that named none; its setup script is kept.
	c := e.taskState(cpu).Container
	assert.Equal(t, c["image"], "python:3.11-slim")
	assert.Equal(t, c["setup_shell_script"], "echo setup")
	// The glue registers with workerIdOverride.
	found := false
	for _, w := range e.emu.Workers() {
		found = found || w.ID == "k8s:my-agent"
	}
	assert.Assert(t, found, "no worker k8s:my-agent: %v", e.emu.Workers())
	cm := e.configMapData()["glue.yaml"]
	assert.Assert(t, strings.Contains(cm, "maxPods: 5"), "K8S_GLUE_MAX_PODS was not honoured:\n%s", cm)
}

// containerCustomBashScript as the air-gapped page gives it runs the task.
func TestDocumentedContainerScriptRunsTheTask(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  basePodTemplate:
    annotations: {e2e.glue/run-ms: "200ms"}
  containerCustomBashScript: |
    export HOME=/tmp
    {extra_bash_init_cmd}
    [ ! -z $CLEARML_AGENT_NO_UPDATE ] || $LOCAL_PYTHON -m pip install clearml-agent{agent_install_args}
    {extra_docker_bash_script}
    $LOCAL_PYTHON -m clearml_agent execute {default_execution_agent_args} --id {task_id}
  queues:
    air-gapped: {}
`)
	e.startGlue("glue-0")
	id := e.task("air-gapped", "offline", emulator.TaskSpec{})
	e.waitStatus(id, clearml.StatusCompleted, 60*time.Second)
	job := e.waitJob(id, time.Second)
	script := job.Spec.Template.Spec.Containers[0].Args[1]
	assert.Assert(t, strings.HasSuffix(script, "-m clearml_agent execute --full-monitoring --require-queue --id "+id+"\n"), script)
}
