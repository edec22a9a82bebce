package benchmarks

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clearml-glue/clearml-glue/internal/localcluster"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
)

// BenchmarkRSS: the resident memory of the glue process (cmd/clearml-glue, started as the
// chart's Deployment runs it; see process_test.go), what its pod is charged for.
//
//   - rss_mb_idle: serving 2 queues, nothing running, BENCH_RSS_IDLE_SECONDS (60) after
//     "serving" (the start-up pages released then come back as serving needs them: a minute
//     shows most of it); median of BENCH_RSS_REPS (3) starts.
//   - rss_mb_<n>_jobs: with n of its Jobs (and their running pods) in its namespace, after the
//     full sync, BENCH_RSS_SETTLE_SECONDS (10) after "serving"; n from BENCH_RSS_SIZES
//     (1000,10000), median of BENCH_RSS_REPS starts each. The fixture is BenchmarkHeap's: Jobs
//     the glue's Builder renders, created directly with spec.managedBy set so the Job controller
//     leaves them, one pod each bound to a kwok node, tasks in_progress in the emulator.
//
// With each: rss_peak_mb_* (VmHWM, the peak since start: what a memory limit must allow),
// heap_mb_process_* and live_heap_mb_process_* (go_memstats_heap_inuse_bytes and
// go_gc_heap_live_bytes of the process's /metrics, at the same moment as the RSS). BENCH_RSS_HEAP_PROFILE=1 also saves the last start's heap profile (pprof on
// GLUE_PPROF_ADDR) as .build/bench/heap_<label>.pprof. BENCH_RSS_VARIANTS measures runtime
// settings too, on the same fixture: environments separated by ";" (GOGC=50;GOGC=50 GOMEMLIMIT=100MiB),
// each reported with its settings as a suffix (rss_mb_10k_jobs_gogc_50).
func BenchmarkRSS(b *testing.B) {
	reps := envInt("BENCH_RSS_REPS", 3)
	idle := time.Duration(envInt("BENCH_RSS_IDLE_SECONDS", 60)) * time.Second
	settle := time.Duration(envInt("BENCH_RSS_SETTLE_SECONDS", 10)) * time.Second
	sizes := envSizes(b, "BENCH_RSS_SIZES", []int{1000, 10000})

	b.Run("idle", func(b *testing.B) {
		w := newWorld(b, "agentk8sglue:\n  queues: {rss-a: {}, rss-b: {}}\n", "rss-a", "rss-b")
		measureVariants(b, w, "idle", reps, idle)
	})

	if len(sizes) == 0 {
		return
	}
	b.Run("jobs", func(b *testing.B) {
		w := newWorld(b, "agentk8sglue:\n  queues: {rss: {}}\n", "rss")
		nodes := addHeldNodes(b, "rss", sizes[len(sizes)-1])
		have := 0
		for _, size := range sizes {
			w.addHeldTasks(have, size, "rss", nodes)
			have = size
			measureVariants(b, w, sizeLabel(size)+"_jobs", reps, settle)
		}
	})
}

// measureVariants runs measureRSS as shipped, then with each BENCH_RSS_VARIANTS environment.
func measureVariants(b *testing.B, w *world, label string, reps int, wait time.Duration) {
	measureRSS(b, w, label, reps, wait, nil)
	for _, v := range strings.Split(os.Getenv("BENCH_RSS_VARIANTS"), ";") {
		if env := strings.Fields(v); len(env) > 0 {
			suffix := strings.ToLower(strings.NewReplacer("=", "_", ".", "_").Replace(strings.Join(env, "_")))
			measureRSS(b, w, label+"_"+suffix, reps, wait, env)
		}
	}
}

// measureRSS starts the glue process reps times (one at a time) and reports the medians of its
// RSS, peak RSS and heap in use, read wait after it serves, as rss_mb_<label> etc.
func measureRSS(b *testing.B, w *world, label string, reps int, wait time.Duration, env []string) {
	var rss, peak, heap, live, syncs []float64
	profile := os.Getenv("BENCH_RSS_HEAP_PROFILE") == "1"
	for r := range reps {
		o := processOptions{env: env}
		pprofAddr := freeAddr(b)
		if profile {
			o.env = append(o.env, "GLUE_PPROF_ADDR="+pprofAddr)
		}
		p := w.startProcess("glue-0", o)
		sync := p.waitServing(b, 5*time.Minute)
		time.Sleep(wait)
		mem := p.memory(b)
		inuse := p.metric(b, "go_memstats_heap_inuse_bytes") / (1 << 20)
		liveHeap := p.metric(b, "go_gc_heap_live_bytes") / (1 << 20)
		alloc, goal := p.metric(b, "go_memstats_heap_alloc_bytes")/(1<<20), p.metric(b, "go_memstats_next_gc_bytes")/(1<<20)
		if profile && r == reps-1 {
			must(b, os.MkdirAll("../../.build/bench", 0o755))
			fetch(b, "http://"+pprofAddr+"/debug/pprof/heap", "../../.build/bench/heap_"+label+".pprof", time.Minute)
		}
		p.stop()
		b.Logf("%s, run %d: %s, heap in use %.1f MiB (live %.1f, allocated %.1f, next GC at %.1f); start to serving %s",
			label, r, mem, inuse, liveHeap, alloc, goal, sync.Round(time.Millisecond))
		rss, peak, heap, syncs = append(rss, mem.RSS), append(peak, mem.Peak), append(heap, inuse), append(syncs, sync.Seconds())
		live = append(live, liveHeap)
	}
	b.ReportMetric(median(rss), "rss_mb_"+label)
	b.ReportMetric(median(peak), "rss_peak_mb_"+label)
	b.ReportMetric(median(heap), "heap_mb_process_"+label)
	b.ReportMetric(median(live), "live_heap_mb_process_"+label)
	b.ReportMetric(median(syncs), "process_start_to_serving_s_"+label)
}

