package e2e

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
)

// 1. A task's whole life: enqueued -> Job -> pod runs -> task completed -> Job cleaned.
func TestTaskLifecycleFromQueueToCompletedAndCleanedJob(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  completedPodDeletionDelayMinutes: 0
  queues:
    cpu-queue:
      templateOverrides:
        annotations: {e2e.glue/run-ms: "300ms"}
`)
	e.startGlue("glue-0")
	id := e.task("cpu-queue", "Train ResNet", emulator.TaskSpec{})

	job := e.waitJob(id, 30*time.Second)
	assert.Equal(t, job.Labels[podtemplate.LabelTaskID], id)
	assert.Equal(t, job.Labels[podtemplate.LabelQueueName], "cpu-queue")
	assert.Equal(t, job.Labels[podtemplate.LabelQueue], e.emu.QueueID("cpu-queue"))
	assert.Equal(t, job.Spec.Template.Spec.Containers[0].Image, "python:3.12")

	task := e.waitStatus(id, clearml.StatusCompleted, 30*time.Second)
	assert.Equal(t, task.Hyperparams["properties"]["k8s-queue"].Value, "cpu-queue")
	assert.Assert(t, slices.ContainsFunc(e.emu.TaskLog(id), func(l string) bool {
		return strings.Contains(l, "pulled from cpu-queue") && strings.Contains(l, "Job clearml-id-"+id+" created")
	}), "log: %q", e.emu.TaskLog(id))
	assert.Equal(t, len(e.emu.QueueEntries("k8s_scheduler")), 0, "pending queue not empty")

	// ttlSecondsAfterFinished from completedPodDeletionDelayMinutes: 0 lets Kubernetes delete it.
	e.waitNoJob(id, 30*time.Second)
	e.assertNoSecretLeaked(job)
}

// assertNoSecretLeaked checks the glue's logs, the namespace's Events, the task's log and the
// Job it built: neither the access key nor the secret appears in clear text, and the pod gets
// them by Secret reference.
func (e *env) assertNoSecretLeaked(job *batchv1.Job) {
	e.t.Helper()
	spec, err := json.Marshal(job)
	assert.NilError(e.t, err)
	events, err := e.cs.CoreV1().Events(e.ns).List(context.Background(), metav1.ListOptions{})
	assert.NilError(e.t, err)
	assert.Assert(e.t, len(events.Items) > 0, "no Events to check")
	var texts []string
	for _, ev := range events.Items {
		texts = append(texts, ev.Message, ev.Reason)
	}
	for where, text := range map[string]string{
		"glue logs": e.logs.all(), "events": strings.Join(texts, "\n"), "job spec": string(spec),
		"task log": strings.Join(e.emu.TaskLog(job.Labels[podtemplate.LabelTaskID]), "\n"),
	} {
		for _, secret := range []string{secretKey, accessKey} {
			assert.Assert(e.t, !strings.Contains(text, secret), "%s contain a credential", where)
		}
	}
	assert.Assert(e.t, strings.Contains(e.logs.all(), "launched"), "no glue log captured")
	refs := 0
	for _, v := range job.Spec.Template.Spec.Containers[0].Env {
		if v.ValueFrom != nil && v.ValueFrom.SecretKeyRef != nil {
			refs++
		}
	}
	assert.Assert(e.t, refs >= 2, "credentials are not taken from a Secret")
}

// A served queue that does not exist, with queue creation off, does not stop the glue: the other
// queues are served, the missing one is reported (log, Warning Event on the ConfigMap, metric)
// and served as soon as it exists.
func TestMissingQueueReportedWhileTheOthersAreServed(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  createQueues: false
  queue: present,no-such-queue
`)
	_, err := e.emu.CreateQueue("present")
	assert.NilError(t, err)
	e.startGlue("glue-0")
	served := e.task("present", "served", emulator.TaskSpec{})
	e.waitStatus(served, clearml.StatusCompleted, 60*time.Second)
	e.waitFor(30*time.Second, "a QueueNotFound Event on the ConfigMap", func() bool {
		return e.hasEvent("ConfigMap", "QueueNotFound", `queue "no-such-queue": queue does not exist`)
	}, func() string { return "no Event" })
	assert.Assert(t, strings.Contains(e.logs.all(), "no-such-queue"))

	late := e.task("no-such-queue", "late", emulator.TaskSpec{}) // creates the queue as a user would
	e.waitStatus(late, clearml.StatusCompleted, 60*time.Second)
	assert.Assert(t, e.hasEvent("ConfigMap", "QueueFound", "queue no-such-queue is served"))
}

// hasEvent says whether an Event of reason on an object of kind holds text.
func (e *env) hasEvent(kind, reason, text string) bool {
	events, err := e.cs.CoreV1().Events(e.ns).List(context.Background(), metav1.ListOptions{})
	assert.NilError(e.t, err)
	for _, ev := range events.Items {
		if ev.InvolvedObject.Kind == kind && ev.Reason == reason && strings.Contains(ev.Message, text) {
			return true
		}
	}
	return false
}
