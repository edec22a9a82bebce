package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"github.com/clearml-glue/clearml-glue/internal/clearml/podagent"
	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
)

// Issue #17: no task pod holds the glue's own identity once clearml.taskCredentials or
// agentk8sglue.useOwnerToken is set.

// assertNoGlueIdentity checks what a task pod spec can reach: no environment value holds the
// glue's key or secret, no reference names the glue's credentials Secret, and no Secret it can
// read (env, envFrom, volumes, projected volumes, pull Secrets) holds them either.
func (e *env) assertNoGlueIdentity(where string, spec *corev1.PodSpec) {
	e.t.Helper()
	glueSecret := e.glueConfig().ClearML.CredentialsSecret
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for _, c := range cs {
			for _, v := range c.Env {
				assert.Assert(e.t, !strings.Contains(v.Value, accessKey) && !strings.Contains(v.Value, secretKey),
					"%s: env %s holds a glue credential", where, v.Name)
				assert.Assert(e.t, v.Name != "CLEARML_API_ACCESS_KEY" || v.ValueFrom == nil || v.ValueFrom.SecretKeyRef == nil ||
					v.ValueFrom.SecretKeyRef.Name != glueSecret, "%s: %s from the glue's Secret", where, v.Name)
			}
		}
	}
	names := podtemplate.SecretNames(spec)
	assert.Assert(e.t, !slices.Contains(names, glueSecret), "%s references the glue's Secret %s: %v", where, glueSecret, names)
	for _, name := range names {
		s, err := e.cs.CoreV1().Secrets(e.ns).Get(context.Background(), name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		assert.NilError(e.t, err)
		for key, value := range s.Data {
			assert.Assert(e.t, !strings.Contains(string(value), accessKey) && !strings.Contains(string(value), secretKey),
				"%s: Secret %s key %s holds a glue credential", where, name, key)
		}
	}
}

// glueConfig is the glue configuration the chart rendered into the release's ConfigMap.
func (e *env) glueConfig() *config.File {
	e.t.Helper()
	data := e.manifestObject("ConfigMap")["data"].(map[string]any)[config.FileKey].(string)
	f, err := config.Parse([]byte(data), "release ConfigMap")
	assert.NilError(e.t, err)
	return f
}

// taskPod waits for the task's pod and returns it.
func (e *env) taskPod(id string) *corev1.Pod {
	e.t.Helper()
	name := e.podOf(id)
	pod, err := e.cs.CoreV1().Pods(e.ns).Get(context.Background(), name, metav1.GetOptions{})
	assert.NilError(e.t, err)
	return pod
}

// everywhere is what must never hold a token: the glue's logs, the namespace's Events, the
// task's log, and the objects the glue created.
func (e *env) everywhere(id string, objs ...any) map[string]string {
	e.t.Helper()
	events, err := e.cs.CoreV1().Events(e.ns).List(context.Background(), metav1.ListOptions{})
	assert.NilError(e.t, err)
	var texts []string
	for _, ev := range events.Items {
		texts = append(texts, ev.Reason, ev.Message)
	}
	task := e.taskState(id)
	out := map[string]string{
		"glue logs": e.logs.all(), "Events": strings.Join(texts, "\n"), "task log": strings.Join(e.emu.TaskLog(id), "\n"),
		"task status": task.StatusReason + " " + task.StatusMessage,
	}
	for i, o := range objs {
		data, err := json.Marshal(o)
		assert.NilError(e.t, err)
		out[fmt.Sprintf("object %d (%T)", i, o)] = string(data)
	}
	return out
}

