package controller

import (
	"context"
	"log/slog"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/doctor"
	"github.com/clearml-glue/clearml-glue/internal/metrics"
	"github.com/clearml-glue/clearml-glue/internal/scheduler"
)

// Event reasons of the preflight findings, on the controller's Deployment.
const (
	ReasonPreflightFailed = "PreflightFailed"
	ReasonPreflightPassed = "PreflightPassed"
)

// diagnosis runs the preflight checks (internal/doctor) of the glue as it runs and publishes
// their findings where a user looks: log lines (check, result, detail, fix), the body of
// /readyz, and Events on the controller's Deployment. After the first report only changes are
// published: a check that starts failing, fails differently, or passes again.
type diagnosis struct {
	settings config.Settings
	cs       kubernetes.Interface
	probes   *metrics.Probes
	recorder record.EventRecorder
	log      *slog.Logger
	// fromCluster: the chart's install, whose API URL follows the ConfigMap and whose credentials
	// follow their Secret, so a fixed value is taken without a restart.
	fromCluster bool

	// client, when set, makes the client the checks log in with for given settings: the
	// controller's own, so that a passing check leaves it logged in.
	client func(config.Settings) (*clearml.Client, error)

	mu         sync.Mutex
	deployment runtime.Object // nil: no Events
	last       map[string]doctor.Finding
	failed     bool
}

func newDiagnosis(ctx context.Context, s config.Settings, cs kubernetes.Interface, probes *metrics.Probes, recorder record.EventRecorder,
	log *slog.Logger, fromCluster bool) *diagnosis {
	d := &diagnosis{settings: s, cs: cs, probes: probes, recorder: recorder, log: log, fromCluster: fromCluster}
	if s.Deployment != "" {
		dep, err := cs.AppsV1().Deployments(s.Namespace).Get(ctx, s.Deployment, metav1.GetOptions{})
		if err != nil {
			// Without its UID the Event is listed by `kubectl get events`, not by describe.
			log.Debug("the controller's Deployment is not readable; preflight Events carry its name only", "deployment", s.Deployment, "err", err)
			dep = &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: s.Deployment, Namespace: s.Namespace}}
		}
		d.deployment = dep
	}
	return d
}

// inputs are the doctor's inputs for the config snap (nil: none yet): the settings the glue
// would log in with now.
func (d *diagnosis) inputs(ctx context.Context, snap *scheduler.Snapshot) doctor.Inputs {
	in := doctor.Inputs{Settings: d.settings, Clientset: d.cs, LoginFirst: true}
	if snap != nil {
		in.File, in.Builder = snap.File, snap.Builder
		if d.fromCluster {
			in.Settings = d.clusterSettings(ctx, snap.File)
		}
	}
	if d.client != nil {
		if c, err := d.client(in.Settings); err == nil {
			in.Client = c
		} // else the check logs in with a client of its own, which reports the error
	}
	return in
}

