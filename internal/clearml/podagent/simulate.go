package podagent

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
// pod that fails reports nothing, as a killed agent cannot: the glue must notice. As in a pod,
// one agent's steps are in order: it completes only after its start returned, and a pod seen
// succeeded without having been seen running (the informer can skip a phase) was started too.
func Simulate(ctx context.Context, cs kubernetes.Interface, namespace string, client *clearml.Client) {
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = taskLabel }))
	var mu sync.Mutex
	started := map[string]*agentRun{} // by pod
	finished := map[string]bool{}
	// start starts pod's agent after delay, once; mu is held.
	start := func(pod *corev1.Pod, id string, delay time.Duration) *agentRun {
		if run, ok := started[pod.Name]; ok {
			return run
		}
		run := &agentRun{done: make(chan struct{})}
		started[pod.Name] = run
		go func() {
			defer close(run.done)
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			run.ok, _ = Start(ctx, client, id)
		}()
		return run
	}
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
			delay, _ := time.ParseDuration(pod.Annotations[AgentDelayAnnotation])
			start(pod, id, delay)
		case corev1.PodSucceeded:
			if !finished[pod.Name] {
				finished[pod.Name] = true
				run := start(pod, id, 0)
				go func() {
					select {
					case <-ctx.Done():
					case <-run.done:
						// An agent that found its task no longer queued exited without a word.
						if run.ok {
							_ = Finish(ctx, client, id, 0)
						}
					}
				}()
			}
		}
	}
	_, _ = factory.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: handle, UpdateFunc: func(_, o any) { handle(o) },
	})
	factory.Start(ctx.Done())
}

// agentRun is one pod's agent: ok tells, once done is closed, whether it started the task.
type agentRun struct {
	done chan struct{}
	ok   bool
}