func TestIdentityOwnerToken(t *testing.T) {
	emu := emulator.NewTestServer(t, emulator.Options{AccessKey: accessKey, SecretKey: secretKey, Role: "admin"})
	e := newEnvOn(t, emu, `
clearml:
  clearmlConfig: |
    sdk { development { default_output_uri: "s3://models/" } }
agentk8sglue:
  useOwnerToken: true
  queues:
    training:
      templateOverrides:
        labels: {e2e.glue/behavior: hold}
        # The simulated agent waits: the test plays it with the pod's own token.
        annotations: {e2e.glue/agent-delay: 1h}
`)
	ctx := context.Background()
	t.Run("the Role creates Secrets and may not list, change or read one not named in the config", func(t *testing.T) {
		for verb, want := range map[string]bool{"create": true, "get": false, "list": false, "watch": false, "update": false, "patch": false, "delete": false} {
			allowed, why := e.reviewServiceAccount(authzv1.ResourceAttributes{Namespace: e.ns, Verb: verb, Resource: "secrets"})
			assert.Equal(t, allowed, want, "%s secrets: %s", verb, why)
		}
	})
	e.startGlue("glue-0")

	owner := e.emu.AddUser(emulator.User{Name: "Ada Lovelace"})
	id := e.task("training", "train as Ada", emulator.TaskSpec{User: owner})
	job := e.waitJob(id, 30*time.Second)

	// The pod reads CLEARML_AUTH_TOKEN from the Secret of this launch, which the Job owns.
	var secretName string
	for _, v := range job.Spec.Template.Spec.Containers[0].Env {
		if v.Name == podtemplate.OwnerTokenEnv {
			secretName = v.ValueFrom.SecretKeyRef.Name
		}
	}
	assert.Assert(t, strings.HasPrefix(secretName, podtemplate.OwnerTokenSecretName(id, "")+"-"), "token Secret %q", secretName)
	var secret *corev1.Secret
	e.waitFor(30*time.Second, "the owner token Secret", func() bool {
		var err error
		secret, err = e.cs.CoreV1().Secrets(e.ns).Get(ctx, secretName, metav1.GetOptions{})
		return err == nil
	}, func() string { return "no Secret " + secretName })
	assert.DeepEqual(t, secret.OwnerReferences, []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID}})
	token := string(secret.Data[podtemplate.OwnerTokenKey])
	assert.Assert(t, token != "")

	// Neither the Job nor its pod can reach the glue's key or secret.
	e.assertNoGlueIdentity("Job", &job.Spec.Template.Spec)
	pod := e.taskPod(id)
	e.assertNoGlueIdentity("Pod", &pod.Spec)

	// Calls made with the pod's token act as the task's owner.
	agent, err := clearml.New(clearml.Config{APIHost: e.emu.URL(), AuthToken: token, WorkerHeader: "pod-agent"})
	assert.NilError(t, err)
	var me struct {
		User struct {
			ID, Name, Role string
		} `json:"user"`
	}
	assert.NilError(t, agent.Call(ctx, "users.get_current_user", nil, &me))
	assert.Equal(t, me.User.ID, owner)
	assert.Equal(t, me.User.Role, "user", "the owner's own role, not the glue's admin")
	started, err := podagent.Start(ctx, agent, id)
	assert.NilError(t, err)
	assert.Assert(t, started)
	assert.Equal(t, e.taskState(id).LastChangedBy, owner, "the agent's status change is the owner's")
	assert.NilError(t, podagent.Finish(ctx, agent, id, 0))
	e.waitStatus(id, clearml.StatusCompleted, 30*time.Second)

	// The token is nowhere else.
	job, err = e.job(id)
	assert.NilError(t, err)
	for where, text := range e.everywhere(id, job, pod) {
		assert.Assert(t, !strings.Contains(text, token), "the owner's token is in %s", where)
	}
	assert.Assert(t, strings.Contains(e.logs.all(), "owner token Secret created"), "no glue log captured")

	// The Secret dies with the Job.
	e.deleteJob(id)
	e.waitFor(60*time.Second, "the owner token Secret deleted with its Job", func() bool {
		_, err := e.cs.CoreV1().Secrets(e.ns).Get(ctx, secretName, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, func() string { return "Secret " + secretName + " still there" })

	t.Run("an owner the glue may not impersonate fails the task, naming the owner", func(t *testing.T) {
		stranger := e.emu.AddUser(emulator.User{Name: "Grace Hopper", Company: "another-company"})
		id := e.task("training", "not ours to impersonate", emulator.TaskSpec{User: stranger})
		task := e.waitStatus(id, clearml.StatusFailed, 30*time.Second)
		assert.Assert(t, strings.Contains(task.StatusReason, "cannot run the task as its owner, user "+stranger), task.StatusReason)
		assert.Assert(t, strings.Contains(task.StatusReason, "Impersonation error (unknown user)"), task.StatusReason)
		assert.Assert(t, slices.ContainsFunc(e.emu.TaskLog(id), func(l string) bool { return strings.Contains(l, "user "+stranger) }),
			"task log: %q", e.emu.TaskLog(id))
		_, err := e.job(id)
		assert.Assert(t, apierrors.IsNotFound(err), "a Job was created: %v", err)
		secrets, err := e.cs.CoreV1().Secrets(e.ns).List(ctx, metav1.ListOptions{LabelSelector: podtemplate.LabelTaskID + "=" + id})
		assert.NilError(t, err)
		assert.Equal(t, len(secrets.Items), 0)
	})
}

func TestIdentityTaskCredentials(t *testing.T) {
	emu := emulator.NewTestServer(t, emulator.Options{AccessKey: accessKey, SecretKey: secretKey})
	tasks := emu.AddUser(emulator.User{Name: "Task Runner"})
	emu.AddCredentials(emulator.Credentials{AccessKey: "TASK-ACCESS-KEY", SecretKey: "task-secret-key", User: tasks})
	e := newEnvOn(t, emu, `
clearml:
  taskCredentials:
    accessKey: TASK-ACCESS-KEY
    secretKey: task-secret-key
agentk8sglue:
  queues:
    cpu:
      templateOverrides:
        annotations: {e2e.glue/run-ms: "300ms"}
`)
	e.startGlue("glue-0")
	id := e.task("cpu", "train", emulator.TaskSpec{})
	job := e.waitJob(id, 30*time.Second)

	env := map[string]corev1.EnvVar{}
	for _, v := range job.Spec.Template.Spec.Containers[0].Env {
		env[v.Name] = v
	}
	taskSecret := e.glueConfig().ClearML.TaskCredentialsSecret
	assert.Assert(t, taskSecret != "")
	assert.Equal(t, env["CLEARML_API_ACCESS_KEY"].ValueFrom.SecretKeyRef.Name, taskSecret)
	assert.Equal(t, env["CLEARML_API_SECRET_KEY"].ValueFrom.SecretKeyRef.Name, taskSecret)
	e.assertNoGlueIdentity("Job", &job.Spec.Template.Spec)

	// The pod's key is the task user's: calls made with it act as that user.
	s, err := e.cs.CoreV1().Secrets(e.ns).Get(context.Background(), taskSecret, metav1.GetOptions{})
	assert.NilError(t, err)
	agent, err := clearml.New(clearml.Config{APIHost: e.emu.URL(), AccessKey: string(s.Data[config.TaskCredentialsAccessKeyKey]),
		SecretKey: string(s.Data[config.TaskCredentialsSecretKeyKey])})
	assert.NilError(t, err)
	assert.NilError(t, agent.Login(context.Background()))
	claims, _ := agent.Claims()
	assert.Equal(t, claims.Identity.User, tasks)

	e.waitStatus(id, clearml.StatusCompleted, 30*time.Second)
	assert.Assert(t, !strings.Contains(e.logs.all(), "task pods carry the glue's own ClearML credentials"), "warned although task pods have their own key")
	assert.Assert(t, strings.Contains(e.logs.all(), "task pods use their own ClearML credentials"))
	e.assertNoSecretLeaked(job)
}
