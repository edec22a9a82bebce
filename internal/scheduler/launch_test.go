package scheduler

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/clearml-glue/clearml-glue/internal/admission"
	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
	"github.com/clearml-glue/clearml-glue/internal/taskops"
)

// rig is a scheduler on the fake clientset and the in-process emulator, serving queue "work".
type rig struct {
	t     *testing.T
	emu   *emulator.Server
	cs    *fake.Clientset
	sched *Scheduler
	snap  *Snapshot
}

func newRig(t *testing.T, mod func(*config.File, *Options)) *rig {
	t.Helper()
	return newRigOver(t, nil, mod)
}

// newRigOver is newRig with the client's calls going through transport (nil: the default).
func newRigOver(t *testing.T, transport http.RoundTripper, mod func(*config.File, *Options)) *rig {
	t.Helper()
	emu := emulator.NewTestServer(t, emulator.Options{})
	_, err := emu.CreateQueue("work")
	assert.NilError(t, err)
	client, err := clearml.New(clearml.Config{APIHost: emu.URL(), AccessKey: emulator.DefaultAccessKey, SecretKey: emulator.DefaultSecretKey,
		RetryInitialInterval: time.Millisecond, RetryMaxInterval: 10 * time.Millisecond, MaxRetryElapsed: time.Second,
		HTTPClient: &http.Client{Transport: transport}})
	assert.NilError(t, err)
	f := config.Default()
	f.Namespace, f.Queue, f.AgentName, f.WorkerID = "ml", "work", "glue", "glue"
	cs := fake.NewClientset()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts := Options{Client: client, Clientset: cs, Tracker: admission.NewTracker(), Logger: log,
		Ops: taskops.New(client, "glue", f.PendingQueue, log), CreateRetry: 2 * time.Second, RecoverSettle: 50 * time.Millisecond}
	if mod != nil {
		mod(&f, &opts)
	}
	b, err := podtemplate.NewBuilder(&f)
	assert.NilError(t, err)
	snap := &Snapshot{File: &f, Builder: b}
	opts.Config = func() *Snapshot { return snap }
	return &rig{t: t, emu: emu, cs: cs, sched: New(opts), snap: snap}
}

// pull enqueues a task in "work" and runs one scheduling cycle, waiting for its launch.
func (r *rig) pull(name string) string {
	r.t.Helper()
	id := r.emu.CreateTask(emulator.TaskSpec{Name: name})
	assert.NilError(r.t, r.emu.Enqueue(id, "work"))
	r.cycleAndWait()
	return id
}

func (r *rig) task(id string) emulator.Task {
	r.t.Helper()
	task, ok := r.emu.Task(id)
	assert.Assert(r.t, ok)
	return task
}

func (r *rig) jobs() []batchv1.Job {
	l, err := r.cs.BatchV1().Jobs("ml").List(context.Background(), metav1.ListOptions{})
	assert.NilError(r.t, err)
	return l.Items
}

