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
	// KubeAPIQPS and KubeAPIBurst rate-limit the controller's Kubernetes client (0: see
	// KubeClientRate); client-go's own default (5/10) would cap launches at about 5 per second.
	KubeAPIQPS   float32 `envconfig:"GLUE_KUBE_API_QPS"`
	KubeAPIBurst int     `envconfig:"GLUE_KUBE_API_BURST"`
	// MaxParallelLaunches bounds concurrent launches.
	MaxParallelLaunches int `envconfig:"GLUE_MAX_PARALLEL_LAUNCHES" default:"8"`
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

// KubeClientRate is the Kubernetes client's rate limit: the settings, or 100/200 where unset (so
// settings built in code get the same default as the environment).
func (s Settings) KubeClientRate() (qps float32, burst int) {
	qps, burst = s.KubeAPIQPS, s.KubeAPIBurst
	if qps == 0 {
		qps = 100
	}
	if burst == 0 {
		burst = 200
	}
	return qps, burst
}
