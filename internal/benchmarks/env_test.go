package benchmarks

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/clearml-glue/clearml-glue/internal/chart"
	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/localcluster"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
	"github.com/clearml-glue/clearml-glue/internal/testenv"
)

const (
	accessKey   = "BENCH-ACCESS-KEY"
	secretKey   = "bench-secret-key-never-logged"
	releaseName = "clearml-agent"
	// drainWorkers strip finalizers in parallel when a namespace is drained.
	drainWorkers = 8
)

// world is one benchmark's setup: a namespace with the chart installed, the ClearML emulator
// behind a recording handler, and the glue config the chart rendered (to build the same Jobs).
type world struct {
	tb      testing.TB
	cluster string // its name, for readCPU
	ns      string
	cs      kubernetes.Interface
	emu     *emulator.Server
	api     *apiRecorder
	url     string
	user    *clearml.Client
	rel     *testenv.Release
	cfgName string
	file    *config.File
	builder *podtemplate.Builder
}

// newWorld installs the chart with values (YAML, deep-merged over the benchmark defaults) in a
// fresh namespace of the shared cluster; task pods are held running until deleted.
func newWorld(tb testing.TB, values string, queues ...string) *world {
	tb.Helper()
	return newWorldOn(tb, localcluster.Shared(tb), "hold", values, queues...)
}

// newWorldOn is newWorld on cluster, with task pods labelled e2e.glue/behavior: behavior (see
// ci/kwok-stages.yaml; "" leaves the label off: the pod runs 500 ms and succeeds). queues are
// created in the emulator.
func newWorldOn(tb testing.TB, cluster *localcluster.Cluster, behavior, values string, queues ...string) *world {
	tb.Helper()
	cs, err := cluster.Clientset()
	must(tb, err)
	w := &world{tb: tb, cluster: cluster.Name, cs: cs}
	w.ns = newNamespace(tb, cs, "bench")

	w.emu = emulator.New(emulator.Options{AccessKey: accessKey, SecretKey: secretKey})
	w.api = &apiRecorder{next: w.emu, calls: map[string]int{}, pulled: map[string]time.Time{}}
	srv := httptest.NewServer(w.api)
	tb.Cleanup(srv.Close)
	w.url = srv.URL
	w.user, err = clearml.New(clearml.Config{APIHost: w.url, AccessKey: accessKey, SecretKey: secretKey, WorkerHeader: "bench-user"})
	must(tb, err)
	for _, q := range queues {
		_, err := w.emu.CreateQueue(q)
		must(tb, err)
	}

	defaults, err := testenv.ParseValues("agentk8sglue:\n  createQueues: true\n")
	must(tb, err)
	if behavior != "" {
		defaults = chart.MergeValues(defaults, map[string]any{"agentk8sglue": map[string]any{
			"basePodTemplate": map[string]any{"labels": map[string]any{"e2e.glue/behavior": behavior}}}})
	}
	extra, err := testenv.ParseValues(values)
	must(tb, err)
	vals := chart.MergeValues(chart.MergeValues(testenv.BaseValues(w.url, accessKey, secretKey), defaults), extra)
	w.rel, err = testenv.Install(context.Background(), cluster, w.ns, releaseName, vals)
	must(tb, err)

	w.cfgName = w.manifestName("ConfigMap")
	cm, err := cs.CoreV1().ConfigMaps(w.ns).Get(context.Background(), w.cfgName, metav1.GetOptions{})
	must(tb, err)
	w.file, err = config.Parse([]byte(cm.Data[config.FileKey]), "configmap")
	must(tb, err)
	w.builder, err = podtemplate.NewBuilder(w.file)
	must(tb, err)
	return w
}

