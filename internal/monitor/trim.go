package monitor

import (
	"maps"
	"slices"
	"strings"
	"unique"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
)

// trim is the informers' transform: the cache keeps only what the monitor reads, since it holds
// every Job and Pod of the glue (10,000 running tasks are 20,000 objects). Kept: the metadata
// the monitor and the informer need (name, namespace, UID, resourceVersion, times, owner, labels
// but the Job controller's, annotations but the fileMounts contents, since monitoredResources
// may read a label or an annotation); of a Job its pod template's labels, annotations and
// container resources, its pod failure policy, its conditions and pod counts; of a Pod the
// container resources, its phase, reason and message, the conditions that explain a wait or a
// disruption, and the container states that explain a wait or an end. Repeated strings (label
// keys and values, the namespace, owner kinds) are interned. BenchmarkRSS (internal/benchmarks)
// measures the effect: at 10,000 tasks the cache is most of the process's memory. A Job or pod
// that ended is kept smaller still (endedJob, endedPod).
func trim(obj any) (any, error) {
	switch o := obj.(type) {
	case *batchv1.Job:
		slimMeta(&o.ObjectMeta)
		o.Annotations = nil
		o.Spec = batchv1.JobSpec{
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: slimLabels(o.Spec.Template.Labels), Annotations: slimAnnotations(o.Spec.Template.Annotations)},
				Spec:       slimPodSpec(o.Spec.Template.Spec),
			},
			PodFailurePolicy: o.Spec.PodFailurePolicy,
		}
		// The glue gives a Job its template's labels: one map serves both.
		if maps.Equal(o.Labels, o.Spec.Template.Labels) {
			o.Spec.Template.Labels = o.Labels
		}
		o.Status = batchv1.JobStatus{Conditions: o.Status.Conditions, Active: o.Status.Active, Succeeded: o.Status.Succeeded, Failed: o.Status.Failed}
		if podtemplate.JobEnd(o) != "" {
			return endJob(o), nil
		}
	case *corev1.Pod:
		slimMeta(&o.ObjectMeta)
		o.Spec = slimPodSpec(o.Spec)
		o.Status = slimPodStatus(o.Status)
		if o.Status.Phase == corev1.PodSucceeded || o.Status.Phase == corev1.PodFailed {
			return endPod(o), nil
		}
	case *endedJob, *endedPod:
	case metav1.Object:
		o.SetManagedFields(nil)
	}
	return obj, nil
}

// jobControllerLabels are the labels the Job controller puts on a Job's pod template and so on
// its pods (current and legacy names, all naming the Job): the monitor reads none, and they push
// a pod's labels past the 8 entries of a small map.
var jobControllerLabels = []string{batchv1.ControllerUidLabel, batchv1.JobNameLabel, "controller-uid", "job-name"}

func slimMeta(m *metav1.ObjectMeta) {
	m.ManagedFields, m.GenerateName, m.Finalizers = nil, "", nil
	m.Namespace = intern(m.Namespace)
	m.Labels = slimLabels(m.Labels)
	m.Annotations = slimAnnotations(m.Annotations)
	for i := range m.OwnerReferences {
		r := &m.OwnerReferences[i]
		r.APIVersion, r.Kind = intern(r.APIVersion), intern(r.Kind)
		r.BlockOwnerDeletion = nil
	}
}

// slimLabels is in without the Job controller's labels, keys and values interned: the same keys
// are on every object and most values (queue, agent) on many. The task id is not: each is on
// three objects at most, fewer than what an interned string costs.
func slimLabels(in map[string]string) map[string]string {
	n := len(in)
	for _, k := range jobControllerLabels {
		if _, ok := in[k]; ok {
			n--
		}
	}
	if n == 0 {
		return nil
	}
	out := make(map[string]string, n)
	for k, v := range in {
		switch {
		case isJobControllerLabel(k):
		case k == podtemplate.LabelTaskID:
			out[intern(k)] = v
		default:
			out[intern(k)] = intern(v)
		}
	}
	return out
}

func isJobControllerLabel(k string) bool {
	for _, l := range jobControllerLabels {
		if k == l {
			return true
		}
	}
	return false
}

// slimAnnotations drops the fileMounts contents, the bulk of a task pod's annotations.
func slimAnnotations(in map[string]string) map[string]string {
	var out map[string]string
	for k, v := range in {
		if !strings.HasPrefix(k, podtemplate.FileAnnotationPrefix) {
			if out == nil {
				out = map[string]string{}
			}
			out[intern(k)] = v
		}
	}
	return out
}

// slimPodSpec keeps the Pod-level resources and each container's name and resources (where
// monitoredResources reads), no container at all when none has resources: a container costs
// 400 bytes, and a missing one reads as no resources.
func slimPodSpec(spec corev1.PodSpec) corev1.PodSpec {
	out := corev1.PodSpec{Resources: spec.Resources}
	if !slices.ContainsFunc(spec.Containers, hasResources) {
		return out
	}
	out.Containers = make([]corev1.Container, len(spec.Containers))
	for i, c := range spec.Containers {
		out.Containers[i] = corev1.Container{Name: intern(c.Name), Resources: c.Resources}
	}
	return out
}

func hasResources(c corev1.Container) bool {
	r := c.Resources
	return len(r.Limits) > 0 || len(r.Requests) > 0 || len(r.Claims) > 0
}

// slimPodStatus keeps what explains a pod's end or its wait: the phase, reason and message, the
// conditions PodScheduled when false (unschedulable) and DisruptionTarget, and the states of the
// containers that wait or ended.
func slimPodStatus(st corev1.PodStatus) corev1.PodStatus {
	out := corev1.PodStatus{Phase: corev1.PodPhase(intern(string(st.Phase))), Reason: st.Reason, Message: st.Message}
	for _, c := range st.Conditions {
		if (c.Type == corev1.PodScheduled && c.Status != corev1.ConditionTrue) || c.Type == corev1.DisruptionTarget {
			c.Type, c.Status = corev1.PodConditionType(intern(string(c.Type))), corev1.ConditionStatus(intern(string(c.Status)))
			out.Conditions = append(out.Conditions, c)
		}
	}
	out.InitContainerStatuses = slimContainerStatuses(st.InitContainerStatuses)
	out.ContainerStatuses = slimContainerStatuses(st.ContainerStatuses)
	return out
}

// slimContainerStatuses keeps the name and states of the containers that wait or ended, now or
// last time (pendingReason, describeTermination): a running container says nothing to the monitor.
func slimContainerStatuses(in []corev1.ContainerStatus) []corev1.ContainerStatus {
	var out []corev1.ContainerStatus
	for _, c := range in {
		if c.State.Waiting != nil || c.State.Terminated != nil || c.LastTerminationState.Terminated != nil {
			out = append(out, corev1.ContainerStatus{Name: intern(c.Name), State: c.State, LastTerminationState: c.LastTerminationState})
		}
	}
	return out
}

// intern returns the canonical copy of s, so equal strings of many cached objects share memory.
func intern(s string) string {
	if s == "" {
		return s
	}
	return unique.Make(s).Value()
}
