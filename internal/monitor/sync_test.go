package monitor

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/poll"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
	"github.com/clearml-glue/clearml-glue/internal/taskops"
)

type syncRig struct {
	t   testing.TB
	emu *emulator.Server
	cs  *fake.Clientset
	mon *Monitor
	ops *taskops.Ops
}

func newSyncRig(t *testing.T) *syncRig {
	t.Helper()
	return newSyncRigWith(t, emulator.NewTestServer(t, emulator.Options{}))
}

// newSyncRigWith starts the monitor on a fake cluster that holds objs already.
func newSyncRigWith(t testing.TB, emu *emulator.Server, objs ...runtime.Object) *syncRig {
	t.Helper()
	client, err := clearml.New(clearml.Config{APIHost: emu.URL(), AccessKey: emulator.DefaultAccessKey, SecretKey: emulator.DefaultSecretKey,
		RetryInitialInterval: time.Millisecond, RetryMaxInterval: 10 * time.Millisecond, MaxRetryElapsed: 200 * time.Millisecond})
	assert.NilError(t, err)
	f := config.Default()
	f.Namespace, f.AgentName, f.Queue = "ml", "glue", "work"
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ops := taskops.New(client, "glue", f.PendingQueue, log)
	cs := fake.NewClientset(objs...)
	mon := New(Options{Clientset: cs, Namespace: "ml", AgentName: "glue", Ops: ops, Config: func() *config.File { return &f },
		Recorder: record.NewFakeRecorder(100), Logger: log})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	assert.NilError(t, mon.Start(ctx))
	return &syncRig{t: t, emu: emu, cs: cs, mon: mon, ops: ops}
}

// running makes a task that the pod's agent started (in_progress), with its Job and a pod.
func (r *syncRig) running(pod *corev1.Pod) (string, *batchv1.Job) {
	r.t.Helper()
	ctx := context.Background()
	_, err := r.emu.CreateQueue("work")
	assert.NilError(r.t, err)
	id := r.emu.CreateTask(emulator.TaskSpec{Name: "t"})
	assert.NilError(r.t, r.emu.Enqueue(id, "work"))
	assert.NilError(r.t, r.ops.EnqueuePending(ctx, id, "test", true))
	// The pod's agent takes the task, as clearml-agent execute --require-queue does.
	_, err = r.ops.Client.TasksDequeue(ctx, clearml.TasksDequeueRequest{Task: id, NewStatus: clearml.StatusInProgress})
	assert.NilError(r.t, err)
	labels := map[string]string{podtemplate.LabelAgent: "glue", podtemplate.LabelTaskID: id}
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: podtemplate.ObjectName(id), Namespace: "ml", UID: "j1", Labels: labels}}
	job.Spec.PodFailurePolicy = disruptionIgnored()
	job, err = r.cs.BatchV1().Jobs("ml").Create(ctx, job, metav1.CreateOptions{})
	assert.NilError(r.t, err)
	pod.Namespace, pod.Labels = "ml", labels
	_, err = r.cs.CoreV1().Pods("ml").Create(ctx, pod, metav1.CreateOptions{})
	assert.NilError(r.t, err)
	poll.WaitOn(r.t, func(poll.LogT) poll.Result {
		if r.mon.Watching(id) && len(r.mon.pods.List()) > 0 {
			return poll.Success()
		}
		return poll.Continue("caches")
	}, poll.WithTimeout(5*time.Second))
	return id, job
}

func TestSync(t *testing.T) {
	t.Run("should push a disrupted pod's task back to the pending queue and keep its Job", func(t *testing.T) {
		r := newSyncRig(t)
		id, _ := r.running(pod("p1", corev1.PodFailed, disruptedBy("EvictionByEvictionAPI")))
		_, err := r.mon.sync(context.Background(), id)
		assert.NilError(t, err)
		task, _ := r.emu.Task(id)
		assert.Equal(t, task.Status, clearml.StatusQueued)
		assert.DeepEqual(t, r.emu.QueueEntries("k8s_scheduler"), []string{id})
		_, err = r.cs.BatchV1().Jobs("ml").Get(context.Background(), podtemplate.ObjectName(id), metav1.GetOptions{})
		assert.NilError(t, err, "the Job must stay: its controller starts the replacement pod")
		// The same pod seen again is not a second disruption.
		_, err = r.mon.sync(context.Background(), id)
		assert.NilError(t, err)
		assert.Equal(t, r.mon.state[id].Disruptions, 1)
	})

	t.Run("should fail the task first and delete its Job second", func(t *testing.T) {
		r := newSyncRig(t)
		id, _ := r.running(pod("p1", corev1.PodFailed, exited(137)))
		r.emu.Outage(time.Hour, 503)
		_, err := r.mon.sync(context.Background(), id)
		assert.Assert(t, err != nil, "a ClearML outage must be retried")
		_, err = r.cs.BatchV1().Jobs("ml").Get(context.Background(), podtemplate.ObjectName(id), metav1.GetOptions{})
		assert.NilError(t, err, "the Job was deleted although the task could not be failed")
		r.emu.Outage(0, 503)
		_, err = r.mon.sync(context.Background(), id)
		assert.NilError(t, err)
		task, _ := r.emu.Task(id)
		assert.Equal(t, task.Status, clearml.StatusFailed)
		_, err = r.cs.BatchV1().Jobs("ml").Get(context.Background(), podtemplate.ObjectName(id), metav1.GetOptions{})
		assert.ErrorContains(t, err, "not found")
	})

	t.Run("should leave a task its agent already finished", func(t *testing.T) {
		r := newSyncRig(t)
		id, _ := r.running(pod("p1", corev1.PodFailed, exited(1)))
		assert.NilError(t, r.emu.SetTaskStatus(id, clearml.StatusCompleted))
		_, err := r.mon.sync(context.Background(), id)
		assert.NilError(t, err)
		task, _ := r.emu.Task(id)
		assert.Equal(t, task.Status, clearml.StatusCompleted)
	})
}