func newNamespace(tb testing.TB, cs kubernetes.Interface, prefix string) string {
	tb.Helper()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	ns := prefix + "-" + hex.EncodeToString(b)
	must(tb, testenv.CreateNamespace(context.Background(), cs, ns))
	tb.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	return ns
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func (w *world) manifestName(kind string) string {
	name, err := w.rel.ObjectName(kind)
	must(w.tb, err)
	return name
}

// serviceAccountConfig is a client config with a token of the chart's ServiceAccount, so the glue
// runs with the chart's RBAC.
func (w *world) serviceAccountConfig() *rest.Config {
	w.tb.Helper()
	cfg, err := w.rel.ServiceAccountConfig(context.Background(), time.Hour)
	must(w.tb, err)
	return cfg
}

// glueProc is a controller running in-process as the chart's Deployment would run it.
type glueProc struct {
	settings config.Settings
	kube     *kubeRecorder
	started  time.Time
	serving  chan struct{}
	servedAt time.Time
	// The ClearML calls (of w.api, since its last reset) and Kubernetes requests made before
	// the glue logged "serving", read as it logs it: a snapshot after waitServing returns would
	// count the first polls too when the benchmark process is slow to wake.
	callsAtServing, kubeAtServing map[string]int
	stop                          func()
	errc                          chan error
}

// startGlue runs controller.Run with the chart's ServiceAccount and the settings the chart's
// Deployment gives the pod (as shipped).
func (w *world) startGlue(pod string) *glueProc {
	w.tb.Helper()
	cfg := w.serviceAccountConfig()
	g := &glueProc{kube: newKubeRecorder(), serving: make(chan struct{}), errc: make(chan error, 1)}
	cfg.Wrap(g.kube.wrap)
	settings, err := w.rel.Settings(pod, accessKey, secretKey)
	must(w.tb, err)
	g.settings = settings
	var once sync.Once
	h := &servingHandler{signal: func() {
		once.Do(func() {
			g.servedAt, g.callsAtServing, g.kubeAtServing = time.Now(), w.api.snapshot(false), g.kube.snapshot(false)
			close(g.serving)
		})
	},
		out: slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})}
	g.started = time.Now()
	glue := testenv.StartGlue(cfg, settings, slog.New(h), func(err error) {
		if err != nil {
			g.errc <- fmt.Errorf("glue %s: %w", pod, err)
		}
	})
	g.stop = func() { _ = glue.Stop(0) }
	w.tb.Cleanup(g.stop)
	return g
}

// waitServing waits for the glue's "serving" log line (readiness: caches synced, reconciled).
func (g *glueProc) waitServing(tb testing.TB, timeout time.Duration) time.Duration {
	tb.Helper()
	select {
	case <-g.serving:
		return g.servedAt.Sub(g.started)
	case err := <-g.errc:
		tb.Fatal(err)
	case <-time.After(timeout):
		tb.Fatalf("glue not serving after %s", timeout)
	}
	return 0
}

// servingHandler signals the controller's "serving" line and prints warnings and errors.
type servingHandler struct {
	signal func()
	out    slog.Handler
}

func (h *servingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (h *servingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "serving" {
		h.signal()
	}
	if r.Level >= slog.LevelWarn {
		return h.out.Handle(ctx, r)
	}
	return nil
}
func (h *servingHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return &servingHandler{signal: h.signal, out: h.out.WithAttrs(a)}
}
func (h *servingHandler) WithGroup(n string) slog.Handler {
	return &servingHandler{signal: h.signal, out: h.out.WithGroup(n)}
}

// apiRecorder sits in front of the emulator: it counts calls per endpoint and notes when
// queues.get_next_task handed out each task (the moment its response was written).
type apiRecorder struct {
	next      http.Handler
	mu        sync.Mutex
	calls     map[string]int
	pulled    map[string]time.Time
	firstPull time.Time
	// beforePull are the counts just before the first get_next_task that returned a task (that
	// call excluded), so calls - beforePull are the calls of a burst.
	beforePull map[string]int
	// lastWrite is when the last answer to a launch's own write (launchWrites) was written.
	lastWrite time.Time
}

// launchWrites are the calls that complete a launch after its create: the pending push and the
// k8s-queue property.
var launchWrites = map[string]bool{"tasks.enqueue": true, "tasks.enqueue_many": true, "tasks.edit_hyper_params": true}

func (a *apiRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := path.Base(r.URL.Path)
	a.mu.Lock()
	a.calls[name]++
	a.mu.Unlock()
	if name != "queues.get_next_task" {
		a.next.ServeHTTP(w, r)
		if launchWrites[name] {
			now := time.Now()
			a.mu.Lock()
			a.lastWrite = now
			a.mu.Unlock()
		}
		return
	}
	bw := &bodyCopy{ResponseWriter: w}
	a.next.ServeHTTP(bw, r)
	now := time.Now()
	var env struct {
		Data struct {
			Entry *struct {
				Task string `json:"task"`
			} `json:"entry"`
		} `json:"data"`
	}
	if json.Unmarshal(bw.buf.Bytes(), &env) == nil && env.Data.Entry != nil && env.Data.Entry.Task != "" {
		a.mu.Lock()
		a.pulled[env.Data.Entry.Task] = now
		if a.firstPull.IsZero() {
			a.firstPull = now
			a.beforePull = maps.Clone(a.calls)
			a.beforePull[name]--
		}
		a.mu.Unlock()
	}
}

// snapshot returns the calls per endpoint since the last reset, and resets when asked.
func (a *apiRecorder) snapshot(reset bool) map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]int{}
	for k, v := range a.calls {
		out[k] = v
	}
	if reset {
		clear(a.calls)
	}
	return out
}

