package preview

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/clearml-glue/clearml-glue/internal/chart"
	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
)

// defaultChart is where the chart is in a checkout of this repository.
const defaultChart = "./charts/clearml-agent"

// stringList is a flag that may be repeated.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// Run runs clearml-glue render with args (the arguments after "render"). The object is written to
// stdout as YAML; usage and flag errors go to stderr. Any error means a non-zero exit.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("clearml-glue render", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: clearml-glue render (--values FILE... [--set key=value...] [--chart DIR] | --config FILE) --queue NAME --task TASK.json")
		fmt.Fprintln(stderr, "Prints the Job or Pod the controller would create for the task, as YAML.")
		fs.PrintDefaults()
	}
	var values, sets stringList
	fs.Var(&values, "values", "Helm values `file`, repeatable; later files win")
	fs.Var(&sets, "set", "Helm `key=value` override, repeatable")
	chartDir := fs.String("chart", defaultChart, "chart `directory`")
	configPath := fs.String("config", "", "glue config `file` (the chart's ConfigMap content) instead of the chart")
	queue := fs.String("queue", "", "ClearML queue `name` the task was pulled from")
	taskPath := fs.String("task", "", "task `file`: JSON as tasks.get_by_id returns it (the response, its data, or the task)")
	queueID := fs.String("queue-id", "", "queue `id` for the queue label and templates; default: the task's execution.queue")
	projectName := fs.String("project-name", "", "`name` of the task's project, for templates")
	userPath := fs.String("user", "", "task owner `file`: JSON as users.get_by_id returns it (the response, its data, or the user), for templates")
	podNumber := fs.Int("pod-number", 1, "session slot in sessions port mode")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	chartFlags := len(values) > 0 || len(sets) > 0
	fs.Visit(func(f *flag.Flag) { chartFlags = chartFlags || f.Name == "chart" })
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	case *queue == "" || *taskPath == "":
		return errors.New("--queue and --task are required")
	case *configPath != "" && chartFlags:
		return errors.New("--config replaces the chart: use it without --values, --set and --chart")
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	// A preview needs no ClearML credentials: the object only names their Secret. Placeholders
	// let the chart render values without them; they reach no printed object (the user's own
	// --set still wins).
	sets = append([]string{"clearml.agentk8sglueKey=" + placeholderCredential, "clearml.agentk8sglueSecret=" + placeholderCredential}, sets...)
	cfg, err := loadConfig(*configPath, chart.RenderOptions{
		ChartDir: *chartDir, ValuesFiles: values, Set: sets, ReleaseName: "clearml-agent", Namespace: "clearml",
	})
	if err != nil {
		return err
	}
	task, err := readTask(*taskPath)
	if err != nil {
		return fmt.Errorf("task %s: %w", *taskPath, err)
	}
	var user map[string]any
	if *userPath != "" {
		if user, err = readObject(*userPath, "user"); err != nil {
			return fmt.Errorf("user %s: %w", *userPath, err)
		}
	}
	builder, err := podtemplate.NewBuilder(cfg)
	if err != nil {
		return err
	}
	if *queueID == "" {
		execution, _ := task["execution"].(map[string]any)
		*queueID, _ = execution["queue"].(string)
	}
	obj, err := builder.Build(*queue, podtemplate.Input{
		Task: task, QueueID: *queueID, QueueName: *queue, ProjectName: *projectName, User: user, PodNumber: *podNumber,
	})
	if err != nil {
		return err
	}
	out, err := yaml.Marshal(obj)
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

// placeholderCredential stands in for the ClearML key and secret a preview does not need.
const placeholderCredential = "clearml-glue-render-placeholder"

// loadConfig reads the glue config from path, or from the chart rendered with opts.
func loadConfig(path string, opts chart.RenderOptions) (*config.File, error) {
	if path != "" {
		return config.Load(path)
	}
	rendered, err := chart.Render(opts)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", opts.ChartDir, err)
	}
	cfg, err := rendered.GlueConfig()
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", opts.ChartDir, err)
	}
	return cfg, nil
}

// readTask reads a task saved from tasks.get_by_id: the whole response ({"meta", "data": {"task"}}),
// its data ({"task"}) or the task itself.
func readTask(path string) (map[string]any, error) { return readObject(path, "task") }

// readObject reads a ClearML object saved from a get_by_id call under key ("task", "user"): the
// whole response, its data, or the object itself, which must have an "id".
func readObject(path, key string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers print in templates as the server sent them
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	obj := doc
	if d, ok := doc["data"].(map[string]any); ok {
		obj = d
	}
	if t, ok := obj[key].(map[string]any); ok {
		obj = t
	}
	if _, ok := obj["id"].(string); !ok {
		return nil, fmt.Errorf(`no %[1]s: want a JSON object with an "id", or {"%[1]s": ...}, or {"data": {"%[1]s": ...}}`, key)
	}
	return obj, nil
}
