package realnode

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/release"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/clearml-glue/clearml-glue/internal/chart"
	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"github.com/clearml-glue/clearml-glue/internal/clearml/podagent"
	"github.com/clearml-glue/clearml-glue/internal/localcluster"
)

const (
	accessKey   = "REALNODE-ACCESS-KEY"
	secretKey   = "realnode-secret-key-never-logged"
	releaseName = "clearml-agent"
)

// env is one test's world: a namespace, the chart installed with the controller image on the
// real node, and the ClearML emulator listening on the node's bridge, where pods reach the host.
type env struct {
	t      *testing.T
	ns     string
	cs     kubernetes.Interface
	helm   *action.Configuration
	values map[string]any
	rel    *release.Release
	emu    *emulator.Server
	// emuAddr is where the emulator listens (or will: startEmulator).
	emuAddr string
	user    *clearml.Client
}

// newEnv prepares a namespace and an emulator address; install puts the chart in.
func newEnv(t *testing.T) *env {
	t.Helper()
	needNode(t)
	cs, err := cluster.Clientset()
	assert.NilError(t, err)
	e := &env{t: t, cs: cs}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	name := strings.Trim(strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")), "-")
	if len(name) > 40 {
		name = name[:40]
	}
	e.ns = name + "-" + hex.EncodeToString(b)
	_, err = cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}}, metav1.CreateOptions{})
	assert.NilError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			e.dump()
		}
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), e.ns, metav1.DeleteOptions{})
	})
	// A free port on the bridge address, for an emulator that may start later.
	ln, err := net.Listen("tcp", node.Gateway+":0")
	assert.NilError(t, err)
	e.emuAddr = ln.Addr().String()
	assert.NilError(t, ln.Close())
	e.helm, err = cluster.Helm(e.ns, func(string, ...any) {})
	assert.NilError(t, err)
	return e
}

// startEmulator serves the ClearML emulator at e.emuAddr and plays the in-pod agents of the
// task pods (which run on kwok nodes, so nothing else would).
func (e *env) startEmulator() { e.startEmulatorWith(accessKey, secretKey) }

