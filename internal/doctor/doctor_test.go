package doctor

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
)

type setup struct {
	settings config.Settings
	file     config.File
	objects  []runtime.Object
	deny     string // "verb resource" a SelfSubjectAccessReview refuses
	// loginFirst is Inputs.LoginFirst (the controller's way); findings must not depend on it.
	loginFirst bool
	client     *clearml.Client
}

func healthy(t *testing.T) (*emulator.Server, setup) {
	emu := emulator.NewTestServer(t, emulator.Options{})
	_, err := emu.CreateQueue("work")
	assert.NilError(t, err)
	f := config.Default()
	f.Namespace, f.Queue = "ml", "work"
	f.ClearML.CredentialsSecret = "glue-credentials"
	return emu, setup{
		settings: config.Settings{APIHost: emu.URL(), AccessKey: emulator.DefaultAccessKey, SecretKey: emulator.DefaultSecretKey,
			Namespace: "ml", ConfigMap: "glue"},
		file:    f,
		objects: []runtime.Object{&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "glue-credentials", Namespace: "ml"}}},
	}
}

func (s setup) run(t *testing.T) []Finding {
	t.Helper()
	cs := fake.NewClientset(s.objects...)
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		review := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		attrs := review.Spec.ResourceAttributes
		review.Status.Allowed = s.deny != attrs.Verb+" "+attrs.Resource
		return true, review, nil
	})
	b, err := podtemplate.NewBuilder(&s.file)
	assert.NilError(t, err)
	return Run(context.Background(), Inputs{Settings: s.settings, File: &s.file, Builder: b, Clientset: cs, LoginFirst: s.loginFirst, Client: s.client})
}

func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	addr := ln.Addr().String()
	assert.NilError(t, ln.Close())
	return addr
}

func TestDoctor(t *testing.T) {
	for name, tc := range map[string]struct {
		mod   func(*setup)
		check string
		want  []string // in the failed finding's detail or fix
	}{
		"should name the URL and its values key when nothing answers on the port": {
			mod:   func(s *setup) { s.settings.APIHost = "http://" + closedPort(t) },
			check: "ClearML API reachable",
			want:  []string{"nothing answers on 127.0.0.1 port", "agentk8sglue.apiServerUrlReference"},
		},
		"should say a name does not resolve": {
			mod:   func(s *setup) { s.settings.APIHost = "http://clearml-apiserver.invalid:8008" },
			check: "ClearML API reachable",
			want:  []string{"does not resolve", "agentk8sglue.apiServerUrlReference"},
		},
		"should name the credentials key, never the secret": {
			mod:   func(s *setup) { s.settings.SecretKey = "wrong-secret-value" },
			check: "ClearML credentials",
			want:  []string{"refused the access key and secret", "clearml.agentk8sglueKey"},
		},
		"should name createQueues for a missing queue": {
			mod:   func(s *setup) { s.file.Queue = "work,no-such-queue" },
			check: "queue no-such-queue",
			want:  []string{"no such queue", "agentk8sglue.createQueues"},
		},
		"should name the Secret's key when it is missing": {
			mod:   func(s *setup) { s.objects = nil },
			check: "Secret glue-credentials",
			want:  []string{"no Secret glue-credentials in namespace ml", "clearml.existingAgentk8sglueSecret"},
		},
		"should list a right the Role lacks": {
			mod:   func(s *setup) { s.deny = "delete jobs" },
			check: "Kubernetes permissions",
			want:  []string{"not allowed: delete jobs.batch in ml"},
		},
		"should name the queue whose template does not render": {
			mod: func(s *setup) {
				s.file.BasePodTemplate = map[string]any{"labels": map[string]any{"x": "{{ .Task.NoSuchField }}"}}
			},
			check: "template of queue work",
			want:  []string{"NoSuchField", "agentk8sglue.queues.work.templateOverrides"},
		},
	} {
		for _, loginFirst := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/loginFirst=%v", name, loginFirst), func(t *testing.T) {
				_, s := healthy(t)
				s.loginFirst = loginFirst
				tc.mod(&s)
				findings := s.run(t)
				bad := Failed(findings)
				assert.Equal(t, len(bad), 1, "failed findings:\n%s", Table(findings))
				assert.Equal(t, bad[0].Check, tc.check)
				text := bad[0].Detail + " " + bad[0].Fix
				for _, w := range tc.want {
					assert.Assert(t, strings.Contains(text, w), "%q lacks %q", text, w)
				}
				assert.Assert(t, !strings.Contains(Table(findings), "wrong-secret-value"))
			})
		}
	}
}

func TestDoctorHealthyInstallPassesEveryCheck(t *testing.T) {
	_, s := healthy(t)
	findings := s.run(t)
	assert.Equal(t, len(Failed(findings)), 0, Table(findings))
	var checks []string
	for _, f := range findings {
		checks = append(checks, f.Check)
	}
	assert.DeepEqual(t, checks, []string{"ClearML API reachable", "ClearML credentials", "ClearML server", "queue work",
		"pending queue k8s_scheduler", "Kubernetes permissions", "Secret glue-credentials", "template of queue work"})
}

// The controller runs the checks at every start: with LoginFirst a healthy install costs one
// login and one queues.get_all, whatever the number of queues (no debug.ping, no lookup per
// queue), and the login is the controller's own client's, which need not log in again.
func TestDoctorLoginFirstCostsTwoCallsForAnyNumberOfQueues(t *testing.T) {
	emu, s := healthy(t)
	var names []string
	for i := range 300 {
		name := fmt.Sprintf("queue-%03d", i)
		_, err := emu.CreateQueue(name)
		assert.NilError(t, err)
		names = append(names, name)
	}
	s.file.Queue = strings.Join(names, ",")
	s.loginFirst = true
	var err error
	s.client, err = clearml.New(clearml.Config{APIHost: emu.URL(), AccessKey: emulator.DefaultAccessKey, SecretKey: emulator.DefaultSecretKey})
	assert.NilError(t, err)
	emu.ResetCalls()
	findings := s.run(t)
	assert.Equal(t, len(Failed(findings)), 0, Table(findings))
	_, loggedIn := s.client.Claims()
	assert.Assert(t, loggedIn, "the controller's client was not the one that logged in")
	assert.Equal(t, emu.Calls("debug.ping"), 0)
	assert.Equal(t, emu.Calls("auth.login"), 1)
	assert.Equal(t, emu.Calls("queues.get_all"), 2, "300 names + the pending queue: two lookups of 250 names")
}
