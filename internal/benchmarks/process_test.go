package benchmarks

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/clearml-glue/clearml-glue/internal/config"
)

// The glue as a process: the binary `make build` ships (cmd/clearml-glue, static, stripped),
// run with the environment the chart's Deployment gives it and a kubeconfig holding a token of
// the chart's ServiceAccount, so memory figures are the process's own (RSS: what a pod is
// charged), not a share of the benchmark's heap.

var glueBinary struct {
	once sync.Once
	path string
	err  error
}

// buildGlueBinary builds cmd/clearml-glue once per benchmark run, as `make build` does;
// BENCH_GLUE_GOFLAGS adds build flags (space separated) to compare builds, e.g. -tags or -overlay,
// and BENCH_GLUE_PKG builds another main package (a variant of cmd/clearml-glue) in its place.
func buildGlueBinary(tb testing.TB) string {
	tb.Helper()
	glueBinary.once.Do(func() {
		dir, err := os.MkdirTemp("", "glue-bench-bin-")
		if err != nil {
			glueBinary.err = err
			return
		}
		glueBinary.path = filepath.Join(dir, "clearml-glue")
		args := append([]string{"build", "-trimpath", "-ldflags", "-s -w -X main.version=bench", "-o", glueBinary.path},
			strings.Fields(os.Getenv("BENCH_GLUE_GOFLAGS"))...)
		pkg := "./cmd/clearml-glue"
		if p := os.Getenv("BENCH_GLUE_PKG"); p != "" {
			pkg = p
		}
		cmd := exec.Command("go", append(args, pkg)...)
		cmd.Dir = "../.."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			glueBinary.err = fmt.Errorf("go build ./cmd/clearml-glue: %w\n%s", err, out)
		}
	})
	must(tb, glueBinary.err)
	return glueBinary.path
}

// writeKubeconfig writes cfg (host, CA, bearer token) as a kubeconfig file for the process.
func writeKubeconfig(tb testing.TB, cfg *rest.Config) string {
	tb.Helper()
	caData := cfg.CAData
	if len(caData) == 0 && cfg.CAFile != "" {
		var err error
		caData, err = os.ReadFile(cfg.CAFile)
		must(tb, err)
	}
	kc := clientcmdapi.Config{
		Clusters: map[string]*clientcmdapi.Cluster{"bench": {Server: cfg.Host, CertificateAuthorityData: caData,
			InsecureSkipTLSVerify: cfg.Insecure, TLSServerName: cfg.ServerName}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"bench": {Token: cfg.BearerToken}},
		Contexts:       map[string]*clientcmdapi.Context{"bench": {Cluster: "bench", AuthInfo: "bench"}},
		CurrentContext: "bench",
	}
	path := filepath.Join(tb.TempDir(), "kubeconfig")
	must(tb, clientcmd.WriteToFile(kc, path))
	return path
}

// settingsEnv is s as the process environment (GLUE_*, CLEARML_*), the inverse of
// config.LoadSettings: every envconfig-tagged field with a value.
func settingsEnv(s config.Settings) []string {
	v := reflect.ValueOf(s)
	var env []string
	for i := range v.NumField() {
		name := v.Type().Field(i).Tag.Get("envconfig")
		if name == "" || v.Field(i).IsZero() && v.Field(i).Kind() != reflect.Bool {
			continue
		}
		f := v.Field(i)
		var val string
		switch f.Kind() {
		case reflect.Slice:
			parts := make([]string, f.Len())
			for j := range parts {
				parts[j] = fmt.Sprint(f.Index(j).Interface())
			}
			val = strings.Join(parts, ",")
		default:
			val = fmt.Sprint(f.Interface())
		}
		env = append(env, name+"="+val)
	}
	return env
}

// freeAddr returns a loopback address with a port free at the time of the call.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(tb, err)
	addr := ln.Addr().String()
	must(tb, ln.Close())
	return addr
}

// glueProcess is a running cmd/clearml-glue.
type glueProcess struct {
	cmd       *exec.Cmd
	started   time.Time
	serving   chan struct{}
	servedAt  time.Time
	exited    chan struct{}
	exitErr   error
	metrics   string // GLUE_METRICS_ADDR
	health    string // GLUE_HEALTH_ADDR
	mu        sync.Mutex
	lastLines []string // the last log lines, for a failure message
}

// processOptions are what a benchmark changes in the chart's settings.
type processOptions struct {
	qps   float32  // GLUE_KUBE_API_QPS, 0: the chart's
	burst int      // GLUE_KUBE_API_BURST, 0: the chart's
	env   []string // more variables (GOMEMLIMIT, GLUE_PPROF_ADDR, ...), applied last
}