// sinceFirstPull returns the first pull's time and the calls per endpoint made since, that
// get_next_task included (zero time if no task was pulled yet).
func (a *apiRecorder) sinceFirstPull() (time.Time, map[string]int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.firstPull, subtract(a.calls, a.beforePull)
}

// pulledCount is how many tasks get_next_task handed out.
func (a *apiRecorder) pulledCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.pulled)
}

// subtract returns the counts of a minus those of b, without the zeros.
func subtract(a, b map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range a {
		if d := v - b[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func (a *apiRecorder) pulledAt(task string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.pulled[task]
	return t, ok
}

type bodyCopy struct {
	http.ResponseWriter
	buf bytes.Buffer
}

func (b *bodyCopy) Write(p []byte) (int, error) {
	b.buf.Write(p)
	return b.ResponseWriter.Write(p)
}

// kubeRecorder wraps the glue's rest.Config transport (rest.Config.WrapTransport): it counts
// requests by verb and resource (LIST vs WATCH vs GET) and notes when each Job create returned.
type kubeRecorder struct {
	mu         sync.Mutex
	verbs      map[string]int // "LIST pods", "WATCH jobs", "CREATE jobs", ...
	created    map[string]time.Time
	lastCreate time.Time
}

func newKubeRecorder() *kubeRecorder {
	return &kubeRecorder{verbs: map[string]int{}, created: map[string]time.Time{}}
}

// createdDecoder decodes a create's answer: the object, or its PartialObjectMetadata.
var createdDecoder = func() kruntime.Decoder {
	s := kruntime.NewScheme()
	utilruntime.Must(scheme.AddToScheme(s))
	utilruntime.Must(metav1.AddMetaToScheme(s))
	return serializer.NewCodecFactory(s).UniversalDeserializer()
}()

func (k *kubeRecorder) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		verb, resource := classify(r)
		resp, err := rt.RoundTrip(r)
		now := time.Now()
		k.mu.Lock()
		k.verbs[verb+" "+resource]++
		k.mu.Unlock()
		if err != nil || verb != "CREATE" || resource != "jobs" || resp.StatusCode != http.StatusCreated {
			return resp, err
		}
		body, rerr := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		// The glue asks for the created object's metadata only, in protobuf.
		obj, _, derr := createdDecoder.Decode(body, nil, nil)
		if meta, ok := obj.(metav1.Object); rerr == nil && derr == nil && ok {
			k.mu.Lock()
			k.created[meta.GetName()] = now
			if now.After(k.lastCreate) {
				k.lastCreate = now
			}
			k.mu.Unlock()
		}
		return resp, err
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// classify names a Kubernetes request: LIST (collection GET), WATCH, GET, CREATE, UPDATE, ...
func classify(r *http.Request) (verb, resource string) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var rest []string
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		rest = parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		rest = parts[3:]
	default:
		return r.Method, r.URL.Path
	}
	if len(rest) >= 3 && rest[0] == "namespaces" {
		rest = rest[2:]
	}
	resource = rest[0]
	named := len(rest) > 1
	switch r.Method {
	case http.MethodGet:
		switch {
		case r.URL.Query().Get("watch") == "true" || r.URL.Query().Get("watch") == "1":
			verb = "WATCH"
		case named:
			verb = "GET"
		default:
			verb = "LIST"
		}
	case http.MethodPost:
		verb = "CREATE"
	case http.MethodPut:
		verb = "UPDATE"
	case http.MethodPatch:
		verb = "PATCH"
	case http.MethodDelete:
		verb = "DELETE"
	default:
		verb = r.Method
	}
	return verb, resource
}

func (k *kubeRecorder) createdAt(job string) (time.Time, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	t, ok := k.created[job]
	return t, ok
}

func (k *kubeRecorder) createdCount() (int, time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.created), k.lastCreate
}

func (k *kubeRecorder) snapshot(reset bool) map[string]int {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := map[string]int{}
	for key, v := range k.verbs {
		out[key] = v
	}
	if reset {
		clear(k.verbs)
	}
	return out
}

