package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/clearml-glue/clearml-glue/internal/process"
)

// syncBuffer is the controller's stderr, read while it writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startAgainstFailingAPI runs the controller (run, in this process) with the settings the tests
// need plus env, against a Kubernetes API that fails every request; stop ends it and returns
// run's error.
func startAgainstFailingAPI(t *testing.T, env map[string]string) (stderr *syncBuffer, stop func() error) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "unavailable for the test", http.StatusInternalServerError)
	}))
	t.Cleanup(api.Close)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	assert.NilError(t, os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "`+api.URL+`"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600))
	for k, v := range map[string]string{
		"CLEARML_API_HOST": "http://127.0.0.1:1", "CLEARML_API_ACCESS_KEY": "k", "CLEARML_API_SECRET_KEY": "s",
		"GLUE_NAMESPACE": "ns", "GLUE_CONFIGMAP": "cm", "GLUE_POD_NAME": "test",
		"GLUE_METRICS_ADDR": "127.0.0.1:0", "GLUE_HEALTH_ADDR": "127.0.0.1:0", "GLUE_LOG_LEVEL": "info",
	} {
		t.Setenv(k, v)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	stderr = &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"run", "--kubeconfig", kubeconfig}, &bytes.Buffer{}, stderr) }()
	return stderr, func() error { cancel(); return <-done }
}

// waitFor waits up to 30 s for cond.
func waitFor(cond func() bool) bool {
	deadline := time.Now().Add(30 * time.Second)
	for !cond() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	return cond()
}

// TestKlogLinesAreJSON runs the controller against a Kubernetes API that fails every request:
// client-go's reflector then logs its list/watch failures through klog. Every line of the
// controller's stderr must be a JSON object, the klog ones included.
func TestKlogLinesAreJSON(t *testing.T) {
	stderr, stop := startAgainstFailingAPI(t, nil)
	waitFor(func() bool { return strings.Contains(stderr.String(), "Failed to watch") })
	assert.NilError(t, stop())

	out := stderr.String()
	assert.Assert(t, strings.Contains(out, "Failed to watch"), "no reflector error logged within 30s:\n%s", out)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var obj map[string]any
		assert.NilError(t, json.Unmarshal([]byte(line), &obj), "not a JSON line: %q", line)
		assert.Assert(t, obj["level"] != nil && obj["msg"] != nil, "JSON line without level or msg: %q", line)
	}
}

// startingLine is the "process" group of the controller's "starting" log line.
func startingLine(t *testing.T, stderr *syncBuffer) map[string]any {
	t.Helper()
	assert.Assert(t, waitFor(func() bool { return strings.Contains(stderr.String(), `"msg":"starting"`) }), "no starting line:\n%s", stderr)
	for _, line := range strings.Split(stderr.String(), "\n") {
		var obj struct {
			Msg     string         `json:"msg"`
			Process map[string]any `json:"process"`
		}
		if json.Unmarshal([]byte(line), &obj) == nil && obj.Msg == "starting" {
			return obj.Process
		}
	}
	return nil
}

// TestProcessDefaults: without GLUE_CONTAINER_MEMORY_LIMIT, GOGC nor GLUE_PPROF_ADDR the
// controller sets no memory limit, collects at process.GCPercent, serves no pprof and releases
// its start-up pages once started.
func TestProcessDefaults(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("GOGC", "")
	stderr, stop := startAgainstFailingAPI(t, nil)
	got := startingLine(t, stderr)
	assert.NilError(t, stop())
	assert.DeepEqual(t, got, map[string]any{"goMemLimit": "off", "gcPercent": float64(process.GCPercent), "releaseStartupPages": true})
	assert.Equal(t, debug.SetMemoryLimit(-1), int64(math.MaxInt64))
	gc := debug.SetGCPercent(100)
	assert.Equal(t, gc, process.GCPercent)
}

// TestProcessSettings: the container's memory limit becomes the Go runtime's (a fraction of it),
// GLUE_PPROF_ADDR serves pprof while the controller runs, GLUE_RELEASE_STARTUP_PAGES=false
// keeps the start-up pages.
func TestProcessSettings(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("GOGC", "80") // set: left to the runtime (which read it at start, hence 100 here)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	addr := ln.Addr().String()
	assert.NilError(t, ln.Close())
	stderr, stop := startAgainstFailingAPI(t, map[string]string{"GLUE_CONTAINER_MEMORY_LIMIT": "1073741824", "GLUE_PPROF_ADDR": addr,
		"GLUE_RELEASE_STARTUP_PAGES": "false"})
	got := startingLine(t, stderr)
	resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	assert.NilError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, resp.StatusCode, http.StatusOK)
	assert.NilError(t, stop())
	gib := float64(1 << 30)
	want := int64(gib * process.MemoryLimitFraction)
	assert.DeepEqual(t, got, map[string]any{"goMemLimit": float64(want), "gcPercent": float64(100), "pprof": addr, "releaseStartupPages": false})
	assert.Equal(t, debug.SetMemoryLimit(-1), want)
}

// TestProductBinaryLinksNoTestCode: the shipped binary holds neither the ClearML emulator, nor the
// pod agent simulator, nor the testing package (cmd/clearml-emulator serves the emulator).
func TestProductBinaryLinksNoTestCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	assert.NilError(t, err, "go list -deps")
	deps := strings.Fields(string(out))
	assert.Assert(t, slices.Contains(deps, "github.com/clearml-glue/clearml-glue/internal/controller"), "unexpected go list output: %v", deps)
	for _, banned := range []string{
		"github.com/clearml-glue/clearml-glue/internal/clearml/emulator",
		"github.com/clearml-glue/clearml-glue/internal/clearml/podagent",
		"testing",
	} {
		assert.Assert(t, !slices.Contains(deps, banned), "clearml-glue links %s", banned)
	}
}