func TestLaunch(t *testing.T) {
	t.Run("should create the object before the task enters the shared pending queue", func(t *testing.T) {
		r := newRig(t, nil)
		var inPendingAtCreate *bool
		r.cs.PrependReactor("create", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
			in := len(r.emu.QueueEntries("k8s_scheduler")) > 0
			inPendingAtCreate = &in
			return false, nil, nil
		})
		id := r.pull("a")
		assert.Assert(t, inPendingAtCreate != nil && !*inPendingAtCreate, "the task was in the pending queue before its Job existed")
		assert.Equal(t, len(r.jobs()), 1)
		assert.DeepEqual(t, r.emu.QueueEntries("k8s_scheduler"), []string{id})
		task := r.task(id)
		assert.Equal(t, task.Status, clearml.StatusQueued)
		assert.Equal(t, task.StatusReason, clearml.PendingQueueReason)
		assert.Equal(t, task.Hyperparams["properties"]["k8s-queue"].Value, "work")
	})

	t.Run("should keep a pending reason reported before its pending push", func(t *testing.T) {
		r := newRig(t, nil)
		const reason = "ImagePullBackOff (Back-off pulling image)"
		// The monitor can see the pod waiting before the create's answer is back.
		r.cs.PrependReactor("create", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
			job := a.(k8stesting.CreateAction).GetObject().(*batchv1.Job)
			assert.NilError(t, r.sched.opts.Ops.ReportPending(context.Background(), job.Labels[podtemplate.LabelTaskID], reason))
			return false, nil, nil
		})
		id := r.pull("a")
		task := r.task(id)
		assert.Equal(t, task.StatusReason, clearml.PendingQueueReason, "pushed to the pending queue")
		assert.Equal(t, task.StatusMessage, clearml.GlueStatusMessagePrefix+reason)
	})

	t.Run("should run again a task whose finished Job of an earlier run still exists", func(t *testing.T) {
		r := newRig(t, nil)
		id := r.emu.CreateTask(emulator.TaskSpec{Name: "again"})
		old := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: podtemplate.ObjectName(id), Namespace: "ml", UID: "old"},
			Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}}}
		_, err := r.cs.BatchV1().Jobs("ml").Create(context.Background(), old, metav1.CreateOptions{})
		assert.NilError(t, err)
		assert.NilError(t, r.emu.Enqueue(id, "work"))
		_, err = r.sched.cycle(context.Background())
		assert.NilError(t, err)
		r.sched.wg.Wait()
		jobs := r.jobs()
		assert.Equal(t, len(jobs), 1)
		assert.Assert(t, jobs[0].UID != "old" && len(jobs[0].Status.Conditions) == 0, "the finished Job was not replaced")
		assert.DeepEqual(t, r.emu.QueueEntries("k8s_scheduler"), []string{id})
	})

	t.Run("should wait for a live earlier run of the task, then run again", func(t *testing.T) {
		r := newRig(t, nil)
		id := r.emu.CreateTask(emulator.TaskSpec{Name: "live"})
		live := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: podtemplate.ObjectName(id), Namespace: "ml", UID: "live"},
			Status: batchv1.JobStatus{Active: 1}}
		_, err := r.cs.BatchV1().Jobs("ml").Create(context.Background(), live, metav1.CreateOptions{})
		assert.NilError(t, err)
		go func() {
			// The earlier run's pod succeeds; its Job's condition comes later.
			time.Sleep(100 * time.Millisecond)
			live.Status = batchv1.JobStatus{Succeeded: 1}
			_, _ = r.cs.BatchV1().Jobs("ml").UpdateStatus(context.Background(), live, metav1.UpdateOptions{})
		}()
		assert.NilError(t, r.emu.Enqueue(id, "work"))
		_, err = r.sched.cycle(context.Background())
		assert.NilError(t, err)
		r.sched.wg.Wait()
		jobs := r.jobs()
		assert.Equal(t, len(jobs), 1)
		assert.Assert(t, jobs[0].UID != "live", "the earlier run's Job was kept")
		assert.DeepEqual(t, r.emu.QueueEntries("k8s_scheduler"), []string{id})
	})

	t.Run("should leave a task that ClearML's Python glue runs to it", func(t *testing.T) {
		r := newRig(t, func(f *config.File, o *Options) {
			f.PythonGlueNamespaces = []string{"legacy"}
		})
		r.sched.opts.Foreign = PythonGlueObjects(r.cs, func() []string { return r.snap.File.PythonGlueNamespaces })
		id := r.emu.CreateTask(emulator.TaskSpec{Name: "theirs"})
		theirs := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: podtemplate.ObjectName(id), Namespace: "legacy",
			Labels: map[string]string{PythonGlueLabel: "agent-1a2b3c4d"}}, Status: corev1.PodStatus{Phase: corev1.PodPending}}
		_, err := r.cs.CoreV1().Pods("legacy").Create(context.Background(), theirs, metav1.CreateOptions{})
		assert.NilError(t, err)
		assert.NilError(t, r.emu.Enqueue(id, "work"))
		_, err = r.sched.cycle(context.Background())
		assert.NilError(t, err)
		r.sched.wg.Wait()
		assert.Equal(t, len(r.jobs()), 0)
		assert.Equal(t, len(r.emu.QueueEntries("k8s_scheduler")), 0)
		assert.Equal(t, r.task(id).Status, clearml.StatusQueued)
		assert.Assert(t, !r.sched.opts.Tracker.Has(id), "the skipped task still holds a place")
	})

	t.Run("should put the task back at the front of its queue when Kubernetes is unreachable", func(t *testing.T) {
		r := newRig(t, func(f *config.File, _ *Options) { f.MaxPods = 1 })
		r.cs.PrependReactor("create", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewServiceUnavailable("api server down")
		})
		first := r.emu.CreateTask(emulator.TaskSpec{Name: "first"})
		second := r.emu.CreateTask(emulator.TaskSpec{Name: "second"})
		assert.NilError(t, r.emu.Enqueue(first, "work"))
		assert.NilError(t, r.emu.Enqueue(second, "work"))
		_, err := r.sched.cycle(context.Background())
		assert.NilError(t, err)
		r.sched.wg.Wait()
		assert.DeepEqual(t, r.emu.QueueEntries("work"), []string{first, second})
		assert.Equal(t, len(r.emu.QueueEntries("k8s_scheduler")), 0)
		assert.Assert(t, !r.sched.opts.Tracker.Has(first))
	})

	t.Run("should fail a task Kubernetes refuses, naming the object", func(t *testing.T) {
		r := newRig(t, nil)
		r.cs.PrependReactor("create", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(batchv1.Resource("jobs"), "x", errQuota)
		})
		id := r.pull("refused")
		task := r.task(id)
		assert.Equal(t, task.Status, clearml.StatusFailed)
		assert.Assert(t, strings.HasPrefix(task.StatusReason, clearml.GlueErrorReasonPrefix+"Job "+podtemplate.ObjectName(id)+" refused by Kubernetes"), task.StatusReason)
		assert.Equal(t, len(r.emu.QueueEntries("k8s_scheduler")), 0)
	})
}

