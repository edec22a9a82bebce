package localcluster

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A real node runs next to the kwok nodes: containerd (2.x, built by ci/build-node.sh) with
// Debian's runc, the CNI bridge plugin, a kubelet and a kube-proxy of the control plane's
// version, and CoreDNS for cluster DNS. Its containers really run. It is tainted (RealNodeTaint),
// so only pods that tolerate it land there; task pods keep going to the kwok nodes.
//
// It needs root, cgroups, overlayfs, iptables and runc (RealNodeSupport says what is missing),
// and it uses host-wide resources (a bridge, iptables rules, ports 10250, 10256 and 53 on the
// bridge address), so one runs per machine at a time: a lock serializes test binaries.

// Real-node defaults.
const (
	// RealNodeName is the default node name.
	RealNodeName = "real-0"
	// RealNodeTaintKey taints the real node (NoSchedule); RealNodeLabel (value "true") marks it.
	RealNodeTaintKey = "glue.e2e/real-node"
	RealNodeLabel    = "glue.e2e/real-node"
	// KubernetesServiceIP is the ClusterIP of the default/kubernetes Service of a local cluster
	// (kube-apiserver's default service range 10.0.0.0/24): pods reach the API server there.
	KubernetesServiceIP = "10.0.0.1"
	// SandboxImage is the pause image the real node's containerd uses (ImportImage it first).
	SandboxImage = "docker.io/glue-local/pause:1"

	realNodeBridge  = "gluebr0"
	realNodeCIDR    = "10.88.0.0/16"
	realNodeGateway = "10.88.0.1"
	realNodeNetwork = "glue-realnode"
	realNodeLock    = "/run/glue-realnode.lock"
	// realNodeCgroup is the kubelet's cgroup root: pods go below it, and the cleanup kills what
	// is left there, never anything else.
	realNodeCgroup = "glue-realnode"
)

// nodeBinaries are what ci/build-node.sh builds; runc and iptables come from the system.
var nodeBinaries = []string{"kubelet", "kube-proxy", "containerd", "containerd-shim-runc-v2", "ctr", "coredns", "bridge", "host-local", "loopback"}

// RealNodeTaint is the taint of the real node; pods that should run there tolerate it.
func RealNodeTaint() corev1.Taint {
	return corev1.Taint{Key: RealNodeTaintKey, Value: "true", Effect: corev1.TaintEffectNoSchedule}
}

// RealNodeOptions say how to run a real node. Zero values get defaults.
type RealNodeOptions struct {
	// Name is the node name; default RealNodeName.
	Name string
	// BinDir holds ci/build-node.sh's binaries; default $GLUE_NODE_BIN or <repo>/.build/tools/node/bin.
	BinDir string
	// WorkDir holds the node's state; default <repo>/.build/realnode/<cluster name>.
	WorkDir string
	// LockTimeout is how long to wait for another real node on this machine to go; default 10m.
	LockTimeout time.Duration
}

// RealNode is a running real node.
type RealNode struct {
	Name string
	// Gateway is the host's address on the pods' bridge: pods reach processes of the host that
	// listen there (the ClearML emulator in tests), and CoreDNS answers on it.
	Gateway string
	// HostIP is the host's address the node registers (where the API server is).
	HostIP string

	cluster *Cluster
	opts    RealNodeOptions
	// sysctls holds the values network() changes, restored by the cleanup.
	sysctls  map[string]string
	stateDir string
	socket   string
	procs    map[string]*exec.Cmd
	lock     *os.File
	watchdog *os.Process
	logs     string
}

// RealNodeSupport says why this machine cannot run a real node, or nil. It checks what cannot be
// installed by the project (root, cgroups, overlayfs, bridges) separately from what can
// (MissingRealNodeTools).
func RealNodeSupport() error {
	if os.Geteuid() != 0 {
		return errors.New("a real node needs root (containers, mounts, a network bridge, iptables)")
	}
	fsys, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return err
	}
	if !bytes.Contains(fsys, []byte("\toverlay\n")) {
		return errors.New("the kernel has no overlayfs (containerd's snapshotter)")
	}
	if _, err := os.Stat("/sys/fs/cgroup"); err != nil {
		return errors.New("no cgroup file system at /sys/fs/cgroup")
	}
	if _, err := os.Stat("/sys/class/net"); err != nil {
		return errors.New("no /sys/class/net")
	}
	return nil
}