// startProcess runs the glue binary as the chart's Deployment would run it as pod `pod`, with
// the chart's ServiceAccount; it is stopped (SIGTERM) at the end of the benchmark. BENCH_GLUE_ENV
// adds variables (space separated, e.g. GOGC=50) to compare runtime settings.
func (w *world) startProcess(pod string, o processOptions) *glueProcess {
	w.tb.Helper()
	bin := buildGlueBinary(w.tb)
	kubeconfig := writeKubeconfig(w.tb, w.serviceAccountConfig())
	settings, err := w.rel.Settings(pod, accessKey, secretKey)
	must(w.tb, err)
	settings.LogLevel = "info"
	if o.qps > 0 {
		settings.KubeAPIQPS = o.qps
	}
	if o.burst > 0 {
		settings.KubeAPIBurst = o.burst
	}
	p := &glueProcess{serving: make(chan struct{}), exited: make(chan struct{}),
		metrics: freeAddr(w.tb), health: freeAddr(w.tb)}
	settings.MetricsAddr, settings.HealthAddr = p.metrics, p.health
	// Only what is set here: nothing of the benchmark's own environment (GOGC, GOMEMLIMIT, ...).
	env := append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + w.tb.TempDir()}, settingsEnv(settings)...)
	p.cmd = exec.Command(bin, "run", "--kubeconfig", kubeconfig)
	p.cmd.Env = append(append(env, o.env...), strings.Fields(os.Getenv("BENCH_GLUE_ENV"))...)
	stderr, err := p.cmd.StderrPipe()
	must(w.tb, err)
	p.started = time.Now()
	must(w.tb, p.cmd.Start())
	logs := make(chan struct{})
	go func() {
		defer close(logs)
		p.readLog(w.tb, stderr)
	}()
	go func() {
		<-logs // Wait closes the pipe: read it to the end first
		p.exitErr = p.cmd.Wait()
		close(p.exited)
	}()
	w.tb.Cleanup(p.stop)
	return p
}

// readLog watches the JSON log for "serving" and prints warnings and errors.
func (p *glueProcess) readLog(tb testing.TB, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var rec struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		_ = json.Unmarshal([]byte(line), &rec)
		if rec.Msg == "serving" && p.servedAt.IsZero() {
			p.servedAt = time.Now()
			close(p.serving)
		}
		if rec.Level == "WARN" || rec.Level == "ERROR" || rec.Level == "" {
			fmt.Fprintln(os.Stderr, "glue process:", line)
		}
		p.mu.Lock()
		p.lastLines = append(p.lastLines, line)
		if len(p.lastLines) > 20 {
			p.lastLines = p.lastLines[1:]
		}
		p.mu.Unlock()
	}
}

// waitServing waits for the "serving" log line, checks that /readyz says so too, and returns
// the time from start to the log line.
func (p *glueProcess) waitServing(tb testing.TB, timeout time.Duration) time.Duration {
	tb.Helper()
	select {
	case <-p.serving:
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for !p.ready(ctx) {
			if ctx.Err() != nil {
				tb.Fatalf("glue process logged serving but /readyz on %s does not answer 200", p.health)
			}
			time.Sleep(100 * time.Millisecond)
		}
		return p.servedAt.Sub(p.started)
	case <-p.exited:
	case <-time.After(timeout):
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	tb.Fatalf("glue process not serving after %s (exit: %v); last log lines:\n%s", time.Since(p.started).Round(time.Millisecond),
		p.exitErr, strings.Join(p.lastLines, "\n"))
	return 0
}

// stop ends the process as the kubelet does: SIGTERM, then SIGKILL after 30 s.
func (p *glueProcess) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// procMemory is the process's resident memory from /proc/<pid>/status, in MiB.
type procMemory struct {
	RSS  float64 // VmRSS: resident now
	Peak float64 // VmHWM: the peak resident since start
	Anon float64 // RssAnon: heap, stacks, runtime
	File float64 // RssFile: the binary's pages mapped in (text, read-only data)
}

func (m procMemory) String() string {
	return fmt.Sprintf("RSS %.1f MiB (anon %.1f, file %.1f), peak %.1f MiB", m.RSS, m.Anon, m.File, m.Peak)
}

// memory reads the process's procMemory.
func (p *glueProcess) memory(tb testing.TB) procMemory {
	tb.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	must(tb, err)
	var m procMemory
	fields := map[string]*float64{"VmRSS": &m.RSS, "VmHWM": &m.Peak, "RssAnon": &m.Anon, "RssFile": &m.File}
	for _, line := range strings.Split(string(data), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if f := fields[name]; ok && f != nil {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 64)
			must(tb, err)
			*f = kb / 1024
		}
	}
	return m
}

// metric reads one unlabelled sample of the process's /metrics (e.g. go_memstats_heap_inuse_bytes).
func (p *glueProcess) metric(tb testing.TB, name string) float64 {
	tb.Helper()
	resp, err := http.Get("http://" + p.metrics + "/metrics")
	must(tb, err)
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			must(tb, err)
			return f
		}
	}
	must(tb, sc.Err())
	tb.Fatalf("metric %s not in the glue's /metrics", name)
	return 0
}

// ready says whether the process's /readyz answers 200.
func (p *glueProcess) ready(ctx context.Context) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.health+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// fetch writes what GET url answers to path (a profile, for instance).
func fetch(tb testing.TB, url, path string, timeout time.Duration) {
	tb.Helper()
	client := &http.Client{Timeout: timeout}
	resp, err := client.Get(url)
	must(tb, err)
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		tb.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	f, err := os.Create(path)
	must(tb, err)
	_, err = io.Copy(f, resp.Body)
	must(tb, err)
	must(tb, f.Close())
}
