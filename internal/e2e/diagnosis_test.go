package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/rest"

	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/controller"
	"github.com/clearml-glue/clearml-glue/internal/doctor/doctorcmd"
	"github.com/clearml-glue/clearml-glue/internal/metrics"
	"github.com/clearml-glue/clearml-glue/internal/testenv"
)

// diagnosedGlue is a controller run in-process with Probes the test reads.
type diagnosedGlue struct {
	probes   *metrics.Probes
	settings config.Settings
	started  time.Time
}

// startDiagnosedGlue runs a controller as the chart's ServiceAccount with settings s (as the
// chart's Deployment gives them, possibly edited by the test) and its own Probes.
func (e *env) startDiagnosedGlue(pod string, s config.Settings) *diagnosedGlue {
	e.t.Helper()
	g := &diagnosedGlue{probes: &metrics.Probes{}, settings: s, started: time.Now()}
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{e.t, pod}, e.logs), &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	cfg := e.serviceAccountConfig()
	cfg.UserAgent = testenv.UserAgent // a controller's requests, for the RBAC audit
	go func() {
		defer close(done)
		err := controller.Run(ctx, controller.Options{Settings: s, RESTConfig: cfg, Logger: logger, Probes: g.probes})
		if ctx.Err() == nil {
			// The glue must never exit on what the preflight reports.
			e.glueErrs <- fmt.Errorf("glue %s returned: %v", pod, err)
		}
	}()
	e.t.Cleanup(func() { cancel(); <-done })
	return g
}

// readyz answers /readyz as the glue's health port would.
func (g *diagnosedGlue) readyz() (int, string) {
	rec := httptest.NewRecorder()
	g.probes.Readyz(rec, httptest.NewRequest("GET", "/readyz", nil))
	return rec.Code, rec.Body.String()
}

// deploymentEvents are the messages of the Events of reason on the chart's Deployment that carry
// its UID (what `kubectl describe deployment` lists).
func (e *env) deploymentEvents(reason string) []string {
	e.t.Helper()
	dep, err := e.cs.AppsV1().Deployments(e.ns).Get(context.Background(), releaseName, metav1.GetOptions{})
	assert.NilError(e.t, err)
	list, err := e.cs.CoreV1().Events(e.ns).List(context.Background(), metav1.ListOptions{FieldSelector: fields.Set{
		"involvedObject.kind": "Deployment", "involvedObject.name": releaseName, "involvedObject.uid": string(dep.UID), "reason": reason,
	}.AsSelector().String()})
	assert.NilError(e.t, err)
	var out []string
	for _, ev := range list.Items {
		if ev.Type == corev1.EventTypeWarning || reason != controller.ReasonPreflightFailed {
			out = append(out, ev.Message)
		}
	}
	return out
}

// doctorFromLaptop runs `clearml-glue doctor --kubeconfig F --namespace NS` as a cluster admin
// with nothing in the environment: the URL and credentials come from the release (its ConfigMap
// and credentials Secret), the rights reviewed are those of the Deployment's ServiceAccount.
func (e *env) doctorFromLaptop() (string, error) {
	var out, errOut bytes.Buffer
	err := doctorcmd.Run(context.Background(), doctorcmd.Options{
		Args:   []string{"--kubeconfig", "admin.kubeconfig", "--namespace", e.ns},
		Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }, Home: e.t.TempDir(),
		RESTConfig: func(string) (*rest.Config, error) { return e.admin, nil },
	})
	return out.String() + errOut.String(), err
}

