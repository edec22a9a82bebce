package benchmarks

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clearml-glue/clearml-glue/internal/localcluster"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
)

// The benchmarks below run against the local control plane TestMain starts under -bench. Each
// one repeats its measurement internally and reports medians, so run them with -benchtime 1x
// (one call each); the individual runs are logged. Source order is run order: the heap fixture
// (10,000 held pods) comes last.

// envInt reads a positive integer knob (BENCH_*), for shorter or longer local runs.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// unthrottled is the client rate the limit and the "qps raised" glue use (the admin config's).
const unthrottledQPS, unthrottledBurst = 1000, 2000

// BenchmarkThroughput: 2,000 tasks pre-enqueued over 4 queues until every Job exists, against
// the same Jobs created directly with client-go by 8 workers (the glue's default parallelism)
// on the same cluster. Glue and limit runs alternate. The glue's time runs from its first
// get_next_task that returned a task to its last Job create (start-up is logged separately).
func BenchmarkThroughput(b *testing.B) {
	tasks, reps := envInt("BENCH_TASKS", 2000), envInt("BENCH_REPS", 3)
	shippedTasks := envInt("BENCH_SHIPPED_TASKS", 150)
	queues := []string{"queue-0", "queue-1", "queue-2", "queue-3"}
	values := "agentk8sglue:\n  queues: {queue-0: {}, queue-1: {}, queue-2: {}, queue-3: {}}\n"
	var glueRates, limitRates, ratios []float64

	run := func(n int, qps float32, burst, parallel int) (rate float64, w *world, ids []string) {
		w = newWorld(b, values, queues...)
		ids = w.newTasks(n, queues)
		g := w.startGlueParallel("glue-0", qps, burst, parallel)
		deadline := time.Now().Add(15 * time.Minute)
		for {
			if c, _ := g.kube.createdCount(); c >= n {
				break
			}
			select {
			case err := <-g.errc:
				b.Fatal(err)
			default:
			}
			if time.Now().After(deadline) {
				c, _ := g.kube.createdCount()
				b.Fatalf("only %d of %d Jobs after 15m", c, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
		_, last := g.kube.createdCount()
		w.api.mu.Lock()
		first := w.api.firstPull
		w.api.mu.Unlock()
		g.stop()
		rate = float64(n) / last.Sub(first).Seconds()
		b.Logf("glue qps=%v parallel=%d: %d Jobs in %s after first pull (start-up to first pull %s): %.1f tasks/s; k8s requests %v",
			qps, parallel, n, last.Sub(first).Round(time.Millisecond), first.Sub(g.started).Round(time.Millisecond), rate, g.kube.snapshot(false))
		return rate, w, ids
	}

	for r := range reps {
		rate, w, ids := run(tasks, unthrottledQPS, unthrottledBurst, parallelism)
		// The limit creates the very Jobs the glue built (same template, same task fields).
		limitNS := newNamespace(b, w.cs, "limit")
		jobs := w.buildJobs(ids, func(i int) string { return queues[i%len(queues)] }, limitNS)
		drain(b, w.cs, w.ns)
		d := createJobs(b, w.cs, jobs, parallelism)
		limit := float64(len(jobs)) / d.Seconds()
		drain(b, w.cs, limitNS)
		b.Logf("run %d: glue %.1f tasks/s, limit %.1f creates/s, ratio %.2f", r, rate, limit, rate/limit)
		glueRates, limitRates, ratios = append(glueRates, rate), append(limitRates, limit), append(ratios, rate/limit)
	}
	// As shipped: the binary's rest.InClusterConfig has client-go's default rate limit (5 QPS,
	// burst 10) shared by Job creates and Events. Fewer tasks: the rate is set by the limiter.
	shipped, w, _ := run(shippedTasks, 0, 0, parallelism)
	drain(b, w.cs, w.ns)
	// What more launches in flight give (GLUE_MAX_PARALLEL_LAUNCHES=32, QPS raised).
	wide, w, _ := run(tasks, unthrottledQPS, unthrottledBurst, 32)
	drain(b, w.cs, w.ns)
	b.ReportMetric(wide, "throughput_tasks_per_s_qps_raised_parallel_32")

	b.ReportMetric(median(glueRates), "throughput_tasks_per_s_qps_raised")
	b.ReportMetric(median(limitRates), "limit_creates_per_s")
	b.ReportMetric(median(ratios), "throughput_ratio_qps_raised")
	b.ReportMetric(shipped, "throughput_tasks_per_s")
	b.ReportMetric(shipped/median(limitRates), "throughput_ratio")
}

// BenchmarkLaunch: single launches into an idle glue. Each task is enqueued at a uniformly
// random phase of the poll cycle, then the benchmark waits for its Job. launch overhead =
// get_next_task response written -> Job create returned 201; queue to Job = enqueue -> same.
// Launch overhead runs at pollIntervalSeconds 1 (it does not include the wait, and 1 s keeps
// 200 samples short); queue to Job runs at the chart default (5 s).
func BenchmarkLaunch(b *testing.B) {
	for _, bc := range []struct {
		name    string
		poll    int // 0 = chart default
		samples int
	}{
		{"poll=1s", 1, envInt("BENCH_LAUNCHES", 200)},
		{"poll=default", 0, envInt("BENCH_QUEUE_SAMPLES", 30)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			values := "agentk8sglue:\n  queues: {single: {}}\n"
			if bc.poll > 0 {
				values += fmt.Sprintf("  pollIntervalSeconds: %d\n", bc.poll)
			}
			w := newWorld(b, values, "single")
			poll := 5 * time.Second // the chart default
			if bc.poll > 0 {
				poll = time.Duration(bc.poll) * time.Second
			}
			g := w.startGlue("glue-0", 0, 0) // as shipped
			g.waitServing(b, 2*time.Minute)
			time.Sleep(time.Second)
			var overhead, queueToJob []float64
			for i := range bc.samples {
				id := w.emu.CreateTask(newSpec(i))
				time.Sleep(time.Duration(rand.Int64N(int64(poll))))
				enq := time.Now()
				must(b, w.emu.Enqueue(id, "single"))
				name := podtemplate.ObjectName(id)
				deadline := time.Now().Add(time.Minute)
				var created time.Time
				for {
					var ok bool
					if created, ok = g.kube.createdAt(name); ok {
						break
					}
					if time.Now().After(deadline) {
						b.Fatalf("no Job for task %s after 1m", id)
					}
					time.Sleep(time.Millisecond)
				}
				pulled, ok := w.api.pulledAt(id)
				if !ok {
					b.Fatalf("task %s launched but never seen leaving get_next_task", id)
				}
				overhead = append(overhead, ms(created.Sub(pulled)))
				queueToJob = append(queueToJob, ms(created.Sub(enq)))
			}
			g.stop()
			drain(b, w.cs, w.ns)
			b.Logf("%s: %d launches; overhead p50 %.1f p90 %.1f p99 %.1f max %.1f ms; queue->Job p50 %.0f p99 %.0f max %.0f ms",
				bc.name, len(overhead), quantile(overhead, .5), quantile(overhead, .9), quantile(overhead, .99), quantile(overhead, 1),
				quantile(queueToJob, .5), quantile(queueToJob, .99), quantile(queueToJob, 1))
			if bc.poll == 1 {
				b.ReportMetric(quantile(overhead, .5), "launch_overhead_p50_ms")
				b.ReportMetric(quantile(overhead, .99), "launch_overhead_p99_ms")
				b.ReportMetric(quantile(queueToJob, .5), "queue_to_job_p50_ms_poll_1s")
				b.ReportMetric(quantile(queueToJob, .99), "queue_to_job_p99_ms_poll_1s")
			} else {
				b.ReportMetric(quantile(overhead, .5), "launch_overhead_p50_ms_poll_5s")
				b.ReportMetric(quantile(overhead, .99), "launch_overhead_p99_ms_poll_5s")
				b.ReportMetric(quantile(queueToJob, .5), "queue_to_job_p50_ms")
				b.ReportMetric(quantile(queueToJob, .99), "queue_to_job_p99_ms")
				b.ReportMetric(poll.Seconds(), "pollIntervalSeconds")
			}
		})
	}
}

// BenchmarkIdle: ClearML calls and Kubernetes LISTs of an idle glue serving 10 and 200 queues
// (both glues run side by side, in their own namespaces and emulators), counted from the
// moment each serves, over BENCH_IDLE_SECONDS (default 60; the 5 minutes with 300).
func BenchmarkIdle(b *testing.B) {
	window := time.Duration(envInt("BENCH_IDLE_SECONDS", 60)) * time.Second
	type idle struct {
		n int
		w *world
		g *glueProc
	}
	var glues []*idle
	for _, n := range []int{10, 200} {
		names := make([]string, n)
		var sb strings.Builder
		sb.WriteString("agentk8sglue:\n  queues:\n")
		for i := range n {
			names[i] = fmt.Sprintf("idle-%03d", i)
			fmt.Fprintf(&sb, "    %s: {}\n", names[i])
		}
		w := newWorld(b, sb.String(), names...)
		glues = append(glues, &idle{n: n, w: w, g: w.startGlue("glue-0", 0, 0)})
	}
	for _, i := range glues {
		i.g.waitServing(b, 2*time.Minute)
		b.Logf("%d queues: start-up requests to Kubernetes %v, to ClearML %v", i.n, i.g.kube.snapshot(true), i.w.api.snapshot(true))
		i.w.emu.ResetCalls()
	}
	time.Sleep(window)
	perMin := func(v int) float64 { return float64(v) / window.Minutes() }
	for _, i := range glues {
		api, kube := i.w.api.snapshot(false), i.g.kube.snapshot(false)
		i.g.stop()
		total, lists := 0, 0
		for _, v := range api {
			total += v
		}
		for k, v := range kube {
			if strings.HasPrefix(k, "LIST ") {
				lists += v
			}
		}
		b.Logf("%d queues, idle %s: ClearML %v (emulator counts queues.get_all=%d), Kubernetes %v",
			i.n, window, api, i.w.emu.Calls("queues.get_all"), kube)
		b.ReportMetric(perMin(total), fmt.Sprintf("idle_clearml_calls_per_min_%d_queues", i.n))
		if i.n == 10 {
			b.ReportMetric(perMin(lists), "idle_k8s_list_calls_per_min")
		} else {
			b.ReportMetric(perMin(lists), "idle_k8s_list_calls_per_min_200_queues")
		}
	}
	b.ReportMetric(window.Seconds(), "idle_window_s")
}

// BenchmarkHeap: the controller's heap in use with 1,000, 5,000 and 10,000 of its Jobs (held
// running pods) in its namespace, after a full sync, and the time from start to serving (the
// restart cost). The Jobs are the ones the glue would build, created directly with client-go;
// their tasks are in_progress in the emulator so the start-up reconcile keeps them. Heap is
// measured in this process after GC, as the difference with the glue running and before it
// started (median of BENCH_HEAP_REPS restarts per size).
func BenchmarkHeap(b *testing.B) {
	sizes := []int{1000, 5000, 10000}
	if s := os.Getenv("BENCH_HEAP_SIZES"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, _ := strconv.Atoi(f)
			sizes = append(sizes, n)
		}
	}
	reps := envInt("BENCH_HEAP_REPS", 3)
	w := newWorld(b, "agentk8sglue:\n  queues: {heap: {}}\n", "heap")
	extra := (sizes[len(sizes)-1]+999)/1000 + 1
	must(b, localcluster.Shared(b).AddNodes(context.Background(), "heap", extra, 0))
	var nodes []string
	for i := range extra {
		nodes = append(nodes, fmt.Sprintf("heap-%d", i))
	}
	have := 0
	for _, size := range sizes {
		ids := make([]string, 0, size-have)
		for i := have; i < size; i++ {
			id := w.emu.CreateTask(newSpec(i))
			must(b, w.emu.SetTaskStatus(id, "in_progress"))
			ids = append(ids, id)
		}
		jobs := w.buildJobs(ids, func(int) string { return "heap" }, w.ns)
		d := createHeldJobs(b, w.cs, jobs, nodes, 16)
		jobs = nil //nolint:ineffassign // frees the built Jobs before the heap is measured
		start := time.Now()
		for {
			n, err := countRunning(w.cs, w.ns)
			if err == nil && n >= size {
				break
			}
			if time.Since(start) > 4*time.Minute {
				b.Logf("only %d of %d pods running after 4m; measuring anyway", n, size)
				break
			}
			time.Sleep(2 * time.Second)
		}
		b.Logf("%d Jobs: created %d in %s, all pods running %s later", size, size-have, d.Round(time.Millisecond), time.Since(start).Round(time.Second))
		have = size
		var heaps, syncs []float64
		for range reps {
			base := heapInUse()
			g := w.startGlue("glue-0", 0, 0)
			sync := g.waitServing(b, 5*time.Minute)
			time.Sleep(3 * time.Second) // let the workers drain the initial events
			with := heapInUse()
			g.stop()
			after := heapInUse()
			mb := (float64(with) - float64(base)) / (1 << 20)
			b.Logf("%d Jobs: heap base %.1f MiB, with glue %.1f MiB (+%.1f), after stop %.1f MiB; start to serving %s; k8s %v",
				size, float64(base)/(1<<20), float64(with)/(1<<20), mb, float64(after)/(1<<20), sync.Round(time.Millisecond), g.kube.snapshot(false))
			heaps, syncs = append(heaps, mb), append(syncs, sync.Seconds())
		}
		label := fmt.Sprintf("%dk", size/1000)
		if size%1000 != 0 {
			label = strconv.Itoa(size)
		}
		b.ReportMetric(median(heaps), "heap_mb_"+label+"_jobs")
		b.ReportMetric(median(syncs), "full_sync_s_"+label+"_jobs")
	}
}