// MissingRealNodeTools lists what the machine lacks that can be installed: Debian's runc and
// iptables (apt-get install runc iptables), and ci/build-node.sh's binaries in binDir.
func MissingRealNodeTools(binDir string) []string {
	var missing []string
	for _, b := range []string{"runc", "iptables", "iptables-restore", "ip", "mount", "umount"} {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b+" (apt-get install runc iptables iproute2)")
		}
	}
	for _, b := range nodeBinaries {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			missing = append(missing, filepath.Join(binDir, b)+" (make node-tools)")
		}
	}
	return missing
}

// RealNodeBinDir is where ci/build-node.sh's binaries are by default.
func RealNodeBinDir() string {
	if d := os.Getenv("GLUE_NODE_BIN"); d != "" {
		return d
	}
	root, err := RepoRoot()
	if err != nil {
		return ""
	}
	return filepath.Join(root, ".build", "tools", "node", "bin")
}

// RealNodeConfigFile writes a kwokctl configuration that a cluster with a real node needs (pass
// it in Options.StageFiles): the API server certificate also names KubernetesServiceIP, which
// in-cluster clients dial. kwokctl already adds the host's addresses.
func RealNodeConfigFile(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	p := filepath.Join(dir, "kwokctl-realnode.yaml")
	// kwokctl runs kwok with --manage-all-nodes=true: it would mark the real node Ready and play
	// its pods. The later flags win, so kwok keeps to the nodes AddNodes annotates.
	conf := fmt.Sprintf(`apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  kubeApiserverCertSANs:
    - %s
    - %s
componentsPatches:
  - name: kwok-controller
    extraArgs:
      - key: manage-all-nodes
        value: "false"
      - key: manage-nodes-with-annotation-selector
        value: kwok.x-k8s.io/node=fake
`, KubernetesServiceIP, realNodeGateway)
	return p, os.WriteFile(p, []byte(conf), 0o644)
}

// StartRealNode starts a real node and waits until it is Ready. Stop it before the cluster.
func (c *Cluster) StartRealNode(ctx context.Context, opts RealNodeOptions) (*RealNode, error) {
	if err := RealNodeSupport(); err != nil {
		return nil, err
	}
	if opts.Name == "" {
		opts.Name = RealNodeName
	}
	if opts.BinDir == "" {
		opts.BinDir = RealNodeBinDir()
	}
	if missing := MissingRealNodeTools(opts.BinDir); len(missing) > 0 {
		return nil, fmt.Errorf("real node: missing %s", strings.Join(missing, ", "))
	}
	if opts.WorkDir == "" {
		root, err := RepoRoot()
		if err != nil {
			return nil, err
		}
		opts.WorkDir = filepath.Join(root, ".build", "realnode", c.Name)
	}
	if opts.LockTimeout == 0 {
		opts.LockTimeout = 10 * time.Minute
	}
	hostIP, err := hostAddress()
	if err != nil {
		return nil, err
	}
	n := &RealNode{Name: opts.Name, Gateway: realNodeGateway, HostIP: hostIP, cluster: c, opts: opts,
		stateDir: filepath.Join("/run/glue-realnode", c.Name), procs: map[string]*exec.Cmd{},
		logs: filepath.Join(opts.WorkDir, "logs")}
	n.socket = filepath.Join(n.stateDir, "containerd.sock")
	if err := n.takeLock(ctx); err != nil {
		return nil, err
	}
	start := time.Now()
	if err := n.start(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("real node %s: %w (logs in %s)", n.Name, err, n.logs), n.Stop())
	}
	c.opts.logf("real node %s Ready in %s (containerd, runc, kubelet, kube-proxy, CoreDNS on %s)", n.Name,
		time.Since(start).Round(time.Millisecond), n.Gateway)
	return n, nil
}

// takeLock waits for the machine-wide real-node lock (flock, released when the process dies).
func (n *RealNode) takeLock(ctx context.Context) error {
	f, err := os.OpenFile(realNodeLock, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(n.opts.LockTimeout)
	for {
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
			n.lock = f
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = f.Close()
			return fmt.Errorf("another real node holds %s (one per machine) for more than %s", realNodeLock, n.opts.LockTimeout)
		}
		time.Sleep(time.Second)
	}
}

