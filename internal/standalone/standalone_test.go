package standalone

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
)

var server = config.ClearMLServer{APIHost: "http://clearml:8008", FilesHost: "http://clearml:8081", AccessKey: "k", SecretKey: "s", VerifyCert: true}

func parse(t *testing.T, args ...string) *Flags {
	t.Helper()
	f, err := ParseFlags(args, io.Discard)
	assert.NilError(t, err)
	return f
}

func write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	assert.NilError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func load(t *testing.T, args ...string) (*config.File, error) {
	t.Helper()
	l := &Loader{Flags: parse(t, args...), Server: server}
	return l.Load(context.Background())
}

func TestOnlyKubeconfigServesTheConfigMap(t *testing.T) {
	assert.Assert(t, !parse(t).Standalone())
	assert.Assert(t, !parse(t, "--kubeconfig", "k").Standalone())
	assert.Assert(t, parse(t, "--kubeconfig", "k", "--queue", "a").Standalone())
	assert.Assert(t, parse(t, "--values", "v.yaml").Standalone())
	assert.Assert(t, parse(t, "--debug").Standalone())
}

func TestFlagsRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--ports-mode", "--max-pods", "3"}, "argument --max-pods: not allowed with argument --ports-mode"},
		{[]string{"--ssh-server-port", "22"}, "--ssh-server-port has no equivalent"},
		{[]string{"--use-owner-token"}, "--use-owner-token has no equivalent"},
		{[]string{"--no-system-packages"}, "--no-system-packages has no equivalent"},
		{[]string{"--pod-name-prefix", "task-"}, `--pod-name-prefix "task-" cannot be honoured`},
		{[]string{"--limit-pod-label", "x=pod-{pod_number}"}, "--limit-pod-label"},
		{[]string{"--ports-mode", "--base-pod-num", "3"}, "--base-pod-num 3 cannot be honoured"},
		{[]string{"--base-port", "30000"}, "--base-port is used with --ports-mode only"},
		{[]string{"--template-yaml", "t.yaml", "--overrides-yaml", "o.yaml"}, "--overrides-yaml is not used with --template-yaml"},
		{[]string{"--config", "glue.yaml", "--queue", "a", "--values", "v.yaml"}, "--config is an already rendered glue configuration: it cannot be used with --values, --queue"},
		{[]string{"--queue", " , "}, "names no queue"},
		{[]string{"--max-pods", "-1"}, "--max-pods must not be negative"},
		{[]string{"--queue", "a", "extra"}, "unexpected arguments: extra"},
	} {
		_, err := ParseFlags(tc.args, io.Discard)
		assert.ErrorContains(t, err, tc.want, "%v", tc.args)
	}
	_, err := ParseFlags([]string{"--ports-mode", "--max-pods", "3", "--use-owner-token"}, io.Discard)
	assert.ErrorContains(t, err, "--use-owner-token")
	assert.ErrorContains(t, err, "--max-pods") // every problem at once
}

func TestHelpListsTheScriptFlags(t *testing.T) {
	var out strings.Builder
	_, err := ParseFlags([]string{"--help"}, &out)
	assert.ErrorContains(t, err, "help requested")
	for _, name := range []string{"--queue", "--namespace", "--max-pods", "--create-queue", "--template-yaml", "--overrides-yaml",
		"--pod-clearml-conf", "--k8s-pending-queue-name", "--ports-mode", "--num-of-services", "--base-port", "--base-pod-num",
		"--gateway-address", "--pod-name-prefix", "--debug", "--values", "--set", "--config", "--credentials-secret",
		"--ssh-server-port", "--use-owner-token"} {
		assert.Assert(t, strings.Contains(out.String(), "  "+name), "%s missing from --help:\n%s", name, out.String())
	}
}

