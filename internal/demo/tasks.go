package demo

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/localcluster"
)

// sample is one demo task: a name, the queue it goes to and how long its pod runs.
type sample struct {
	name  string
	queue string
	runMs int
}

// samples are the demo's tasks over the three queues of ci/demo-values.yaml.
var samples = []sample{
	{"xgboost-churn", "cpu", 2500},
	{"resnet50-cifar10", "1xGPU", 4000},
	{"llama-8b-finetune", "2xGPU", 5000},
	{"tokenize-corpus", "cpu", 3000},
	{"bert-base-squad", "1xGPU", 3500},
	{"feature-store-etl", "cpu", 2000},
	{"vit-b16-imagenet", "2xGPU", 4500},
	{"whisper-small-asr", "1xGPU", 3000},
	{"sklearn-gridsearch", "cpu", 4000},
	{"yolov8-coco", "1xGPU", 5000},
	{"diffusion-lora", "2xGPU", 4000},
	{"pandas-report", "cpu", 1500},
	{"t5-summarize", "1xGPU", 2500},
	{"lightgbm-ranker", "cpu", 3500},
	{"mixtral-eval", "2xGPU", 3000},
	{"efficientnet-b0", "1xGPU", 4500},
	{"data-validation", "cpu", 2000},
	{"gpt2-pretrain", "2xGPU", 5500},
	{"clip-retrieval", "1xGPU", 3000},
	{"hparam-sweep-agg", "cpu", 2500},
}

// sampleTasks returns n demo tasks, repeating the samples with a suffix beyond 20.
func sampleTasks(n int) []sample {
	out := make([]sample, 0, n)
	for i := range n {
		s := samples[i%len(samples)]
		if i >= len(samples) {
			s.name += "-" + strconv.Itoa(i/len(samples)+1)
		}
		out = append(out, s)
	}
	return out
}

// EnqueueRequest is one task a ClearML user creates and enqueues.
type EnqueueRequest struct {
	Name, Queue, Image string
	// RunMs is how long the simulated pod runs (the run_ms user property, read by the demo's
	// pod template into the e2e.glue/run-ms annotation).
	RunMs int
}

// Enqueue creates a task and enqueues it as a ClearML user would (tasks.create, tasks.enqueue)
// and returns its id.
func Enqueue(ctx context.Context, client *clearml.Client, req EnqueueRequest) (string, error) {
	if req.Image == "" {
		req.Image = "python:3.12"
	}
	if req.RunMs <= 0 {
		req.RunMs = 3000
	}
	id, err := client.TasksCreate(ctx, clearml.TasksCreateRequest{
		Name: req.Name, Type: "training", Project: "demo",
		Container: &clearml.Container{Image: req.Image},
		Hyperparams: map[string]map[string]clearml.HyperParam{"properties": {
			"run_ms": {Section: "properties", Name: "run_ms", Value: strconv.Itoa(req.RunMs)},
		}},
	})
	if err != nil {
		return "", fmt.Errorf("create task %s: %w", req.Name, err)
	}
	if err := client.TasksEnqueue(ctx, clearml.TasksEnqueueRequest{Task: id, QueueName: req.Queue}); err != nil {
		return "", fmt.Errorf("enqueue task %s into %s: %w", req.Name, req.Queue, err)
	}
	return id, nil
}

// EnqueueOptions are the flags of `glue-demo enqueue`.
type EnqueueOptions struct {
	APIHost string
	// AccessKey and SecretKey default to the demo credentials of ValuesFile
	// [<repo>/ci/demo-values.yaml].
	AccessKey, SecretKey, ValuesFile string
	Queue, Name                      string
	RunMs, Count                     int
}

// EnqueueTasks is `glue-demo enqueue`: it enqueues Count tasks into a running demo's emulator and
// returns their ids.
func EnqueueTasks(ctx context.Context, o EnqueueOptions) ([]string, error) {
	if o.AccessKey == "" || o.SecretKey == "" {
		if o.ValuesFile == "" {
			root, err := localcluster.RepoRoot()
			if err != nil {
				return nil, err
			}
			o.ValuesFile = filepath.Join(root, "ci", "demo-values.yaml")
		}
		values, err := readValues(o.ValuesFile)
		if err != nil {
			return nil, err
		}
		o.AccessKey, _ = lookup(values, "clearml", "agentk8sglueKey").(string)
		o.SecretKey, _ = lookup(values, "clearml", "agentk8sglueSecret").(string)
	}
	client, err := clearml.New(clearml.Config{APIHost: o.APIHost, AccessKey: o.AccessKey, SecretKey: o.SecretKey, WorkerHeader: "demo-user"})
	if err != nil {
		return nil, err
	}
	var ids []string
	for i := range max(o.Count, 1) {
		name := o.Name
		if o.Count > 1 {
			name = fmt.Sprintf("%s-%d", o.Name, i+1)
		}
		id, err := Enqueue(ctx, client, EnqueueRequest{Name: name, Queue: o.Queue, RunMs: o.RunMs})
		if err != nil {
			return ids, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}
