package podtemplate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/golden"
	"sigs.k8s.io/yaml"

	"github.com/clearml-glue/clearml-glue/internal/config"
)

func loadConfig(t testing.TB, name string) *config.File {
	t.Helper()
	cfg, err := config.Load(filepath.Join("testdata", "configs", name))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func parseConfig(t testing.TB, text string) *config.File {
	t.Helper()
	cfg, err := config.Parse([]byte(text), "test")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func loadTask(t testing.TB, name string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "tasks", name))
	if err != nil {
		t.Fatal(err)
	}
	var task map[string]any
	if err := json.Unmarshal(data, &task); err != nil {
		t.Fatal(err)
	}
	return task
}

func newBuilder(t testing.TB, cfg *config.File) *Builder {
	t.Helper()
	b, err := NewBuilder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for queue, err := range b.QueueErrors() {
		t.Fatalf("queue %s: %v", queue, err)
	}
	return b
}

// input is a task as the controller passes it, with the lookups it does (project, user).
func input(task map[string]any) Input {
	execution, _ := task["execution"].(map[string]any)
	queueID, _ := execution["queue"].(string)
	return Input{
		Task:        task,
		QueueID:     queueID,
		ProjectName: "Computer Vision",
		User:        map[string]any{"id": "a1b2c3d4e5f60718293a4b5c6d7e8f90", "name": "Jane Doe", "email": "jane@example.com"},
	}
}

func TestGolden(t *testing.T) {
	for name, tc := range map[string]struct{ config, queue, task string }{
		"docs-gpu-1xGPU":                 {"docs-gpu-queues.yaml", "1xGPU", "training.json"},
		"docs-gpu-2xGPU":                 {"docs-gpu-queues.yaml", "2xGPU", "training.json"},
		"docs-per-queue-red":             {"docs-per-queue.yaml", "red", "training.json"},
		"docs-per-queue-blue":            {"docs-per-queue.yaml", "blue", "training.json"},
		"docs-per-queue-green":           {"docs-per-queue.yaml", "green", "training.json"},
		"docs-shared-memory":             {"docs-shared-memory.yaml", "GPUs_with_shared_memory", "training.json"},
		"docs-string-templates":          {"docs-string-templates.yaml", "myQueueName", "training.json"},
		"docs-string-templates-defaults": {"docs-string-templates.yaml", "myQueueName", "minimal.json"},
		"every-base-key":                 {"every-base-key.yaml", "gpu_queue", "training.json"},
		"entrypoint-sessions-bare-pod":   {"entrypoint-sessions.yaml", "inference", "minimal.json"},
		"docs-mixed-gpu-full-GPU":        {"docs-mixed-gpu.yaml", "full-GPU", "training.json"},
		"docs-mixed-gpu-1g-GPU":          {"docs-mixed-gpu.yaml", "1g-GPU", "training.json"},
		"docs-mixed-gpu-3g-GPU":          {"docs-mixed-gpu.yaml", "3g-GPU", "training.json"},
		"docs-container-script":          {"docs-container-script.yaml", "air-gapped", "minimal.json"},
		"docs-worker-ids-h100":           {"docs-worker-ids.yaml", "h100_queue", "minimal.json"},
		"docs-worker-ids-default":        {"docs-worker-ids.yaml", "default_queue", "minimal.json"},
	} {
		t.Run(name, func(t *testing.T) {
			b := newBuilder(t, loadConfig(t, tc.config))
			in := input(loadTask(t, tc.task))
			in.PodNumber = 3
			obj, err := b.Build(tc.queue, in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := yaml.Marshal(obj)
			if err != nil {
				t.Fatal(err)
			}
			golden.Assert(t, string(out), filepath.Join("golden", name+".yaml"))
		})
	}
}
