package monitor

import (
	"reflect"
	"testing"
	"unsafe"

	"gotest.tools/v3/assert"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/clearml-glue/clearml-glue/internal/admission"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
)

// jobControllerLabelSet is what the Job controller adds to a Job's pod template and its pods.
func jobControllerLabelSet(into map[string]string) map[string]string {
	for k, v := range map[string]string{batchv1.ControllerUidLabel: "u1", batchv1.JobNameLabel: "j", "controller-uid": "u1", "job-name": "j"} {
		into[k] = v
	}
	return into
}

func TestTrimKeepsWhatThePodReads(t *testing.T) {
	limits := corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")}
	pod := &corev1.Pod{}
	pod.Name, pod.Namespace, pod.UID, pod.ResourceVersion = "p", "ns", "uid-p", "42"
	pod.Labels = jobControllerLabelSet(map[string]string{"clearml-task-id": "t1", "ai.allegro.agent.serial": "pod-1", "team": "a"})
	pod.Annotations = map[string]string{podtemplate.FileAnnotationPrefix + "0": "big file content", "gpu-count": "2"}
	pod.Finalizers = []string{"batch.kubernetes.io/job-tracking"}
	pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: "j", UID: "u1", Controller: new(true), BlockOwnerDeletion: new(true)}}
	pod.Spec = corev1.PodSpec{NodeName: "n1", Volumes: []corev1.Volume{{Name: "v"}}, InitContainers: []corev1.Container{{Name: "init"}}, Containers: []corev1.Container{{
		Name: "task", Image: "img", Command: []string{"bash", "-c", "a long bootstrap"}, Env: []corev1.EnvVar{{Name: "A"}},
		Resources: corev1.ResourceRequirements{Limits: limits},
	}}}
	waiting := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off"}}
	ended := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "OOMKilled", ExitCode: 137}}
	pod.Status = corev1.PodStatus{
		Phase: corev1.PodPending, Reason: "Evicted", Message: "low on memory", PodIP: "10.0.0.1", HostIP: "10.1.0.1", QOSClass: corev1.PodQOSBurstable,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/3 nodes"},
			{Type: corev1.PodReady, Status: corev1.ConditionFalse},
			{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "EvictionByEvictionAPI"},
		},
		InitContainerStatuses: []corev1.ContainerStatus{{Name: "init", State: waiting, Image: "i", ImageID: "sha", ContainerID: "c1"}},
		ContainerStatuses:     []corev1.ContainerStatus{{Name: "task", LastTerminationState: ended, Image: "img", RestartCount: 3}},
	}
	reason, text := pendingReason(pod)
	terminated := describeTermination(pod)
	read := []corev1.PodCondition{pod.Status.Conditions[0], pod.Status.Conditions[2]}

	out, err := trim(pod)
	assert.NilError(t, err)
	p := out.(*corev1.Pod)
	assert.DeepEqual(t, p.Labels, map[string]string{"clearml-task-id": "t1", "ai.allegro.agent.serial": "pod-1", "team": "a"})
	assert.DeepEqual(t, p.Annotations, map[string]string{"gpu-count": "2"})
	assert.DeepEqual(t, p.Spec, corev1.PodSpec{Containers: []corev1.Container{{Name: "task", Resources: corev1.ResourceRequirements{Limits: limits}}}})
	assert.DeepEqual(t, p.Status, corev1.PodStatus{
		Phase: corev1.PodPending, Reason: "Evicted", Message: "low on memory",
		Conditions:            read,
		InitContainerStatuses: []corev1.ContainerStatus{{Name: "init", State: waiting}},
		ContainerStatuses:     []corev1.ContainerStatus{{Name: "task", LastTerminationState: ended}},
	})
	assert.Assert(t, p.Finalizers == nil && p.ManagedFields == nil)
	assert.Equal(t, p.Name+p.Namespace+string(p.UID)+p.ResourceVersion, "pnsuid-p42")

	// What the monitor reads from the pod reads the same after the trim.
	assert.Assert(t, !standalone(p))
	assert.Assert(t, disrupted(p))
	r2, t2 := pendingReason(p)
	assert.Equal(t, r2+t2, reason+text)
	assert.DeepEqual(t, describeTermination(p), terminated)
	gpus, err := admission.MustParsePath("resources|limits|nvidia.com/gpu").Object(p)
	assert.NilError(t, err)
	assert.Equal(t, gpus.String(), "1")
	fromAnnotation, err := admission.MustParsePath("metadata|annotations|gpu-count").Object(p)
	assert.NilError(t, err)
	assert.Equal(t, fromAnnotation.String(), "2")
	assert.Equal(t, admission.SlotOf(p.Labels["ai.allegro.agent.serial"]), 1)

	// Trimming again changes nothing (the transform may run on an object twice).
	again, err := trim(p.DeepCopy())
	assert.NilError(t, err)
	assert.DeepEqual(t, again, p)
}