// doctor runs `clearml-glue doctor` as in the controller's pod (kubectl exec): the environment
// the Deployment gives it, the ServiceAccount's token.
func (e *env) doctor(s config.Settings, cfg *rest.Config) (string, error) {
	env := map[string]string{
		"GLUE_NAMESPACE": s.Namespace, "GLUE_CONFIGMAP": s.ConfigMap, "GLUE_DEPLOYMENT": s.Deployment,
		"CLEARML_API_HOST": s.APIHost, "CLEARML_API_ACCESS_KEY": s.AccessKey, "CLEARML_API_SECRET_KEY": s.SecretKey,
		"CLEARML_API_HOST_VERIFY_CERT": fmt.Sprint(s.VerifyCert), "GLUE_LEADER_ELECTION": fmt.Sprint(s.LeaderElection), "GLUE_LEASE_NAME": s.LeaseName,
	}
	var out, errOut bytes.Buffer
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = testenv.UserAgent // the clearml-glue binary's requests, for the RBAC audit
	err := doctorcmd.Run(context.Background(), doctorcmd.Options{
		Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return env[k] }, Home: e.t.TempDir(),
		RESTConfig: func(string) (*rest.Config, error) { return cfg, nil },
	})
	return out.String() + errOut.String(), err
}

func closedLocalPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	assert.NilError(t, ln.Close())
	return port
}