// changedSysctls are the settings network() needs; the cleanup puts the machine's values back.
var changedSysctls = []string{"net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables"}

func (n *RealNode) start(ctx context.Context) error {
	w := n.opts.WorkDir
	n.sysctls = map[string]string{}
	for _, k := range changedSysctls {
		if v, err := os.ReadFile(filepath.Join("/proc/sys", k)); err == nil {
			n.sysctls[k] = strings.TrimSpace(string(v))
		}
	}
	// A previous run killed hard may have left mounts and rules: clean first.
	_ = n.writeCleanup()
	_ = n.runCleanup()
	for _, d := range []string{w, n.logs, n.stateDir, filepath.Join(w, "cni", "net.d"), filepath.Join(w, "kubelet"), filepath.Join(w, "pod-logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := n.writeCleanup(); err != nil {
		return err
	}
	if err := n.startWatchdog(); err != nil {
		return err
	}
	if err := n.network(); err != nil {
		return err
	}
	if err := makeCgroupRoot(); err != nil {
		return err
	}
	if err := n.writeConfigs(); err != nil {
		return err
	}
	path := n.opts.BinDir + ":" + os.Getenv("PATH")
	if err := n.run("containerd", []string{"--config", filepath.Join(w, "containerd.toml")}, "PATH="+path); err != nil {
		return err
	}
	if err := waitFor(ctx, 30*time.Second, "containerd socket", func() bool {
		return n.ctr(ctx, nil, "version") == nil
	}); err != nil {
		return err
	}
	if err := n.run("coredns", []string{"-conf", filepath.Join(w, "Corefile")}); err != nil {
		return err
	}
	if err := n.run("kube-proxy", []string{"--config", filepath.Join(w, "kube-proxy.yaml")}, "PATH="+path); err != nil {
		return err
	}
	if err := n.run("kubelet", []string{"--config", filepath.Join(w, "kubelet.yaml"), "--kubeconfig", n.cluster.Kubeconfig,
		"--hostname-override", n.Name, "--node-ip", n.HostIP, "--root-dir", filepath.Join(w, "kubelet"),
		"--cert-dir", filepath.Join(w, "kubelet", "pki"), "--node-labels", RealNodeLabel + "=true", "--v", "2"}, "PATH="+path); err != nil {
		return err
	}
	cs, err := n.cluster.Clientset()
	if err != nil {
		return err
	}
	return waitFor(ctx, 3*time.Minute, "node "+n.Name+" Ready", func() bool {
		for name, cmd := range n.procs {
			if cmd.ProcessState != nil {
				err = fmt.Errorf("%s exited: %s (log %s)", name, cmd.ProcessState, filepath.Join(n.logs, name+".log"))
				return true
			}
		}
		node, gerr := cs.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if gerr != nil {
			return false
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return true
			}
		}
		return false
	})
}

func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %s", what, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