func TestScriptFlagsMapOntoTheChartValues(t *testing.T) {
	values := write(t, "values.yaml", "agentk8sglue:\n  pollIntervalSeconds: 2\n  maxPods: 9\n")
	f, err := load(t, "--values", values, "--set", "agentk8sglue.maxPods=7", "--queue", "gpu, cpu ,big", "--namespace", "ml",
		"--max-pods", "3", "--create-queue", "--k8s-pending-queue-name", "team_pending", "--credentials-secret", "creds")
	assert.NilError(t, err)
	assert.Equal(t, f.Namespace, "ml")
	assert.Equal(t, f.AgentName, ReleaseName)
	assert.DeepEqual(t, f.QueueNames(), []string{"gpu", "cpu", "big"}) // the script's order
	assert.Equal(t, f.MaxPods, 3)                                      // the flag wins over --set and --values
	assert.Equal(t, f.PollIntervalSeconds, 2.0)
	assert.Assert(t, f.ShouldCreateQueues())
	assert.Equal(t, f.PendingQueue, "team_pending")
	assert.Equal(t, f.ClearML.CredentialsSecret, "creds")
	assert.Equal(t, f.ClearML.APIServerURL, server.APIHost) // found with the credentials
	assert.Equal(t, f.ClearML.FileServerURL, server.FilesHost)
	assert.Equal(t, f.ClearML.WebServerURL, "") // not the chart's app.clear.ml default
	assert.Equal(t, f.Sessions.PortModeEnabled, false)

	// A values file that names the servers wins over what the glue found.
	values = write(t, "values.yaml", "agentk8sglue:\n  apiServerUrlReference: https://api.internal\n")
	f, err = load(t, "--values", values, "--credentials-secret", "creds")
	assert.NilError(t, err)
	assert.Equal(t, f.ClearML.APIServerURL, "https://api.internal")
	assert.Equal(t, f.Namespace, DefaultNamespace)
	assert.DeepEqual(t, f.QueueNames(), []string{"default"}) // the chart's default queue
}

func TestPortsModeFlags(t *testing.T) {
	f, err := load(t, "--queue", "sessions", "--credentials-secret", "c", "--ports-mode", "--num-of-services", "5",
		"--base-port", "31000", "--gateway-address", "10.0.0.9")
	assert.NilError(t, err)
	assert.DeepEqual(t, f.Sessions, config.Sessions{PortModeEnabled: true, MaxServices: 5, StartingPort: 31000,
		ExternalIP: "10.0.0.9", SvcType: "NodePort"})
	f, err = load(t, "--queue", "sessions", "--credentials-secret", "c", "--ports-mode")
	assert.NilError(t, err)
	assert.Equal(t, f.Sessions.ExternalIP, "") // no --gateway-address: no k8s-gateway-address, as the script
	assert.Equal(t, f.Sessions.MaxServices, DefaultNumOfServices)
}

// The template format of ClearML's script: a Pod manifest whose first container is the task's.
const pythonTemplate = `apiVersion: v1
kind: Pod
metadata:
  name: ignored
  namespace: ml-team
  labels: {team: vision}
  annotations: {cost-center: "42"}
spec:
  containers:
    - name: ignored
      image: ignored:latest
      resources:
        limits: {nvidia.com/gpu: 1, memory: 16Gi}
      env:
        - {name: DATA_DIR, value: /data}
      volumeMounts:
        - {name: data, mountPath: /data}
        - {name: dshm, mountPath: /dev/shm}
      workingDir: /workspace
    - name: log-shipper
      image: fluent/fluent-bit:3.0
  volumes:
    - {name: data, persistentVolumeClaim: {claimName: datasets}}
    - {name: dshm, emptyDir: {medium: Memory}}
  nodeSelector: {gpu: "true"}
  tolerations:
    - {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}
  securityContext: {fsGroup: 1000}
  priorityClassName: high
  runtimeClassName: nvidia
`

