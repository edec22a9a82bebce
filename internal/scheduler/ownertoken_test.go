package scheduler

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/clearml-glue/clearml-glue/internal/admission"
	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
	"github.com/clearml-glue/clearml-glue/internal/taskops"
)

// syncBuffer is a log sink safe for the launches' goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ownerRig is a rig whose glue runs with useOwnerToken against an emulator where its key has
// role (admin may impersonate), with every log line kept.
type ownerRig struct {
	*rig
	logs *syncBuffer
}

func newOwnerRig(t *testing.T, role string) *ownerRig {
	t.Helper()
	emu := emulator.NewTestServer(t, emulator.Options{Role: role})
	_, err := emu.CreateQueue("work")
	assert.NilError(t, err)
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	client, err := clearml.New(clearml.Config{APIHost: emu.URL(), AccessKey: emulator.DefaultAccessKey, SecretKey: emulator.DefaultSecretKey,
		RetryInitialInterval: time.Millisecond, RetryMaxInterval: 10 * time.Millisecond, MaxRetryElapsed: time.Second, Logger: log})
	assert.NilError(t, err)
	f := config.Default()
	f.Namespace, f.Queue, f.AgentName, f.WorkerID = "ml", "work", "glue", "glue"
	f.UseOwnerToken = true
	f.ClearML.CredentialsSecret = "glue-credentials"
	cs := fake.NewClientset()
	// The API server gives every created object a UID; the fake one does not.
	cs.PrependReactor("create", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if o, ok := a.(k8stesting.CreateAction).GetObject().(metav1.Object); ok && o.GetUID() == "" {
			o.SetUID(types.UID("uid-" + o.GetName()))
		}
		return false, nil, nil
	})
	b, err := podtemplate.NewBuilder(&f)
	assert.NilError(t, err)
	snap := &Snapshot{File: &f, Builder: b}
	opts := Options{Client: client, Clientset: cs, Tracker: admission.NewTracker(), Logger: log,
		Ops: taskops.New(client, "glue", f.PendingQueue, log), CreateRetry: 500 * time.Millisecond, RecoverSettle: 50 * time.Millisecond,
		Config: func() *Snapshot { return snap }}
	return &ownerRig{rig: &rig{t: t, emu: emu, cs: cs, sched: New(opts), snap: snap}, logs: logs}
}

// pullAs enqueues a task owned by owner and runs one cycle.
func (r *ownerRig) pullAs(owner, name string) string {
	r.t.Helper()
	id := r.emu.CreateTask(emulator.TaskSpec{Name: name, User: owner})
	assert.NilError(r.t, r.emu.Enqueue(id, "work"))
	_, err := r.sched.cycle(context.Background())
	assert.NilError(r.t, err)
	r.sched.wg.Wait()
	return id
}

func (r *ownerRig) secrets() []corev1.Secret {
	l, err := r.cs.CoreV1().Secrets("ml").List(context.Background(), metav1.ListOptions{})
	assert.NilError(r.t, err)
	return l.Items
}

