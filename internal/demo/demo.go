package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/podagent"
	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/localcluster"
	"github.com/clearml-glue/clearml-glue/internal/testenv"
)

const (
	namespace   = "clearml"
	releaseName = "clearml-agent"
)

// runs counts the demos this process started, to name their clusters apart.
var runs atomic.Int32

// ErrInterrupted is returned when the demo was stopped (Ctrl-C) before every task finished.
var ErrInterrupted = errors.New("interrupted")

// Options say how to run the demo. Zero values take the defaults in brackets.
type Options struct {
	// Tasks is how many sample tasks to enqueue [20].
	Tasks int
	// CPUNodes and GPUNodes are the simulated nodes [3, 2]; GPU nodes have 8 nvidia.com/gpu.
	CPUNodes, GPUNodes int
	// ValuesFile is the chart values file [<repo>/ci/demo-values.yaml].
	ValuesFile string
	// EmulatorBin is the clearml-emulator binary (cmd/clearml-emulator) that plays the ClearML
	// server; empty builds it into LogDir.
	EmulatorBin string
	// EmulatorAddr is where the emulator listens, a free port when taken [127.0.0.1:8008].
	EmulatorAddr string
	// Timeout bounds the wait for the tasks to finish [5m].
	Timeout time.Duration
	// Keep leaves everything running after the summary, until ctx ends (Ctrl-C).
	Keep bool
	// Out receives the progress [os.Stdout]; Live redraws the table in place with ANSI codes
	// (for a terminal), otherwise plain progress lines are printed every PlainEvery [3s].
	Out        io.Writer
	Live       bool
	PlainEvery time.Duration
	// LogDir holds the controller and emulator logs [<repo>/.build/demo].
	LogDir string
}