// clusterSettings are the API URL of the ConfigMap (the chart renders it from
// agentk8sglue.apiServerUrlReference, as it does the Deployment's CLEARML_API_HOST) and the
// credentials of the Secret the ConfigMap names (the one the Deployment's environment comes
// from), read again at each attempt: a `helm upgrade` or a fixed Secret is taken without a
// restart. A Secret the glue may not read leaves the environment's credentials.
func (d *diagnosis) clusterSettings(ctx context.Context, f *config.File) config.Settings {
	s := d.settings
	if f.ClearML.APIServerURL != "" {
		s.APIHost = f.ClearML.APIServerURL
	}
	if name := f.ClearML.CredentialsSecret; name != "" {
		sec, err := d.cs.CoreV1().Secrets(f.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err == nil && len(sec.Data[config.CredentialsAccessKeyKey]) > 0 && len(sec.Data[config.CredentialsSecretKeyKey]) > 0 {
			s.AccessKey = string(sec.Data[config.CredentialsAccessKeyKey])
			s.SecretKey = string(sec.Data[config.CredentialsSecretKeyKey])
		}
	}
	return s
}

// run runs the checks for snap and publishes the findings; it returns them with the settings
// they were run with and the client they logged in with first (nil without d.client).
func (d *diagnosis) run(ctx context.Context, snap *scheduler.Snapshot) ([]doctor.Finding, config.Settings, *clearml.Client) {
	in := d.inputs(ctx, snap)
	findings := doctor.Run(ctx, in)
	if ctx.Err() == nil {
		d.publish(findings)
	}
	return findings, in.Settings, in.Client
}

// publish logs, reports and records what changed since the last findings (everything the first
// time), and replaces the /readyz report.
func (d *diagnosis) publish(findings []doctor.Finding) {
	d.mu.Lock()
	defer d.mu.Unlock()
	first := d.last == nil
	next := make(map[string]doctor.Finding, len(findings))
	for _, f := range findings {
		next[f.Check] = f
		prev, seen := d.last[f.Check]
		if !first && seen && prev == f {
			continue
		}
		if !first && !seen && f.OK {
			continue // a new check that passes (a queue added) is not news
		}
		attrs := []any{"check", f.Check, "result", result(f), "detail", f.Detail}
		switch {
		case !f.OK:
			d.log.Warn("preflight", append(attrs, "fix", f.Fix)...)
			d.event(corev1.EventTypeWarning, ReasonPreflightFailed, f.Check+": "+f.Detail+"; fix: "+f.Fix)
		case !first && seen && !prev.OK:
			d.log.Info("preflight", attrs...)
			d.event(corev1.EventTypeNormal, ReasonPreflightPassed, f.Check+": "+f.Detail)
		default:
			d.log.Info("preflight", attrs...)
		}
	}
	for check, prev := range d.last {
		if _, still := next[check]; !still && !prev.OK {
			// Fixed by removing what it checked (a Secret or a queue no longer named).
			d.log.Info("preflight", "check", check, "result", "ok", "detail", "no longer in the config")
			d.event(corev1.EventTypeNormal, ReasonPreflightPassed, check+": no longer in the config")
		}
	}
	bad := doctor.Failed(findings)
	if first || (len(bad) > 0) != d.failed {
		if len(bad) > 0 {
			d.log.Warn("preflight: not ready until the failed checks pass; each names the values key to change", "failed", len(bad), "checks", len(findings))
		} else {
			d.log.Info("preflight: every check passes", "checks", len(findings))
		}
	}
	d.last, d.failed = next, len(bad) > 0
	d.probes.SetDiagnosis(doctor.Table(findings), len(bad) > 0)
}

func (d *diagnosis) event(eventType, reason, message string) {
	if d.deployment != nil {
		d.recorder.Event(d.deployment, eventType, reason, truncate(message, 1000))
	}
}

// failing says whether the last findings hold a failure.
func (d *diagnosis) failing() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.failed
}

// watch runs the checks again on each config reload and, while one fails, every interval,
// until ctx ends.
func (d *diagnosis) watch(ctx context.Context, reloaded <-chan struct{}, current func() *scheduler.Snapshot, interval func() time.Duration) {
	for {
		var tick <-chan time.Time
		var t *time.Timer
		if d.failing() {
			t = time.NewTimer(interval())
			tick = t.C
		}
		select {
		case <-ctx.Done():
		case <-reloaded:
		case <-tick:
		}
		if t != nil {
			t.Stop()
		}
		if ctx.Err() != nil {
			return
		}
		d.run(ctx, current())
	}
}

func result(f doctor.Finding) string {
	if f.OK {
		return "ok"
	}
	return "FAIL"
}

// loggedIn says whether the findings include a successful ClearML login.
func loggedIn(findings []doctor.Finding) bool {
	for _, f := range findings {
		if f.Check == doctor.CheckCredentials {
			return f.OK
		}
	}
	return false
}
