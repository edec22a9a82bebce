package localcluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"
)

// Tool binaries the cluster needs, all built by ci/build-tools.sh.
var binaries = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd", "kwok", "kwokctl"}

// Options says what cluster to start. Zero values get defaults.
type Options struct {
	// Name must be unique among running clusters; default "glue-<pid>-<random>".
	Name string
	// BinDir holds the tool binaries; default $GLUE_TOOLS_BIN or <repo>/.build/tools/current/bin.
	BinDir string
	// WorkDir is kwokctl's KWOK_WORKDIR; default <repo>/.build/kwok.
	WorkDir string
	// Nodes and GPUNodes are simulated kwok nodes; GPU nodes carry nvidia.com/gpu capacity.
	Nodes, GPUNodes int
	// StageFiles are extra kwokctl --config files (kwok Stage objects that decide pod lifecycles).
	StageFiles []string
	// AuditServiceAccounts turns the API server's audit log on for requests made by service
	// accounts, at Metadata level (who, verb, resource, answer; no bodies), so a test can check
	// what a ServiceAccount used (AuditLog). Requests of the admin and the components are not
	// logged, which keeps the cost small.
	AuditServiceAccounts bool
	// ExtraArgs are component flags, each "component=flag=value" (kwokctl --extra-args, appended
	// after kwokctl's own so they win), e.g. "kube-controller-manager=kube-api-qps=500".
	ExtraArgs []string
	// AfterRun, in Main, runs after the tests and before the cluster is deleted; it returns the
	// exit code (given the tests' own), e.g. to judge the audit log of the whole run.
	AfterRun func(c *Cluster, code int) int
	// Logf receives progress lines; nil discards them.
	Logf func(format string, args ...any)
}

// Cluster is a running local control plane.
type Cluster struct {
	Name       string
	Kubeconfig string
	opts       Options
	config     *rest.Config
	watchdog   *os.Process
}

// Start brings a cluster up and waits until its nodes are Ready. A watchdog process deletes the
// cluster if this process dies without calling Stop (a test timeout panic, SIGKILL of go test).
//
// kwokctl picks free ports by probing, so two clusters created at the same moment can collide;
// a cluster with a generated name that fails to start is therefore tried once more.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	generated := opts.Name == ""
	c, err := start(ctx, opts)
	if err != nil && generated && ctx.Err() == nil {
		if opts.Logf != nil {
			opts.Logf("cluster start failed, trying once more: %v", err)
		}
		return start(ctx, opts)
	}
	return c, err
}