func (o *Options) defaults(root string) {
	if o.Tasks <= 0 {
		o.Tasks = 20
	}
	if o.CPUNodes <= 0 {
		o.CPUNodes = 3
	}
	if o.GPUNodes < 0 {
		o.GPUNodes = 0
	} else if o.GPUNodes == 0 {
		o.GPUNodes = 2
	}
	if o.ValuesFile == "" {
		o.ValuesFile = filepath.Join(root, "ci", "demo-values.yaml")
	}
	if o.EmulatorAddr == "" {
		o.EmulatorAddr = "127.0.0.1:8008"
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.PlainEvery <= 0 {
		o.PlainEvery = 3 * time.Second
	}
	if o.LogDir == "" {
		o.LogDir = filepath.Join(root, ".build", "demo")
	}
}

// Run runs the demo: it returns nil when every task completed, and tears everything down before
// it returns (after ctx ends when Keep is set).
func Run(ctx context.Context, o Options) (err error) {
	start := time.Now()
	root, err := localcluster.RepoRoot()
	if err != nil {
		return err
	}
	o.defaults(root)
	step := func(format string, args ...any) {
		fmt.Fprintf(o.Out, "==> "+format+"\n", args...)
	}
	if err := os.MkdirAll(o.LogDir, 0o755); err != nil {
		return err
	}
	values, err := readValues(o.ValuesFile)
	if err != nil {
		return err
	}
	accessKey, _ := lookup(values, "clearml", "agentk8sglueKey").(string)
	secretKey, _ := lookup(values, "clearml", "agentk8sglueSecret").(string)
	if accessKey == "" || secretKey == "" {
		return fmt.Errorf("%s: clearml.agentk8sglueKey and clearml.agentk8sglueSecret are the demo credentials; both must be set", o.ValuesFile)
	}

	binDir := os.Getenv("GLUE_TOOLS_BIN")
	if binDir == "" {
		binDir = filepath.Join(root, ".build", "tools", "current", "bin")
	}
	if err := ensureTools(ctx, root, binDir, step); err != nil {
		return err
	}

	// Teardown runs in reverse order of start, also when ctx ended (Ctrl-C).
	var teardown []func() error
	defer func() {
		if len(teardown) == 0 {
			return
		}
		t0 := time.Now()
		step("tearing down: controller, ClearML emulator, control plane")
		var errs []error
		for _, f := range slices.Backward(teardown) {
			errs = append(errs, f())
		}
		if terr := errors.Join(errs...); terr != nil {
			step("teardown: %v", terr)
			err = errors.Join(err, terr)
			return
		}
		step("torn down in %s; no process left", time.Since(t0).Round(100*time.Millisecond))
	}()

	// 1. The ClearML server: the emulator as its own process.
	if o.EmulatorBin == "" {
		o.EmulatorBin = filepath.Join(o.LogDir, "clearml-emulator")
		step("go build -o %s ./cmd/clearml-emulator", rel(root, o.EmulatorBin))
		if err := buildEmulator(ctx, root, o.EmulatorBin); err != nil {
			return err
		}
	}
	emuLog := filepath.Join(o.LogDir, "emulator.log")
	emu, err := startEmulator(o.EmulatorBin, o.EmulatorAddr, accessKey, secretKey, emuLog)
	if err != nil {
		return err
	}
	teardown = append(teardown, emu.stop)
	step("ClearML emulator: %s (`%s`, pid %d, log %s)", emu.url, rel(root, o.EmulatorBin), emu.cmd.Process.Pid, rel(root, emuLog))
	setValue(values, emu.url, "agentk8sglue", "apiServerUrlReference")
	user, err := clearml.New(clearml.Config{APIHost: emu.url, AccessKey: accessKey, SecretKey: secretKey, WorkerHeader: "demo-user",
		MaxRetryElapsed: 20 * time.Second})
	if err != nil {
		return err
	}

	// 2. The local control plane with CPU and GPU nodes.
	name := fmt.Sprintf("demo-%d", os.Getpid())
	if n := runs.Add(1); n > 1 {
		name += fmt.Sprintf("-%d", n) // a name kwokctl has not used in this process
	}
	clusterOpts := localcluster.Options{
		Name: name, BinDir: binDir,
		Nodes: o.CPUNodes, GPUNodes: o.GPUNodes,
		StageFiles: []string{filepath.Join(root, "ci", "kwok-stages.yaml")},
	}
	// kwokctl picks its ports by probing, so clusters created at the same moment on one machine
	// (tests running beside the demo) can pick the same port: the API server then answers with
	// another cluster's certificate, or the nodes never get Ready. A healthy start takes seconds,
	// so the first try gets 90 s, then a second try gets other ports.
	firstCtx, cancelFirst := context.WithTimeout(ctx, 90*time.Second)
	cluster, err := localcluster.Start(firstCtx, clusterOpts)
	cancelFirst()
	if err != nil && ctx.Err() == nil {
		step("the control plane did not start (%v); trying once more", firstLine(err))
		clusterOpts.Name += "-retry"
		cluster, err = localcluster.Start(ctx, clusterOpts)
	}
	if err != nil {
		return interrupted(ctx, err)
	}
	teardown = append(teardown, cluster.Stop)
	step("local control plane %s up: %d CPU nodes (cpu-N), %d GPU nodes (gpu-N, 8 x nvidia.com/gpu each)", cluster.Name, o.CPUNodes, o.GPUNodes)
	cs, err := cluster.Clientset()
	if err != nil {
		return err
	}

	// 3. helm install with the demo values.
	if err := testenv.CreateNamespace(ctx, cs, namespace); err != nil {
		return interrupted(ctx, err)
	}
	release, err := testenv.Install(ctx, cluster, namespace, releaseName, values)
	if err != nil {
		return interrupted(ctx, err)
	}
	rel0 := release.Release
	step("helm install %s charts/clearml-agent -n %s -f %s: %s (revision %d)", releaseName, namespace, rel(root, o.ValuesFile), rel0.Info.Status, rel0.Version)

	// 4. The controller, in-process, as the chart's ServiceAccount, with the settings the chart's
	// Deployment gives its pod.
	sa, err := release.ObjectName("ServiceAccount")
	if err != nil {
		return err
	}
	saConfig, err := release.ServiceAccountConfig(ctx, 24*time.Hour)
	if err != nil {
		return interrupted(ctx, err)
	}
	settings, err := release.Settings("glue-demo", accessKey, secretKey)
	if err != nil {
		return err
	}
	configMap := settings.ConfigMap
	glueLog := filepath.Join(o.LogDir, "glue.log")
	stopGlue, glueErr, err := startController(saConfig, settings, glueLog)
	if err != nil {
		return err
	}
	teardown = append(teardown, stopGlue)
	step("controller running in-process as ServiceAccount %s/%s, reading ConfigMap %s (log %s)", namespace, sa, configMap, rel(root, glueLog))

	// The clearml-agent inside task pods, simulated; and the progress tracker.
	watchCtx, stopWatch := context.WithCancel(context.Background())
	teardown = append(teardown, func() error { stopWatch(); return nil })
	podagent.Simulate(watchCtx, cs, namespace, user)
	tr, err := newTracker(watchCtx, cs, namespace, user)
	if err != nil {
		return err
	}

	queues := queueNames(values)
	if err := waitQueues(ctx, user, queues, glueErr); err != nil {
		return interrupted(ctx, err)
	}
	step("serving queues %s (created on the ClearML server by the glue, createQueues: true)", strings.Join(queues, ", "))

	// 5. Tasks, enqueued as a ClearML user would.
	perQueue := map[string]int{}
	for _, s := range sampleTasks(o.Tasks) {
		id, err := Enqueue(ctx, user, EnqueueRequest{Name: s.name, Queue: s.queue, RunMs: s.runMs})
		if err != nil {
			return interrupted(ctx, err)
		}
		tr.add(id, s.name, s.queue)
		perQueue[s.queue]++
	}
	var counts []string
	for _, q := range queues {
		counts = append(counts, fmt.Sprintf("%s %d", q, perQueue[q]))
	}
	step("enqueued %d tasks (tasks.create + tasks.enqueue): %s", o.Tasks, strings.Join(counts, ", "))
	if !o.Live {
		fmt.Fprintln(o.Out)
	}

	// 6. Progress until every task finished.
	taskStart := time.Now()
	d := &display{out: o.Out, live: o.Live, plainEvery: o.PlainEvery, start: taskStart}
	waitErr := follow(ctx, o.Timeout, tr, d, glueErr)
	if waitErr == nil {
		settle(ctx, tr)
	}
	rows := tr.snapshot()
	d.show(rows, true)
	c := Count(rows)
	fmt.Fprintln(o.Out)
	step("summary: %s (whole demo %s)", c.Summary(time.Since(taskStart)), time.Since(start).Round(100*time.Millisecond))
	var result error
	switch {
	case waitErr != nil:
		result = waitErr
	case c.Completed != c.Total:
		result = fmt.Errorf("%d of %d tasks did not complete; see %s", c.Total-c.Completed, c.Total, rel(root, glueLog))
	}
	if result != nil {
		return result
	}

	if o.Keep {
		printKeep(o.Out, root, cluster.Kubeconfig, emu.url, accessKey, secretKey, binDir, glueLog)
		ev := &events{out: o.Out, seen: map[string]string{}}
		for _, r := range rows {
			ev.seen[r.ID] = r.Status
		}
		keepFollowing(ctx, tr, ev, glueErr)
	}
	return nil
}

// follow refreshes the display until every task finished, the timeout passed, the controller
// failed or ctx ended.
func follow(ctx context.Context, timeout time.Duration, tr *tracker, d *display, glueErr <-chan error) error {
	deadline := time.After(timeout)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := tr.refresh(ctx); err != nil && ctx.Err() == nil {
			return err
		}
		rows := tr.snapshot()
		if Count(rows).Done() {
			return nil
		}
		d.show(rows, false)
		select {
		case <-ctx.Done():
			return ErrInterrupted
		case err := <-glueErr:
			return fmt.Errorf("controller stopped: %w", err)
		case <-deadline:
			return fmt.Errorf("tasks not finished after %s", timeout)
		case <-tick.C:
		}
	}
}

