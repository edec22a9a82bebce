package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
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

// TestKlogLinesAreJSON runs the controller against a Kubernetes API that fails every request:
// client-go's reflector then logs its list/watch failures through klog. Every line of the
// controller's stderr must be a JSON object, the klog ones included.
func TestKlogLinesAreJSON(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "unavailable for the test", http.StatusInternalServerError)
	}))
	defer api.Close()
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

	var stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"run", "--kubeconfig", kubeconfig}, &bytes.Buffer{}, &stderr) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), "Failed to watch") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	assert.NilError(t, <-done)

	out := stderr.String()
	assert.Assert(t, strings.Contains(out, "Failed to watch"), "no reflector error logged within 30s:\n%s", out)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var obj map[string]any
		assert.NilError(t, json.Unmarshal([]byte(line), &obj), "not a JSON line: %q", line)
		assert.Assert(t, obj["level"] != nil && obj["msg"] != nil, "JSON line without level or msg: %q", line)
	}
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
