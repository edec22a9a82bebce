package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"github.com/clearml-glue/clearml-glue/internal/localcluster"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
	"github.com/clearml-glue/clearml-glue/internal/testenv"
)

// 9a. The ClearML server answers 503 (maintenance) for 30 s: nothing is lost and work resumes.
func TestClearMLOutage30sLosesNothing(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  queues:
    work:
      templateOverrides:
        annotations: {e2e.glue/run-ms: "200ms"}
`)
	jobs := e.recordJobs()
	e.startGlue("glue-0")
	first := e.task("work", "before", emulator.TaskSpec{})
	e.waitStatus(first, clearml.StatusCompleted, 30*time.Second)

	e.emu.Outage(30*time.Second, 503)
	var ids []string
	for i := range 5 {
		ids = append(ids, e.task("work", fmt.Sprintf("during-%d", i), emulator.TaskSpec{}))
	}
	time.Sleep(5 * time.Second)
	assert.Equal(t, len(e.jobsOf(ids)), 0, "launched during the outage")
	for _, id := range ids {
		e.waitStatus(id, clearml.StatusCompleted, 90*time.Second)
	}
	_, uids, _, _ := jobs.snapshot()
	for _, id := range ids {
		assert.Equal(t, len(uids[id]), 1, "task %s got %d Jobs", id, len(uids[id]))
	}
}

func (e *env) jobsOf(ids []string) []string {
	e.t.Helper()
	// One LIST, not a GET per task: on a slow API server 160 GETs took seconds, long enough for
	// the controller-killed test's launches to all be out before it looked.
	l, err := e.cs.BatchV1().Jobs(e.ns).List(context.Background(), metav1.ListOptions{LabelSelector: podtemplate.LabelTaskID})
	assert.NilError(e.t, err)
	have := map[string]bool{}
	for _, j := range l.Items {
		have[j.Labels[podtemplate.LabelTaskID]] = true
	}
	var found []string
	for _, id := range ids {
		if have[id] {
			found = append(found, id)
		}
	}
	return found
}

// 9b. The Kubernetes API server is unreachable for 30 s while tasks arrive: they are launched
// when it returns, none lost, none twice.
func TestAPIServerUnreachable30sLosesNothing(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  queues:
    work:
      templateOverrides:
        annotations: {e2e.glue/run-ms: "200ms"}
`)
	jobs := e.recordJobs()
	cfg := e.serviceAccountConfig()
	proxy := newCuttableProxy(t, cfg.Host)
	cfg.Host = "https://" + proxy.addr
	e.startGlueWith("glue-0", cfg)
	first := e.task("work", "before", emulator.TaskSpec{})
	e.waitStatus(first, clearml.StatusCompleted, 30*time.Second)

	proxy.cut()
	var ids []string
	for i := range 5 {
		ids = append(ids, e.task("work", fmt.Sprintf("during-%d", i), emulator.TaskSpec{}))
	}
	time.Sleep(30 * time.Second)
	assert.Equal(t, len(e.jobsOf(ids)), 0, "Jobs created through a cut connection")
	proxy.restore()
	for _, id := range ids {
		e.waitStatus(id, clearml.StatusCompleted, 120*time.Second)
	}
	_, uids, _, _ := jobs.snapshot()
	for _, id := range ids {
		assert.Equal(t, len(uids[id]), 1, "task %s got %d Jobs", id, len(uids[id]))
	}
}

