package localcluster

import (
	"context"
	"os"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
)

func TestMain(m *testing.M) {
	os.Exit(Main(m, Options{Nodes: 2, GPUNodes: 1}))
}

// A Job on the local control plane gets a Pod scheduled on a kwok node and completes: the
// substrate every end-to-end test stands on.
func TestJobIsScheduledOnKwokNodeAndCompletes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs, err := Shared(t).Clientset()
	assert.NilError(t, err)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "smoke", Namespace: "default"},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](0),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "smoke"}},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "main", Image: "busybox"}},
				},
			},
		},
	}
	_, err = cs.BatchV1().Jobs("default").Create(ctx, job, metav1.CreateOptions{})
	assert.NilError(t, err)

	var node string
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=smoke"})
		if err != nil || len(pods.Items) == 0 {
			return false, nil //nolint:nilerr // keep polling through a passing API error
		}
		node = pods.Items[0].Spec.NodeName
		return node != "", nil
	})
	assert.NilError(t, err, "pod never scheduled")
	n, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, n.Annotations["kwok.x-k8s.io/node"], "fake", "pod ran on %s, not a kwok node", node)

	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		j, err := cs.BatchV1().Jobs("default").Get(ctx, "smoke", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range j.Status.Conditions {
			if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	assert.NilError(t, err, "job never completed")
}

// GPU nodes advertise nvidia.com/gpu so GPU queues can be scheduled.
func TestGPUNodesHaveGPUCapacity(t *testing.T) {
	cs, err := Shared(t).Clientset()
	assert.NilError(t, err)
	n, err := cs.CoreV1().Nodes().Get(context.Background(), "gpu-0", metav1.GetOptions{})
	assert.NilError(t, err)
	q := n.Status.Allocatable["nvidia.com/gpu"]
	assert.Equal(t, q.Value(), int64(8))
	assert.Equal(t, n.Labels["nvidia.com/gpu.present"], "true")
}

// The Helm Go SDK installs and uninstalls a chart on the local cluster.
func TestHelmInstallsTrivialChart(t *testing.T) {
	ctx := context.Background()
	c := Shared(t)
	cfg, err := c.Helm("default", t.Logf)
	assert.NilError(t, err)
	ch := &chart.Chart{
		Metadata: &chart.Metadata{APIVersion: "v2", Name: "trivial", Version: "0.1.0", KubeVersion: ">=1.25.0-0"},
		Templates: []*chart.File{{Name: "templates/cm.yaml", Data: []byte(
			"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm\ndata:\n  greeting: {{ .Values.greeting | quote }}\n")}},
		Values: map[string]any{"greeting": "hello"},
	}
	install := action.NewInstall(cfg)
	install.ReleaseName, install.Namespace, install.Wait, install.Timeout = "smoke", "default", true, time.Minute
	rel, err := install.RunWithContext(ctx, ch, map[string]any{"greeting": "hi"})
	assert.NilError(t, err)
	assert.Equal(t, rel.Info.Status.String(), "deployed")

	cs, err := c.Clientset()
	assert.NilError(t, err)
	cm, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "smoke-cm", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, cm.Data["greeting"], "hi")

	_, err = action.NewUninstall(cfg).Run("smoke")
	assert.NilError(t, err)
	_, err = cs.CoreV1().ConfigMaps("default").Get(ctx, "smoke-cm", metav1.GetOptions{})
	assert.Assert(t, err != nil, "configmap left behind after uninstall")
}

// Stop leaves no process of the cluster running, and a second cluster runs beside the shared one
// without colliding (unique name, its own ports).
func TestStopLeavesNoProcess(t *testing.T) {
	c, err := Start(context.Background(), Options{Nodes: 1, Logf: t.Logf})
	assert.NilError(t, err)
	assert.Assert(t, c.Name != Shared(t).Name)
	assert.Assert(t, c.RESTConfig().Host != Shared(t).RESTConfig().Host)
	pids := c.Pids()
	assert.Assert(t, len(pids) >= 5, "expected the control plane's pids, got %v", pids)
	assert.NilError(t, c.Stop())
	for _, pid := range pids {
		assert.Assert(t, !alive(pid), "process %d still alive after Stop", pid)
	}
}
