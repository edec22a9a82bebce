package podagent

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
)

// AgentDelayAnnotation on a task pod delays its agent's start after the pod runs (a Go
// duration), as an image pull or a pip install would in a real pod.
const AgentDelayAnnotation = "e2e.glue/agent-delay"

// taskLabel is the label the glue puts on every task pod (podtemplate.LabelTaskID); repeated
// here so this package does not depend on the template engine.
const taskLabel = "clearml-task-id"

// Simulate plays the clearml-agent inside every task pod of namespace until ctx ends: when a pod
// runs, its agent starts the task (in_progress); when the pod succeeds, the task completes. A
// pod that fails reports nothing, as a killed agent cannot: the glue must notice.
func Simulate(ctx context.Context, cs kubernetes.Interface, namespace string, client *clearml.Client) {
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = taskLabel }))
	var mu sync.Mutex
	started, finished := map[string]bool{}, map[string]bool{}
	handle := func(obj any) {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		id := pod.Labels[taskLabel]
		mu.Lock()
		defer mu.Unlock()
		switch pod.Status.Phase {
		case corev1.PodRunning:
			if !started[pod.Name] {
				started[pod.Name] = true
				delay, _ := time.ParseDuration(pod.Annotations[AgentDelayAnnotation])
				go func() {
					select {
					case <-ctx.Done():
						return
					case <-time.After(delay):
					}
					_, _ = Start(ctx, client, id)
				}()
			}
		case corev1.PodSucceeded:
			if !finished[pod.Name] {
				finished[pod.Name] = true
				go func() {
					// The agent may still be starting: finish only after it runs.
					_ = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
						t, err := client.TasksGetByID(ctx, id)
						return err == nil && t.Status == clearml.StatusInProgress, nil
					})
					_ = Finish(ctx, client, id, 0)
				}()
			}
		}
	}
	_, _ = factory.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: handle, UpdateFunc: func(_, o any) { handle(o) },
	})
	factory.Start(ctx.Done())
}