// cuttableProxy forwards TCP to the API server; cut closes the listener and every connection,
// restore listens again on the same address.
type cuttableProxy struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newCuttableProxy(t *testing.T, target string) *cuttableProxy {
	u, err := url.Parse(target)
	assert.NilError(t, err)
	p := &cuttableProxy{t: t, target: u.Host}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *cuttableProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

func (p *cuttableProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *cuttableProxy) restore() {
	ln, err := net.Listen("tcp", p.addr)
	assert.NilError(p.t, err)
	p.serve(ln)
}

// 8. The controller is killed (SIGKILL) in the middle of launches and started again: every task
// ends exactly once in a Job (and completes), none is lost or launched twice.
func TestControllerKilledMidLaunchEveryTaskEndsExactlyOnce(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  completedPodDeletionDelayMinutes: 10
  queues:
    work:
      templateOverrides:
        annotations: {e2e.glue/run-ms: "200ms"}
`)
	jobs := e.recordJobs()
	// Slow ClearML calls widen the windows in which a launch is half done: popped but no object
	// yet (the task read), and object created but not yet in the pending queue.
	e.emu.InjectFault(emulator.Fault{Endpoint: "tasks.get_all", Count: 1 << 30, Latency: 600 * time.Millisecond})
	for _, ep := range []string{"tasks.enqueue_many", "tasks.edit_hyper_params"} {
		e.emu.InjectFault(emulator.Fault{Endpoint: ep, Count: 1 << 30, Latency: 150 * time.Millisecond})
	}
	// Five times the launches in flight (32), so the kill finds some launched, some popped and
	// half done, and some still queued: every read waits 600 ms, and the reads ahead of the pops
	// (scheduler/readahead.go) reach ~30 tasks past the first 32 pops, ~60 past the next, so
	// launching them all takes four waves of reads. With 60 (two waves), a CI run under -race
	// first looked after all were out.
	var ids []string
	for i := range 160 {
		ids = append(ids, e.task("work", fmt.Sprintf("t-%d", i), emulator.TaskSpec{}))
	}
	glue := e.startGlueProcess("glue-killed")
	e.waitFor(60*time.Second, "the first Jobs", func() bool { return len(e.jobsOf(ids)) >= 3 }, func() string { return "no Jobs" })
	assert.NilError(t, glue.Process.Signal(syscall.SIGKILL))
	_ = glue.Wait()
	killedAt := len(e.jobsOf(ids))
	t.Logf("killed with %d of %d tasks launched", killedAt, len(ids))
	assert.Assert(t, killedAt < len(ids), "all tasks launched before the kill: the test proves nothing")

	e.emu.ClearFaults()
	e.startGlue("glue-restarted")
	for _, id := range ids {
		e.waitStatus(id, clearml.StatusCompleted, 90*time.Second)
	}
	_, uids, _, _ := jobs.snapshot()
	for _, id := range ids {
		assert.Equal(t, len(uids[id]), 1, "task %s got %d Jobs", id, len(uids[id]))
	}
	assert.Equal(t, len(e.emu.QueueEntries("work")), 0)
	assert.Equal(t, len(e.emu.QueueEntries("k8s_scheduler")), 0)
}

var (
	glueBinOnce sync.Once
	glueBin     string
	glueBinErr  error
)

// startGlueProcess runs the clearml-glue binary as a separate process (so it can be SIGKILLed)
// with the chart's ServiceAccount token in a kubeconfig; extraEnv (NAME=value) is added to its
// environment.
func (e *env) startGlueProcess(pod string, extraEnv ...string) *exec.Cmd {
	e.t.Helper()
	glueBinOnce.Do(func() {
		root, err := localcluster.RepoRoot()
		if err != nil {
			glueBinErr = err
			return
		}
		glueBin = filepath.Join(root, ".build", "e2e", "clearml-glue")
		out, err := exec.Command("go", "build", "-o", glueBin, filepath.Join(root, "cmd", "clearml-glue")).CombinedOutput()
		if err != nil {
			glueBinErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	assert.NilError(e.t, glueBinErr)
	kubeconfig := filepath.Join(e.t.TempDir(), "kubeconfig")
	assert.NilError(e.t, writeKubeconfig(kubeconfig, e.serviceAccountConfig()))
	s := e.settings(pod)
	cmd := exec.Command(glueBin, "run", "--kubeconfig", kubeconfig)
	cmd.Env = append(os.Environ(),
		"CLEARML_API_HOST="+s.APIHost, "CLEARML_API_ACCESS_KEY="+s.AccessKey, "CLEARML_API_SECRET_KEY="+s.SecretKey,
		"GLUE_NAMESPACE="+s.Namespace, "GLUE_CONFIGMAP="+s.ConfigMap, "GLUE_POD_NAME="+pod,
		"GLUE_METRICS_ADDR=127.0.0.1:0", "GLUE_HEALTH_ADDR=127.0.0.1:0", "GLUE_LOG_LEVEL=info")
	cmd.Env = append(cmd.Env, extraEnv...)
	out := io.MultiWriter(testWriter{e.t, pod}, e.logs)
	cmd.Stdout, cmd.Stderr = out, out
	assert.NilError(e.t, cmd.Start())
	e.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

func writeKubeconfig(path string, cfg *rest.Config) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData, CertificateAuthority: cfg.CAFile}
	kc.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken}
	kc.Contexts["x"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	kc.CurrentContext = "x"
	return clientcmd.WriteToFile(*kc, path)
}

// 11. Two replicas with leader election: only the leader launches; when it stops, the other
// takes over.
func TestTwoReplicasWithLeaderElectionOnlyOneLaunches(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  replicaCount: 2
  leaderElection: {enabled: true}
  queues:
    work:
      templateOverrides:
        annotations: {e2e.glue/run-ms: "200ms"}
`)
	jobs := e.recordJobs()
	stopA := e.startGlue("glue-a")
	time.Sleep(2 * time.Second) // glue-a takes the Lease first
	e.startGlue("glue-b")
	var ids []string
	for i := range 6 {
		ids = append(ids, e.task("work", fmt.Sprintf("t-%d", i), emulator.TaskSpec{}))
	}
	for _, id := range ids {
		e.waitStatus(id, clearml.StatusCompleted, 60*time.Second)
	}
	assert.DeepEqual(t, e.launchers(), map[string]int{"glue-a": len(ids)})
	// Both started once: the leader serving, the follower standing by (each releases its
	// start-up pages then, in the process).
	assert.DeepEqual(t, e.logCount(testenv.StartedMessage), map[string]int{"glue-a": 1, "glue-b": 1})

	stopA()
	later := e.task("work", "after-failover", emulator.TaskSpec{})
	e.waitStatus(later, clearml.StatusCompleted, 60*time.Second)
	assert.DeepEqual(t, e.launchers(), map[string]int{"glue-a": len(ids), "glue-b": 1})
	_, uids, _, _ := jobs.snapshot()
	for _, id := range append(ids, later) {
		assert.Equal(t, len(uids[id]), 1, "task %s got %d Jobs", id, len(uids[id]))
	}
}