// run starts a component with its output in logs/<name>.log and its pid in state/<name>.pid.
func (n *RealNode) run(name string, args []string, env ...string) error {
	logf, err := os.Create(filepath.Join(n.logs, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(n.opts.BinDir, name), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	// Its own process group: a Ctrl-C of the test reaches the test, which tears down in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	n.procs[name] = cmd
	go func() {
		_ = cmd.Wait()
		_ = logf.Close()
	}()
	return os.WriteFile(filepath.Join(n.stateDir, name+".pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
}

// network creates the pods' bridge with the gateway address (CoreDNS binds to it before the
// first pod exists) and lets the host route and filter bridged traffic as kube-proxy expects.
func (n *RealNode) network() error {
	cmds := [][]string{
		{"ip", "link", "add", realNodeBridge, "type", "bridge"},
		{"ip", "addr", "add", realNodeGateway + "/16", "dev", realNodeBridge},
		{"ip", "link", "set", realNodeBridge, "up"},
	}
	for _, c := range cmds {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w: %s", strings.Join(c, " "), err, out)
		}
	}
	for _, k := range changedSysctls {
		if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte("1"), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=1: %w", k, err)
		}
	}
	return nil
}

func (n *RealNode) writeConfigs() error {
	w, bin := n.opts.WorkDir, n.opts.BinDir
	ca := filepath.Join(filepath.Dir(n.cluster.Kubeconfig), "pki", "ca.crt")
	// GLUE_REAL_NODE_RUNC names another runc (a newer build, or a wrapper for debugging).
	runc := os.Getenv("GLUE_REAL_NODE_RUNC")
	if runc == "" {
		var err error
		if runc, err = exec.LookPath("runc"); err != nil {
			return err
		}
	}
	files := map[string]string{
		"containerd.toml": fmt.Sprintf(`version = 3
root = %q
state = %q

[grpc]
  address = %q

[plugins."io.containerd.cri.v1.runtime"]
  enable_selinux = false
  netns_mounts_under_state_dir = true
  # The kubelet asks -998 for pod sandboxes; lowering oom_score_adj needs CAP_SYS_RESOURCE, which
  # some machines (these CI machines among them) withhold even from root: runc then dies with
  # "failed to update /proc/self/oom_score_adj: Permission denied". Never go below containerd's.
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = [%q]
    conf_dir = %q
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = %q
        Root = %q
        SystemdCgroup = false

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = %q

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
`, filepath.Join(w, "containerd", "root"), filepath.Join(n.stateDir, "containerd"), n.socket, bin,
			filepath.Join(w, "cni", "net.d"), runc, filepath.Join(n.stateDir, "runc"), SandboxImage),

		"cni/net.d/10-glue.conflist": fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": %q,
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": %q, "gateway": %q}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": %q
      }
    }
  ]
}
`, realNodeNetwork, realNodeBridge, realNodeCIDR, realNodeGateway, filepath.Join(w, "cni", "ipam")),

		"kubelet.yaml": fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %s
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %q}
authorization:
  mode: Webhook
cgroupDriver: cgroupfs
cgroupRoot: /%s
# This machine has cgroup v1 (hybrid); kubelet >= 1.35 refuses it unless told otherwise.
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://%s
imageServiceEndpoint: unix://%s
clusterDNS: [%s]
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
podLogsDir: %q
registerWithTaints:
  - {key: %s, value: "true", effect: NoSchedule}
maxPods: 60
# Never evict or collect images on a shared test machine: the images are imported, not pulled.
evictionHard: {memory.available: "1Mi", nodefs.available: "1%%", imagefs.available: "1%%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
`, n.HostIP, ca, realNodeCgroup, n.socket, n.socket, realNodeGateway, filepath.Join(w, "pod-logs"), RealNodeTaintKey),

		"kube-proxy.yaml": fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %q
hostnameOverride: %s
clusterCIDR: %s
mode: iptables
# NodePorts on the host's address only: no route_localnet=1 on the machine.
nodePortAddresses: [primary]
iptables:
  localhostNodePorts: false
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack:
  maxPerCore: 0
