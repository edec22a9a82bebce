package chart

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// promtool returns the promtool that ci/build-tools.sh builds.
func promtool(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("GLUE_TOOLS_BIN")
	if bin == "" {
		bin = filepath.Join("..", "..", ".build", "tools", "current", "bin")
	}
	p, err := filepath.Abs(filepath.Join(bin, "promtool"))
	assert.NilError(t, err)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("promtool missing in %s: run `make tools` (ci/build-tools.sh) first", bin)
	}
	return p
}

// ruleFile renders the chart and returns the PrometheusRule's spec as a Prometheus rule file.
func ruleFile(t *testing.T, r *Rendered) []byte {
	t.Helper()
	obj, ok := ManifestObject(r.YAML(), "PrometheusRule")
	assert.Assert(t, ok, "no PrometheusRule rendered")
	out, err := yaml.Marshal(obj["spec"])
	assert.NilError(t, err)
	return out
}

type alertRule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

func alertRules(t *testing.T, r *Rendered) []alertRule {
	t.Helper()
	var spec struct {
		Groups []struct {
			Rules []alertRule `json:"rules"`
		} `json:"groups"`
	}
	assert.NilError(t, yaml.Unmarshal(ruleFile(t, r), &spec))
	assert.Equal(t, len(spec.Groups), 1)
	return spec.Groups[0].Rules
}