var errQuota = apierrors.NewBadRequest("exceeded quota")

func TestAdmission(t *testing.T) {
	t.Run("should not poll a queue at its maxPods", func(t *testing.T) {
		r := newRig(t, func(f *config.File, _ *Options) {
			f.Queue = ""
			f.Queues = map[string]config.Queue{"work": {QueueSettings: config.QueueSettings{MaxPods: 1}}}
		})
		first := r.pull("first")
		id := r.emu.CreateTask(emulator.TaskSpec{Name: "waits"})
		assert.NilError(t, r.emu.Enqueue(id, "work"))
		r.emu.ResetCalls()
		_, err := r.sched.cycle(context.Background())
		assert.NilError(t, err)
		r.sched.wg.Wait()
		assert.Equal(t, r.emu.Calls("queues.get_next_task"), 0)
		assert.DeepEqual(t, r.emu.QueueEntries("work"), []string{id})
		r.sched.opts.Tracker.Observe(first, r.emu.QueueID("work"), resource.Quantity{}, 0, false) // its pod ended
		_, err = r.sched.cycle(context.Background())
		assert.NilError(t, err)
		r.sched.wg.Wait()
		assert.Equal(t, len(r.emu.QueueEntries("work")), 0)
	})

	t.Run("should not poll while the monitored resource is used up", func(t *testing.T) {
		r := newRig(t, func(f *config.File, _ *Options) {
			f.MonitoredResources.MaxResources = resource.MustParse("1")
			f.BasePodTemplate = map[string]any{"resources": map[string]any{"limits": map[string]any{"nvidia.com/gpu": "1"}}}
		})
		r.pull("gpu-1")
		id := r.emu.CreateTask(emulator.TaskSpec{Name: "gpu-2"})
		assert.NilError(t, r.emu.Enqueue(id, "work"))
		r.emu.ResetCalls()
		_, err := r.sched.cycle(context.Background())
		assert.NilError(t, err)
		assert.Equal(t, r.emu.Calls("queues.get_next_task"), 0)
		held := r.sched.opts.Tracker.Resources()
		assert.Equal(t, held.String(), "1")
	})
}