func TestTemplateYAMLOfThePythonScriptBuildsTheJob(t *testing.T) {
	tmpl := write(t, "template.yaml", pythonTemplate)
	f, err := load(t, "--template-yaml", tmpl, "--queue", "gpu", "--credentials-secret", "creds")
	assert.NilError(t, err)
	assert.Equal(t, f.Namespace, "ml-team") // where the script creates the pods
	job := build(t, f, "gpu")

	assert.Equal(t, job.Namespace, "ml-team")
	assert.Equal(t, job.Labels["team"], "vision")
	assert.Equal(t, job.Spec.Template.Labels["team"], "vision")
	assert.Equal(t, job.Spec.Template.Annotations["cost-center"], "42")
	pod := job.Spec.Template.Spec
	assert.DeepEqual(t, pod.NodeSelector, map[string]string{"gpu": "true"})
	assert.Equal(t, len(pod.Tolerations), 1)
	assert.Equal(t, *pod.SecurityContext.FSGroup, int64(1000))
	assert.Equal(t, pod.PriorityClassName, "high")
	assert.Equal(t, *pod.RuntimeClassName, "nvidia")
	assert.Equal(t, pod.RestartPolicy, corev1.RestartPolicyNever)
	assert.Equal(t, len(pod.Volumes), 2)
	assert.Equal(t, len(pod.Containers), 2)
	task := pod.Containers[0]
	assert.Equal(t, task.Name, podtemplate.ObjectName("t1"))
	assert.Equal(t, task.Image, "python:3.12") // the task's image, as the script
	assert.Equal(t, task.WorkingDir, "/workspace")
	assert.Assert(t, task.Resources.Limits["nvidia.com/gpu"].Equal(resource.MustParse("1")))
	assert.Equal(t, len(task.VolumeMounts), 2)
	assert.Equal(t, task.Command[0], "/bin/bash")
	env := map[string]corev1.EnvVar{}
	for _, e := range task.Env {
		env[e.Name] = e
	}
	assert.Equal(t, env["DATA_DIR"].Value, "/data")
	assert.Equal(t, env["CLEARML_API_HOST"].Value, server.APIHost)
	ref := env["CLEARML_API_SECRET_KEY"].ValueFrom
	assert.Assert(t, ref != nil && ref.SecretKeyRef != nil && ref.SecretKeyRef.Name == "creds", "secret key not from the Secret: %+v", env["CLEARML_API_SECRET_KEY"])
	assert.Equal(t, pod.Containers[1].Name, "log-shipper")
	assert.Equal(t, *job.Spec.BackoffLimit, int32(0))
}

// A queue's templateOverrides still merge into what the template gave, by the chart's rules.
func TestTemplateYAMLIsTheBaseQueuesOverride(t *testing.T) {
	tmpl := write(t, "template.yaml", pythonTemplate)
	values := write(t, "values.yaml", `
agentk8sglue:
  queues:
    big:
      templateOverrides:
        env: [{name: DATA_DIR, value: /big}]
        resources: {limits: {memory: 64Gi}}
`)
	f, err := load(t, "--template-yaml", tmpl, "--values", values, "--credentials-secret", "creds")
	assert.NilError(t, err)
	task := build(t, f, "big").Spec.Template.Spec.Containers[0]
	var dataDir string
	for _, e := range task.Env {
		if e.Name == "DATA_DIR" {
			dataDir = e.Value
		}
	}
	assert.Equal(t, dataDir, "/big")
	assert.Assert(t, task.Resources.Limits.Memory().Equal(resource.MustParse("64Gi")))
	assert.Assert(t, task.Resources.Limits["nvidia.com/gpu"].Equal(resource.MustParse("1")))
}

