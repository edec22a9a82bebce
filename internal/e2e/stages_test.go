package e2e

import (
	"context"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/clearml-glue/clearml-glue/internal/localcluster"
)

// The kwok stages the other tests rely on do what ci/kwok-stages.yaml says.
func TestStagesPlayPodFates(t *testing.T) {
	cs, err := localcluster.Shared(t).Clientset()
	assert.NilError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for name, tc := range map[string]struct {
		behavior string
		check    func(p *corev1.Pod) bool
	}{
		"default succeeds": {"", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded }},
		"fail is OOMKilled": {"fail", func(p *corev1.Pod) bool {
			return p.Status.Phase == corev1.PodFailed && p.Status.ContainerStatuses[0].State.Terminated.Reason == "OOMKilled"
		}},
		"invalid image waits": {"invalid-image", func(p *corev1.Pod) bool {
			cs := p.Status.ContainerStatuses
			return len(cs) == 1 && cs[0].State.Waiting != nil && cs[0].State.Waiting.Reason == "InvalidImageName"
		}},
		"image backoff waits": {"image-backoff", func(p *corev1.Pod) bool {
			cs := p.Status.ContainerStatuses
			return len(cs) == 1 && cs[0].State.Waiting != nil && cs[0].State.Waiting.Reason == "ImagePullBackOff"
		}},
		"hold keeps running": {"hold", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning }},
	} {
		t.Run(name, func(t *testing.T) {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "stage-", Namespace: "default", Labels: map[string]string{}},
				Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
					Containers: []corev1.Container{{Name: "main", Image: "busybox"}}},
			}
			if tc.behavior != "" {
				pod.Labels["e2e.glue/behavior"] = tc.behavior
			}
			created, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
			assert.NilError(t, err)
			var last *corev1.Pod
			err = wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
				last, err = cs.CoreV1().Pods("default").Get(ctx, created.Name, metav1.GetOptions{})
				return err == nil && tc.check(last), nil
			})
			assert.NilError(t, err, "pod status: %+v", last.Status)
			// Staying in that state matters for the waiting ones: nothing moves them on.
			time.Sleep(time.Second)
			last, err = cs.CoreV1().Pods("default").Get(ctx, created.Name, metav1.GetOptions{})
			assert.NilError(t, err)
			assert.Assert(t, tc.check(last), "pod left its state: %+v", last.Status)
			assert.NilError(t, cs.CoreV1().Pods("default").Delete(ctx, created.Name, metav1.DeleteOptions{}))
		})
	}
}