func TestRecover(t *testing.T) {
	t.Run("should put a popped stray back at the front after the settle period", func(t *testing.T) {
		r := newRig(t, nil)
		stray := r.emu.CreateTask(emulator.TaskSpec{Name: "stray"})
		waiting := r.emu.CreateTask(emulator.TaskSpec{Name: "waiting"})
		assert.NilError(t, r.emu.Enqueue(stray, "work"))
		assert.NilError(t, r.emu.Enqueue(waiting, "work"))
		next, err := r.sched.opts.Client.QueuesGetNextTask(context.Background(), r.emu.QueueID("work"))
		assert.NilError(t, err)
		assert.Equal(t, next.Entry.Task, stray) // popped by a glue that then died
		assert.NilError(t, r.sched.Recover(context.Background()))
		assert.DeepEqual(t, r.emu.QueueEntries("work"), []string{stray, waiting})
	})

	t.Run("should leave a popped task that has an object or is in another queue", func(t *testing.T) {
		r := newRig(t, nil)
		owned := r.emu.CreateTask(emulator.TaskSpec{Name: "owned"})
		assert.NilError(t, r.emu.Enqueue(owned, "work"))
		_, err := r.sched.opts.Client.QueuesGetNextTask(context.Background(), r.emu.QueueID("work"))
		assert.NilError(t, err)
		r.sched.opts.Owns = func(id string) bool { return id == owned }
		pendingOther := r.emu.CreateTask(emulator.TaskSpec{Name: "other glue's"})
		_, err = r.emu.CreateQueue("k8s_scheduler", clearml.PendingQueueTag)
		assert.NilError(t, err)
		assert.NilError(t, r.emu.Enqueue(pendingOther, "k8s_scheduler"))
		assert.NilError(t, r.sched.Recover(context.Background()))
		assert.Equal(t, len(r.emu.QueueEntries("work")), 0)
		assert.DeepEqual(t, r.emu.QueueEntries("k8s_scheduler"), []string{pendingOther})
	})
}

// A shared server may hold many queued tasks of other queues: Recover reads only the served
// queues' (execution.queue filter), one page here instead of three.
func TestRecoverReadsOnlyServedQueues(t *testing.T) {
	r := newRig(t, nil)
	_, err := r.emu.CreateQueue("elsewhere")
	assert.NilError(t, err)
	for i := range 1200 {
		assert.NilError(t, r.emu.Enqueue(r.emu.CreateTask(emulator.TaskSpec{Name: fmt.Sprintf("other-%04d", i)}), "elsewhere"))
	}
	stray := r.emu.CreateTask(emulator.TaskSpec{Name: "stray"})
	assert.NilError(t, r.emu.Enqueue(stray, "work"))
	_, err = r.sched.opts.Client.QueuesGetNextTask(context.Background(), r.emu.QueueID("work"))
	assert.NilError(t, err)
	r.emu.ResetCalls()
	assert.NilError(t, r.sched.Recover(context.Background()))
	assert.DeepEqual(t, r.emu.QueueEntries("work"), []string{stray})
	assert.Equal(t, len(r.emu.QueueEntries("elsewhere")), 1200)
	assert.Equal(t, r.emu.Calls("tasks.get_all"), 2, "one page before and one after the settle period")
}

// TestRecoverAtScale: 1,200 tasks popped by a glue that died, against a server that answers 500
// per page: each is put back once.
func TestRecoverAtScale(t *testing.T) {
	r := newRig(t, nil)
	queue := r.emu.QueueID("work")
	var ids []string
	for i := range 1200 {
		id := r.emu.CreateTask(emulator.TaskSpec{Name: fmt.Sprintf("stray-%04d", i)})
		assert.NilError(t, r.emu.Enqueue(id, "work"))
		ids = append(ids, id)
	}
	for range ids {
		_, err := r.sched.opts.Client.QueuesGetNextTask(context.Background(), queue)
		assert.NilError(t, err)
	}
	assert.Equal(t, len(r.emu.QueueEntries("work")), 0)
	r.emu.ResetCalls()
	assert.NilError(t, r.sched.Recover(context.Background()))
	back := r.emu.QueueEntries("work")
	slices.Sort(back)
	slices.Sort(ids)
	assert.DeepEqual(t, back, ids)
	assert.Equal(t, r.emu.Calls("tasks.enqueue"), len(ids), "each stray is put back once")
}