// newTasks creates n tasks as a user would, enqueued round-robin over queues.
func (w *world) newTasks(n int, queues []string) []string {
	w.tb.Helper()
	ids := make([]string, n)
	for i := range n {
		ids[i] = w.emu.CreateTask(emulator.TaskSpec{Name: fmt.Sprintf("bench task %d", i), Container: map[string]string{"image": "python:3.12"}})
		must(w.tb, w.emu.Enqueue(ids[i], queues[i%len(queues)]))
	}
	return ids
}

// waitLaunched waits until the launch of every task in ids is complete: its Job was created
// (the glue's create returned), the task waits in the pending queue and its k8s-queue property
// is written. It polls the emulator every 100 ms (each poll reads the emulator under its lock,
// so polling faster would slow the glue it measures) and returns when the launches completed:
// the later of the last create and the last answer to a launch write (apiRecorder.lastWrite).
func (w *world) waitLaunched(tb testing.TB, g *glueProc, ids []string, timeout time.Duration) time.Time {
	tb.Helper()
	left := make(map[string]bool, len(ids))
	for _, id := range ids {
		left[id] = true
	}
	deadline := time.Now().Add(timeout)
	for {
		pending := map[string]bool{}
		for _, id := range w.emu.QueueEntries(w.file.PendingQueue) {
			pending[id] = true
		}
		for id := range left {
			if _, created := g.kube.createdAt(podtemplate.ObjectName(id)); !created || !pending[id] {
				continue
			}
			if t, ok := w.emu.Task(id); ok && t.Hyperparams["properties"]["k8s-queue"].Value != "" {
				delete(left, id)
			}
		}
		now := time.Now()
		if len(left) == 0 {
			_, lastCreate := g.kube.createdCount()
			w.api.mu.Lock()
			defer w.api.mu.Unlock()
			if w.api.lastWrite.After(lastCreate) {
				return w.api.lastWrite
			}
			return lastCreate
		}
		select {
		case err := <-g.errc:
			tb.Fatal(err)
		default:
		}
		if now.After(deadline) {
			jobs, _ := g.kube.createdCount()
			tb.Fatalf("%d of %d launches incomplete after %s (%d Jobs created)", len(left), len(ids), timeout, jobs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// buildJobs builds the Jobs the glue would create for tasks (read as the glue reads them),
// in namespace ns, for the limit measurement and the heap fixture.
func (w *world) buildJobs(ids []string, queueOf func(i int) string, ns string) []*batchv1.Job {
	w.tb.Helper()
	jobs := make([]*batchv1.Job, 0, len(ids))
	for start := 0; start < len(ids); start += 500 {
		batch := ids[start:min(start+500, len(ids))]
		var out struct {
			Tasks []map[string]any `json:"tasks"`
		}
		must(w.tb, w.user.Call(context.Background(), "tasks.get_all", clearml.TasksGetAllRequest{ID: batch}, &out))
		byID := map[string]map[string]any{}
		for _, t := range out.Tasks {
			byID[t["id"].(string)] = t
		}
		for i, id := range batch {
			q := queueOf(start + i)
			obj, err := w.builder.Build(q, podtemplate.Input{Task: byID[id], QueueID: w.emu.QueueID(q), QueueName: q})
			must(w.tb, err)
			job := obj.(*batchv1.Job)
			job.Namespace = ns
			jobs = append(jobs, job)
		}
	}
	return jobs
}

// createJobs creates jobs with parallel workers through cs and returns the wall time.
func createJobs(tb testing.TB, cs kubernetes.Interface, jobs []*batchv1.Job, workers int) time.Duration {
	tb.Helper()
	next := make(chan *batchv1.Job)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for j := range next {
				if _, err := cs.BatchV1().Jobs(j.Namespace).Create(context.Background(), j, metav1.CreateOptions{}); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for _, j := range jobs {
		next <- j
	}
	close(next)
	wg.Wait()
	d := time.Since(start)
	select {
	case err := <-errs:
		tb.Fatal(err)
	default:
	}
	return d
}

// drain deletes every Job and Pod in ns and waits until no pod is left, so the next measurement
// runs on a quiet cluster. Pod finalizers (the Job controller's tracking finalizer, kwok's) are
// stripped and pods force-deleted: kwok alone takes minutes for thousands of pods.
func drain(tb testing.TB, cs kubernetes.Interface, ns string) {
	tb.Helper()
	ctx := context.Background()
	start := time.Now()
	orphan := metav1.DeletePropagationOrphan
	must(tb, cs.BatchV1().Jobs(ns).DeleteCollection(ctx, metav1.DeleteOptions{PropagationPolicy: &orphan}, metav1.ListOptions{}))
	// Task pods only: the chart's own Deployment keeps its controller pod in the namespace.
	tasks := metav1.ListOptions{LabelSelector: podtemplate.LabelTaskID}
	for time.Since(start) < 3*time.Minute {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, tasks)
		if err == nil && len(pods.Items) == 0 {
			tb.Logf("drained %s in %s", ns, time.Since(start).Round(time.Millisecond))
			return
		}
		if err == nil {
			next := make(chan string)
			var wg sync.WaitGroup
			for range drainWorkers {
				wg.Go(func() {
					for name := range next {
						_, _ = cs.CoreV1().Pods(ns).Patch(ctx, name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
					}
				})
			}
			for _, p := range pods.Items {
				if len(p.Finalizers) > 0 {
					next <- p.Name
				}
			}
			close(next)
			wg.Wait()
			_ = cs.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))}, tasks)
		}
		time.Sleep(time.Second)
	}
	tb.Logf("drain %s: pods still present after 3m", ns)
}

// countRunning returns how many pods of ns run.
func countRunning(cs kubernetes.Interface, ns string) (int, error) {
	_, running, err := countPods(cs, ns)
	return running, err
}

// countPods returns how many task pods ns holds and how many of them run.
func countPods(cs kubernetes.Interface, ns string) (total, running int, err error) {
	pods, err := cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{ResourceVersion: "0", LabelSelector: podtemplate.LabelTaskID})
	if err != nil {
		return 0, 0, err
	}
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning {
			running++
		}
	}
	return len(pods.Items), running, nil
}