func TestJobTemplateAndOverridesYAML(t *testing.T) {
	job := write(t, "job.yaml", `apiVersion: batch/v1
kind: Job
metadata: {labels: {a: job}}
spec:
  backoffLimit: 0
  template:
    metadata: {labels: {b: pod}}
    spec:
      containers: [{resources: {requests: {cpu: "2"}}}]
`)
	f, err := load(t, "--template-yaml", job, "--queue", "cpu", "--credentials-secret", "c")
	assert.NilError(t, err)
	j := build(t, f, "cpu")
	assert.Equal(t, j.Spec.Template.Labels["a"], "job")
	assert.Equal(t, j.Spec.Template.Labels["b"], "pod")
	assert.Assert(t, j.Spec.Template.Spec.Containers[0].Resources.Requests.Cpu().Equal(resource.MustParse("2")))

	overrides := write(t, "overrides.yaml", `spec:
  containers:
    - {resources: {limits: {nvidia.com/gpu: 2}}}
    - {resources: {Requests: {memory: 8Gi}}}
  nodeSelector: {pool: gpu}
`)
	f, err = load(t, "--overrides-yaml", overrides, "--queue", "cpu", "--credentials-secret", "c")
	assert.NilError(t, err)
	j = build(t, f, "cpu")
	c := j.Spec.Template.Spec.Containers[0]
	assert.Equal(t, len(j.Spec.Template.Spec.Containers), 1) // the containers give only resources
	assert.Assert(t, c.Resources.Limits["nvidia.com/gpu"].Equal(resource.MustParse("2")))
	assert.Assert(t, c.Resources.Requests.Memory().Equal(resource.MustParse("8Gi")))
	assert.DeepEqual(t, j.Spec.Template.Spec.NodeSelector, map[string]string{"pool": "gpu"})

	for content, want := range map[string]string{
		"kind: Job\nspec: {backoffLimit: 3, template: {spec: {}}}":  "spec.backoffLimit: 3 has no equivalent",
		"kind: Job\nspec: {activeDeadlineSeconds: 9, template: {}}": "spec.activeDeadlineSeconds: a Job field with no equivalent",
		"kind: Deployment\nspec: {}":                                "kind Deployment: want a Pod or a Job",
		"metadata: {finalizers: [x]}":                               "metadata.finalizers has no equivalent",
		"status: {}":                                                "status: not a field of a Pod or Job manifest",
	} {
		_, err := load(t, "--template-yaml", write(t, "t.yaml", content), "--queue", "cpu", "--credentials-secret", "c")
		assert.ErrorContains(t, err, want, content)
	}
	f, err = load(t, "--template-yaml", write(t, "t.yaml", "spec: {containers: [{resources: {limits: {memory: 12 GB}}}]}"), "--queue", "cpu", "--credentials-secret", "c")
	assert.NilError(t, err)
	assert.ErrorContains(t, CheckTemplates(f), `queue "cpu": basePodTemplate.resources.limits.memory: "12 GB" is not a valid quantity`)
	_, err = load(t, "--template-yaml", write(t, "t.yaml", pythonTemplate), "--namespace", "other", "--queue", "cpu", "--credentials-secret", "c")
	assert.ErrorContains(t, err, `--namespace "other" and the template's metadata.namespace "ml-team" differ`)
}

func build(t *testing.T, f *config.File, queue string) *batchv1.Job {
	t.Helper()
	b, err := podtemplate.NewBuilder(f)
	assert.NilError(t, err)
	obj, err := b.Build(queue, podtemplate.Input{
		Task:    map[string]any{"id": "t1", "name": "train", "container": map[string]any{"image": "python:3.12"}},
		QueueID: "q1", QueueName: queue,
	})
	assert.NilError(t, err)
	job, ok := obj.(*batchv1.Job)
	assert.Assert(t, ok, "%T", obj)
	return job
}

func TestCredentialsComeFromASecretTheUserNames(t *testing.T) {
	_, err := load(t, "--queue", "cpu")
	assert.ErrorContains(t, err, "no credentials Secret for the task pods")
	assert.ErrorContains(t, err, "kubectl -n clearml create secret generic clearml-glue-credentials")
	assert.ErrorContains(t, err, "--credentials-secret clearml-glue-credentials")

	// Keys in the values make the chart render a Secret of its own, which nothing would create.
	values := write(t, "values.yaml", "clearml: {agentk8sglueKey: k, agentk8sglueSecret: s}\n")
	_, err = load(t, "--values", values, "--queue", "cpu")
	assert.ErrorContains(t, err, "the values set clearml.agentk8sglueKey/agentk8sglueSecret")
	assert.ErrorContains(t, err, "--credentials-secret")

	values = write(t, "values.yaml", "clearml: {clearmlConfig: 'sdk {}'}\n")
	_, err = load(t, "--values", values, "--queue", "cpu", "--credentials-secret", "c")
	assert.ErrorContains(t, err, "give the file with --pod-clearml-conf FILE instead")

	values = write(t, "values.yaml", "clearml: {existingAgentk8sglueSecret: from-values}\n")
	f, err := load(t, "--values", values, "--queue", "cpu")
	assert.NilError(t, err)
	assert.Equal(t, f.ClearML.CredentialsSecret, "from-values")

	glue := write(t, "glue.yaml", "namespace: ml\nqueue: cpu\n")
	_, err = load(t, "--config", glue)
	assert.ErrorContains(t, err, "names no credentials Secret (clearml.credentialsSecret)")
	glue = write(t, "glue.yaml", "namespace: ml\nqueue: cpu\nclearml: {credentialsSecret: c}\n")
	f, err = load(t, "--config", glue)
	assert.NilError(t, err)
	assert.Equal(t, f.Namespace, "ml")
}

