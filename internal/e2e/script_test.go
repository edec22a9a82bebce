package e2e

// The glue run without the chart, as ClearML's K8s Glue script runs: the clearml-glue binary
// started as a process with a kubeconfig, a clearml.conf in its home and a values file (or the
// script's flags). No chart is installed: the namespace holds only a credentials Secret and a
// ServiceAccount bound to the Role docs/migration.md gives for this mode, whose token is the
// kubeconfig, so the test also proves that Role is enough.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/clearml-glue/clearml-glue/internal/chart"
	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"github.com/clearml-glue/clearml-glue/internal/localcluster"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
)

const scriptCredentialsSecret = "clearml-creds"

// scriptRole is the Role docs/migration.md ("Run without the chart") gives the glue's identity.
var scriptRole = []rbacv1.PolicyRule{
	{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"create", "get", "list", "watch", "delete"}},
	{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch", "delete"}},
	{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}},
}

// scriptEnv is a test's world for a glue run without the chart: a namespace with the credentials
// Secret and the glue's ServiceAccount, the ClearML emulator, the in-pod agent simulator, and a
// home directory with a clearml.conf as clearml-init writes it.
type scriptEnv struct {
	*env
	home, kubeconfig string
}

func newScriptEnv(t *testing.T) *scriptEnv {
	t.Helper()
	cluster := localcluster.Shared(t)
	cs, err := cluster.Clientset()
	assert.NilError(t, err)
	ctx := context.Background()
	e := &env{t: t, ns: namespaceFor(t), admin: cluster.RESTConfig(), cs: cs, glueErrs: make(chan error, 8), logs: &logBook{}}
	_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}}, metav1.CreateOptions{})
	assert.NilError(t, err)
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), e.ns, metav1.DeleteOptions{}) })
	e.emu = emulator.NewTestServer(t, emulator.Options{AccessKey: accessKey, SecretKey: secretKey})
	e.user, err = clearml.New(clearml.Config{APIHost: e.emu.URL(), AccessKey: accessKey, SecretKey: secretKey, WorkerHeader: "e2e-user"})
	assert.NilError(t, err)

	_, err = cs.CoreV1().Secrets(e.ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: scriptCredentialsSecret},
		Data:       map[string][]byte{"agentk8sglue_key": []byte(accessKey), "agentk8sglue_secret": []byte(secretKey)},
	}, metav1.CreateOptions{})
	assert.NilError(t, err)
	_, err = cs.CoreV1().ServiceAccounts(e.ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "clearml-glue"}}, metav1.CreateOptions{})
	assert.NilError(t, err)
	_, err = cs.RbacV1().Roles(e.ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "clearml-glue"}, Rules: scriptRole}, metav1.CreateOptions{})
	assert.NilError(t, err)
	_, err = cs.RbacV1().RoleBindings(e.ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "clearml-glue"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "clearml-glue", Namespace: e.ns}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "clearml-glue"},
	}, metav1.CreateOptions{})
	assert.NilError(t, err)
	sa, err := cluster.ServiceAccountConfig(ctx, e.ns, "clearml-glue", time.Hour)
	assert.NilError(t, err)

	s := &scriptEnv{env: e, home: t.TempDir()}
	s.kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: sa.Host, CertificateAuthorityData: sa.CAData, CertificateAuthority: sa.CAFile}
	kc.AuthInfos["clearml-glue"] = &clientcmdapi.AuthInfo{Token: sa.BearerToken}
	kc.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "clearml-glue"}
	kc.CurrentContext = "local"
	assert.NilError(t, clientcmd.WriteToFile(*kc, s.kubeconfig))

	// As clearml-init writes it: URLs without quotes, a comment holding a URL right before the
	// credentials, quoted keys.
	conf := fmt.Sprintf(`# ClearML SDK configuration file
api {
    # Notice: 'host' is the api server (default port 8008), not the web server.
    api_server: %s
    web_server: http://clearml-web.example:8080
    files_server: http://clearml-files.example:8081
    # Credentials are generated using the webapp, http://clearml-web.example:8080/settings
    # Override with os environment: CLEARML_API_ACCESS_KEY / CLEARML_API_SECRET_KEY
    credentials {"access_key": %q, "secret_key": %q}
}
`, e.emu.URL(), accessKey, secretKey)
	assert.NilError(t, os.WriteFile(filepath.Join(s.home, "clearml.conf"), []byte(conf), 0o600))
	e.startPodAgents()
	return s
}

var (
	scriptBinOnce sync.Once
	scriptBin     string
	scriptBinErr  error
)