func (e *env) startEmulatorWith(key, secret string) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.emu = emulator.New(emulator.Options{AccessKey: key, SecretKey: secret})
	errc := make(chan error, 1)
	go func() { errc <- e.emu.ListenAndServe(ctx, e.emuAddr) }()
	e.t.Cleanup(func() { cancel(); <-errc })
	for e.emu.URL() == "" {
		select {
		case err := <-errc:
			e.t.Fatalf("emulator on %s: %v", e.emuAddr, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	var err error
	e.user, err = clearml.New(clearml.Config{APIHost: e.emu.URL(), AccessKey: key, SecretKey: secret, WorkerHeader: "realnode-user"})
	assert.NilError(e.t, err)
	podagent.Simulate(ctx, e.cs, e.ns, e.user)
}

// baseValues run the controller image on the real node (toleration and node selector), pointed
// at the emulator, with images that are never pulled.
func (e *env) baseValues() string {
	return fmt.Sprintf(`
clearml:
  agentk8sglueKey: %q
  agentk8sglueSecret: %q
agentk8sglue:
  apiServerUrlReference: http://%s
  pollIntervalSeconds: 1
  createQueues: true
  %s:
    repository: %s
    tag: %s
    pullPolicy: Never
  nodeSelector:
    %s: "true"
  tolerations:
    - key: %s
      operator: Exists
      effect: NoSchedule
  queues:
    cpu: {}
tests:
  image:
    repository: %s
    tag: %s
`, accessKey, secretKey, e.emuAddr, controllerImageKey(e.t), glueRepo, glueTag, localcluster.RealNodeLabel, localcluster.RealNodeTaintKey,
		busyboxRepo, busyboxTag)
}

// controllerImageKey is the values key of the controller image: agentk8sglue.controllerImage
// where the chart has it (agentk8sglue.image then names the open-source chart's Python glue
// image), else agentk8sglue.image.
func controllerImageKey(t *testing.T) string {
	data, err := os.ReadFile(filepath.Join(chartDir(t), "values.yaml"))
	assert.NilError(t, err)
	var v struct {
		Agentk8sglue map[string]any `json:"agentk8sglue"`
	}
	assert.NilError(t, yaml.Unmarshal(data, &v))
	if _, ok := v.Agentk8sglue["controllerImage"]; ok {
		return "controllerImage"
	}
	return "image"
}

func parse(t *testing.T, s string) map[string]any {
	t.Helper()
	m := map[string]any{}
	assert.NilError(t, yaml.Unmarshal([]byte(s), &m))
	return m
}

func chartDir(t *testing.T) string {
	root, err := localcluster.RepoRoot()
	assert.NilError(t, err)
	return filepath.Join(root, "charts", "clearml-agent")
}

func (e *env) install(extra string) {
	e.t.Helper()
	e.values = chart.MergeValues(parse(e.t, e.baseValues()), parse(e.t, extra))
	ch, err := loader.Load(chartDir(e.t))
	assert.NilError(e.t, err)
	in := action.NewInstall(e.helm)
	in.ReleaseName, in.Namespace, in.Timeout = releaseName, e.ns, time.Minute
	e.rel, err = in.RunWithContext(context.Background(), ch, e.values)
	assert.NilError(e.t, err)
}

func (e *env) upgrade(extra string) {
	e.t.Helper()
	e.values = chart.MergeValues(e.values, parse(e.t, extra))
	ch, err := loader.Load(chartDir(e.t))
	assert.NilError(e.t, err)
	up := action.NewUpgrade(e.helm)
	up.Namespace, up.Timeout = e.ns, time.Minute
	e.rel, err = up.RunWithContext(context.Background(), releaseName, ch, e.values)
	assert.NilError(e.t, err)
}

func (e *env) object(kind string) map[string]any {
	e.t.Helper()
	obj, ok := chart.ManifestObject(e.rel.Manifest, kind)
	if !ok {
		e.t.Fatalf("release has no %s", kind)
	}
	return obj
}

func (e *env) deployment() *appsv1.Deployment {
	e.t.Helper()
	d, err := e.cs.AppsV1().Deployments(e.ns).Get(context.Background(), chart.ObjectName(e.object("Deployment")), metav1.GetOptions{})
	assert.NilError(e.t, err)
	return d
}

// controllerPods are the Deployment's pods, oldest first.
func (e *env) controllerPods() []corev1.Pod {
	e.t.Helper()
	d := e.deployment()
	sel := metav1.FormatLabelSelector(d.Spec.Selector)
	pods, err := e.cs.CoreV1().Pods(e.ns).List(context.Background(), metav1.ListOptions{LabelSelector: sel})
	assert.NilError(e.t, err)
	sort.Slice(pods.Items, func(i, j int) bool {
		return pods.Items[i].CreationTimestamp.Before(&pods.Items[j].CreationTimestamp)
	})
	return pods.Items
}

func ready(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func running(p corev1.Pod) bool {
	for _, s := range p.Status.ContainerStatuses {
		if s.State.Running == nil {
			return false
		}
	}
	return p.Status.Phase == corev1.PodRunning && len(p.Status.ContainerStatuses) > 0
}

// waitFor polls cond every 250ms; on timeout the test fails with what and the state of things.
func (e *env) waitFor(timeout time.Duration, what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// dump logs what a failed test needs: the namespace's pods, events and the controller's log
// as the kubelet wrote it.
func (e *env) dump() {
	ctx := context.Background()
	pods, _ := e.cs.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{})
	for _, p := range pods.Items {
		e.t.Logf("pod %s on %q: phase %s ready %v", p.Name, p.Spec.NodeName, p.Status.Phase, ready(p))
		for _, s := range p.Status.ContainerStatuses {
			e.t.Logf("  container %s: ready %v restarts %d state %+v last %+v", s.Name, s.Ready, s.RestartCount, s.State, s.LastTerminationState)
		}
	}
	events, _ := e.cs.CoreV1().Events(e.ns).List(ctx, metav1.ListOptions{})
	for _, ev := range events.Items {
		e.t.Logf("event %s %s/%s: %s %s", ev.Type, ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Reason, ev.Message)
	}
	logs, _ := filepath.Glob(filepath.Join(node.PodLogDir(), e.ns+"_*", "*", "*.log"))
	for _, l := range logs {
		data, _ := os.ReadFile(l)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		e.t.Logf("log %s (last %d lines):\n%s", strings.TrimPrefix(l, node.PodLogDir()+"/"), len(lines), strings.Join(lines, "\n"))
	}
	e.t.Logf("node component logs: %s", node.LogDir())
}

// containerLog is what the kubelet has written of a container's output so far.
func (e *env) containerLog(pod corev1.Pod, container string) string {
	files, _ := filepath.Glob(filepath.Join(node.PodLogDir(), fmt.Sprintf("%s_%s_%s", e.ns, pod.Name, pod.UID), container, "*.log"))
	var b strings.Builder
	for _, f := range files {
		data, _ := os.ReadFile(f)
		b.Write(data)
	}
	return b.String()
}
