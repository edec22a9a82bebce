package scheduler

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
)

// PythonGlueLabel is the label key ClearML's Python glue puts on its objects, with the value
// "agent-<hash of its worker id>".
const PythonGlueLabel = "CLEARML"

// PythonGlueObjects returns a check for a live object of ClearML's Python glue named after the
// task (clearml-id-<task>, a Pod or a Job) in the namespaces the config names, so a task that
// glue runs is never launched a second time during a migration. Nothing is read when no
// namespace is named.
func PythonGlueObjects(cs kubernetes.Interface, namespaces func() []string) func(context.Context, string) (string, bool) {
	return func(ctx context.Context, taskID string) (string, bool) {
		name := podtemplate.ObjectName(taskID)
		for _, ns := range namespaces() {
			if pod, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{}); err == nil && pythonGlue(pod.Labels) &&
				pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
				return "Pod " + ns + "/" + name + " of ClearML's Python glue", true
			}
			if job, err := cs.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{}); err == nil && pythonGlue(job.Labels) && podtemplate.JobEnd(job) == "" {
				return "Job " + ns + "/" + name + " of ClearML's Python glue", true
			}
		}
		return "", false
	}
}

func pythonGlue(labels map[string]string) bool {
	return strings.HasPrefix(labels[PythonGlueLabel], "agent")
}
