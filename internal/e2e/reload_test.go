package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"gotest.tools/v3/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/metrics"
)

// An invalid new config is refused (Warning Event on the ConfigMap, log line, config_valid 0)
// and the last good config keeps serving; a valid one is taken again.
func TestInvalidConfigRefusedLastGoodKeepsServing(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  queues:
    work:
      templateOverrides:
        annotations: {e2e.glue/run-ms: "200ms"}
`)
	e.startGlue("glue-0")
	e.waitStatus(e.task("work", "before", emulator.TaskSpec{}), clearml.StatusCompleted, 30*time.Second)

	ctx := context.Background()
	name := objectName(e.manifestObject("ConfigMap"))
	cm, err := e.cs.CoreV1().ConfigMaps(e.ns).Get(ctx, name, metav1.GetOptions{})
	assert.NilError(t, err)
	cm.Data[config.FileKey] = "namespace: " + e.ns + "\nqueues: {work: {}}\npollIntervalSeconds: -3\n"
	_, err = e.cs.CoreV1().ConfigMaps(e.ns).Update(ctx, cm, metav1.UpdateOptions{})
	assert.NilError(t, err)

	e.waitFor(15*time.Second, "an InvalidConfig Event", func() bool {
		evs, err := e.cs.CoreV1().Events(e.ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=InvalidConfig,involvedObject.name=" + name})
		return err == nil && len(evs.Items) > 0 && strings.Contains(evs.Items[0].Message, "pollIntervalSeconds: Invalid value: -3")
	}, func() string { return "no event" })
	assert.Equal(t, testutil.ToFloat64(metrics.ConfigValid), 0.0)
	assert.Assert(t, strings.Contains(e.logs.all(), "glue config refused"))

	// Still serving with the last good config (its poll interval, its queue).
	e.waitStatus(e.task("work", "after", emulator.TaskSpec{}), clearml.StatusCompleted, 30*time.Second)

	e.upgrade(`{}`) // helm writes the valid config back
	e.waitFor(15*time.Second, "config_valid back to 1", func() bool {
		return testutil.ToFloat64(metrics.ConfigValid) == 1
	}, func() string { return "still 0" })
}

// A queue removed by helm upgrade stops being polled, while its running objects stay watched.
func TestRemovedQueueStopsBeingPolledItsObjectsStayWatched(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  queues:
    kept:
      templateOverrides:
        annotations: {e2e.glue/run-ms: "200ms"}
    dropped:
      templateOverrides:
        labels: {e2e.glue/behavior: hold}
`)
	e.startGlue("glue-0")
	running := e.task("dropped", "long", emulator.TaskSpec{})
	e.waitStatus(running, clearml.StatusInProgress, 30*time.Second)

	e.upgrade(`
agentk8sglue:
  queues:
    dropped: null
`)
	// Once kept's next task runs, the new config is in force.
	e.waitStatus(e.task("kept", "k", emulator.TaskSpec{}), clearml.StatusCompleted, 30*time.Second)
	waiting := e.task("dropped", "not-served", emulator.TaskSpec{})
	time.Sleep(3 * time.Second)
	assert.Equal(t, e.taskState(waiting).Status, clearml.StatusQueued, "removed queue still served")
	assert.DeepEqual(t, e.emu.QueueEntries("dropped"), []string{waiting})

	// The running object of the removed queue is still watched: its pod dying fails the task.
	assert.NilError(t, e.cs.CoreV1().Pods(e.ns).Delete(context.Background(), e.podOf(running), metav1.DeleteOptions{}))
	e.waitStatus(running, clearml.StatusFailed, 30*time.Second)
}
