package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
	"github.com/clearml-glue/clearml-glue/internal/scheduler"
)

// FileSource is a glue config built from local files, for a glue run outside the chart
// (`clearml-glue run --values` or `--config`): it replaces the ConfigMap watch. Load is called at
// start and again whenever the content of one of Paths changes; a new version is taken or
// refused exactly like a new ConfigMap version (without Events: there is no object to put them
// on), so a bad edit leaves the last good config serving.
//
// Changes are found by reading the files every Interval and comparing their content (a SHA-256
// over every path's bytes or read error): a handful of small files a second costs nothing, sees
// an editor's atomic rename as well as an in-place write, and cannot miss a change that keeps the
// modification time, which an mtime comparison can.
type FileSource struct {
	// Name says what the config is built from, for logs: "values my-values.yaml".
	Name string
	// Paths are the files whose content Load depends on.
	Paths []string
	// Load builds the config from the files.
	Load func(ctx context.Context) (*config.File, error)
	// Interval is how often the files are read; default DefaultFilePollInterval.
	Interval time.Duration
}

// DefaultFilePollInterval is how often a FileSource's files are read for changes.
const DefaultFilePollInterval = time.Second

// watchFiles loads src now and whenever its files change, until ctx ends.
func (w *configWatch) watchFiles(ctx context.Context, src *FileSource) {
	interval := src.Interval
	if interval <= 0 {
		interval = DefaultFilePollInterval
	}
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		last := ""
		for {
			if sum := fingerprint(src.Paths); sum != last {
				last = sum
				snap, err := w.loadFile(ctx, src)
				w.apply(snap, err, nil, "source", src.Name)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// loadFile builds a snapshot from src. What the glue fixed when it started serving (namespace,
// agent name, worker id, pending queue) cannot change while it runs: a version that changes one
// is refused and says to restart.
func (w *configWatch) loadFile(ctx context.Context, src *FileSource) (*scheduler.Snapshot, error) {
	f, err := src.Load(ctx)
	if err != nil {
		return nil, err
	}
	if cur := w.current.Load(); cur != nil {
		var changed []string
		for _, c := range []struct{ name, was, now string }{
			{"namespace", cur.File.Namespace, f.Namespace},
			{"agentName", cur.File.AgentName, f.AgentName},
			{"workerId", cur.File.WorkerID, f.WorkerID},
			{"pendingQueue", cur.File.PendingQueue, f.PendingQueue},
		} {
			if c.was != c.now {
				changed = append(changed, fmt.Sprintf("%s %q -> %q", c.name, c.was, c.now))
			}
		}
		if len(changed) > 0 {
			return nil, fmt.Errorf("%s: %s cannot change while the glue runs: restart clearml-glue to apply it", src.Name, strings.Join(changed, ", "))
		}
	}
	b, err := podtemplate.NewBuilder(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.Name, err)
	}
	return &scheduler.Snapshot{File: f, Builder: b}, nil
}

// fingerprint hashes the content of every path (or its read error), in order.
func fingerprint(paths []string) string {
	h := sha256.New()
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			data = []byte("error: " + err.Error())
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))
}
