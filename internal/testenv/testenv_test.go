package testenv

import (
	"testing"

	"gotest.tools/v3/assert"
	"helm.sh/helm/v3/pkg/release"

	"github.com/clearml-glue/clearml-glue/internal/chart"
	"github.com/clearml-glue/clearml-glue/internal/config"
)

// rendered is a Release of the chart rendered without a cluster.
func rendered(t *testing.T, values string) *Release {
	t.Helper()
	dir, err := ChartDir()
	assert.NilError(t, err)
	vals, err := ParseValues(values)
	assert.NilError(t, err)
	r, err := chart.Render(chart.RenderOptions{ChartDir: dir, BaseValues: BaseValues("http://clearml:8008", "k", "s"),
		OverrideValues: vals, ReleaseName: "glue", Namespace: "ml"})
	assert.NilError(t, err)
	return &Release{Namespace: "ml", Name: "glue", Release: &release.Release{Manifest: r.YAML()}}
}

// Settings are what the chart's Deployment gives the controller, resolved as the kubelet would.
func TestSettingsFollowTheChartsDeployment(t *testing.T) {
	r := rendered(t, `
agentk8sglue:
  leaderElection: {enabled: true, leaseName: glue-leader}
`)
	s, err := r.Settings("glue-0", "key", "secret")
	assert.NilError(t, err)
	cm, err := r.ObjectName("ConfigMap")
	assert.NilError(t, err)
	assert.Equal(t, s.APIHost, "http://clearml:8008")
	assert.Equal(t, s.AccessKey, "key")
	assert.Equal(t, s.SecretKey, "secret")
	assert.Equal(t, s.Namespace, "ml")
	assert.Equal(t, s.ConfigMap, cm)
	assert.Equal(t, s.PodName, "glue-0")
	assert.Equal(t, s.LeaderElection, true)
	assert.Equal(t, s.LeaseName, "glue-leader")
	lease, err := r.DeploymentEnv("GLUE_LEASE_NAME")
	assert.NilError(t, err)
	assert.Equal(t, lease, "glue-leader")
}

// fromEnv reads the environment as config.LoadSettings does, defaults included.
func TestFromEnvMatchesLoadSettings(t *testing.T) {
	env := map[string]string{
		"CLEARML_API_HOST": "http://clearml:8008", "CLEARML_API_ACCESS_KEY": "k", "CLEARML_API_SECRET_KEY": "s",
		"CLEARML_API_HOST_VERIFY_CERT": "false", "GLUE_NAMESPACE": "ml", "GLUE_CONFIGMAP": "cm", "GLUE_POD_NAME": "p",
		"GLUE_LEADER_ELECTION": "true", "GLUE_KUBE_API_QPS": "12.5", "GLUE_KUBE_API_BURST": "30",
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	want, err := config.LoadSettings()
	assert.NilError(t, err)
	var got config.Settings
	assert.NilError(t, fromEnv(&got, env))
	assert.DeepEqual(t, got, want)
}