func TestCredentialsSecretIsCheckedInTheCluster(t *testing.T) {
	cs := fake.NewClientset()
	l := &Loader{Flags: parse(t, "--queue", "cpu", "--credentials-secret", "creds", "--namespace", "ml"), Server: server, Cluster: cs}
	ctx := context.Background()
	_, err := l.Load(ctx)
	assert.ErrorContains(t, err, "the credentials Secret ml/creds does not exist")
	_, err = cs.CoreV1().Secrets("ml").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "ml"},
		Data: map[string][]byte{config.CredentialsAccessKeyKey: []byte("k")}}, metav1.CreateOptions{})
	assert.NilError(t, err)
	_, err = l.Load(ctx)
	assert.ErrorContains(t, err, "the credentials Secret ml/creds has no agentk8sglue_secret")
}

func TestPodClearMLConfIsKeptInASecret(t *testing.T) {
	ctx := context.Background()
	conf := write(t, "pod.conf", "sdk { development { default_output_uri: \"s3://bucket\" } }\n")
	creds := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "ml"},
		Data: map[string][]byte{config.CredentialsAccessKeyKey: []byte("k"), config.CredentialsSecretKeyKey: []byte("s")}}
	cs := fake.NewClientset(creds)
	l := &Loader{Flags: parse(t, "--queue", "cpu", "--credentials-secret", "creds", "--namespace", "ml", "--pod-clearml-conf", conf),
		Server: server, Cluster: cs}
	f, err := l.Load(ctx)
	assert.NilError(t, err)
	assert.Equal(t, f.ClearML.ConfigSecret, "clearml-agent-pod-clearml-conf")
	s, err := cs.CoreV1().Secrets("ml").Get(ctx, f.ClearML.ConfigSecret, metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, string(s.Data[config.ConfigSecretKey]), "sdk { development { default_output_uri: \"s3://bucket\" } }\n")
	assert.Assert(t, strings.Contains(strings.Join(l.Paths(), " "), conf), "pod conf not watched")

	assert.NilError(t, os.WriteFile(conf, []byte("sdk {}\n"), 0o600))
	_, err = l.Load(ctx)
	assert.NilError(t, err)
	s, _ = cs.CoreV1().Secrets("ml").Get(ctx, f.ClearML.ConfigSecret, metav1.GetOptions{})
	assert.Equal(t, string(s.Data[config.ConfigSecretKey]), "sdk {}\n")

	// A Secret of that name the glue did not make is never overwritten.
	s.Labels = nil
	_, err = cs.CoreV1().Secrets("ml").Update(ctx, s, metav1.UpdateOptions{})
	assert.NilError(t, err)
	_, err = l.Load(ctx)
	assert.ErrorContains(t, err, "exists and was not made by clearml-glue")

	values := write(t, "values.yaml", "clearml: {existingClearmlConfigSecret: mine}\n")
	_, err = load(t, "--values", values, "--queue", "cpu", "--credentials-secret", "c", "--pod-clearml-conf", conf)
	assert.ErrorContains(t, err, "both give the task pods a clearml.conf")
}

func TestQueueFlagAndQueuesInValues(t *testing.T) {
	values := write(t, "values.yaml", "agentk8sglue:\n  queues: {gpu: {}, cpu: {}}\n")
	_, err := load(t, "--values", values, "--queue", "gpu", "--credentials-secret", "c")
	assert.ErrorContains(t, err, `--queue "gpu" and agentk8sglue.queues (cpu, gpu) both name the queues to serve`)
	f, err := load(t, "--values", values, "--credentials-secret", "c")
	assert.NilError(t, err)
	assert.DeepEqual(t, f.QueueNames(), []string{"cpu", "gpu"})
}

func TestContainerBashScript(t *testing.T) {
	script := write(t, "start.sh", "echo {task_id}\nclearml-agent execute --id {task_id}\n")
	f, err := load(t, "--container-bash-script", script, "--queue", "cpu", "--credentials-secret", "c")
	assert.NilError(t, err)
	assert.Equal(t, f.ContainerCustomBashScript, "echo {task_id}\nclearml-agent execute --id {task_id}\n")
}