func TestOwnerToken(t *testing.T) {
	t.Run("should hand the pod its owner's token through a Secret the Job owns, and nothing of the glue's", func(t *testing.T) {
		r := newOwnerRig(t, "admin")
		owner := r.emu.AddUser(emulator.User{Name: "Ada Lovelace"})
		id := r.pullAs(owner, "train")

		jobs := r.jobs()
		assert.Equal(t, len(jobs), 1)
		job := jobs[0]
		secrets := r.secrets()
		assert.Equal(t, len(secrets), 1)
		secret := secrets[0]
		assert.Assert(t, strings.HasPrefix(secret.Name, podtemplate.OwnerTokenSecretName(id, "")+"-"), secret.Name)
		assert.DeepEqual(t, secret.OwnerReferences, []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID}})
		assert.Assert(t, job.UID != "")
		assert.Equal(t, secret.Labels[podtemplate.LabelTaskID], id)
		assert.Assert(t, secret.Immutable != nil && *secret.Immutable)

		token := string(secret.Data[podtemplate.OwnerTokenKey])
		pod, err := clearml.New(clearml.Config{APIHost: r.emu.URL(), AuthToken: token})
		assert.NilError(t, err)
		claims, _ := pod.Claims()
		assert.Equal(t, claims.Identity.User, owner, "the pod acts as the task's owner")

		c := job.Spec.Template.Spec.Containers[0]
		var names []string
		for _, e := range c.Env {
			names = append(names, e.Name)
			if e.Name == podtemplate.OwnerTokenEnv {
				assert.Equal(t, e.ValueFrom.SecretKeyRef.Name, secret.Name)
				assert.Equal(t, e.ValueFrom.SecretKeyRef.Key, podtemplate.OwnerTokenKey)
			}
		}
		assert.Assert(t, !strings.Contains(strings.Join(names, " "), "CLEARML_API_ACCESS_KEY"), "no glue key: %v", names)
		assert.DeepEqual(t, podtemplate.SecretNames(&job.Spec.Template.Spec), []string{secret.Name})

		data, err := json.Marshal(job)
		assert.NilError(t, err)
		for where, text := range map[string]string{"the Job": string(data), "the glue's log": r.logs.String(),
			"the task log": strings.Join(r.emu.TaskLog(id), "\n")} {
			assert.Assert(t, !strings.Contains(text, token), "the token is in %s", where)
		}
		assert.Equal(t, r.task(id).Status, clearml.StatusQueued)
		assert.DeepEqual(t, r.emu.QueueEntries("k8s_scheduler"), []string{id})
	})

	t.Run("should fail a task whose owner cannot be impersonated, naming the owner", func(t *testing.T) {
		r := newOwnerRig(t, "admin")
		stranger := r.emu.AddUser(emulator.User{Name: "Elsewhere", Company: "other-company"})
		id := r.pullAs(stranger, "theirs")
		task := r.task(id)
		assert.Equal(t, task.Status, clearml.StatusFailed)
		assert.Equal(t, task.StatusReason, clearml.GlueErrorReasonPrefix+"cannot run the task as its owner, user "+stranger+
			" (agentk8sglue.useOwnerToken): ClearML answered 400/6 Impersonation error (unknown user): id="+stranger+", company=d1bd92a3b039400cbafc60a7a5b1e52b")
		assert.Equal(t, len(r.jobs()), 0)
		assert.Equal(t, len(r.secrets()), 0)
		assert.Assert(t, !r.sched.opts.Tracker.Has(id))
	})

	t.Run("should fail every task when the glue's role may not impersonate, and say so at start", func(t *testing.T) {
		r := newOwnerRig(t, "user")
		assert.NilError(t, r.sched.opts.Client.Login(context.Background()))
		_, err := r.sched.QueueIDs(context.Background())
		assert.NilError(t, err)
		assert.Assert(t, strings.Contains(r.logs.String(), "the glue's ClearML key may not impersonate users"), r.logs.String())
		owner := r.emu.AddUser(emulator.User{Name: "Ada"})
		id := r.pullAs(owner, "train")
		assert.Assert(t, strings.Contains(r.task(id).StatusReason, "impersonation not allowed): role=user"), r.task(id).StatusReason)
		assert.Equal(t, len(r.jobs()), 0)
	})

	t.Run("should give the task back when ClearML cannot answer the login", func(t *testing.T) {
		r := newOwnerRig(t, "admin")
		owner := r.emu.AddUser(emulator.User{Name: "Ada"})
		assert.NilError(t, r.sched.opts.Client.Login(context.Background()))
		r.emu.InjectFault(emulator.Fault{Endpoint: "auth.login", Status: 503, Count: 1000})
		id := r.pullAs(owner, "train")
		r.emu.ClearFaults()
		assert.DeepEqual(t, r.emu.QueueEntries("work"), []string{id})
		assert.Equal(t, r.task(id).Status, clearml.StatusQueued)
		assert.Equal(t, len(r.jobs()), 0)
	})

	t.Run("should delete the object and fail the task when its Secret cannot be created", func(t *testing.T) {
		r := newOwnerRig(t, "admin")
		r.cs.PrependReactor("create", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(corev1.Resource("secrets"), "", errQuota)
		})
		owner := r.emu.AddUser(emulator.User{Name: "Ada"})
		id := r.pullAs(owner, "train")
		assert.Equal(t, len(r.jobs()), 0)
		task := r.task(id)
		assert.Equal(t, task.Status, clearml.StatusFailed)
		assert.Assert(t, strings.Contains(task.StatusReason, "could not create Secret "+podtemplate.OwnerTokenSecretName(id, "")), task.StatusReason)
		assert.Assert(t, strings.Contains(task.StatusReason, "forbidden"), task.StatusReason)
	})

	t.Run("should make a bare Pod the owner of its token Secret", func(t *testing.T) {
		r := newOwnerRig(t, "admin")
		r.snap.File.TaskKind = config.TaskKindPod
		owner := r.emu.AddUser(emulator.User{Name: "Ada"})
		id := r.pullAs(owner, "train")
		pod, err := r.cs.CoreV1().Pods("ml").Get(context.Background(), podtemplate.ObjectName(id), metav1.GetOptions{})
		assert.NilError(t, err)
		secrets := r.secrets()
		assert.Equal(t, len(secrets), 1)
		assert.DeepEqual(t, secrets[0].OwnerReferences, []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID}})
		assert.DeepEqual(t, podtemplate.SecretNames(&pod.Spec), []string{secrets[0].Name})
	})

	t.Run("should give each launch a Secret name of its own", func(t *testing.T) {
		seen := map[string]bool{}
		for range 50 {
			s := ownerTokenSuffix()
			assert.Equal(t, len(s), 5)
			seen[s] = true
		}
		assert.Assert(t, len(seen) > 45)
	})
}

func TestNoteIdentity(t *testing.T) {
	for identity, want := range map[string]string{
		config.TaskIdentityGlue:  "task pods carry the glue's own ClearML credentials",
		config.TaskIdentityTask:  "task pods use their own ClearML credentials",
		config.TaskIdentityOwner: "task pods run as their task's owner",
	} {
		t.Run(identity, func(t *testing.T) {
			r := newOwnerRig(t, "admin")
			f := *r.snap.File
			f.UseOwnerToken = identity == config.TaskIdentityOwner
			if identity == config.TaskIdentityTask {
				f.ClearML.TaskCredentialsSecret = "task-credentials"
			}
			assert.NilError(t, r.sched.opts.Client.Login(context.Background()))
			r.sched.mu.Lock()
			r.sched.noteIdentity(&Snapshot{File: &f})
			r.sched.noteIdentity(&Snapshot{File: &f}) // a reload that changes nothing says nothing
			r.sched.mu.Unlock()
			assert.Equal(t, strings.Count(r.logs.String(), want), 1, r.logs.String())
		})
	}
}
