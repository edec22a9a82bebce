package monitor

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
)

// endedJob is what the cache keeps of a Job that ended (Complete or Failed). Finished Jobs wait
// for their ttlSecondsAfterFinished, and a cluster deletes them slower than a burst ends them:
// they can outnumber the live ones several times over. The monitor reads of them only what
// reports the end (conditions, counts, failure policy) and the task; a batchv1.Job is 1,320
// bytes even empty, and its labels map ~300 more, so an ended one is kept in its own small type
// and expanded (job) when a sync reads it. The embedded ObjectMeta (no labels, no annotations)
// serves the informer's keys and resource versions.
type endedJob struct {
	metav1.ObjectMeta
	taskID, queue     string
	conditions        []batchv1.JobCondition
	podFailurePolicy  *batchv1.PodFailurePolicy
	active, succeeded int32
	failed            int32
}

// endedPod is the same for a pod that ended (Succeeded or Failed): its phase, reason, message,
// the conditions and container states trim keeps (none for a pod that succeeded: nothing
// explains a success), whether a Job controls it; no spec, since only a live pod holds
// resources.
type endedPod struct {
	metav1.ObjectMeta
	taskID, queue        string
	ownedByJob           bool
	phase                corev1.PodPhase
	reason, message      string
	conditions           []corev1.PodCondition
	initStatuses, states []corev1.ContainerStatus
}

// endJob returns the ended form of a trimmed Job.
func endJob(j *batchv1.Job) *endedJob {
	e := &endedJob{ObjectMeta: j.ObjectMeta, taskID: j.Labels[podtemplate.LabelTaskID], queue: j.Labels[podtemplate.LabelQueue],
		podFailurePolicy: j.Spec.PodFailurePolicy, active: j.Status.Active, succeeded: j.Status.Succeeded, failed: j.Status.Failed}
	e.Labels, e.Annotations, e.OwnerReferences = nil, nil, nil
	e.conditions = make([]batchv1.JobCondition, len(j.Status.Conditions))
	for i, c := range j.Status.Conditions {
		c.Type, c.Status, c.Reason = batchv1.JobConditionType(intern(string(c.Type))), corev1.ConditionStatus(intern(string(c.Status))), intern(c.Reason)
		if c.Type == batchv1.JobComplete || c.Type == batchv1.JobSuccessCriteriaMet {
			c.Message = intern(c.Message) // the Job controller's fixed text
		}
		e.conditions[i] = c
	}
	return e
}

// endPod returns the ended form of a trimmed pod.
func endPod(p *corev1.Pod) *endedPod {
	e := &endedPod{ObjectMeta: p.ObjectMeta, taskID: p.Labels[podtemplate.LabelTaskID], queue: p.Labels[podtemplate.LabelQueue],
		ownedByJob: !standalone(p), phase: p.Status.Phase, reason: p.Status.Reason, message: p.Status.Message}
	e.Labels, e.Annotations, e.OwnerReferences = nil, nil, nil
	if p.Status.Phase == corev1.PodFailed {
		e.conditions, e.initStatuses, e.states = p.Status.Conditions, p.Status.InitContainerStatuses, p.Status.ContainerStatuses
	}
	return e
}

func taskLabels(taskID, queue string) map[string]string {
	l := map[string]string{podtemplate.LabelTaskID: taskID}
	if queue != "" {
		l[podtemplate.LabelQueue] = queue
	}
	return l
}

// job expands e for a sync: what trim keeps of a Job, minus the template a finished Job no
// longer needs.
func (e *endedJob) job() *batchv1.Job {
	j := &batchv1.Job{ObjectMeta: e.ObjectMeta}
	j.Labels = taskLabels(e.taskID, e.queue)
	j.Spec.PodFailurePolicy = e.podFailurePolicy
	j.Status = batchv1.JobStatus{Conditions: e.conditions, Active: e.active, Succeeded: e.succeeded, Failed: e.failed}
	return j
}

// pod expands e for a sync.
func (e *endedPod) pod() *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: e.ObjectMeta}
	p.Labels = taskLabels(e.taskID, e.queue)
	if e.ownedByJob {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: podtemplate.ObjectName(e.taskID), Controller: new(true)}}
	}
	p.Status = corev1.PodStatus{Phase: e.phase, Reason: e.reason, Message: e.message, Conditions: e.conditions,
		InitContainerStatuses: e.initStatuses, ContainerStatuses: e.states}
	return p
}

// jobOf is the Job a cached object (either form, or a deletion's last state) is, or nil.
func jobOf(obj any) *batchv1.Job {
	switch o := unwrap(obj).(type) {
	case *batchv1.Job:
		return o
	case *endedJob:
		return o.job()
	}
	return nil
}

// podOf is the same for pods.
func podOf(obj any) *corev1.Pod {
	switch o := unwrap(obj).(type) {
	case *corev1.Pod:
		return o
	case *endedPod:
		return o.pod()
	}
	return nil
}

// taskOf is the task id of a cached object, without expanding it.
func taskOf(obj any) string {
	switch o := unwrap(obj).(type) {
	case *batchv1.Job:
		return o.Labels[podtemplate.LabelTaskID]
	case *corev1.Pod:
		return o.Labels[podtemplate.LabelTaskID]
	case *endedJob:
		return o.taskID
	case *endedPod:
		return o.taskID
	}
	return ""
}

func unwrap(obj any) any {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return obj
}
