package monitor

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/poll"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
)

// manyObjects starts the monitor on a cluster where n tasks in status have a Job each, with a pod
// in phase; the emulator pages at 500, as the real server. It returns the task ids.
func manyObjects(t testing.TB, n int, status string, phase corev1.PodPhase) (*syncRig, []string) {
	t.Helper()
	emu := emulator.NewTestServer(t, emulator.Options{})
	ids := make([]string, n)
	objs := make([]runtime.Object, 0, 2*n)
	for i := range ids {
		id := emu.CreateTask(emulator.TaskSpec{Name: fmt.Sprintf("task-%04d", i)})
		assert.NilError(t, emu.SetTaskStatus(id, status))
		ids[i] = id
		labels := map[string]string{podtemplate.LabelAgent: "glue", podtemplate.LabelTaskID: id}
		job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: podtemplate.ObjectName(id), Namespace: "ml", UID: types.UID("job-" + id), Labels: labels}}
		p := pod("pod-"+id, phase)
		p.Name, p.Namespace, p.Labels = podtemplate.ObjectName(id)+"-x", "ml", labels
		objs = append(objs, job, p)
	}
	r := newSyncRigWith(t, emu, objs...)
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if len(r.mon.jobs.List()) == n && len(r.mon.pods.List()) == n {
			return poll.Success()
		}
		return poll.Continue("caches")
	}, poll.WithTimeout(30*time.Second))
	return r, ids
}

// countDeletes counts Job deletions and records the deleted names.
func (r *syncRig) countDeletes() (*atomic.Int64, func() []string) {
	var n atomic.Int64
	var names []string
	done := make(chan struct{}, 1)
	done <- struct{}{}
	r.cs.PrependReactor("delete", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
		<-done
		names = append(names, a.(k8stesting.DeleteAction).GetName())
		done <- struct{}{}
		n.Add(1)
		return false, nil, nil
	})
	return &n, func() []string { <-done; defer func() { done <- struct{}{} }(); return append([]string(nil), names...) }
}

// drain runs sync for every queued key until the queue is empty.
func (r *syncRig) drain() {
	for r.mon.queue.Len() > 0 {
		if !r.mon.processNext(context.Background()) {
			panic("monitor queue shut down")
		}
	}
}

// TestRestartWithMoreLiveObjectsThanAPageDeletesNone: 1,200 running tasks' objects at a restart
// of the glue, against a server that answers 500 per page: every task is found, none deleted,
// every object watched.
func TestRestartWithMoreLiveObjectsThanAPageDeletesNone(t *testing.T) {
	r, ids := manyObjects(t, 1200, clearml.StatusInProgress, corev1.PodRunning)
	deletes, _ := r.countDeletes()
	assert.NilError(t, r.mon.Reconcile(context.Background()))
	r.drain()
	assert.Equal(t, deletes.Load(), int64(0))
	for _, id := range ids {
		assert.Assert(t, r.mon.Watching(id))
	}
}

// TestReconcileDeletesOnlyWhatALookupProvesFinished: among 1,200, the object of a finished task
// and of a task that no longer exists are deleted, nothing else.
func TestReconcileDeletesOnlyWhatALookupProvesFinished(t *testing.T) {
	r, ids := manyObjects(t, 1200, clearml.StatusInProgress, corev1.PodPending)
	assert.NilError(t, r.emu.SetTaskStatus(ids[700], clearml.StatusStopped))
	_, names := r.countDeletes()
	assert.NilError(t, r.mon.Reconcile(context.Background()))
	r.drain()
	assert.DeepEqual(t, names(), []string{podtemplate.ObjectName(ids[700])})
}

// TestAbortOfOneAmongManyPendingDeletesOnlyItsObject: one task aborted among 1,200 pending pods.
func TestAbortOfOneAmongManyPendingDeletesOnlyItsObject(t *testing.T) {
	r, ids := manyObjects(t, 1200, clearml.StatusQueued, corev1.PodPending)
	assert.NilError(t, r.emu.SetTaskStatus(ids[1100], clearml.StatusStopped))
	_, names := r.countDeletes()
	r.mon.checkAborted(context.Background())
	r.drain()
	assert.DeepEqual(t, names(), []string{podtemplate.ObjectName(ids[1100])})
}