// TestDiagnosis: each way an install goes wrong yields its own message, naming the values key to
// change, in /readyz, in a Warning Event on the Deployment and in `clearml-glue doctor`; the
// glue never exits, and serves as soon as the value is fixed (helm upgrade or the missing object
// created), without a restart.
func TestDiagnosis(t *testing.T) {
	const wrongSecret = "wrong-secret-value-never-shown"
	cases := []struct {
		name   string
		values string
		// before edits the install before the glue starts; settings edits what the pod gets.
		before   func(e *env)
		settings func(e *env, s *config.Settings)
		want     []string
		// within bounds how long after the start the message must be in /readyz.
		within time.Duration
		fix    func(e *env)
	}{
		{
			name:   "wrong API port",
			values: fmt.Sprintf(`agentk8sglue: {apiServerUrlReference: "http://127.0.0.1:%d"}`, closedLocalPort(t)),
			want: []string{"ClearML API reachable", "nothing answers on 127.0.0.1 port", "connection refused",
				"fix: agentk8sglue.apiServerUrlReference"},
			// The chart's default poll interval (5 s); the first check runs at start.
			within: 5 * time.Second,
			fix:    func(e *env) { e.upgrade(fmt.Sprintf(`agentk8sglue: {apiServerUrlReference: %q}`, e.emu.URL())) },
		},
		{
			name:     "wrong credentials",
			values:   fmt.Sprintf(`clearml: {agentk8sglueSecret: %q}`, wrongSecret),
			settings: func(_ *env, s *config.Settings) { s.SecretKey = wrongSecret }, // what the pod's env gets from the Secret
			want:     []string{"ClearML credentials", "refused the access key and secret", "fix: clearml.agentk8sglueKey"},
			within:   5 * time.Second,
			fix:      func(e *env) { e.upgrade(fmt.Sprintf(`clearml: {agentk8sglueSecret: %q}`, secretKey)) },
		},
		{
			name:   "missing queue without createQueues",
			values: `agentk8sglue: {createQueues: false, queues: {no-such-queue: {}}}`,
			want:   []string{"queue no-such-queue", "no such queue on the ClearML server", "agentk8sglue.createQueues"},
			within: 5 * time.Second,
			fix:    func(e *env) { e.upgrade(`agentk8sglue: {createQueues: true}`) },
		},
		{
			name:   "missing Secret",
			values: `clearml: {existingClearmlConfigSecret: my-clearml-conf}`,
			want: []string{"Secret my-clearml-conf", "no Secret my-clearml-conf in namespace", "task pods that reference it cannot start",
				"fix: clearml.existingClearmlConfigSecret"},
			within: 5 * time.Second,
			fix:    func(e *env) { e.upgrade(`clearml: {existingClearmlConfigSecret: null}`) },
		},
		{
			name: "Role without a needed verb",
			before: func(e *env) {
				ctx := context.Background()
				role, err := e.cs.RbacV1().Roles(e.ns).Get(ctx, releaseName, metav1.GetOptions{})
				assert.NilError(e.t, err)
				for i, r := range role.Rules {
					if slices.Contains(r.Resources, "jobs") {
						role.Rules[i].Verbs = slices.DeleteFunc(slices.Clone(r.Verbs), func(v string) bool { return v == "delete" })
					}
				}
				_, err = e.cs.RbacV1().Roles(e.ns).Update(ctx, role, metav1.UpdateOptions{})
				assert.NilError(e.t, err)
			},
			want: []string{"Kubernetes permissions", "not allowed: delete jobs.batch in", "fix: the chart's Role"},
			// RBAC changes reach the authorizer through its informer; the first check may see the old Role.
			within: 15 * time.Second,
			// helm upgrade puts the chart's Role back (three-way merge of the live object).
			fix: func(e *env) { e.upgrade(`agentk8sglue: {pollIntervalSeconds: 2}`) },
		},
		{
			name:   "invalid template",
			values: `agentk8sglue: {queues: {work: {templateOverrides: {labels: {team: "{{ .Task.NoSuchField }}"}}}}}`,
			want:   []string{"template of queue work", "NoSuchField", "fix: agentk8sglue.queues.work.templateOverrides"},
			within: 5 * time.Second,
			fix:    func(e *env) { e.upgrade(`agentk8sglue: {queues: {work: {templateOverrides: {labels: {team: ml}}}}}`) },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.values)
			if tc.before != nil {
				tc.before(e)
			}
			s := e.settings("glue-0")
			assert.Equal(t, s.Deployment, releaseName, "the chart's Deployment names itself to the glue")
			if tc.settings != nil {
				tc.settings(e, &s)
			}
			g := e.startDiagnosedGlue("glue-0", s)

			// /readyz: 503 with the finding and its fix.
			var code int
			var body string
			e.waitFor(tc.within, "/readyz to report "+tc.want[0], func() bool {
				code, body = g.readyz()
				return code == 503 && containsAll(body, tc.want)
			}, func() string { return fmt.Sprintf("%d %s", code, body) })
			assert.Assert(t, strings.Contains(body, "FAIL"), body)
			t.Logf("/readyz %s after the start:\n%s", time.Since(g.started).Round(10*time.Millisecond), body)

			// A Warning Event on the Deployment (with its UID: kubectl describe lists it).
			var events []string
			e.waitFor(10*time.Second, "a PreflightFailed Event on the Deployment", func() bool {
				events = e.deploymentEvents(controller.ReasonPreflightFailed)
				return slices.ContainsFunc(events, func(m string) bool { return containsAll(m, tc.want) })
			}, func() string { return fmt.Sprintf("events: %q", events) })

			// clearml-glue doctor, as run in the pod, prints the same finding and fails.
			out, err := e.doctor(s, e.serviceAccountConfig())
			assert.ErrorIs(t, err, doctorcmd.ErrFailed, out)
			assert.Assert(t, containsAll(out, tc.want), out)
			t.Logf("clearml-glue doctor: %v\n%s", err, out)
			laptop, err := e.doctorFromLaptop()
			assert.ErrorIs(t, err, doctorcmd.ErrFailed, laptop)
			assert.Assert(t, containsAll(laptop, tc.want), "from a laptop:\n%s", laptop)
			out += laptop

			// The log holds one structured line per finding, this one with its fix.
			logs := e.logs.all()
			assert.Assert(t, strings.Contains(logs, "msg=preflight") && strings.Contains(logs, "result=FAIL"), logs)
			for _, where := range []string{body, strings.Join(events, "\n"), out, logs} {
				assert.Assert(t, !strings.Contains(where, wrongSecret) && !strings.Contains(where, secretKey), "a secret value is shown")
			}

			// Fixed: the same process serves, ready, with no failed check.
			fixed := time.Now()
			tc.fix(e)
			e.waitFor(30*time.Second, "/readyz 200 after the fix", func() bool {
				code, body = g.readyz()
				return code == 200
			}, func() string { return fmt.Sprintf("%d %s", code, body) })
			t.Logf("ready %s after the fix", time.Since(fixed).Round(10*time.Millisecond))
			e.waitFor(10*time.Second, "a PreflightPassed Event", func() bool {
				return len(e.deploymentEvents(controller.ReasonPreflightPassed)) > 0
			}, func() string { return "none" })
		})
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