// command is the clearml-glue binary with args, in an environment that holds nothing of ClearML's
// or the glue's but HOME (for ~/clearml.conf) and local metrics and health addresses.
func (s *scriptEnv) command(args ...string) *exec.Cmd {
	s.t.Helper()
	scriptBinOnce.Do(func() {
		root, err := localcluster.RepoRoot()
		if err != nil {
			scriptBinErr = err
			return
		}
		scriptBin = filepath.Join(root, ".build", "e2e", "clearml-glue-script")
		out, err := exec.Command("go", "build", "-o", scriptBin, filepath.Join(root, "cmd", "clearml-glue")).CombinedOutput()
		if err != nil {
			scriptBinErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	assert.NilError(s.t, scriptBinErr)
	cmd := exec.Command(scriptBin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CLEARML_") && !strings.HasPrefix(kv, "TRAINS_") && !strings.HasPrefix(kv, "GLUE_") && !strings.HasPrefix(kv, "HOME=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "HOME="+s.home, "GLUE_METRICS_ADDR=127.0.0.1:0", "GLUE_HEALTH_ADDR=127.0.0.1:0")
	return cmd
}

// start runs `clearml-glue run --kubeconfig ... args` until the test ends; exiting early fails
// the test's waits.
func (s *scriptEnv) start(args ...string) *exec.Cmd {
	s.t.Helper()
	cmd := s.command(append([]string{"run", "--kubeconfig", s.kubeconfig}, args...)...)
	out := &syncedWriter{w: []interface{ Write([]byte) (int, error) }{testWriter{s.t, "glue"}, s.logs}}
	cmd.Stdout, cmd.Stderr = out, out
	assert.NilError(s.t, cmd.Start())
	exited := make(chan struct{})
	go func() {
		err := cmd.Wait()
		close(exited)
		select {
		case s.glueErrs <- fmt.Errorf("clearml-glue exited: %v", err):
		default:
		}
	}()
	s.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	return cmd
}

type syncedWriter struct {
	mu sync.Mutex
	w  []interface{ Write([]byte) (int, error) }
}

func (s *syncedWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.w {
		_, _ = w.Write(p)
	}
	return len(p), nil
}

// run runs `clearml-glue run args` to its end and returns its output and exit error.
func (s *scriptEnv) run(args ...string) (string, error) {
	s.t.Helper()
	cmd := s.command(append([]string{"run"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	assert.NilError(s.t, cmd.Start())
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		s.t.Fatalf("clearml-glue run %v did not exit:\n%s", args, out.String())
		return "", nil
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	// Write then rename, as editors do, so the glue never reads half a file.
	tmp := path + ".tmp"
	assert.NilError(t, os.WriteFile(tmp, []byte(content), 0o600))
	assert.NilError(t, os.Rename(tmp, path))
}

const scriptValues = `
agentk8sglue:
  pollIntervalSeconds: 1
  createQueues: true
  queues:
    alpha:
      templateOverrides:
        annotations: {e2e.glue/run-ms: "200ms"}
    beta:
      templateOverrides:
        annotations: {e2e.glue/run-ms: "200ms"}
        labels: {team: beta}
`

// With only a kubeconfig, a clearml.conf and a values file, the binary serves two queues; task
// pods read the credentials from the named Secret; nothing of the chart is installed; a changed
// values file is reloaded without a restart.
func TestScriptServesTwoQueuesFromAValuesFileAndReloadsIt(t *testing.T) {
	s := newScriptEnv(t)
	values := filepath.Join(t.TempDir(), "my-values.yaml")
	writeFile(t, values, scriptValues)
	s.start("--values", values, "--namespace", s.ns, "--credentials-secret", scriptCredentialsSecret)

	a := s.task("alpha", "a", emulator.TaskSpec{})
	b := s.task("beta", "b", emulator.TaskSpec{})
	s.waitStatus(a, clearml.StatusCompleted, 60*time.Second)
	s.waitStatus(b, clearml.StatusCompleted, 60*time.Second)

	job := s.waitJob(b, 10*time.Second)
	assert.Equal(t, job.Spec.Template.Labels["team"], "beta")
	assert.Equal(t, job.Labels[podtemplate.LabelAgent], "clearml-agent")
	env := map[string]corev1.EnvVar{}
	for _, v := range job.Spec.Template.Spec.Containers[0].Env {
		env[v.Name] = v
		assert.Assert(t, !strings.Contains(v.Value, secretKey), "credential inlined in %s", v.Name)
	}
	assert.Equal(t, env["CLEARML_API_HOST"].Value, s.emu.URL())                           // from clearml.conf
	assert.Equal(t, env["CLEARML_FILES_HOST"].Value, "http://clearml-files.example:8081") // idem
	for _, name := range []string{"CLEARML_API_ACCESS_KEY", "CLEARML_API_SECRET_KEY"} {
		ref := env[name].ValueFrom
		assert.Assert(t, ref != nil && ref.SecretKeyRef != nil && ref.SecretKeyRef.Name == scriptCredentialsSecret, "%s: %+v", name, env[name])
	}
	cms, err := s.cs.CoreV1().ConfigMaps(s.ns).List(context.Background(), metav1.ListOptions{})
	assert.NilError(t, err)
	for _, cm := range cms.Items {
		assert.Equal(t, cm.Name, "kube-root-ca.crt", "a ConfigMap was created")
	}
	secrets, err := s.cs.CoreV1().Secrets(s.ns).List(context.Background(), metav1.ListOptions{})
	assert.NilError(t, err)
	assert.Equal(t, len(secrets.Items), 1, "a Secret was created")

	// A new queue in the values file is served without a restart; a removed one is not.
	writeFile(t, values, `
agentk8sglue:
  pollIntervalSeconds: 1
  createQueues: true
  queues:
    alpha:
      templateOverrides:
        annotations: {e2e.glue/run-ms: "200ms"}
    gamma:
      templateOverrides:
        annotations: {e2e.glue/run-ms: "200ms"}
`)
	c := s.task("gamma", "c", emulator.TaskSpec{})
	s.waitStatus(c, clearml.StatusCompleted, 60*time.Second)
	unserved := s.task("beta", "not-served", emulator.TaskSpec{})
	time.Sleep(3 * time.Second)
	assert.Equal(t, s.taskState(unserved).Status, clearml.StatusQueued, "removed queue still served")

	// A bad edit is refused; the last good version keeps serving.
	writeFile(t, values, "agentk8sglue:\n  pollIntervalSeconds: 0\n")
	s.waitFor(20*time.Second, "the refusal", func() bool { return strings.Contains(s.logs.all(), "glue config refused") },
		func() string { return "no refusal logged" })
	s.waitStatus(s.task("alpha", "after", emulator.TaskSpec{}), clearml.StatusCompleted, 60*time.Second)
}

// The template format of ClearML's script, and the same pod template written as the chart's
// values: both give the same Job.
const pythonTemplate = `apiVersion: v1
kind: Pod
metadata:
  labels: {team: vision}
  annotations: {e2e.glue/run-ms: "200ms"}
spec:
  containers:
    - resources:
        requests: {cpu: 500m, memory: 1Gi}
      env:
        - {name: DATA_DIR, value: /data}
      volumeMounts:
        - {name: data, mountPath: /data}
      workingDir: /workspace
    - name: log-shipper
      image: fluent/fluent-bit:3.0
  volumes:
    - {name: data, emptyDir: {}}
  nodeSelector: {type: kwok}
  tolerations:
    - {key: dedicated, operator: Equal, value: ml, effect: NoSchedule}
  terminationGracePeriodSeconds: 60
`

const chartTemplate = `
agentk8sglue:
  basePodTemplate:
    labels: {team: vision}
    annotations: {e2e.glue/run-ms: "200ms"}
    resources:
      requests: {cpu: 500m, memory: 1Gi}
    env:
      - {name: DATA_DIR, value: /data}
    volumeMounts:
      - {name: data, mountPath: /data}
    volumes:
      - {name: data, emptyDir: {}}
    nodeSelector: {type: kwok}
    tolerations:
      - {key: dedicated, operator: Equal, value: ml, effect: NoSchedule}
    container: {workingDir: /workspace}
    podSpec:
      terminationGracePeriodSeconds: 60
      containers:
        - {name: log-shipper, image: "fluent/fluent-bit:3.0"}
`

// The script's flags alone (no values file) and a --template-yaml in the script's own format:
// the Job is the one the chart gives for the same template written as values.
func TestScriptTemplateYAMLRendersTheExpectedJob(t *testing.T) {
	s := newScriptEnv(t)
	tmpl := filepath.Join(t.TempDir(), "pod-template.yaml")
	writeFile(t, tmpl, pythonTemplate)
	s.start("--queue", "py-queue", "--create-queue", "--template-yaml", tmpl, "--namespace", s.ns,
		"--credentials-secret", scriptCredentialsSecret, "--k8s-pending-queue-name", "k8s_scheduler", "--debug")
	id := s.task("py-queue", "templated", emulator.TaskSpec{})
	s.waitStatus(id, clearml.StatusCompleted, 60*time.Second)
	job := s.waitJob(id, 10*time.Second)

	// The same template as the chart's values, rendered and built as the chart's glue would.
	values := filepath.Join(t.TempDir(), "values.yaml")
	writeFile(t, values, chartTemplate)
	rendered, err := chart.Render(chart.RenderOptions{
		ChartDir: chartDir(t), ValuesFiles: []string{values}, ReleaseName: "clearml-agent", Namespace: s.ns,
		Set: []string{"agentk8sglue.queue=py-queue", "clearml.existingAgentk8sglueSecret=" + scriptCredentialsSecret,
			"agentk8sglue.apiServerUrlReference=" + s.emu.URL(), "agentk8sglue.webServerUrlReference=http://clearml-web.example:8080",
			"agentk8sglue.fileServerUrlReference=http://clearml-files.example:8081"},
	})
	assert.NilError(t, err)
	cfg, err := rendered.GlueConfig()
	assert.NilError(t, err)
	builder, err := podtemplate.NewBuilder(cfg)
	assert.NilError(t, err)
	obj, err := builder.Build("py-queue", podtemplate.Input{
		Task:    map[string]any{"id": id, "name": "templated", "container": map[string]any{"image": "python:3.12"}},
		QueueID: job.Labels[podtemplate.LabelQueue], QueueName: "py-queue",
	})
	assert.NilError(t, err)
	want := obj.(*batchv1.Job)
	// Through the API server (dry run), so both carry the same defaults.
	want.Name = "expected-" + want.Name
	want, err = s.cs.BatchV1().Jobs(s.ns).Create(context.Background(), want, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	assert.NilError(t, err)

	assert.DeepEqual(t, job.Spec.Template.Spec, want.Spec.Template.Spec)
	for k, v := range want.Spec.Template.Labels {
		if k != "batch.kubernetes.io/controller-uid" && k != "controller-uid" && k != "batch.kubernetes.io/job-name" && k != "job-name" {
			assert.Equal(t, job.Spec.Template.Labels[k], v, k)
		}
	}
	assert.DeepEqual(t, job.Spec.Template.Annotations, want.Spec.Template.Annotations)
	assert.Assert(t, equality.Semantic.DeepEqual(job.Spec.BackoffLimit, want.Spec.BackoffLimit))
	assert.Equal(t, job.Spec.Template.Labels["team"], "vision")
	assert.Equal(t, len(job.Spec.Template.Spec.Containers), 2)
}

// What the script refuses, and what the glue needs and cannot find, ends the start with a message
// that says what to do.
func TestScriptBadFlagsAndMissingPiecesAreRefusedClearly(t *testing.T) {
	s := newScriptEnv(t)
	values := filepath.Join(t.TempDir(), "my-values.yaml")
	writeFile(t, values, scriptValues)
	kc := []string{"--kubeconfig", s.kubeconfig, "--namespace", s.ns}
	for _, tc := range []struct {
		args []string
		home string
		want []string
	}{
		{args: []string{"--queue", "q1", "--ports-mode", "--max-pods", "2"},
			want: []string{"argument --max-pods: not allowed with argument --ports-mode"}},
		{args: []string{"--queue", "q1", "--use-owner-token", "--ssh-server-port", "2222"},
			want: []string{"--use-owner-token has no equivalent", "--ssh-server-port has no equivalent"}},
		{args: append([]string{"--values", values}, kc...),
			want: []string{"no credentials Secret for the task pods", "kubectl -n " + s.ns + " create secret generic clearml-glue-credentials", "--credentials-secret"}},
		{args: append([]string{"--values", values, "--credentials-secret", "nope"}, kc...),
			want: []string{"the credentials Secret " + s.ns + "/nope does not exist"}},
		{args: append([]string{"--values", values, "--credentials-secret", scriptCredentialsSecret}, kc...), home: t.TempDir(),
			want: []string{"no ClearML credentials: CLEARML_API_ACCESS_KEY/CLEARML_API_SECRET_KEY are not set and", "(~/clearml.conf; CLEARML_CONFIG_FILE is not set): no such file"}},
		{args: append([]string{"--queue", "q1", "--pod-name-prefix", "task-", "--credentials-secret", scriptCredentialsSecret}, kc...),
			want: []string{`--pod-name-prefix "task-" cannot be honoured`}},
	} {
		home := s.home
		if tc.home != "" {
			s.home = tc.home
		}
		out, err := s.run(tc.args...)
		s.home = home
		assert.Assert(t, err != nil, "clearml-glue run %v exited 0:\n%s", tc.args, out)
		for _, w := range tc.want {
			assert.Assert(t, strings.Contains(out, w), "clearml-glue run %v: %q not in:\n%s", tc.args, w, out)
		}
	}
}
