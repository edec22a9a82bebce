package controller

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"

	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/metrics"
)

// A file source loads at start, reloads when the file changes, refuses a bad version (the last
// good one keeps serving) and refuses what cannot change while the glue runs.
func TestFileSourceReloadsOnChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "glue.yaml")
	write := func(s string) { assert.NilError(t, os.WriteFile(path, []byte(s), 0o600)) }
	write("namespace: ml\nqueue: aaa\n")
	w := newConfigWatch("", "", record.NewFakeRecorder(100), slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var loads atomic.Int32
	w.watchFiles(ctx, &FileSource{Name: "config " + path, Paths: []string{path}, Interval: 10 * time.Millisecond,
		Load: func(context.Context) (*config.File, error) { loads.Add(1); return config.Load(path) }})
	select {
	case <-w.first:
	case <-time.After(10 * time.Second):
		t.Fatal("no first load")
	}
	queues := func() []string { return w.current.Load().File.QueueNames() }
	assert.DeepEqual(t, queues(), []string{"aaa"})
	select { // the start reads the first version itself: a signal would rerun its checks at once
	case <-w.reloaded:
		t.Fatal("the first version signalled a reload")
	default:
	}

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatal("timed out waiting for " + what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	write("namespace: ml\nqueue: aaa,bbb\n")
	waitFor("the reload", func() bool { return len(queues()) == 2 })
	select {
	case <-w.wake:
	case <-time.After(10 * time.Second):
		t.Fatal("a reload did not wake the scheduler")
	}
	assert.Equal(t, testutil.ToFloat64(metrics.ConfigValid), 1.0)

	write("namespace: ml\nqueue: aaa\npollIntervalSeconds: 0\n")
	waitFor("the refusal", func() bool { return testutil.ToFloat64(metrics.ConfigValid) == 0 })
	assert.DeepEqual(t, queues(), []string{"aaa", "bbb"})

	write("namespace: other\nqueue: ccc\n")
	n := loads.Load()
	waitFor("the next load", func() bool { return loads.Load() > n })
	_, err := w.loadFile(ctx, &FileSource{Name: "x", Load: func(context.Context) (*config.File, error) { return config.Load(path) }})
	assert.ErrorContains(t, err, `x: namespace "ml" -> "other" cannot change while the glue runs: restart clearml-glue to apply it`)
	assert.DeepEqual(t, queues(), []string{"aaa", "bbb"})

	same := loads.Load()
	time.Sleep(50 * time.Millisecond)
	assert.Equal(t, loads.Load(), same, "loaded again without a change")
}

// A refused ConfigMap version gets a Warning Event on the ConfigMap; a refused file version has
// no object to carry one and is only logged.
func TestRefusalEventsOnlyOnAConfigMap(t *testing.T) {
	rec := record.NewFakeRecorder(10)
	w := newConfigWatch("ml", "glue", rec, slog.New(slog.NewTextHandler(io.Discard, nil)))
	w.load(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "glue", ResourceVersion: "1"},
		Data: map[string]string{config.FileKey: "namespace: ml\n"}})
	select {
	case ev := <-rec.Events:
		assert.Assert(t, strings.HasPrefix(ev, "Warning InvalidConfig configmap ml/glue key glue.yaml: invalid glue config"), ev)
	default:
		t.Fatal("no Event for a refused ConfigMap")
	}
	w.apply(nil, errors.New("bad file"), nil, "source", "values v.yaml")
	select {
	case ev := <-rec.Events:
		t.Fatalf("Event without an object: %s", ev)
	default:
	}
}
