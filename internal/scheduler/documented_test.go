package scheduler

import (
	"context"
	"testing"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"github.com/clearml-glue/clearml-glue/internal/config"
)

func (r *rig) cycle() {
	r.t.Helper()
	_, err := r.sched.cycle(context.Background())
	assert.NilError(r.t, err)
	r.sched.wg.Wait()
}

// A need rendered per task is admitted after the task is read and before the object exists; a
// task that does not fit goes back to the FRONT of its queue, and the queue waits for it.
func TestRenderedNeedIsAdmittedBeforeCreate(t *testing.T) {
	r := newRig(t, func(f *config.File, _ *Options) {
		f.MonitoredResources = config.MonitoredResources{MaxResources: resource.MustParse("1"),
			MaxResourcesFieldName: "metadata|labels|clear.ml/resource-usage", MinResourcesFieldName: "metadata|labels|clear.ml/resource-usage"}
		f.BasePodTemplate = map[string]any{"labels": map[string]any{
			"clear.ml/resource-usage": "${CLEARML_TASK.hyperparams.General.gpu_share.value:1}"}}
	})
	share := func(v string) map[string]map[string]emulator.HyperParam {
		return map[string]map[string]emulator.HyperParam{"General": {"gpu_share": {Section: "General", Name: "gpu_share", Value: v}}}
	}
	first := r.emu.CreateTask(emulator.TaskSpec{Name: "first", Hyperparams: share("0.75")})
	second := r.emu.CreateTask(emulator.TaskSpec{Name: "second", Hyperparams: share("0.5")})
	third := r.emu.CreateTask(emulator.TaskSpec{Name: "third", Hyperparams: share("0.25")})
	for _, id := range []string{first, second, third} {
		assert.NilError(t, r.emu.Enqueue(id, "work"))
	}
	// One task at a time while its need is unknown: first launches; second (0.5) does not fit
	// next to first (0.75) and goes back to the front, before third.
	r.cycle()
	r.cycle()
	assert.Equal(t, len(r.jobs()), 1)
	held := r.sched.opts.Tracker.Resources()
	assert.Equal(t, held.String(), "750m", "the reservation holds the rendered amount")
	assert.DeepEqual(t, r.emu.QueueEntries("work"), []string{second, third})
	r.emu.ResetCalls()
	r.cycle()
	assert.Equal(t, r.emu.Calls("queues.get_next_task"), 0, "the queue waits for its first task to fit")

	r.sched.opts.Tracker.Observe(first, r.emu.QueueID("work"), resource.Quantity{}, 0, false) // first ended
	r.cycle()
	r.cycle()
	assert.Equal(t, len(r.jobs()), 3)
	assert.DeepEqual(t, r.emu.QueueEntries("work"), []string{})
}

// Project name and owner are read from ClearML only for queues whose templates use them, once
// per id (cached), and reach the object.
func TestProjectAndUserLookups(t *testing.T) {
	r := newRig(t, func(f *config.File, _ *Options) {
		f.Queue = ""
		f.Queues = map[string]config.Queue{
			"work": {TemplateOverrides: map[string]any{
				"labels": map[string]any{"project": "${CLEARML_PROJECT_NAME}"},
				"env":    []any{map[string]any{"name": "OWNER", "value": "${CLEARML_USER.name}"}},
			}},
			"plain": {},
		}
	})
	_, err := r.emu.CreateQueue("plain")
	assert.NilError(t, err)
	project, err := r.emu.CreateProject("Vision/ResNet")
	assert.NilError(t, err)
	owner := r.emu.AddUser(emulator.User{Name: "Jane Doe"})
	var ids []string
	for _, q := range []string{"work", "work", "plain"} {
		id := r.emu.CreateTask(emulator.TaskSpec{Name: "t-" + q, Project: project, User: owner})
		assert.NilError(t, r.emu.Enqueue(id, q))
		ids = append(ids, id)
	}
	r.emu.ResetCalls()
	for range 3 {
		r.cycle()
	}
	assert.Equal(t, len(r.jobs()), 3)
	assert.Equal(t, r.emu.Calls("projects.get_all"), 1, "one look-up, then the cache")
	assert.Equal(t, r.emu.Calls("users.get_by_id"), 1)
	for _, id := range ids[:2] {
		job, err := r.cs.BatchV1().Jobs("ml").Get(context.Background(), "clearml-id-"+id, metav1.GetOptions{})
		assert.NilError(t, err)
		assert.Equal(t, job.Spec.Template.Labels["project"], "vision-resnet")
		var ownerEnv string
		for _, e := range job.Spec.Template.Spec.Containers[0].Env {
			if e.Name == "OWNER" {
				ownerEnv = e.Value
			}
		}
		assert.Equal(t, ownerEnv, "Jane Doe")
	}
}

// A task that named no image gets the image that ran written back, as the Python glue does.
func TestImageRecordedOnTheTask(t *testing.T) {
	r := newRig(t, func(f *config.File, _ *Options) { f.DefaultContainerImage = "python:3.12-slim" })
	none := r.emu.CreateTask(emulator.TaskSpec{Name: "no-image", Container: map[string]string{"arguments": "-e A=1", "setup_shell_script": "echo hi"}})
	named := r.emu.CreateTask(emulator.TaskSpec{Name: "named", Container: map[string]string{"image": "nvcr.io/nvidia/pytorch:24.01-py3"}})
	for _, id := range []string{none, named} {
		assert.NilError(t, r.emu.Enqueue(id, "work"))
	}
	r.cycle()
	r.cycle()
	c := r.task(none).Container
	assert.Equal(t, c["image"], "python:3.12-slim")
	assert.Equal(t, c["arguments"], "-e A=1", "arguments kept")
	assert.Equal(t, c["setup_shell_script"], "echo hi", "setup script kept")
	assert.Equal(t, r.task(named).Container["image"], "nvcr.io/nvidia/pytorch:24.01-py3")
}

// Port mode: the task gets the properties clearml-session reads; k8s-pod-port is the nodePort
// of the Service that selects the pod.
func TestPortModeProperties(t *testing.T) {
	r := newRig(t, func(f *config.File, _ *Options) {
		f.Sessions = config.Sessions{PortModeEnabled: true, ExternalIP: "10.0.0.10", StartingPort: 30000, MaxServices: 2, SvcType: "NodePort"}
	})
	for n, nodePort := range map[int]int32{1: 30001, 2: 30002} {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "session-" + string(rune('0'+n)), Namespace: "ml"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: map[string]string{"ai.allegro.agent.serial": "pod-" + string(rune('0'+n))},
				Ports: []corev1.ServicePort{{Port: 10022, NodePort: nodePort}}}}
		_, err := r.cs.CoreV1().Services("ml").Create(context.Background(), svc, metav1.CreateOptions{})
		assert.NilError(t, err)
	}
	first, second := r.pull("one"), r.pull("two")
	for id, want := range map[string]map[string]string{
		first:  {"k8s-pod-number": "1", "k8s-pod-port": "30001", "k8s-internal-pod-count": "0"},
		second: {"k8s-pod-number": "2", "k8s-pod-port": "30002", "k8s-internal-pod-count": "1"},
	} {
		props := r.task(id).Hyperparams["properties"]
		for k, v := range want {
			assert.Equal(t, props[k].Value, v, k)
		}
		assert.Equal(t, props["k8s-gateway-address"].Value, "10.0.0.10")
		assert.Equal(t, props["k8s-agent"].Value, "clearml-agent=glue")
		assert.Equal(t, props["k8s-pod-label"].Value, "clearml-agent=glue")
		assert.Equal(t, props["k8s-queue"].Value, "work")
	}
}
