package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/clearml-glue/clearml-glue/internal/chart"
	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"github.com/clearml-glue/clearml-glue/internal/clearml/podagent"
	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/localcluster"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
	"github.com/clearml-glue/clearml-glue/internal/testenv"
)

const (
	accessKey   = "E2E-ACCESS-KEY"
	secretKey   = "e2e-secret-key-never-logged"
	releaseName = "clearml-agent"
)

// env is one test's world: a namespace with the chart installed, the ClearML emulator, the
// in-pod agent simulator, and glue processes started on demand.
type env struct {
	t        *testing.T
	ns       string
	admin    *rest.Config
	cs       kubernetes.Interface
	emu      *emulator.Server
	user     *clearml.Client // the ClearML user's (and the simulated in-pod agents') client
	helm     *action.Configuration
	rel      *release.Release
	values   map[string]any
	glueErrs chan error
	logs     *logBook
	r        *testenv.Release // the chart install that helm, rel and values mirror
}

// newEnv installs the chart with values (merged over the e2e defaults) in a fresh namespace,
// with its own ClearML emulator.
func newEnv(t *testing.T, values string) *env {
	t.Helper()
	return newEnvOn(t, nil, values)
}

// newEnvOn is newEnv against a ClearML emulator another env uses too (nil: a new one), as
// several releases share one ClearML server.
func newEnvOn(t *testing.T, emu *emulator.Server, values string) *env {
	t.Helper()
	cluster := localcluster.Shared(t)
	cs, err := cluster.Clientset()
	assert.NilError(t, err)
	e := &env{t: t, admin: cluster.RESTConfig(), cs: cs, glueErrs: make(chan error, 8), logs: &logBook{}}
	e.ns = namespaceFor(t)
	assert.NilError(t, testenv.CreateNamespace(context.Background(), cs, e.ns))
	t.Cleanup(func() {
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), e.ns, metav1.DeleteOptions{})
	})

	e.emu = emu
	if e.emu == nil {
		e.emu = emulator.NewTestServer(t, emulator.Options{AccessKey: accessKey, SecretKey: secretKey})
	}
	e.user, err = clearml.New(clearml.Config{APIHost: e.emu.URL(), AccessKey: accessKey, SecretKey: secretKey, WorkerHeader: "e2e-user"})
	assert.NilError(t, err)

	e.values = chart.MergeValues(testenv.BaseValues(e.emu.URL(), accessKey, secretKey), parseValues(t, `
agentk8sglue:
  pollIntervalSeconds: 1
  createQueues: true
`))
	e.values = chart.MergeValues(e.values, parseValues(t, values))
	e.rel = e.install()
	e.startPodAgents()
	return e
}

func namespaceFor(t *testing.T) string {
	name := strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-"))
	if len(name) > 40 {
		name = name[:40]
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return strings.Trim(name, "-") + "-" + hex.EncodeToString(b)
}

func parseValues(t *testing.T, s string) map[string]any {
	t.Helper()
	m, err := testenv.ParseValues(s)
	assert.NilError(t, err)
	return m
}

func chartDir(t *testing.T) string {
	dir, err := testenv.ChartDir()
	assert.NilError(t, err)
	return dir
}

// install installs the chart with e.values (testenv.Install).
func (e *env) install() *release.Release {
	e.t.Helper()
	var err error
	e.r, err = testenv.Install(context.Background(), localcluster.Shared(e.t), e.ns, releaseName, e.values)
	assert.NilError(e.t, err)
	assert.NilError(e.t, grants.record(e.t.Name(), e.r))
	e.helm = e.r.Helm
	return e.r.Release
}

// upgrade runs helm upgrade with extra values merged over the installed ones.
func (e *env) upgrade(values string) {
	e.t.Helper()
	e.values = pruneNulls(chart.MergeValues(e.values, parseValues(e.t, values)))
	assert.NilError(e.t, e.r.Upgrade(context.Background(), e.values))
	assert.NilError(e.t, grants.record(e.t.Name(), e.r))
	e.rel = e.r.Release
}

// pruneNulls drops keys set to null, as `helm upgrade -f` does to remove a key.
func pruneNulls(m map[string]any) map[string]any {
	for k, v := range m {
		switch v := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			pruneNulls(v)
		}
	}
	return m
}

// manifestObject finds the rendered object of kind in the release (the first one).
func (e *env) manifestObject(kind string) map[string]any {
	e.t.Helper()
	obj, err := e.r.Object(kind)
	assert.NilError(e.t, err)
	return obj
}

func objectName(m map[string]any) string { return chart.ObjectName(m) }