// addHeldNodes adds kwok nodes named <prefix>-<n> to the shared cluster, enough for largest held
// pods (at most 1,000 a node, plus one), and returns their names.
func addHeldNodes(tb testing.TB, prefix string, largest int) []string {
	tb.Helper()
	nodes := make([]string, (largest+999)/1000+1)
	for i := range nodes {
		nodes[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	must(tb, localcluster.Shared(tb).AddNodes(context.Background(), prefix, len(nodes), 0))
	return nodes
}

// addHeldTasks grows w's namespace from have to size tasks in_progress, each with its Job and a
// running pod (createHeldJobs), and waits until the pods run.
func (w *world) addHeldTasks(have, size int, queue string, nodes []string) {
	w.tb.Helper()
	ids := make([]string, 0, size-have)
	for i := have; i < size; i++ {
		id := w.emu.CreateTask(newSpec(i))
		must(w.tb, w.emu.SetTaskStatus(id, "in_progress"))
		ids = append(ids, id)
	}
	d := createHeldJobs(w.tb, w.cs, w.buildJobs(ids, func(int) string { return queue }, w.ns), nodes, 16)
	start := time.Now()
	for {
		n, err := countRunning(w.cs, w.ns)
		if err == nil && n >= size {
			break
		}
		if time.Since(start) > 4*time.Minute {
			w.tb.Logf("only %d of %d pods running after 4m; measuring anyway", n, size)
			break
		}
		time.Sleep(2 * time.Second)
	}
	w.tb.Logf("%d Jobs: created %d in %s, all pods running %s later", size, size-have, d.Round(time.Millisecond), time.Since(start).Round(time.Second))
}

// BenchmarkProfile records a CPU and an allocation profile of the glue process (pprof on
// GLUE_PPROF_ADDR) during a burst of BENCH_TASKS (2000) tasks over 4 queues, client rate raised
// as in BenchmarkThroughput's "qps raised" runs. The tasks are enqueued once the glue serves, as
// the CPU profile (BENCH_PROFILE_SECONDS, 15) starts; the allocation profile is taken when the
// last Job exists. Written to .build/bench/cpu.pprof and allocs.pprof (BENCH_PROFILE_DIR):
//
//	go tool pprof -top .build/bench/cpu.pprof
//	go tool pprof -top -sample_index=alloc_space .build/bench/allocs.pprof
func BenchmarkProfile(b *testing.B) {
	tasks := envInt("BENCH_TASKS", 2000)
	seconds := envInt("BENCH_PROFILE_SECONDS", 15)
	dir := os.Getenv("BENCH_PROFILE_DIR")
	if dir == "" {
		dir = "../../.build/bench"
	}
	must(b, os.MkdirAll(dir, 0o755))
	queues := []string{"queue-0", "queue-1", "queue-2", "queue-3"}
	w := newWorld(b, "agentk8sglue:\n  queues: {queue-0: {}, queue-1: {}, queue-2: {}, queue-3: {}}\n", queues...)
	ids := make([]string, tasks)
	for i := range ids {
		ids[i] = w.emu.CreateTask(newSpec(i))
	}
	pprofAddr := freeAddr(b)
	p := w.startProcess("glue-0", processOptions{qps: unthrottledQPS, burst: unthrottledBurst, env: []string{"GLUE_PPROF_ADDR=" + pprofAddr}})
	p.waitServing(b, 2*time.Minute)

	cpu := make(chan struct{})
	go func() {
		defer close(cpu)
		fetch(b, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", pprofAddr, seconds), filepath.Join(dir, "cpu.pprof"), time.Duration(seconds+30)*time.Second)
	}()
	start := time.Now()
	for i, id := range ids {
		must(b, w.emu.Enqueue(id, queues[i%len(queues)]))
	}
	for {
		jobs, err := w.cs.BatchV1().Jobs(w.ns).List(context.Background(), metav1.ListOptions{ResourceVersion: "0", LabelSelector: podtemplate.LabelTaskID})
		if err == nil && len(jobs.Items) >= tasks {
			break
		}
		if time.Since(start) > 15*time.Minute {
			b.Fatalf("burst: not every Job exists after 15m")
		}
		time.Sleep(250 * time.Millisecond)
	}
	burst := time.Since(start)
	fetch(b, "http://"+pprofAddr+"/debug/pprof/allocs", filepath.Join(dir, "allocs.pprof"), time.Minute)
	mem := p.memory(b)
	<-cpu
	b.Logf("burst of %d tasks: every Job after %s (%.1f tasks/s, pprof on); CPU profile of the first %d s; %s; profiles in %s",
		tasks, burst.Round(time.Millisecond), float64(tasks)/burst.Seconds(), seconds, mem, dir)
	b.ReportMetric(mem.Peak, "rss_peak_mb_burst_"+sizeLabel(tasks)+"_tasks")
}

// envSizes reads a comma-separated list of sizes (BENCH_*_SIZES); "0" or "none" means none.
func envSizes(tb testing.TB, name string, def []int) []int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f == "none" || f == "0" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			tb.Fatalf("%s=%q: %q is not a size", name, s, f)
		}
		out = append(out, n)
	}
	return out
}

// sizeLabel is 10k for 10000, 1500 for 1500.
func sizeLabel(n int) string {
	if n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return strconv.Itoa(n)
}