func TestTrimKeepsWhatTheJobReads(t *testing.T) {
	job := &batchv1.Job{}
	job.Name, job.Namespace, job.UID = "j", "ns", "u1"
	job.Labels = map[string]string{"clearml-task-id": "t1", "clearml-agent-queue": "q1"}
	job.Annotations = map[string]string{"a": "b"}
	job.Spec = batchv1.JobSpec{
		Parallelism: new(int32(1)), BackoffLimit: new(int32(0)), ManagedBy: new("x"), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}},
		PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{Action: batchv1.PodFailurePolicyActionIgnore,
			OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}}}},
		Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: jobControllerLabelSet(map[string]string{"ai.allegro.agent.serial": "pod-2"}),
				Annotations: map[string]string{podtemplate.FileAnnotationPrefix + "0": "content"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "task", Image: "img", Args: []string{"script"},
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("2")}}}}},
		},
	}
	suspended := batchv1.JobCondition{Type: batchv1.JobSuspended, Status: corev1.ConditionFalse, Reason: "JobResumed"}
	job.Status = batchv1.JobStatus{Conditions: []batchv1.JobCondition{suspended}, Active: 1, Failed: 1, StartTime: &metav1.Time{},
		UncountedTerminatedPods: &batchv1.UncountedTerminatedPods{Failed: []types.UID{"x"}}}

	out, err := trim(job)
	assert.NilError(t, err)
	j := out.(*batchv1.Job)
	assert.Assert(t, j.Annotations == nil)
	assert.DeepEqual(t, j.Labels, map[string]string{"clearml-task-id": "t1", "clearml-agent-queue": "q1"})
	assert.DeepEqual(t, j.Spec.Template.Labels, map[string]string{"ai.allegro.agent.serial": "pod-2"})
	assert.Assert(t, j.Spec.Template.Annotations == nil)
	assert.Assert(t, j.Spec.Parallelism == nil && j.Spec.BackoffLimit == nil && j.Spec.ManagedBy == nil && j.Spec.Selector == nil)
	assert.DeepEqual(t, j.Status, batchv1.JobStatus{Conditions: []batchv1.JobCondition{suspended}, Active: 1, Failed: 1})
	assert.Assert(t, replacesDisrupted(j))
	assert.Equal(t, podtemplate.JobEnd(j), batchv1.JobConditionType(""))
	gpus, err := admission.MustParsePath("resources|limits|nvidia.com/gpu").Object(j)
	assert.NilError(t, err)
	assert.Equal(t, gpus.String(), "2")
}

// TestTrimSharesTheJobsLabels: the glue gives a Job its template's labels; the cache keeps one map.
func TestTrimSharesTheJobsLabels(t *testing.T) {
	job := &batchv1.Job{}
	job.Labels = map[string]string{podtemplate.LabelTaskID: "t1", podtemplate.LabelQueue: "q1"}
	job.Spec.Template.Labels = jobControllerLabelSet(map[string]string{podtemplate.LabelTaskID: "t1", podtemplate.LabelQueue: "q1"})
	out, err := trim(job)
	assert.NilError(t, err)
	j := out.(*batchv1.Job)
	assert.DeepEqual(t, j.Spec.Template.Labels, j.Labels)
	assert.Equal(t, reflect.ValueOf(j.Spec.Template.Labels).UnsafePointer(), reflect.ValueOf(j.Labels).UnsafePointer())
}

// TestTrimEndedJob: a Job that ended is kept in its small form, and what a sync reads of it
// (jobOf) says what the Job said.
func TestTrimEndedJob(t *testing.T) {
	job := &batchv1.Job{}
	job.Name, job.Namespace, job.UID, job.ResourceVersion = "j", "ns", "u1", "7"
	job.Labels = map[string]string{podtemplate.LabelTaskID: "t1", podtemplate.LabelQueue: "q1", "team": "a"}
	job.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{Action: batchv1.PodFailurePolicyActionIgnore,
		OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}}}}
	job.Spec.Template.Labels = map[string]string{"ai.allegro.agent.serial": "pod-2"}
	job.Spec.Template.Spec.Containers = []corev1.Container{{Name: "task", Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("2")}}}}
	failed := batchv1.JobCondition{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "m"}
	job.Status = batchv1.JobStatus{Conditions: []batchv1.JobCondition{failed}, Failed: 1, StartTime: &metav1.Time{}}

	out, err := trim(job.DeepCopy())
	assert.NilError(t, err)
	e, ok := out.(*endedJob)
	assert.Assert(t, ok, "%T", out)
	assert.Equal(t, taskOf(e), "t1")
	assert.Equal(t, e.Name+e.Namespace+string(e.UID)+e.ResourceVersion, "jnsu17")
	j := jobOf(e)
	assert.DeepEqual(t, j.Labels, map[string]string{podtemplate.LabelTaskID: "t1", podtemplate.LabelQueue: "q1"})
	assert.DeepEqual(t, j.Status, batchv1.JobStatus{Conditions: []batchv1.JobCondition{failed}, Failed: 1})
	assert.Equal(t, podtemplate.JobEnd(j), batchv1.JobFailed)
	assert.Equal(t, jobFailure(j), "BackoffLimitExceeded m")
	assert.Assert(t, replacesDisrupted(j))
	assert.Equal(t, jobOf(cache.DeletedFinalStateUnknown{Obj: e}).UID, job.UID)

	again, err := trim(e)
	assert.NilError(t, err)
	assert.Equal(t, again, any(e))
}

