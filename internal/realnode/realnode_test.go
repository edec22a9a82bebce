package realnode

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"helm.sh/helm/v3/pkg/action"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/clearml-glue/clearml-glue/internal/chart"
	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"github.com/clearml-glue/clearml-glue/internal/localcluster"
)

// The chart as a user installs it, on a real node: the controller image starts under the
// chart's securityContext, its readiness probe holds it back until it has logged into ClearML,
// it reaches the API server through the kubernetes Service with its ServiceAccount token, the
// token grants exactly the chart's RBAC, tasks run as Jobs on the kwok nodes, and `helm test`
// really runs wget in busybox.
func TestChartOnRealNode(t *testing.T) {
	e := newEnv(t)
	// The emulator is not up yet: the controller must run but not be Ready.
	e.install("")
	var pod corev1.Pod
	e.waitFor(2*time.Minute, "the controller container running on the real node", func() bool {
		pods := e.controllerPods()
		if len(pods) == 1 && running(pods[0]) {
			pod = pods[0]
			return true
		}
		return false
	})
	assert.Equal(t, pod.Spec.NodeName, node.Name)
	started := time.Now()

	t.Run("not Ready while ClearML is unreachable", func(t *testing.T) {
		// Two readiness periods (10s) of failing probes, as the kubelet runs them.
		time.Sleep(25 * time.Second)
		p, err := e.cs.CoreV1().Pods(e.ns).Get(context.Background(), pod.Name, metav1.GetOptions{})
		assert.NilError(t, err)
		assert.Assert(t, running(*p) && !ready(*p), "pod %s ready=%v running=%v before the server exists", p.Name, ready(*p), running(*p))
		// The kubelet probed it and said so.
		events, err := e.cs.CoreV1().Events(e.ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + p.Name})
		assert.NilError(t, err)
		probed := false
		for _, ev := range events.Items {
			probed = probed || (ev.Reason == "Unhealthy" && strings.Contains(ev.Message, "Readiness probe failed"))
		}
		assert.Assert(t, probed, "no failed readiness probe reported for %s", p.Name)
	})

	e.startEmulator()
	e.waitFor(2*time.Minute, "the controller Ready once the server answers", func() bool {
		p, err := e.cs.CoreV1().Pods(e.ns).Get(context.Background(), pod.Name, metav1.GetOptions{})
		return err == nil && ready(*p)
	})
	t.Logf("Ready %s after its container started (probe every 10s)", time.Since(started).Round(time.Second))

	t.Run("process runs as the chart says", func(t *testing.T) {
		pid, err := node.ContainerPID(context.Background(), e.ns, pod.Name, "glue")
		assert.NilError(t, err)
		status := procStatus(t, pid)
		assert.Equal(t, status["Uid"], "65532\t65532\t65532\t65532")
		assert.Equal(t, status["Gid"], "65532\t65532\t65532\t65532")
		assert.Equal(t, status["CapEff"], "0000000000000000", "capabilities left")
		assert.Equal(t, status["CapPrm"], "0000000000000000")
		assert.Equal(t, status["CapBnd"], "0000000000000000", "drop: [ALL] leaves no bounding set")
		assert.Equal(t, status["NoNewPrivs"], "1", "allowPrivilegeEscalation: false")
		assert.Equal(t, status["Seccomp"], "2", "seccompProfile RuntimeDefault filters syscalls")
		mounts := procMounts(t, pid)
		assert.Assert(t, strings.HasPrefix(mounts["/"], "ro"), "root file system mounted %q", mounts["/"])
		assert.Assert(t, strings.HasPrefix(mounts["/tmp"], "rw"), "/tmp (emptyDir) mounted %q", mounts["/tmp"])
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		assert.NilError(t, err)
		assert.Equal(t, strings.ReplaceAll(string(cmdline), "\x00", " "), "clearml-glue ")
		environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		assert.NilError(t, err)
		assert.Assert(t, strings.Contains(string(environ), "KUBERNETES_SERVICE_HOST="+localcluster.KubernetesServiceIP+"\x00"),
			"in-cluster config comes from the kubernetes Service")
		assert.Assert(t, !strings.Contains(string(environ), "KUBECONFIG="))
	})

	sa := chart.ObjectName(e.object("ServiceAccount"))
	t.Run("ServiceAccount token grants the chart's RBAC, no more", func(t *testing.T) {
		pid, err := node.ContainerPID(context.Background(), e.ns, pod.Name, "glue")
		assert.NilError(t, err)
		dir := fmt.Sprintf("/proc/%d/root/var/run/secrets/kubernetes.io/serviceaccount", pid)
		token, err := os.ReadFile(filepath.Join(dir, "token"))
		assert.NilError(t, err)
		ca, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
		assert.NilError(t, err)
		ns, err := os.ReadFile(filepath.Join(dir, "namespace"))
		assert.NilError(t, err)
		assert.Equal(t, string(ns), e.ns)
		claims := jwtClaims(t, string(token))
		assert.Equal(t, claims.Sub, "system:serviceaccount:"+e.ns+":"+sa)
		assert.Equal(t, claims.Kubernetes.Pod.Name, pod.Name, "a token bound to the pod")

		// The pod's own token and CA, against the API server.
		cfg := &rest.Config{Host: cluster.RESTConfig().Host, BearerToken: string(token), TLSClientConfig: rest.TLSClientConfig{CAData: ca}}
		cs, err := kubernetes.NewForConfig(cfg)
		assert.NilError(t, err)
		ctx := context.Background()
		cm := chart.ObjectName(e.object("ConfigMap"))
		_, err = cs.CoreV1().ConfigMaps(e.ns).Get(ctx, cm, metav1.GetOptions{})
		assert.NilError(t, err, "its own ConfigMap")
		_, err = cs.BatchV1().Jobs(e.ns).List(ctx, metav1.ListOptions{})
		assert.NilError(t, err, "Jobs")
		job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "rbac-probe"}, Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "x"}}}}}}
		_, err = cs.BatchV1().Jobs(e.ns).Create(ctx, job, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		assert.NilError(t, err, "creating Jobs")
		forbidden := map[string]error{}
		_, forbidden["list secrets"] = cs.CoreV1().Secrets(e.ns).List(ctx, metav1.ListOptions{})
		_, forbidden["list every configmap"] = cs.CoreV1().ConfigMaps(e.ns).List(ctx, metav1.ListOptions{})
		_, forbidden["get nodes"] = cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		_, forbidden["pods of another namespace"] = cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		forbidden["delete its Deployment"] = cs.AppsV1().Deployments(e.ns).Delete(ctx, chart.ObjectName(e.object("Deployment")),
			metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
		for what, err := range forbidden {
			assert.Assert(t, apierrors.IsForbidden(err), "%s: want Forbidden, got %v", what, err)
		}
	})

	t.Run("tasks run as Jobs on kwok nodes and complete", func(t *testing.T) {
		seen := watchPods(t, e.cs, e.ns)
		var ids []string
		for i := range 6 {
			id := e.emu.CreateTask(emulator.TaskSpec{Name: fmt.Sprintf("real-%d", i), Container: map[string]string{"image": "python:3.12"}})
			assert.NilError(t, e.emu.Enqueue(id, "cpu"))
			ids = append(ids, id)
		}
		e.waitFor(2*time.Minute, "6 tasks completed", func() bool {
			for _, id := range ids {
				if task, ok := e.emu.Task(id); !ok || task.Status != clearml.StatusCompleted {
					return false
				}
			}
			return true
		})
		// The controller may clean finished Jobs up: judge by the pods seen meanwhile.
		byTask := map[string]*corev1.Pod{}
		for _, p := range seen("") {
			if id := p.Labels["clearml-task-id"]; id != "" && p.Status.Phase == corev1.PodSucceeded {
				byTask[id] = p
			}
		}
		for _, id := range ids {
			p := byTask[id]
			assert.Assert(t, p != nil, "no succeeded pod seen for task %s", id)
			assert.Assert(t, len(p.OwnerReferences) == 1 && p.OwnerReferences[0].Kind == "Job", "task pod %s owned by %v", p.Name, p.OwnerReferences)
			n, err := e.cs.CoreV1().Nodes().Get(context.Background(), p.Spec.NodeName, metav1.GetOptions{})
			assert.NilError(t, err)
			assert.Equal(t, n.Annotations["kwok.x-k8s.io/node"], "fake", "task pod %s ran on %s", p.Name, p.Spec.NodeName)
		}
	})

	t.Run("helm test runs wget in busybox on the real node", func(t *testing.T) {
		seen := watchPods(t, e.cs, e.ns)
		rt := action.NewReleaseTesting(e.helm)
		rt.Namespace, rt.Timeout = e.ns, 3*time.Minute
		start := time.Now()
		rel, err := rt.Run(releaseName)
		assert.NilError(t, err, "helm test")
		var hooks []string
		for _, h := range rel.Hooks {
			hooks = append(hooks, h.Name+"="+string(h.LastRun.Phase))
		}
		pods := seen(chart.ObjectName(e.object("Deployment")) + "-test")
		assert.Assert(t, len(pods) == 1, "no test pod seen (hooks %v)", hooks)
		test := pods[0]
		assert.Equal(t, test.Spec.NodeName, node.Name, "the test pod ran on %s", test.Spec.NodeName)
		assert.Equal(t, test.Status.Phase, corev1.PodSucceeded)
		term := test.Status.ContainerStatuses[0].State.Terminated
		assert.Assert(t, term != nil && term.ExitCode == 0 && term.ContainerID != "", "container state %+v", test.Status.ContainerStatuses[0].State)
		t.Logf("helm test passed in %s: %v, container %s ran %s", time.Since(start).Round(time.Millisecond), hooks,
			term.ContainerID, term.FinishedAt.Sub(term.StartedAt.Time))
	})

	t.Run("no restart, no error about permissions", func(t *testing.T) {
		p, err := e.cs.CoreV1().Pods(e.ns).Get(context.Background(), pod.Name, metav1.GetOptions{})
		assert.NilError(t, err)
		assert.Equal(t, p.Status.ContainerStatuses[0].RestartCount, int32(0), "liveness probe restarted the controller")
		log := e.containerLog(*p, "glue")
		for _, bad := range []string{"is forbidden", "x509: "} {
			assert.Assert(t, !strings.Contains(log, bad), "controller log mentions %q:\n%s", bad, log)
		}
		assert.Assert(t, !strings.Contains(log, secretKey), "the secret key is in the log")
	})
}

