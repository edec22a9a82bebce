package monitor

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
)

// BenchmarkReconcile10k is the glue's start-up over 10,000 live task objects: from synced caches,
// the reconcile (20 paged tasks.get_all calls against an emulator paging at 500) and one sync per
// task. It reports reconcile_s_10k, the seconds that takes (setup excluded).
func BenchmarkReconcile10k(b *testing.B) {
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r, _ := manyObjects(b, 10000, clearml.StatusInProgress, corev1.PodRunning)
		b.StartTimer()
		start := time.Now()
		if err := r.mon.Reconcile(context.Background()); err != nil {
			b.Fatal(err)
		}
		r.drain()
		total += time.Since(start)
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "reconcile_s_10k")
}

// BenchmarkCachedBytes is the heap one task's Job and pod hold in the informers' caches once
// trimmed, live (a running pod) and ended (a Job complete, its pod succeeded): the figures behind
// the ended forms. Objects are shaped as the API server returns a glue's Job and the Job
// controller's pod (labels, env, resources, conditions, owner, finalizer).
func BenchmarkCachedBytes(b *testing.B) {
	for _, tc := range []struct {
		name  string
		ended bool
	}{{"live", false}, {"ended", true}} {
		b.Run(tc.name, func(b *testing.B) {
			const n = 2000
			var perTask float64
			for range b.N {
				jobs := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
				pods := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{byTaskIndex: byTask})
				before := liveHeap()
				for i := range n {
					job, pod := apiObjects(fmt.Sprintf("task-%05d", i), tc.ended)
					j, _ := trim(job)
					p, _ := trim(pod)
					must(b, jobs.Add(j))
					must(b, pods.Add(p))
				}
				perTask = float64(liveHeap()-before) / n
				runtime.KeepAlive(jobs)
				runtime.KeepAlive(pods)
			}
			b.ReportMetric(perTask, "cached_bytes_per_task_"+tc.name)
		})
	}
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func must(b *testing.B, err error) {
	if err != nil {
		b.Fatal(err)
	}
}

// apiObjects returns a task's Job and pod as the API server would: running, or ended.
func apiObjects(id string, ended bool) (*batchv1.Job, *corev1.Pod) {
	s := func(v string) string { return string([]byte(v)) } // decoded strings are copies
	labels := func() map[string]string {
		return map[string]string{s(podtemplate.LabelTaskID): s(id), s(podtemplate.LabelQueue): s("q1"), s(podtemplate.LabelAgent): s("glue"),
			s("ai.allegro.agent.serial"): s("pod-1"), s("clearml-project"): s("proj-1234567890")}
	}
	now := metav1.Now()
	container := corev1.Container{Name: s("task"), Image: s("nvidia/cuda:12.4-runtime"), Command: []string{s("bash"), s("-c"), s("bootstrap && clearml-agent execute --id " + id)},
		Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1"), "memory": resource.MustParse("8Gi")}}}
	for k := range 10 {
		container.Env = append(container.Env, corev1.EnvVar{Name: s(fmt.Sprintf("CLEARML_VAR_%d", k)), Value: s("value")})
	}
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: s(podtemplate.ObjectName(id)), Namespace: s("ml"), UID: types.UID(s("0b6c8a54-6f0e-4c2e-9d8e-" + id)),
		ResourceVersion: s("123456"), CreationTimestamp: now, Labels: labels()}}
	job.Spec.Template.Labels = labels()
	maps.Copy(job.Spec.Template.Labels, map[string]string{s(batchv1.ControllerUidLabel): s(string(job.UID)), s(batchv1.JobNameLabel): s(job.Name)})
	job.Spec.Template.Spec.Containers = []corev1.Container{container}
	job.Status = batchv1.JobStatus{Active: 1, StartTime: &now}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: s(job.Name + "-x7k2p"), Namespace: s("ml"), UID: types.UID(s("1c7d9b65-7a1f-4d3f-8e9f-" + id)),
		ResourceVersion: s("123460"), CreationTimestamp: now, Labels: maps.Clone(job.Spec.Template.Labels), Finalizers: []string{s(batchv1.JobTrackingFinalizer)},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: s("batch/v1"), Kind: s("Job"), Name: job.Name, UID: job.UID, Controller: new(true), BlockOwnerDeletion: new(true)}}}}
	pod.Spec.Containers = []corev1.Container{container}
	pod.Spec.NodeName = s("node-1")
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: s("10.0.0.1"), StartTime: &now, Conditions: []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}, {Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: s("task"), Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}}}
	if ended {
		job.Status = batchv1.JobStatus{Succeeded: 1, StartTime: &now, CompletionTime: &now, Conditions: []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, Reason: s("CompletionsReached"), Message: s("Reached expected number of succeeded pods")},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, Reason: s("CompletionsReached"), Message: s("Reached expected number of succeeded pods")}}}
		pod.Status.Phase = corev1.PodSucceeded
		pod.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: s("Completed"), ContainerID: s("containerd://" + id)}}
	}
	return job, pod
}
