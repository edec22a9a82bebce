package config

import (
	"os"

	"github.com/kelseyhightower/envconfig"
)

// standaloneSettings is Settings with nothing required, for `clearml-glue run --values` (no
// chart, no ConfigMap): the ClearML server comes from FindClearMLServer, the namespace from the
// rendered config (those fields are ignored here). Its fields are Settings' own, in order, so the conversion Settings(s) stops
// compiling when the two drift apart.
type standaloneSettings struct {
	APIHost             string  `ignored:"true"`
	AccessKey           string  `ignored:"true"`
	SecretKey           string  `ignored:"true"`
	VerifyCert          bool    `ignored:"true"`
	Namespace           string  `ignored:"true"`
	ConfigMap           string  `ignored:"true"`
	PodName             string  `envconfig:"GLUE_POD_NAME"`
	LeaderElection      bool    `envconfig:"GLUE_LEADER_ELECTION" default:"false"`
	LeaseName           string  `envconfig:"GLUE_LEASE_NAME" default:"clearml-glue"`
	MetricsAddr         string  `envconfig:"GLUE_METRICS_ADDR" default:":8080"`
	HealthAddr          string  `envconfig:"GLUE_HEALTH_ADDR" default:":8081"`
	LogLevel            string  `envconfig:"GLUE_LOG_LEVEL" default:"info"`
	KubeAPIQPS          float32 `envconfig:"GLUE_KUBE_API_QPS"`
	KubeAPIBurst        int     `envconfig:"GLUE_KUBE_API_BURST"`
	MaxParallelLaunches int     `envconfig:"GLUE_MAX_PARALLEL_LAUNCHES" default:"32"`
	Deployment          string  `ignored:"true"`
}

// LoadStandaloneSettings reads the controller settings of a glue run outside the chart: the
// GLUE_* variables as LoadSettings reads them (none required; leader election off unless
// GLUE_LEADER_ELECTION is true), the ClearML server and credentials from server, and namespace
// for Events and the Lease. GLUE_NAMESPACE and GLUE_CONFIGMAP are not read: the config is a file.
func LoadStandaloneSettings(server ClearMLServer, namespace string) (Settings, error) {
	var ss standaloneSettings
	if err := envconfig.Process("", &ss); err != nil {
		return Settings{}, err
	}
	s := Settings(ss)
	s.APIHost, s.AccessKey, s.SecretKey, s.VerifyCert = server.APIHost, server.AccessKey, server.SecretKey, server.VerifyCert
	s.Namespace, s.ConfigMap = namespace, ""
	if s.PodName == "" {
		s.PodName, _ = os.Hostname()
	}
	return s, s.Validate()
}