func start(ctx context.Context, opts Options) (*Cluster, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	c := &Cluster{Name: opts.Name, opts: opts}
	c.Kubeconfig = filepath.Join(opts.WorkDir, "clusters", opts.Name, "kubeconfig.yaml")
	if err := c.startWatchdog(); err != nil {
		return nil, err
	}
	args := []string{"create", "cluster", "--name", opts.Name, "--runtime", "binary", "--wait", "2m",
		"--kubeconfig", filepath.Join(opts.WorkDir, "clusters", opts.Name, "kubeconfig-host.yaml")}
	for _, b := range binaries[:5] {
		flag := "--" + b + "-binary"
		if b == "kwok" {
			flag = "--kwok-controller-binary"
		}
		args = append(args, flag, filepath.Join(opts.BinDir, b))
	}
	for _, f := range opts.StageFiles {
		args = append([]string{"--config", f}, args...)
	}
	// kwokctl v0.8 files a component's later --extra-args under the position of its first one
	// among all of them, which is right only when every component's first comes before any
	// component's second: pass the firsts, then the rest.
	var firsts, rest []string
	seen := map[string]bool{}
	for _, a := range opts.ExtraArgs {
		component, _, _ := strings.Cut(a, "=")
		if seen[component] {
			rest = append(rest, a)
		} else {
			seen[component] = true
			firsts = append(firsts, a)
		}
	}
	for _, a := range append(firsts, rest...) {
		args = append(args, "--extra-args", a)
	}
	if opts.AuditServiceAccounts {
		policy, err := writeAuditPolicy(opts)
		if err != nil {
			_ = c.Stop()
			return nil, err
		}
		args = append(args, "--kube-audit-policy", policy)
	}
	start := time.Now()
	if err := c.kwokctl(ctx, args...); err != nil {
		_ = c.Stop()
		return nil, err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		_ = c.Stop()
		return nil, fmt.Errorf("kubeconfig %s: %w", c.Kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	c.config = cfg
	if err := c.AddNodes(ctx, "cpu", opts.Nodes, 0); err != nil {
		_ = c.Stop()
		return nil, err
	}
	if err := c.AddNodes(ctx, "gpu", opts.GPUNodes, 8); err != nil {
		_ = c.Stop()
		return nil, err
	}
	if err := c.waitDefaultServiceAccount(ctx); err != nil {
		_ = c.Stop()
		return nil, err
	}
	opts.logf("cluster %s up in %s (%d nodes, %d GPU nodes)", opts.Name, time.Since(start).Round(time.Millisecond), opts.Nodes, opts.GPUNodes)
	return c, nil
}

// auditPolicy logs the requests of service accounts at Metadata level, and nothing else.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
`

// writeAuditPolicy writes the policy beside the cluster's directory (kwokctl copies it in).
func writeAuditPolicy(opts Options) (string, error) {
	dir := filepath.Join(opts.WorkDir, "audit-policies")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, opts.Name+".yaml")
	if err := os.WriteFile(path, []byte(auditPolicy), 0o644); err != nil {
		return "", fmt.Errorf("audit policy: %w", err)
	}
	return path, nil
}

// AuditLog is the path of the API server's audit log (JSON lines, one audit.k8s.io/v1 Event
// each) when the cluster was started with AuditServiceAccounts. It is deleted with the cluster.
func (c *Cluster) AuditLog() string {
	return filepath.Join(c.opts.WorkDir, "clusters", c.Name, "logs", "audit.log")
}

// RESTConfig returns a copy of the admin client config.
func (c *Cluster) RESTConfig() *rest.Config { return rest.CopyConfig(c.config) }

// Clientset returns an admin clientset.
func (c *Cluster) Clientset() (*kubernetes.Clientset, error) {
	return kubernetes.NewForConfig(c.RESTConfig())
}

// AddNodes creates n kwok-managed nodes named <prefix>-<i>; gpus > 0 adds nvidia.com/gpu capacity
// and the nvidia.com/gpu.present label, as the NVIDIA device plugin would.
func (c *Cluster) AddNodes(ctx context.Context, prefix string, n, gpus int) error {
	cs, err := c.Clientset()
	if err != nil {
		return err
	}
	for i := range n {
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:        fmt.Sprintf("%s-%d", prefix, i),
				Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
				Labels:      map[string]string{"type": "kwok", "kubernetes.io/hostname": fmt.Sprintf("%s-%d", prefix, i)},
			},
			Spec: corev1.NodeSpec{Taints: []corev1.Taint{}},
			Status: corev1.NodeStatus{
				Allocatable: nodeResources(gpus),
				Capacity:    nodeResources(gpus),
			},
		}
		if gpus > 0 {
			node.Labels["nvidia.com/gpu.present"] = "true"
		}
		created, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create node %s: %w", node.Name, err)
		}
		if err == nil {
			// Status is ignored on create; kwok may write it meanwhile, hence the conflict retry.
			err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
				cur, err := cs.CoreV1().Nodes().Get(ctx, created.Name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				cur.Status.Capacity, cur.Status.Allocatable = node.Status.Capacity, node.Status.Allocatable
				_, err = cs.CoreV1().Nodes().UpdateStatus(ctx, cur, metav1.UpdateOptions{})
				return err
			})
			if err != nil {
				return fmt.Errorf("set capacity of node %s: %w", node.Name, err)
			}
		}
	}
	return c.waitNodesReady(ctx, cs)
}

// waitDefaultServiceAccount waits for the controller manager to create the default
// ServiceAccount: until then the API server refuses Pods in the namespace.
func (c *Cluster) waitDefaultServiceAccount(ctx context.Context) error {
	cs, err := c.Clientset()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		if _, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster %s: no default ServiceAccount: %w", c.Name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func nodeResources(gpus int) corev1.ResourceList {
	r := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("1000"),
	}
	if gpus > 0 {
		r["nvidia.com/gpu"] = *resource.NewQuantity(int64(gpus), resource.DecimalSI)
	}
	return r
}

func (c *Cluster) waitNodesReady(ctx context.Context, cs kubernetes.Interface) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err == nil && allReady(nodes.Items) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster %s: nodes not Ready: %w", c.Name, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func allReady(nodes []corev1.Node) bool {
	for _, n := range nodes {
		ready := false
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if !ready {
			return false
		}
	}
	return true
}

// Stop deletes the cluster, checks that none of its processes is left, and ends the watchdog.
func (c *Cluster) Stop() error {
	pids := c.Pids()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := c.kwokctl(ctx, "delete", "cluster", "--name", c.Name)
	_ = os.Remove(filepath.Join(c.opts.WorkDir, "audit-policies", c.Name+".yaml"))
	if c.watchdog != nil {
		_ = c.watchdog.Kill()
		_, _ = c.watchdog.Wait()
	}
	// kwokctl signals the components and returns; give them time to shut down gracefully.
	deadline := time.Now().Add(30 * time.Second)
	for _, pid := range pids {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			err = errors.Join(err, fmt.Errorf("cluster %s: process %d outlived kwokctl delete by 30s; killed", c.Name, pid))
		}
	}
	return err
}

// Pids returns the pids of the cluster's component processes, from kwokctl's pid files.
func (c *Cluster) Pids() []int {
	files, _ := filepath.Glob(filepath.Join(c.opts.WorkDir, "clusters", c.Name, "pids", "*.pid"))
	var pids []int
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	// A zombie answers kill -0; it holds no port and no memory, so it does not count.
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err != nil || !bytes.Contains(data, []byte(") Z "))
}

// startWatchdog starts a detached shell that waits for this process to exit and then deletes the
// cluster; Stop kills it first on the normal path.
func (c *Cluster) startWatchdog() error {
	script := fmt.Sprintf(`while kill -0 %d 2>/dev/null; do sleep 1; done; exec %q delete cluster --name %q`,
		os.Getpid(), filepath.Join(c.opts.BinDir, "kwokctl"), c.Name)
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = c.env()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start cluster watchdog: %w", err)
	}
	c.watchdog = cmd.Process
	return nil
}

func (c *Cluster) env() []string {
	return append(os.Environ(), "KWOK_WORKDIR="+c.opts.WorkDir, "PATH="+c.opts.BinDir+":"+os.Getenv("PATH"))
}

func (c *Cluster) kwokctl(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(c.opts.BinDir, "kwokctl"), args...)
	cmd.Env = c.env()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kwokctl %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	return nil
}

func (o *Options) defaults() error {
	if o.Name == "" {
		b := make([]byte, 3)
		_, _ = rand.Read(b)
		o.Name = fmt.Sprintf("glue-%d-%s", os.Getpid(), hex.EncodeToString(b))
	}
	root, err := RepoRoot()
	if o.BinDir == "" {
		o.BinDir = os.Getenv("GLUE_TOOLS_BIN")
	}
	if o.BinDir == "" || o.WorkDir == "" {
		if err != nil {
			return err
		}
	}
	if o.BinDir == "" {
		o.BinDir = filepath.Join(root, ".build", "tools", "current", "bin")
	}
	if o.WorkDir == "" {
		o.WorkDir = filepath.Join(root, ".build", "kwok")
	}
	for _, b := range binaries {
		if _, err := os.Stat(filepath.Join(o.BinDir, b)); err != nil {
			return fmt.Errorf("control plane binary %s missing in %s: run `make tools` (ci/build-tools.sh) first", b, o.BinDir)
		}
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return nil
}

func (o *Options) logf(format string, args ...any) { o.Logf(format, args...) }

// RepoRoot finds the repository root (the directory holding go.mod) from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "charts")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root not found (no go.mod with charts/ above the working directory)")
		}
		dir = parent
	}
}
