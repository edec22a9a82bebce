package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"

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
}