// Two replicas with leader election: one leads (Ready), the other waits; a rolling update of
// the Deployment hands the Lease to a new pod and the queue keeps being served.
func TestLeaderElectionRollingUpdate(t *testing.T) {
	e := newEnv(t)
	e.startEmulator()
	e.install(`
agentk8sglue:
  replicaCount: 2
  leaderElection:
    enabled: true
`)
	lease := func() string {
		l, err := e.cs.CoordinationV1().Leases(e.ns).Get(context.Background(), chart.ObjectName(e.object("Deployment")), metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return ""
		}
		return *l.Spec.HolderIdentity
	}
	var first string
	e.waitFor(2*time.Minute, "two controller pods running, one holding the Lease and Ready", func() bool {
		pods := e.controllerPods()
		if len(pods) != 2 || !running(pods[0]) || !running(pods[1]) {
			return false
		}
		first = lease()
		for _, p := range pods {
			if p.Name == first && ready(p) {
				return true
			}
		}
		return false
	})
	for _, p := range e.controllerPods() {
		t.Logf("before the update: %s ready=%v leader=%v", p.Name, ready(p), p.Name == first)
	}
	old := map[string]bool{}
	for _, p := range e.controllerPods() {
		old[p.Name] = true
	}

	// A change of the pod template: the Deployment rolls.
	e.upgrade(`
agentk8sglue:
  annotations:
    realnode.e2e/rollout: "2"
`)
	start := time.Now()
	var holder string
	deadline := 150 * time.Second
	for {
		holder = lease()
		pods := e.controllerPods()
		d := e.deployment()
		done := d.Status.UpdatedReplicas == 2 && d.Status.Replicas == 2 && d.Status.ObservedGeneration >= d.Generation
		for _, p := range pods {
			done = done && !old[p.Name]
		}
		if done && holder != "" && !old[holder] {
			break
		}
		if time.Since(start) > deadline {
			var state []string
			for _, p := range pods {
				state = append(state, fmt.Sprintf("%s(old=%v ready=%v)", p.Name, old[p.Name], ready(p)))
			}
			cond := ""
			for _, c := range d.Status.Conditions {
				cond += fmt.Sprintf(" %s=%s(%s: %s)", c.Type, c.Status, c.Reason, c.Message)
			}
			t.Fatalf("rolling update not done in %s: Lease held by %q (old pod: %v); pods %v; Deployment updated=%d ready=%d available=%d unavailable=%d;%s",
				deadline, holder, old[holder], state, d.Status.UpdatedReplicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas,
				d.Status.UnavailableReplicas, cond)
		}
		time.Sleep(time.Second)
	}
	t.Logf("rolled in %s; the Lease went from %s to %s", time.Since(start).Round(time.Second), first, holder)

	// The new leader serves the queue.
	id := e.emu.CreateTask(emulator.TaskSpec{Name: "after-rollout", Container: map[string]string{"image": "python:3.12"}})
	assert.NilError(t, e.emu.Enqueue(id, "cpu"))
	e.waitFor(2*time.Minute, "a task enqueued after the rollout completed", func() bool {
		task, ok := e.emu.Task(id)
		return ok && task.Status == clearml.StatusCompleted
	})
}