`, n.cluster.Kubeconfig, n.Name, realNodeCIDR),

		"Corefile": fmt.Sprintf(`.:53 {
    bind %s
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig %s
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    forward . /etc/resolv.conf
    cache 5
}
`, realNodeGateway, n.cluster.Kubeconfig),
	}
	for name, content := range files {
		p := filepath.Join(w, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// ctr runs containerd's CLI against this node's containerd, in the kubelet's namespace.
func (n *RealNode) ctr(ctx context.Context, stdin io.Reader, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(n.opts.BinDir, "ctr"), append([]string{"--address", n.socket, "--namespace", "k8s.io"}, args...)...)
	cmd.Stdin = stdin
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, out.String())
	}
	return nil
}

// ImportImage imports an OCI image layout directory (ci/image) into the node's containerd, under
// the name its index.json gives (io.containerd.image.name), as a registry pull would leave it.
func (n *RealNode) ImportImage(ctx context.Context, layoutDir string) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarDir(pw, layoutDir)) }()
	return n.ctr(ctx, pr, "images", "import", "--local", "-")
}

// tarDir writes the files of dir as a tar stream (an OCI layout archive).
func tarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// TagImage gives an imported image another name, as if it had been pulled under that name.
func (n *RealNode) TagImage(ctx context.Context, src, dst string) error {
	return n.ctr(ctx, nil, "images", "tag", "--force", src, dst)
}

// Images lists the image names containerd holds for the kubelet.
func (n *RealNode) Images(ctx context.Context) ([]string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(n.opts.BinDir, "ctr"), "--address", n.socket, "--namespace", "k8s.io", "images", "list", "-q")
	out, err := cmd.Output()
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(out)), nil
}

// ContainerPID returns the host pid of a running container of the node, found by the labels the
// kubelet gives it (io.kubernetes.pod.namespace, io.kubernetes.pod.name, io.kubernetes.container.name).
func (n *RealNode) ContainerPID(ctx context.Context, namespace, pod, container string) (int, error) {
	filter := fmt.Sprintf("labels.\"io.kubernetes.pod.namespace\"==%s,labels.\"io.kubernetes.pod.name\"==%s,labels.\"io.kubernetes.container.name\"==%s",
		namespace, pod, container)
	out, err := exec.CommandContext(ctx, filepath.Join(n.opts.BinDir, "ctr"), "--address", n.socket, "--namespace", "k8s.io",
		"containers", "list", "-q", filter).Output()
	if err != nil {
		return 0, fmt.Errorf("ctr containers list: %w", err)
	}
	for _, id := range strings.Fields(string(out)) {
		tasks, err := exec.CommandContext(ctx, filepath.Join(n.opts.BinDir, "ctr"), "--address", n.socket, "--namespace", "k8s.io",
			"tasks", "list").Output()
		if err != nil {
			return 0, err
		}
		sc := bufio.NewScanner(bytes.NewReader(tasks))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) >= 3 && f[0] == id && f[2] == "RUNNING" {
				return strconv.Atoi(f[1])
			}
		}
	}
	return 0, fmt.Errorf("no running container %s of pod %s/%s on %s", container, namespace, pod, n.Name)
}

// PodLogDir is where the kubelet writes the logs of a pod's containers (<ns>_<pod>_<uid>/<container>/N.log).
func (n *RealNode) PodLogDir() string { return filepath.Join(n.opts.WorkDir, "pod-logs") }

// LogDir holds the node components' logs (containerd, kubelet, kube-proxy, coredns).
func (n *RealNode) LogDir() string { return n.logs }

// Stop deletes the node's pods through the kubelet (so their networks are torn down), stops the
// components and removes what they left: containers, mounts, iptables rules, the bridge.
func (n *RealNode) Stop() error {
	var errs []error
	if n.procs["kubelet"] != nil && n.procs["kubelet"].ProcessState == nil {
		errs = append(errs, n.drain())
	}
	for _, name := range []string{"kubelet", "kube-proxy", "coredns"} {
		stopProc(n.procs[name], 20*time.Second)
	}
	// Pods the kubelet did not tear down: stop them through containerd before it goes.
	if n.procs["containerd"] != nil && n.procs["containerd"].ProcessState == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if out, err := exec.CommandContext(ctx, filepath.Join(n.opts.BinDir, "ctr"), "--address", n.socket, "--namespace", "k8s.io",
			"tasks", "list", "-q").Output(); err == nil {
			for _, id := range strings.Fields(string(out)) {
				_ = n.ctr(ctx, nil, "tasks", "kill", "-s", "SIGKILL", id)
			}
			time.Sleep(time.Second)
			for _, id := range strings.Fields(string(out)) {
				_ = n.ctr(ctx, nil, "tasks", "delete", "-f", id)
			}
		}
		cancel()
	}
	stopProc(n.procs["containerd"], 20*time.Second)
	if err := n.runCleanup(); err != nil {
		errs = append(errs, err)
	} else {
		// Nothing is mounted there any more (runCleanup checked): drop the image store and the
		// kubelet's state (about 80 MB a run), keep the logs.
		for _, d := range []string{"containerd", "kubelet", "cni"} {
			if err := os.RemoveAll(filepath.Join(n.opts.WorkDir, d)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if n.watchdog != nil {
		_ = n.watchdog.Kill()
		_, _ = n.watchdog.Wait()
	}
	if n.lock != nil {
		_ = n.lock.Close()
	}
	return errors.Join(errs...)
}

// drain deletes every pod bound to the node and waits for the kubelet to remove them.
func (n *RealNode) drain() error {
	cs, err := n.cluster.Clientset()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sel := metav1.ListOptions{FieldSelector: "spec.nodeName=" + n.Name}
	pods, err := cs.CoreV1().Pods("").List(ctx, sel)
	if err != nil {
		return err
	}
	for _, p := range pods.Items {
		_ = cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64(5))})
	}
	return waitFor(ctx, 80*time.Second, "pods of "+n.Name+" gone", func() bool {
		pods, err := cs.CoreV1().Pods("").List(ctx, sel)
		return err == nil && len(pods.Items) == 0
	})
}

func stopProc(cmd *exec.Cmd, grace time.Duration) {
	if cmd == nil || cmd.Process == nil || cmd.ProcessState != nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for alive(cmd.Process.Pid) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if alive(cmd.Process.Pid) {
		_ = cmd.Process.Kill()
	}
}

// makeCgroupRoot creates the kubelet's cgroup root in every hierarchy (cgroup v1) or the unified
// one (v2); a v1 cpuset gets its parent's CPUs and memory nodes, as it starts empty.
func makeCgroupRoot() error {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return os.MkdirAll(filepath.Join("/sys/fs/cgroup", realNodeCgroup), 0o755)
	}
	entries, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		return err
	}
	for _, e := range entries {
		base := filepath.Join("/sys/fs/cgroup", e.Name())
		if !e.IsDir() || e.Name() == "unified" {
			continue
		}
		if _, err := os.Stat(filepath.Join(base, "cgroup.procs")); err != nil {
			continue // a symlink like cpu,cpuacct, or not a hierarchy
		}
		dir := filepath.Join(base, realNodeCgroup)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("cgroup %s: %w", dir, err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if v, err := os.ReadFile(filepath.Join(base, f)); err == nil {
				cur, _ := os.ReadFile(filepath.Join(dir, f))
				if strings.TrimSpace(string(cur)) == "" {
					if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
						return fmt.Errorf("cgroup %s/%s: %w", dir, f, err)
					}
				}
			}
		}
	}
	return nil
}

// writeCleanup writes the script that removes everything the node may have left; Stop runs it
// after stopping the components in order, the watchdog when the test process died.
func (n *RealNode) writeCleanup() error {
	w := n.opts.WorkDir
	var restore strings.Builder
	for _, k := range changedSysctls {
		if v, ok := n.sysctls[k]; ok {
			fmt.Fprintf(&restore, "echo %q > %q 2>/dev/null\n", v, filepath.Join("/proc/sys", k))
		}
	}
	script := fmt.Sprintf(`#!/usr/bin/env bash
