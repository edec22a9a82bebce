package monitor

import (
	"testing"
	"unsafe"

	"gotest.tools/v3/assert"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

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
	failed := batchv1.JobCondition{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "m"}
	job.Status = batchv1.JobStatus{Conditions: []batchv1.JobCondition{failed}, Failed: 1, StartTime: &metav1.Time{},
		UncountedTerminatedPods: &batchv1.UncountedTerminatedPods{Failed: []types.UID{"x"}}}

	out, err := trim(job)
	assert.NilError(t, err)
	j := out.(*batchv1.Job)
	assert.Assert(t, j.Annotations == nil)
	assert.DeepEqual(t, j.Labels, map[string]string{"clearml-task-id": "t1", "clearml-agent-queue": "q1"})
	assert.DeepEqual(t, j.Spec.Template.Labels, map[string]string{"ai.allegro.agent.serial": "pod-2"})
	assert.Assert(t, j.Spec.Template.Annotations == nil)
	assert.Assert(t, j.Spec.Parallelism == nil && j.Spec.BackoffLimit == nil && j.Spec.ManagedBy == nil && j.Spec.Selector == nil)
	assert.DeepEqual(t, j.Status, batchv1.JobStatus{Conditions: []batchv1.JobCondition{failed}, Failed: 1})
	assert.Assert(t, replacesDisrupted(j))
	assert.Equal(t, podtemplate.JobEnd(j), batchv1.JobFailed)
	assert.Equal(t, jobFailure(j), "BackoffLimitExceeded m")
	gpus, err := admission.MustParsePath("resources|limits|nvidia.com/gpu").Object(j)
	assert.NilError(t, err)
	assert.Equal(t, gpus.String(), "2")
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