// serviceAccountConfig is a client config with a token of the chart's ServiceAccount, so the
// glue runs with exactly the rights the chart's RBAC grants.
func (e *env) serviceAccountConfig() *rest.Config {
	e.t.Helper()
	cfg, err := e.r.ServiceAccountConfig(context.Background(), time.Hour)
	assert.NilError(e.t, err)
	return cfg
}

// settings are the controller settings the chart's Deployment gives the pod (testenv), at log
// level debug and with 8 parallel launches.
func (e *env) settings(pod string) config.Settings {
	e.t.Helper()
	s, err := e.r.Settings(pod, accessKey, secretKey)
	assert.NilError(e.t, err)
	s.LogLevel, s.MaxParallelLaunches = "debug", 8
	return s
}

// deploymentEnv returns the value the chart's Deployment gives the controller for name.
func (e *env) deploymentEnv(name string) string {
	e.t.Helper()
	v, err := e.r.DeploymentEnv(name)
	assert.NilError(e.t, err)
	return v
}

// startGlue runs a controller in-process as pod name; the returned stop ends it and waits.
func (e *env) startGlue(pod string) (stop func()) {
	return e.startGlueWith(pod, e.serviceAccountConfig())
}

func (e *env) startGlueWith(pod string, cfg *rest.Config) (stop func()) {
	e.t.Helper()
	// Every line names its replica (e2e_pod), so tests can tell who did what (launchers).
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{e.t, pod}, e.logs), &slog.HandlerOptions{Level: slog.LevelDebug})).With("e2e_pod", pod)
	g := testenv.StartGlue(cfg, e.settings(pod), logger, func(err error) {
		if err != nil {
			e.glueErrs <- fmt.Errorf("glue %s: %w", pod, err)
		}
	})
	stop = func() { _ = g.Stop(0) }
	e.t.Cleanup(stop)
	return stop
}

// testWriter sends log lines to t.Log while the test runs.
type testWriter struct {
	t   *testing.T
	pod string
}

func (w testWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // a line logged after the test ended
	w.t.Log(w.pod + ": " + strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// logBook keeps every line the glues logged, for assertions about what logs may hold.
type logBook struct {
	mu    sync.Mutex
	lines []string
}

func (b *logBook) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lines = append(b.lines, string(p))
	return len(p), nil
}

func (b *logBook) all() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "")
}

// startPodAgents plays the clearml-agent inside the namespace's task pods (podagent.Simulate).
func (e *env) startPodAgents() {
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	podagent.Simulate(ctx, e.cs, e.ns, e.user)
}

// task creates a task as a user would and enqueues it; spec may set the container and more.
func (e *env) task(queue, name string, spec emulator.TaskSpec) string {
	e.t.Helper()
	spec.Name = name
	if spec.Container == nil {
		spec.Container = map[string]string{"image": "python:3.12"}
	}
	id := e.emu.CreateTask(spec)
	_, err := e.emu.CreateQueue(queue)
	assert.NilError(e.t, err)
	assert.NilError(e.t, e.emu.Enqueue(id, queue))
	return id
}

// waitFor polls cond until it holds or timeout passes; the failure prints describe().
func (e *env) waitFor(timeout time.Duration, what string, cond func() bool, describe func() string) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		select {
		case err := <-e.glueErrs:
			e.t.Fatalf("while waiting for %s: %v", what, err)
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %s waiting for %s: %s", timeout, what, describe())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *env) taskState(id string) emulator.Task {
	t, _ := e.emu.Task(id)
	return t
}

func (e *env) waitStatus(id, status string, timeout time.Duration) emulator.Task {
	e.t.Helper()
	e.waitFor(timeout, "task "+id+" "+status, func() bool { return e.taskState(id).Status == status }, func() string {
		t := e.taskState(id)
		return fmt.Sprintf("status %s (%s: %s), log %q", t.Status, t.StatusReason, t.StatusMessage, e.emu.TaskLog(id))
	})
	return e.taskState(id)
}

func (e *env) job(id string) (*batchv1.Job, error) {
	return e.cs.BatchV1().Jobs(e.ns).Get(context.Background(), podtemplate.ObjectName(id), metav1.GetOptions{})
}

func (e *env) waitJob(id string, timeout time.Duration) *batchv1.Job {
	e.t.Helper()
	var job *batchv1.Job
	e.waitFor(timeout, "job of task "+id, func() bool {
		var err error
		job, err = e.job(id)
		return err == nil
	}, func() string {
		t := e.taskState(id)
		return fmt.Sprintf("task status %s (%s), log %q", t.Status, t.StatusReason, e.emu.TaskLog(id))
	})
	return job
}

func (e *env) waitNoJob(id string, timeout time.Duration) {
	e.t.Helper()
	e.waitFor(timeout, "job of task "+id+" gone", func() bool {
		_, err := e.job(id)
		return err != nil
	}, func() string { return "job still there" })
}