# Removes what real node %[1]s may have left. Written by internal/localcluster; idempotent.
state=%[2]q work=%[3]q sock=%[4]q bin=%[5]q
for f in "$state"/*.pid; do
  [ -f "$f" ] || continue
  pid=$(cat "$f"); kill -TERM "$pid" 2>/dev/null
done
sleep 1
for f in "$state"/*.pid; do
  [ -f "$f" ] || continue
  pid=$(cat "$f"); kill -KILL "$pid" 2>/dev/null; rm -f "$f"
done
# Shims (and their containers) this node's containerd started: the socket is in their command line.
for p in /proc/[0-9]*; do
  if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF -- "-address $sock"; then
    kill -KILL "${p#/proc/}" 2>/dev/null
  fi
done
# Whatever still runs in the kubelet's cgroup root (containers whose shim is gone), then the
# cgroups themselves, deepest first.
for d in /sys/fs/cgroup/%[8]s /sys/fs/cgroup/*/%[8]s; do
  [ -d "$d" ] || continue
  find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | while read -r pid; do kill -KILL "$pid" 2>/dev/null; done
done
sleep 0.5
for d in /sys/fs/cgroup/%[8]s /sys/fs/cgroup/*/%[8]s; do
  [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
done
# Mounts under the node's directories, deepest first.
awk -v s="$state" -v w="$work" '{ if (index($5, s) == 1 || index($5, w) == 1) print $5 }' /proc/self/mountinfo |
  sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
# kube-proxy's rules, then the bridge plugin's masquerade chains of this network.
[ -x "$bin/kube-proxy" ] && "$bin/kube-proxy" --cleanup >/dev/null 2>&1
iptables-save -t nat 2>/dev/null | sed -n 's/^-A POSTROUTING \(.*name: \\"%[6]s\\".*\)$/\1/p' | while read -r rule; do
  chain=$(sed -n 's/.*-j \(CNI-[0-9a-f]*\).*/\1/p' <<<"$rule")
  eval "iptables -t nat -D POSTROUTING $rule" 2>/dev/null
  [ -n "$chain" ] && iptables -t nat -F "$chain" 2>/dev/null && iptables -t nat -X "$chain" 2>/dev/null