// The alerts of the chart, rendered with ci/monitoring-values.yaml, pass promtool check rules and
// the unit tests of testdata/prometheusrule-tests.yaml (promtool test rules).
func TestPrometheusRuleAlertsPassPromtool(t *testing.T) {
	tool := promtool(t)
	dir := t.TempDir()
	r := render(t, []string{filepath.Join(chartDir, "ci", "monitoring-values.yaml")})
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "rules.yaml"), ruleFile(t, r), 0o600))
	tests, err := os.ReadFile(filepath.Join("testdata", "prometheusrule-tests.yaml"))
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "tests.yaml"), tests, 0o600))

	for _, args := range [][]string{{"check", "rules", "rules.yaml"}, {"test", "rules", "tests.yaml"}} {
		cmd := exec.Command(tool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
		assert.NilError(t, err, "promtool %s failed", strings.Join(args, " "))
	}

	// Every alert is tested: promtool passes alerts nobody tests.
	names := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+alertname: (\w+)`).FindAllStringSubmatch(string(tests), -1) {
		names[m[1]] = true
	}
	for _, a := range alertRules(t, r) {
		assert.Assert(t, names[a.Alert], "%s has no promtool test in testdata/prometheusrule-tests.yaml", a.Alert)
	}
}

// Every alert has a runbook section in docs/operations.md (its runbook_url anchor), and the
// schema's lists of alert names (disabledAlerts, alertFor) are exactly the rendered alerts.
func TestPrometheusRuleAlertsAreDocumentedAndInTheSchema(t *testing.T) {
	r := render(t, []string{filepath.Join(chartDir, "ci", "monitoring-values.yaml")})
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	assert.NilError(t, err)
	var names []string
	for _, a := range alertRules(t, r) {
		names = append(names, a.Alert)
		assert.Assert(t, strings.Contains(string(doc), "\n### "+a.Alert+"\n"), "docs/operations.md has no section ### %s", a.Alert)
		assert.Equal(t, a.Annotations["runbook_url"], "https://github.com/clearml-glue/clearml-glue/blob/main/docs/operations.md#"+strings.ToLower(a.Alert))
		assert.Equal(t, a.Labels["team"], "ml-platform", "additionalAlertLabels on %s", a.Alert)
		assert.Assert(t, a.Labels["severity"] == "critical" || a.Labels["severity"] == "warning", a.Alert)
		assert.Assert(t, strings.Contains(a.Expr, `job="glue-clearml-agent",namespace="clearml"`), "%s selects this release: %s", a.Alert, a.Expr)
	}
	var schema struct {
		Properties struct {
			Agentk8sglue struct {
				Properties struct {
					Metrics struct {
						Properties struct {
							PrometheusRule struct {
								Properties struct {
									DisabledAlerts struct {
										Items struct {
											Enum []string `json:"enum"`
										} `json:"items"`
									} `json:"disabledAlerts"`
									AlertFor struct {
										PropertyNames struct {
											Enum []string `json:"enum"`
										} `json:"propertyNames"`
									} `json:"alertFor"`
								} `json:"properties"`
							} `json:"prometheusRule"`
						} `json:"properties"`
					} `json:"metrics"`
				} `json:"properties"`
			} `json:"agentk8sglue"`
		} `json:"properties"`
	}
	data, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	assert.NilError(t, err)
	assert.NilError(t, json.Unmarshal(data, &schema))
	p := schema.Properties.Agentk8sglue.Properties.Metrics.Properties.PrometheusRule.Properties
	assert.DeepEqual(t, slices.Sorted(slices.Values(p.DisabledAlerts.Items.Enum)), slices.Sorted(slices.Values(names)))
	assert.DeepEqual(t, slices.Sorted(slices.Values(p.AlertFor.PropertyNames.Enum)), slices.Sorted(slices.Values(names)))
}

func TestPrometheusRuleValues(t *testing.T) {
	off := withCreds(t)
	_, ok := ManifestObject(off.YAML(), "PrometheusRule")
	assert.Assert(t, !ok, "a PrometheusRule by default")
	_, ok = ManifestObject(off.YAML(), "ConfigMap")
	assert.Assert(t, ok)
	assert.Assert(t, !strings.Contains(off.YAML(), "grafana_dashboard"), "a dashboard by default")

	r := render(t, []string{filepath.Join(chartDir, "ci", "default-values.yaml"), writeValues(t, `
agentk8sglue:
  metrics:
    prometheusRule:
      enabled: true
      disabledAlerts: [ClearMLGlueTasksFailing]
      alertFor: {ClearMLGlueConfigRefused: 10m}
      pendingTaskSeconds: 3600
      clearmlErrorRatio: 0.25
      selector: service="glue"
`)})
	byName := map[string]alertRule{}
	for _, a := range alertRules(t, r) {
		byName[a.Alert] = a
		assert.Assert(t, strings.Contains(a.Expr, `service="glue"`) && !strings.Contains(a.Expr, "job="), a.Expr)
	}
	_, ok = byName["ClearMLGlueTasksFailing"]
	assert.Assert(t, !ok, "disabled alert rendered")
	assert.Equal(t, byName["ClearMLGlueConfigRefused"].For, "10m")
	assert.Equal(t, byName["ClearMLGlueDown"].For, "5m")
	assert.Assert(t, strings.HasSuffix(byName["ClearMLGlueTaskPendingTooLong"].Expr, "> 3600"), byName["ClearMLGlueTaskPendingTooLong"].Expr)
	assert.Assert(t, strings.HasSuffix(byName["ClearMLGlueClearMLErrors"].Expr, "> 0.25"), byName["ClearMLGlueClearMLErrors"].Expr)

	for _, set := range [][]string{
		{"agentk8sglue.metrics.prometheusRule.disabledAlerts={NoSuchAlert}"},
		{"agentk8sglue.metrics.prometheusRule.alertFor.ClearMLGlueDown=5 minutes"},
		{"agentk8sglue.metrics.prometheusRule.clearmlErrorRatio=2"},
		{"agentk8sglue.metrics.grafanaDashboard.folder=x"},
	} {
		_, err := Render(RenderOptions{ChartDir: chartDir, ValuesFiles: []string{filepath.Join(chartDir, "ci", "default-values.yaml")}, Set: set})
		assert.Assert(t, err != nil, "accepted %v", set)
	}
}

// The dashboard ConfigMap carries the generated JSON unchanged, with the sidecar's label.
func TestGrafanaDashboardConfigMap(t *testing.T) {
	r := withCreds(t, "agentk8sglue.metrics.grafanaDashboard.enabled=true", "agentk8sglue.metrics.grafanaDashboard.namespace=monitoring")
	var cm struct {
		Metadata struct {
			Name      string            `json:"name"`
			Namespace string            `json:"namespace"`
			Labels    map[string]string `json:"labels"`
		} `json:"metadata"`
		Data map[string]string `json:"data"`
	}
	doc, ok := r.Manifests["clearml-agent/templates/grafana-dashboard.yaml"]
	assert.Assert(t, ok, "no dashboard ConfigMap")
	assert.NilError(t, yaml.Unmarshal([]byte(doc), &cm))
	assert.Equal(t, cm.Metadata.Name, fullname+"-dashboard")
	assert.Equal(t, cm.Metadata.Namespace, "monitoring")
	assert.Equal(t, cm.Metadata.Labels["grafana_dashboard"], "1")
	want, err := os.ReadFile(filepath.Join(chartDir, "dashboards", "clearml-glue.json"))
	assert.NilError(t, err)
	assert.Equal(t, cm.Data["clearml-glue.json"], strings.TrimRight(string(want), "\n"))
	assert.Assert(t, json.Valid([]byte(cm.Data["clearml-glue.json"])))
}

// The fields the chart renders of the Prometheus Operator's monitoring.coreos.com/v1 kinds, with
// the JSON names of its Go types (prometheus-operator pkg/apis/monitoring v0.95.2), so
// TestObjectsAreValid refuses a misspelt field without the operator's module in go.mod.
type prometheusRuleObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Groups []struct {
			Name     string `json:"name"`
			Interval string `json:"interval,omitempty"`
			Rules    []struct {
				Alert       string            `json:"alert,omitempty"`
				Record      string            `json:"record,omitempty"`
				Expr        string            `json:"expr"`
				For         string            `json:"for,omitempty"`
				Labels      map[string]string `json:"labels,omitempty"`
				Annotations map[string]string `json:"annotations,omitempty"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

type serviceMonitorObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port                 string           `json:"port,omitempty"`
			Path                 string           `json:"path,omitempty"`
			Interval             string           `json:"interval,omitempty"`
			ScrapeTimeout        string           `json:"scrapeTimeout,omitempty"`
			RelabelConfigs       []map[string]any `json:"relabelings,omitempty"`
			MetricRelabelConfigs []map[string]any `json:"metricRelabelings,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}
