package config

import (
	"errors"
	"fmt"
	"os"

	"github.com/kelseyhightower/envconfig"
)

// Settings are the controller process's settings, read from the environment. Credentials live
// here, never in File, so the ConfigMap holds nothing secret.
type Settings struct {
	APIHost   string `envconfig:"CLEARML_API_HOST" required:"true"`
	AccessKey string `envconfig:"CLEARML_API_ACCESS_KEY" required:"true"`
	SecretKey string `envconfig:"CLEARML_API_SECRET_KEY" required:"true"`
	// VerifyCert checks the API server's TLS certificate (the chart's clearmlcheckCertificate).
	VerifyCert bool `envconfig:"CLEARML_API_HOST_VERIFY_CERT" default:"true"`
	// Namespace and ConfigMap locate the glue file; the chart sets both.
	Namespace string `envconfig:"GLUE_NAMESPACE" required:"true"`
	ConfigMap string `envconfig:"GLUE_CONFIGMAP" required:"true"`
	// PodName is the identity for leader election and Events.
	PodName        string `envconfig:"GLUE_POD_NAME"`
	LeaderElection bool   `envconfig:"GLUE_LEADER_ELECTION" default:"false"`
	LeaseName      string `envconfig:"GLUE_LEASE_NAME" default:"clearml-glue"`
	MetricsAddr    string `envconfig:"GLUE_METRICS_ADDR" default:":8080"`
	HealthAddr     string `envconfig:"GLUE_HEALTH_ADDR" default:":8081"`
	LogLevel       string `envconfig:"GLUE_LOG_LEVEL" default:"info"`
	// KubeAPIQPS and KubeAPIBurst rate-limit the controller's Kubernetes client; 0 (the default)
	// sets no client-side limit (see KubeClientRate).
	KubeAPIQPS   float32 `envconfig:"GLUE_KUBE_API_QPS"`
	KubeAPIBurst int     `envconfig:"GLUE_KUBE_API_BURST"`
	// MaxParallelLaunches bounds the pops and launches in flight: against a server 20 ms away a
	// launch takes about four round trips, so 32 in flight launch some 300 tasks per second.
	MaxParallelLaunches int `envconfig:"GLUE_MAX_PARALLEL_LAUNCHES" default:"32"`
	// Deployment names the controller's Deployment (the chart sets it), which carries the
	// preflight Warning Events; empty puts them nowhere but the log and /readyz.
	Deployment string `envconfig:"GLUE_DEPLOYMENT"`
}

// LoadSettings reads Settings from the environment; errors name the variable.
func LoadSettings() (Settings, error) {
	var s Settings
	if err := envconfig.Process("", &s); err != nil {
		return s, err
	}
	if s.PodName == "" {
		s.PodName, _ = os.Hostname()
	}
	return s, s.Validate()
}

// Validate reports every bad setting with its variable name.
func (s Settings) Validate() error {
	var errs []error
	if s.MaxParallelLaunches < 1 {
		errs = append(errs, fmt.Errorf("GLUE_MAX_PARALLEL_LAUNCHES: must be at least 1, got %d", s.MaxParallelLaunches))
	}
	if s.KubeAPIQPS < 0 || s.KubeAPIBurst < 0 {
		errs = append(errs, fmt.Errorf("GLUE_KUBE_API_QPS/GLUE_KUBE_API_BURST: must not be negative, got %v/%d", s.KubeAPIQPS, s.KubeAPIBurst))
	}
	switch s.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("GLUE_LOG_LEVEL: %q is not debug, info, warn or error", s.LogLevel))
	}
	return errors.Join(errs...)
}

// KubeClientRate is the Kubernetes client's rate limit as rest.Config takes it. With QPS 0 (the
// default) there is none (QPS -1): what the controller has in flight is bounded already
// (MaxParallelLaunches launches, the monitor's workers), and the API server's Priority and
// Fairness paces it, answering 429 with Retry-After, which client-go waits out and retries. A
// client-side bucket would only cap a burst of tasks below what the API server takes (client-go's
// own default, 5 per second, launched 5 tasks per second).
func (s Settings) KubeClientRate() (qps float32, burst int) {
	if s.KubeAPIQPS == 0 {
		return -1, 0
	}
	return s.KubeAPIQPS, max(s.KubeAPIBurst, int(s.KubeAPIQPS))
}

// EventClientRate is the rate of the client that posts Events, apart from the main one so that
// Events never delay a launch: a tenth of the main rate, or 50/100 without one. Events beyond
// it queue in the recorder (1,000 at most; older ones are dropped, as client-go does).
func (s Settings) EventClientRate() (qps float32, burst int) {
	qps, burst = s.KubeClientRate()
	if qps < 0 {
		return 50, 100
	}
	return max(qps/10, 1), max(burst/10, 1)
}