done
# The kubelet's own chains (its canary, and a firewall against localnet connections).
for ipt in iptables ip6tables; do
  command -v "$ipt" >/dev/null || continue
  for ch in INPUT OUTPUT; do
    while "$ipt" -t filter -D "$ch" -j KUBE-FIREWALL 2>/dev/null; do :; done
  done
  for t in filter nat mangle; do
    for c in KUBE-FIREWALL KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT; do
      "$ipt" -t "$t" -F "$c" 2>/dev/null && "$ipt" -t "$t" -X "$c" 2>/dev/null
    done
  done
done
ip link del %[7]s 2>/dev/null
# Shim sockets containerd keeps in the fixed /run/containerd/s: remove those nobody listens on.
listening=$(ss -xlH 2>/dev/null | awk '{print $5}')
for s in /run/containerd/s/*; do
  [ -S "$s" ] && ! grep -qxF "$s" <<<"$listening" && rm -f "$s"
done
# libcni's result cache of this network's pods (and their loopback), left when a pod had no CNI DEL.
for f in /var/lib/cni/results/%[6]s-*; do
  [ -e "$f" ] || continue
  id=${f#*/%[6]s-}; id=${id%%-*}
  rm -f "$f" "/var/lib/cni/results/cni-loopback-$id-lo"
done
# The machine's own settings, as they were before the node.
%[9]s
rm -rf "$state"
exit 0
`, n.Name, n.stateDir, w, n.socket, n.opts.BinDir, realNodeNetwork, realNodeBridge, realNodeCgroup, restore.String())
	if err := os.MkdirAll(w, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(w, "cleanup.sh"), []byte(script), 0o755)
}

func (n *RealNode) runCleanup() error {
	out, err := exec.Command("bash", filepath.Join(n.opts.WorkDir, "cleanup.sh")).CombinedOutput()
	if err != nil {
		return fmt.Errorf("real node cleanup: %w: %s", err, out)
	}
	// What the node left must be gone: no mount under its directories, no bridge.
	if left := mountsUnder(n.stateDir, n.opts.WorkDir); len(left) > 0 {
		return fmt.Errorf("real node cleanup left mounts: %v", left)
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", realNodeBridge)); err == nil {
		return fmt.Errorf("real node cleanup left bridge %s", realNodeBridge)
	}
	return nil
}

func mountsUnder(dirs ...string) []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var left []string
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		for _, d := range dirs {
			if strings.HasPrefix(f[4], d+"/") || f[4] == d {
				left = append(left, f[4])
			}
		}
	}
	sort.Strings(left)
	return left
}

// startWatchdog runs the cleanup script if this process dies without Stop. It inherits the
// machine-wide lock, so no other real node starts before its cleanup is done.
func (n *RealNode) startWatchdog() error {
	script := fmt.Sprintf(`while kill -0 %d 2>/dev/null; do sleep 1; done; exec bash %q`, os.Getpid(), filepath.Join(n.opts.WorkDir, "cleanup.sh"))
	cmd := exec.Command("bash", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.ExtraFiles = []*os.File{n.lock}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start real node watchdog: %w", err)
	}
	n.watchdog = cmd.Process
	return nil
}

// hostAddress is the address of the interface of the default route: the node's InternalIP.
func hostAddress() (string, error) {
	conn, err := net.Dial("udp4", "203.0.113.1:9") // no packet is sent: this only picks a route
	if err != nil {
		return "", fmt.Errorf("no default route for the real node's address: %w", err)
	}
	defer conn.Close()
	return conn.LocalAddr().(*net.UDPAddr).IP.String(), nil
}