func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	assert.NilError(t, err)
	m := map[string]string{}
	for _, l := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// procMounts maps a process's mount points to their mount options.
func procMounts(t *testing.T, pid int) map[string]string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	assert.NilError(t, err)
	m := map[string]string{}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) > 5 {
			m[f[4]] = f[5]
		}
	}
	return m
}

type claims struct {
	Sub        string `json:"sub"`
	Kubernetes struct {
		Pod struct {
			Name string `json:"name"`
		} `json:"pod"`
	} `json:"kubernetes.io"`
}

func jwtClaims(t *testing.T, token string) claims {
	t.Helper()
	parts := strings.Split(token, ".")
	assert.Equal(t, len(parts), 3, "not a JWT")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	assert.NilError(t, err)
	var c claims
	assert.NilError(t, json.Unmarshal(payload, &c))
	return c
}

// watchPods records the last state of every pod of namespace, even one deleted since; the
// returned func returns the one named, or all of them for "".
func watchPods(t *testing.T, cs kubernetes.Interface, namespace string) func(name string) []*corev1.Pod {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var mu sync.Mutex
	last := map[string]*corev1.Pod{}
	record := func(obj any) {
		if p, ok := obj.(*corev1.Pod); ok {
			mu.Lock()
			last[p.Name] = p.DeepCopy()
			mu.Unlock()
		}
	}
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(namespace))
	_, _ = f.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: record, UpdateFunc: func(_, o any) { record(o) },
		DeleteFunc: func(o any) {
			if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = d.Obj
			}
			record(o)
		},
	})
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())
	return func(name string) []*corev1.Pod {
		mu.Lock()
		defer mu.Unlock()
		var out []*corev1.Pod
		for n, p := range last {
			if name == "" || n == name {
				out = append(out, p)
			}
		}
		return out
	}
}