// launchers counts the "launched" log lines of each in-process glue replica.
func (e *env) launchers() map[string]int {
	e.t.Helper()
	var out map[string]int
	e.waitFor(10*time.Second, "launch log lines", func() bool {
		out = e.logCount("launched")
		n := 0
		for _, c := range out {
			n += c
		}
		return n == len(e.jobsEverLaunched())
	}, func() string { return fmt.Sprint(out) })
	return out
}

// logCount counts the log lines with message msg per in-process glue replica (e2e_pod).
func (e *env) logCount(msg string) map[string]int {
	out := map[string]int{}
	// slog's text handler quotes a message with spaces.
	field := " msg=" + strconv.Quote(msg) + " "
	if !strings.Contains(msg, " ") {
		field = " msg=" + msg + " "
	}
	for _, line := range strings.Split(e.logs.all(), "\n") {
		if !strings.Contains(line, field) {
			continue
		}
		for _, f := range strings.Fields(line) {
			if pod, ok := strings.CutPrefix(f, "e2e_pod="); ok {
				out[pod]++
			}
		}
	}
	return out
}

func (e *env) jobsEverLaunched() []string {
	var ids []string
	for _, t := range e.emu.Tasks() {
		if t.Hyperparams["properties"]["k8s-queue"].Value != "" {
			ids = append(ids, t.ID)
		}
	}
	return ids
}

// Graceful shutdown (SIGTERM): launches in flight finish, a pulled task not yet launched goes back
// to the front of its queue; every task ends in a Job or in its queue, in order.
func TestGracefulShutdownFinishesLaunchesAndReturnsTheRest(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  completedPodDeletionDelayMinutes: 10
  queues:
    work:
      templateOverrides:
        labels: {e2e.glue/behavior: hold}
`)
	e.emu.InjectFault(emulator.Fault{Endpoint: "tasks.enqueue_many", Count: 1 << 30, Latency: 500 * time.Millisecond})
	// More tasks than launches in flight (32): the ones never popped must stay, in order.
	var ids []string
	for i := range 60 {
		ids = append(ids, e.task("work", fmt.Sprintf("t-%d", i), emulator.TaskSpec{}))
	}
	stop := e.startGlue("glue-0")
	e.waitFor(30*time.Second, "launches in flight", func() bool {
		return e.emu.Calls("tasks.enqueue_many") >= 1 // pending pushes (test hooks are not calls)
	}, func() string { return "none" })
	stop()

	launched, queued := e.jobsOf(ids), e.emu.QueueEntries("work")
	assert.Assert(t, len(launched) > 0 && len(queued) > 0, "launched %d, queued %d: the test proves nothing", len(launched), len(queued))
	assert.Equal(t, len(launched)+len(queued), len(ids), "tasks lost or doubled: %d launched, %d queued", len(launched), len(queued))
	assert.DeepEqual(t, queued, ids[len(ids)-len(queued):]) // the rest, in their order
	for _, id := range launched {
		s := e.taskState(id).Status
		assert.Assert(t, s == clearml.StatusQueued || s == clearml.StatusInProgress, "launched task %s is %s", id, s)
	}
}

// A ClearML outage at the moment a replica becomes leader: the leader waits it out while it
// leads (no Lease held without serving, no process exit loop), the follower stays a follower,
// and when ClearML answers again every task runs exactly once.
func TestClearMLOutageWhenBecomingLeaderLosesNothing(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  replicaCount: 2
  leaderElection: {enabled: true}
  queues:
    work:
      templateOverrides:
        annotations: {e2e.glue/run-ms: "200ms"}
`)
	jobs := e.recordJobs()
	var ids []string
	for i := range 4 {
		ids = append(ids, e.task("work", fmt.Sprintf("t-%d", i), emulator.TaskSpec{}))
	}
	// The new leader's first ClearML calls (resolving the pending queue) fail.
	e.emu.InjectFault(emulator.Fault{Endpoint: "queues.get_all", Count: 4, Status: 500})
	e.startGlue("glue-a")
	time.Sleep(2 * time.Second)
	e.startGlue("glue-b")
	for _, id := range ids {
		e.waitStatus(id, clearml.StatusCompleted, 90*time.Second)
	}
	launchers := e.launchers()
	assert.Equal(t, len(launchers), 1, "both replicas launched: %v", launchers)
	_, uids, _, _ := jobs.snapshot()
	for _, id := range ids {
		assert.Equal(t, len(uids[id]), 1, "task %s got %d Jobs", id, len(uids[id]))
	}
	select {
	case err := <-e.glueErrs:
		t.Fatalf("a replica stopped: %v", err)
	default:
	}
}