// settle gives the Job controller up to 3 s to mark the last Jobs finished once their tasks are,
// so the final table shows Complete rather than Active.
func settle(ctx context.Context, tr *tracker) {
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if tr.refresh(ctx) != nil {
			return
		}
		if !slices.ContainsFunc(tr.snapshot(), func(r Row) bool { return r.Job == "Active" || r.Job == "Created" }) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// keepFollowing prints status changes of any task the glue runs until ctx ends.
func keepFollowing(ctx context.Context, tr *tracker, ev *events, glueErr <-chan error) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		tr.discover()
		if err := tr.refresh(ctx); err == nil {
			ev.show(tr.snapshot())
		}
		select {
		case <-ctx.Done():
			return
		case err := <-glueErr:
			fmt.Fprintf(ev.out, "controller stopped: %v\n", err)
			<-ctx.Done()
			return
		case <-tick.C:
		}
	}
}

func firstLine(err error) string {
	line, _, _ := strings.Cut(err.Error(), "\n")
	return line
}

func interrupted(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ErrInterrupted
	}
	return err
}

func readValues(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	values := map[string]any{}
	if err := yaml.Unmarshal(data, &values); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return values, nil
}

func lookup(m map[string]any, path ...string) any {
	var v any = m
	for _, k := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

func setValue(m map[string]any, value any, path ...string) {
	for _, k := range path[:len(path)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[path[len(path)-1]] = value
}

// queueNames are the queues of the values file, sorted.
func queueNames(values map[string]any) []string {
	q, _ := lookup(values, "agentk8sglue", "queues").(map[string]any)
	var names []string
	for name := range q {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// controllerStopTimeout bounds the controller's shutdown at teardown: launches in flight finish
// within seconds on the local control plane; longer means it hangs, which the demo reports.
const controllerStopTimeout = 30 * time.Second

// startController runs the controller in-process (testenv.StartGlue), logging to logFile. stop
// ends it and waits; errs receives the error if it stops by itself.
func startController(cfg *rest.Config, s config.Settings, logFile string) (stop func() error, errs <-chan error, err error) {
	f, err := os.Create(logFile)
	if err != nil {
		return nil, nil, err
	}
	logger := slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ch := make(chan error, 1)
	g := testenv.StartGlue(cfg, s, logger, func(err error) {
		if err == nil {
			err = errors.New("controller returned")
		}
		ch <- err
	})
	var once sync.Once
	var stopErr error
	stop = func() error {
		once.Do(func() {
			if err := g.Stop(controllerStopTimeout); err != nil {
				stopErr = fmt.Errorf("controller: %w", err)
			}
			_ = f.Close()
		})
		return stopErr
	}
	return stop, ch, nil
}

// waitQueues waits until the glue created every queue on the ClearML server.
func waitQueues(ctx context.Context, user *clearml.Client, names []string, glueErr <-chan error) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		queues, err := user.QueuesGetAll(ctx, clearml.QueuesGetAllRequest{OnlyFields: []string{"name"}})
		if err == nil {
			missing := slices.DeleteFunc(slices.Clone(names), func(n string) bool {
				return slices.ContainsFunc(queues, func(q clearml.Queue) bool { return q.Name == n })
			})
			if len(missing) == 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the glue did not create queues %v within a minute", names)
		case err := <-glueErr:
			return fmt.Errorf("controller stopped: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// printKeep tells how to look at and use the demo left running.
func printKeep(out io.Writer, root, kubeconfig, url, key, secret, binDir, glueLog string) {
	helm := rel(root, filepath.Join(binDir, "helm"))
	self := "go run ./cmd/glue-demo"
	if exe, err := os.Executable(); err == nil && filepath.Base(exe) == "glue-demo" {
		self = rel(root, exe)
	}
	fmt.Fprintf(out, `
The demo keeps running (KEEP=1); press Ctrl-C to tear it down.

  export KUBECONFIG=%[1]s
  kubectl get nodes -L nvidia.com/gpu.present
  kubectl -n %[2]s get jobs,pods -L clearml-agent-queue-name -o wide

  ClearML API (emulator): %[3]s   access key %[4]s, secret key %[5]s
  Controller log:         %[6]s

Enqueue more tasks (queues cpu, 1xGPU, 2xGPU):
  %[9]s enqueue -api %[3]s -queue 1xGPU -name my-experiment -count 3
or with curl, as any ClearML client would:
  id=$(curl -s -u %[4]s:%[5]s -H 'Content-Type: application/json' \
    -d '{"name":"my-experiment","type":"training","container":{"image":"python:3.12"}}' \
    %[3]s/tasks.create | sed -E 's/.*"id": *"([0-9a-f]+)".*/\1/')
  curl -s -u %[4]s:%[5]s -H 'Content-Type: application/json' \
    -d '{"task":"'$id'","queue_name":"cpu"}' %[3]s/tasks.enqueue

Add a queue with helm upgrade (the controller serves it without a restart):
  %[7]s --kubeconfig %[1]s -n %[2]s upgrade %[8]s charts/clearml-agent --reuse-values \
    --set-json 'agentk8sglue.queues.cpu-large={"templateOverrides":{"resources":{"requests":{"cpu":"8"}}}}'
  %[9]s enqueue -api %[3]s -queue cpu-large -name big-job

Status changes of the tasks follow:
`, kubeconfig, namespace, url, key, secret, rel(root, glueLog), helm, releaseName, self)
}
