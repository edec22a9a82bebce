package demo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/clearml-glue/clearml-glue/internal/localcluster"
)

// syncBuffer collects the demo's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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

func requireTools(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a local control plane (about 30 s); skipped with -short")
	}
	root, err := localcluster.RepoRoot()
	assert.NilError(t, err)
	bin := os.Getenv("GLUE_TOOLS_BIN")
	if bin == "" {
		bin = filepath.Join(root, ".build", "tools", "current", "bin")
	}
	if _, err := os.Stat(filepath.Join(bin, "kube-apiserver")); err != nil {
		t.Fatalf("control plane binaries missing in %s: run `make tools` first", bin)
	}
}

// assertNoClusterLeft checks that kwokctl holds no directory of a cluster of this process's demos.
func assertNoClusterLeft(t *testing.T) {
	t.Helper()
	root, err := localcluster.RepoRoot()
	assert.NilError(t, err)
	left, err := filepath.Glob(filepath.Join(root, ".build", "kwok", "clusters", fmt.Sprintf("demo-%d*", os.Getpid())))
	assert.NilError(t, err)
	assert.Equal(t, len(left), 0, "clusters left behind: %v", left)
}

// The whole demo, as `make demo` runs it: every sample task completes, the summary says so, and
// nothing is left running. About 30 s on 2 cores.
func TestDemoCompletesEveryTaskAndTearsDown(t *testing.T) {
	requireTools(t)
	var out syncBuffer
	start := time.Now()
	err := Run(context.Background(), Options{Out: &out, LogDir: t.TempDir(), EmulatorAddr: "127.0.0.1:0", Timeout: 2 * time.Minute})
	t.Logf("demo took %s; output:\n%s", time.Since(start).Round(time.Second), out.String())
	assert.NilError(t, err)
	assert.Assert(t, strings.Contains(out.String(), "==> summary: launched 20, completed 20, failed 0 in "))
	assert.Assert(t, strings.Contains(out.String(), "no process left"))
	assertNoClusterLeft(t)
}

// Ctrl-C while tasks run stops the demo with ErrInterrupted and still tears everything down.
func TestDemoInterruptedTearsDown(t *testing.T) {
	requireTools(t)
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for !strings.Contains(out.String(), "==> enqueued") {
			time.Sleep(50 * time.Millisecond)
		}
		cancel()
	}()
	err := Run(ctx, Options{Tasks: 4, Out: &out, LogDir: t.TempDir(), EmulatorAddr: "127.0.0.1:0", Timeout: 2 * time.Minute})
	t.Logf("output:\n%s", out.String())
	assert.Assert(t, errors.Is(err, ErrInterrupted), "got %v", err)
	assert.Assert(t, strings.Contains(out.String(), "no process left"))
	assertNoClusterLeft(t)
}