// TestTrimEndedPod: a pod that failed keeps what explains its end; one that succeeded keeps its
// phase; both drop spec and labels, and read back the same through podOf.
func TestTrimEndedPod(t *testing.T) {
	mk := func(phase corev1.PodPhase, owned bool) *corev1.Pod {
		p := &corev1.Pod{}
		p.Name, p.Namespace, p.UID = "p", "ns", "up"
		p.Labels = map[string]string{podtemplate.LabelTaskID: "t1", podtemplate.LabelQueue: "q1", "team": "a"}
		if owned {
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: "j", UID: "u1", Controller: new(true)}}
		}
		p.Spec.Containers = []corev1.Container{{Name: "task", Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")}}}}
		p.Status = corev1.PodStatus{Phase: phase, Reason: "Evicted", Message: "low on memory",
			Conditions: []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "EvictionByEvictionAPI"}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "task", State: corev1.ContainerState{
				Terminated: &corev1.ContainerStateTerminated{Reason: "OOMKilled", ExitCode: 137}}}}}
		return p
	}
	for _, owned := range []bool{true, false} {
		failed := mk(corev1.PodFailed, owned)
		out, err := trim(failed.DeepCopy())
		assert.NilError(t, err)
		e, ok := out.(*endedPod)
		assert.Assert(t, ok, "%T", out)
		assert.Equal(t, taskOf(e), "t1")
		p := podOf(e)
		assert.DeepEqual(t, p.Labels, map[string]string{podtemplate.LabelTaskID: "t1", podtemplate.LabelQueue: "q1"})
		assert.Equal(t, standalone(p), !owned)
		assert.Equal(t, disrupted(p), disrupted(failed))
		assert.DeepEqual(t, describeTermination(p), describeTermination(failed))
		assert.Assert(t, describeTermination(p) != nil)
		assert.Assert(t, p.Spec.Containers == nil)
	}

	succeeded := mk(corev1.PodSucceeded, true)
	out, err := trim(succeeded)
	assert.NilError(t, err)
	p := podOf(out)
	assert.DeepEqual(t, p.Status, corev1.PodStatus{Phase: corev1.PodSucceeded, Reason: "Evicted", Message: "low on memory"})
	assert.Assert(t, !standalone(p))

	running := mk(corev1.PodRunning, true)
	out, err = trim(running)
	assert.NilError(t, err)
	_, ok := out.(*corev1.Pod)
	assert.Assert(t, ok, "a live pod keeps its type: %T", out)
}

// TestEndedFormsAreSmall: the reason for the ended forms; a batchv1.Job is 1,320 bytes and a
// corev1.Pod 1,240 before any field is set.
func TestEndedFormsAreSmall(t *testing.T) {
	assert.Assert(t, unsafe.Sizeof(endedJob{})*3 < unsafe.Sizeof(batchv1.Job{}), "endedJob %d bytes", unsafe.Sizeof(endedJob{}))
	assert.Assert(t, unsafe.Sizeof(endedPod{})*3 < unsafe.Sizeof(corev1.Pod{}), "endedPod %d bytes", unsafe.Sizeof(endedPod{}))
}

// TestTrimInterns: equal label keys and values of different objects share one copy.
func TestTrimInterns(t *testing.T) {
	mk := func() *corev1.Pod {
		p := &corev1.Pod{}
		p.Labels = map[string]string{string([]byte("clearml-agent-queue")): string([]byte("q1"))}
		return p
	}
	a, _ := trim(mk())
	b, _ := trim(mk())
	va, vb := a.(*corev1.Pod).Labels["clearml-agent-queue"], b.(*corev1.Pod).Labels["clearml-agent-queue"]
	assert.Equal(t, unsafe.StringData(va), unsafe.StringData(vb))
}

// TestTrimDropsWhatSaysNothing: a running container's status, PodScheduled once true, containers
// without resources, none of which the monitor reads, are not kept.
func TestTrimDropsWhatSaysNothing(t *testing.T) {
	pod := &corev1.Pod{}
	pod.Labels = map[string]string{podtemplate.LabelTaskID: "t1"}
	pod.Spec.Containers = []corev1.Container{{Name: "task", Image: "img"}, {Name: "sidecar"}}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning,
		Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}, {Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		ContainerStatuses: []corev1.ContainerStatus{
			{Name: "task", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}, Ready: true, Image: "img"},
			{Name: "sidecar", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
		}}
	out, err := trim(pod)
	assert.NilError(t, err)
	p := out.(*corev1.Pod)
	assert.DeepEqual(t, p.Status, corev1.PodStatus{Phase: corev1.PodRunning})
	assert.Assert(t, p.Spec.Containers == nil)
	gpus, err := admission.MustParsePath("resources|limits|nvidia.com/gpu").Object(p)
	assert.NilError(t, err)
	assert.Assert(t, gpus.IsZero())
	r, text := pendingReason(p)
	assert.Equal(t, r+text, "")
	assert.Assert(t, describeTermination(p) == nil)
}
