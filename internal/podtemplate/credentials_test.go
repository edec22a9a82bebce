package podtemplate

import (
	"slices"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

const credentialsConfig = `
namespace: ml
queue: cpu-queue
clearml:
  credentialsSecret: glue-credentials
  configSecret: glue-conf
`

// buildPodSpec builds the task of minimal.json for cpu-queue and returns its pod spec.
func buildPodSpec(t *testing.T, cfg string, in func(*Input)) *corev1.PodSpec {
	t.Helper()
	b := newBuilder(t, parseConfig(t, cfg))
	input := input(loadTask(t, "minimal.json"))
	if in != nil {
		in(&input)
	}
	obj, err := b.Build("cpu-queue", input)
	assert.NilError(t, err)
	return &obj.(*batchv1.Job).Spec.Template.Spec
}

func envOf(c corev1.Container) map[string]corev1.EnvVar {
	m := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		m[e.Name] = e
	}
	return m
}

func secretRef(e corev1.EnvVar) string {
	if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
		return ""
	}
	return e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
}

func TestTaskCredentials(t *testing.T) {
	taskID := loadTask(t, "minimal.json")["id"].(string)
	tests := map[string]struct {
		extra   string
		in      func(*Input)
		want    map[string]string // env name -> secret/key
		absent  []string
		secrets []string // every Secret the pod can read
	}{
		"glue identity (the open-source chart's)": {
			want:   map[string]string{"CLEARML_API_ACCESS_KEY": "glue-credentials/agentk8sglue_key", "CLEARML_API_SECRET_KEY": "glue-credentials/agentk8sglue_secret"},
			absent: []string{"CLEARML_AUTH_TOKEN"}, secrets: []string{"glue-credentials", "glue-conf"},
		},
		"task credentials": {
			extra:  "  taskCredentialsSecret: task-credentials\n",
			want:   map[string]string{"CLEARML_API_ACCESS_KEY": "task-credentials/access_key", "CLEARML_API_SECRET_KEY": "task-credentials/secret_key"},
			absent: []string{"CLEARML_AUTH_TOKEN"}, secrets: []string{"task-credentials", "glue-conf"},
		},
		"owner token": {
			extra:   "useOwnerToken: true\n",
			in:      func(in *Input) { in.OwnerTokenSecret = OwnerTokenSecretName(taskID, "x7k2p") },
			want:    map[string]string{"CLEARML_AUTH_TOKEN": "clearml-id-" + taskID + "-token-x7k2p/token"},
			absent:  []string{"CLEARML_API_ACCESS_KEY", "CLEARML_API_SECRET_KEY"},
			secrets: []string{"clearml-id-" + taskID + "-token-x7k2p", "glue-conf"},
		},
		"owner token, default name (preview)": {
			extra:  "useOwnerToken: true\n",
			want:   map[string]string{"CLEARML_AUTH_TOKEN": "clearml-id-" + taskID + "-token/token"},
			absent: []string{"CLEARML_API_ACCESS_KEY", "CLEARML_API_SECRET_KEY"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := credentialsConfig
			if strings.HasPrefix(tc.extra, "  ") {
				cfg += tc.extra
			} else {
				cfg = tc.extra + cfg
			}
			spec := buildPodSpec(t, cfg, tc.in)
			env := envOf(spec.Containers[0])
			for name, want := range tc.want {
				assert.Equal(t, secretRef(env[name]), want, name)
				assert.Equal(t, env[name].Value, "", "%s is never a value", name)
			}
			for _, name := range tc.absent {
				_, ok := env[name]
				assert.Assert(t, !ok, "%s must not be set", name)
			}
			if tc.secrets != nil {
				assert.DeepEqual(t, SecretNames(spec), tc.secrets)
			}
		})
	}
}

// TestGlueSecretRefused: once task pods have an identity of their own, a template that reads
// the glue's credentials Secret is refused wherever it does.
func TestGlueSecretRefused(t *testing.T) {
	refs := map[string]string{
		"env": `
  env:
    - name: KEY
      valueFrom: {secretKeyRef: {name: glue-credentials, key: agentk8sglue_key}}`,
		"envFrom": `
  container:
    envFrom: [{secretRef: {name: glue-credentials}}]`,
		"volume": `
  volumes: [{name: creds, secret: {secretName: glue-credentials}}]`,
		"projected": `
  volumes: [{name: creds, projected: {sources: [{secret: {name: glue-credentials}}]}}]`,
		"init container": `
  initContainers: [{name: init, image: busybox, env: [{name: K, valueFrom: {secretKeyRef: {name: glue-credentials, key: k}}}]}]`,
	}
	for _, mode := range []string{"useOwnerToken: true\n", "clearml: {credentialsSecret: glue-credentials, taskCredentialsSecret: task-credentials}\n"} {
		for name, tmpl := range refs {
			t.Run(strings.Fields(mode)[0]+" "+name, func(t *testing.T) {
				cfg := "namespace: ml\nqueue: cpu-queue\nbasePodTemplate:" + tmpl + "\n" + mode
				if !strings.HasPrefix(mode, "clearml") {
					cfg += "clearml: {credentialsSecret: glue-credentials}\n"
				}
				b, err := NewBuilder(parseConfig(t, cfg))
				assert.NilError(t, err)
				_, err = b.Build("cpu-queue", input(loadTask(t, "minimal.json")))
				assert.ErrorContains(t, err, `"glue-credentials" is the glue's own credentials Secret; task pods must not read it`)
			})
		}
	}
	t.Run("allowed while task pods carry the glue's identity", func(t *testing.T) {
		cfg := "namespace: ml\nqueue: cpu-queue\nbasePodTemplate:" + refs["volume"] + "\nclearml: {credentialsSecret: glue-credentials}\n"
		spec := buildPodSpec(t, cfg, nil)
		assert.Assert(t, slices.Contains(SecretNames(spec), "glue-credentials"))
	})
}