// countJobs returns how many Jobs ns holds, from a one-item page (the rest is counted by the
// API server), so polling costs no list of thousands.
func countJobs(cs kubernetes.Interface, ns string) (int, error) {
	l, err := cs.BatchV1().Jobs(ns).List(context.Background(), metav1.ListOptions{Limit: 1})
	if err != nil {
		return 0, err
	}
	n := len(l.Items)
	if l.RemainingItemCount != nil {
		n += int(*l.RemainingItemCount)
	}
	return n, nil
}

// heapInUse returns the process heap in use after two collections.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// quantile returns the q-quantile (nearest rank) of xs.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func newSpec(i int) emulator.TaskSpec {
	return emulator.TaskSpec{Name: fmt.Sprintf("bench task %d", i), Container: map[string]string{"image": "python:3.12"}}
}

// createHeldJobs creates jobs that the Job controller leaves alone (spec.managedBy names no
// controller) plus, for each, the pod the Job controller would have made, bound to a node so
// kwok runs it: 10,000 Jobs then take a minute instead of the Job controller's ~20 QPS pace.
func createHeldJobs(tb testing.TB, cs kubernetes.Interface, jobs []*batchv1.Job, nodes []string, workers int) time.Duration {
	tb.Helper()
	type item struct {
		i   int
		job *batchv1.Job
	}
	next := make(chan item)
	var failed error
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for it := range next {
				j := it.job
				j.Spec.ManagedBy = new("bench.clearml-glue/none")
				created, err := cs.BatchV1().Jobs(j.Namespace).Create(context.Background(), j, metav1.CreateOptions{})
				if err == nil {
					tmpl := j.Spec.Template
					pod := &corev1.Pod{
						ObjectMeta: metav1.ObjectMeta{Name: j.Name + "-0", Namespace: j.Namespace,
							Labels: maps.Clone(tmpl.Labels), Annotations: maps.Clone(tmpl.Annotations),
							OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(created, batchv1.SchemeGroupVersion.WithKind("Job"))}},
						Spec: *tmpl.Spec.DeepCopy(),
					}
					if pod.Labels == nil {
						pod.Labels = map[string]string{}
					}
					pod.Labels["batch.kubernetes.io/job-name"] = j.Name
					pod.Labels["batch.kubernetes.io/controller-uid"] = string(created.UID)
					pod.Spec.NodeName = nodes[it.i%len(nodes)]
					_, err = cs.CoreV1().Pods(j.Namespace).Create(context.Background(), pod, metav1.CreateOptions{})
				}
				if err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
				}
			}
		})
	}
	for i, j := range jobs {
		next <- item{i, j}
	}
	close(next)
	wg.Wait()
	must(tb, failed)
	return time.Since(start)
}
