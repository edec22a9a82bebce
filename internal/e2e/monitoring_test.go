package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"gotest.tools/v3/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/clearml-glue/clearml-glue/internal/chart"
	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/localcluster"
	"github.com/clearml-glue/clearml-glue/internal/metrics"
)

// exportedOnEvent are counters whose label sets client_golang creates at their first event
// (a requeue, a ClearML operation given up, a failed Kubernetes create or delete), which this
// test does not provoke. They must still be registered (metrics.Names).
var exportedOnEvent = []string{
	"clearml_glue_tasks_requeued_total",
	"clearml_glue_clearml_errors_total",
	"clearml_glue_kubernetes_errors_total",
}

// Every metric the chart's alerts and dashboard name is one the controller exports: the
// controller's /metrics is scraped after it launched, completed and failed a task, with one
// configured queue missing on the ClearML server.
func TestMonitoringEveryReferencedMetricIsExported(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  createQueues: false
  queues:
    work:
      templateOverrides:
        annotations: {e2e.glue/run-ms: "200ms"}
    broken:
      templateOverrides:
        labels: {e2e.glue/behavior: invalid-image}
    absent: {}
`)
	for _, q := range []string{"work", "broken"} {
		_, err := e.emu.CreateQueue(q)
		assert.NilError(t, err)
	}
	addr := e.serveMetrics()
	e.startGlue("glue-0")
	e.waitStatus(e.task("work", "ok", emulator.TaskSpec{}), clearml.StatusCompleted, 30*time.Second)
	e.waitStatus(e.task("broken", "typo", emulator.TaskSpec{}), clearml.StatusFailed, 30*time.Second)

	exported := scrapeFamilies(t, "http://"+addr+"/metrics")
	registered := metrics.Names()
	referenced := referencedMetrics(t, e.rules(""), readDashboard(t))
	assert.Assert(t, len(referenced) > 20, "found only %v", slices.Sorted(maps.Keys(referenced)))
	checked := 0
	for _, name := range slices.Sorted(maps.Keys(referenced)) {
		where := strings.Join(referenced[name], ", ")
		if name == "up" || name == "ALERTS" {
			continue // Prometheus' own
		}
		assert.Check(t, slices.Contains(registered, name), "%s (%s) is no metric of the controller", name, where)
		switch {
		case slices.Contains(exportedOnEvent, name):
		default:
			assert.Check(t, exported[name], "%s (%s) is not in the controller's /metrics", name, where)
			checked++
		}
	}
	t.Logf("%d controller metrics referenced by the alerts and the dashboard: %d seen in /metrics, %d exported on their first event",
		len(referenced)-1, checked, len(exportedOnEvent))
}

// A real Prometheus scrapes the controller and evaluates the chart's alerts: the
// configuration-refused alert fires on an invalid ConfigMap and resolves after a good one. Every
// dashboard query runs there too, and the dashboard's variables find this release and its queue.
func TestMonitoringConfigRefusedAlertFiresAndResolvesInPrometheus(t *testing.T) {
	start := time.Now()
	e := newEnv(t, `
agentk8sglue:
  queues:
    work:
      templateOverrides:
        annotations: {e2e.glue/run-ms: "200ms"}
`)
	addr := e.serveMetrics()
	e.startGlue("glue-0")
	e.waitStatus(e.task("work", "before", emulator.TaskSpec{}), clearml.StatusCompleted, 30*time.Second)
	job := objectName(e.manifestObject("Deployment")) // the metrics Service, and so the ServiceMonitor's job label, has the release's full name
	prom := e.startPrometheus(addr, job, e.rules(`
agentk8sglue:
  metrics:
    prometheusRule:
      alertFor: {ClearMLGlueConfigRefused: 2s}
`))
	sel := fmt.Sprintf(`job=%q,namespace=%q`, job, e.ns)
	e.waitFor(30*time.Second, "Prometheus to scrape the glue", func() bool {
		return prom.value("clearml_glue_config_valid{"+sel+"}") == "1" && prom.value("up{"+sel+"}") == "1"
	}, func() string { return "config_valid " + prom.value("clearml_glue_config_valid{"+sel+"}") })
	t.Logf("glue serving and scraped after %s", time.Since(start).Round(time.Millisecond))

	// The dashboard: every query is valid PromQL; the health panels show this glue; the
	// variables list this release's namespace, job and queue.
	for _, expr := range dashboardExprs(t, readDashboard(t)) {
		q := strings.NewReplacer("$namespace", e.ns, "$job", job, "$queue", "work", "$__rate_interval", "30s").Replace(expr)
		_, err := prom.query(q)
		assert.Check(t, err, "dashboard query %s", q)
	}
	assert.Equal(t, prom.value(`sum(clearml_glue_leader{`+sel+`})`), "1")
	assert.Equal(t, prom.value(`min(clearml_glue_config_valid{`+sel+`})`), "1")
	for label, want := range map[string]string{"namespace": e.ns, "job": job} {
		assert.Assert(t, slices.Contains(prom.labelValues(label, "clearml_glue_build_info"), want), "variable %s", label)
	}
	assert.Assert(t, slices.Contains(prom.labelValues("queue", `clearml_glue_tasks_launched_total{`+sel+`}`), "work"))
	assert.Assert(t, prom.alert("ClearMLGlueConfigRefused") == nil)

	ctx := context.Background()
	name := objectName(e.manifestObject("ConfigMap"))
	cm, err := e.cs.CoreV1().ConfigMaps(e.ns).Get(ctx, name, metav1.GetOptions{})
	assert.NilError(t, err)
	cm.Data[config.FileKey] = "namespace: " + e.ns + "\nqueues: {work: {}}\npollIntervalSeconds: -3\n"
	_, err = e.cs.CoreV1().ConfigMaps(e.ns).Update(ctx, cm, metav1.UpdateOptions{})
	assert.NilError(t, err)
	broken := time.Now()

	var fired map[string]any
	e.waitFor(60*time.Second, "ClearMLGlueConfigRefused firing", func() bool {
		a := prom.alert("ClearMLGlueConfigRefused")
		if a != nil && a["state"] == "firing" {
			fired = a
		}
		return fired != nil
	}, func() string { return fmt.Sprintf("alert %v", prom.alert("ClearMLGlueConfigRefused")) })
	t.Logf("ClearMLGlueConfigRefused firing %s after the invalid ConfigMap", time.Since(broken).Round(time.Millisecond))
	labels, _ := fired["labels"].(map[string]any)
	annotations, _ := fired["annotations"].(map[string]any)
	assert.Equal(t, labels["severity"], "warning")
	assert.Equal(t, labels["namespace"], e.ns)
	assert.Equal(t, labels["pod"], "glue-0")
	assert.Equal(t, annotations["description"], "clearml-glue pod glue-0 in namespace "+e.ns+" refused the newest version of its ConfigMap: it serves the last valid one, or nothing if it never had one. The reason is in the InvalidConfig Warning Event on the ConfigMap.")
	assert.Assert(t, strings.HasSuffix(fmt.Sprint(annotations["runbook_url"]), "docs/operations.md#clearmlglueconfigrefused"))

	e.upgrade(`{}`) // helm writes the valid config back
	fixed := time.Now()
	e.waitFor(60*time.Second, "ClearMLGlueConfigRefused resolved", func() bool {
		return prom.alert("ClearMLGlueConfigRefused") == nil
	}, func() string { return fmt.Sprintf("alert %v", prom.alert("ClearMLGlueConfigRefused")) })
	t.Logf("ClearMLGlueConfigRefused resolved %s after the valid ConfigMap", time.Since(fixed).Round(time.Millisecond))

	// The glue stayed up and leading all along (ClearMLGlueDown is pending, never firing, until
	// the first scrape: absent(up)).
	res, err := prom.query(`max_over_time(ALERTS{alertname=~"ClearMLGlueDown|ClearMLGlueNoLeader",alertstate="firing"}[10m])`)
	assert.NilError(t, err)
	assert.Equal(t, string(res), "[]")
	t.Logf("whole test %s", time.Since(start).Round(time.Millisecond))
}

// A task no node can take and a queue at its maxPods: ClearMLGlueTaskPendingTooLong fires with
// the reason Unschedulable and ClearMLGlueQueueBacklogNoCapacity with the limit queue_max_pods,
// in a real Prometheus (thresholds shortened through the chart's values).
func TestMonitoringPendingAndBacklogAlertsInPrometheus(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  queues:
    huge:
      templateOverrides:
        resources:
          requests: {cpu: "100000"}
      queueSettings: {maxPods: 1}
`)
	addr := e.serveMetrics()
	e.startGlue("glue-0")
	job := objectName(e.manifestObject("Deployment")) // the metrics Service's name
	prom := e.startPrometheus(addr, job, e.rules(`
agentk8sglue:
  metrics:
    prometheusRule:
      pendingTaskSeconds: 3
      alertFor: {ClearMLGlueTaskPendingTooLong: 1s, ClearMLGlueQueueBacklogNoCapacity: 2s}
`))
	first := e.task("huge", "too-big", emulator.TaskSpec{})
	e.waitJob(first, 30*time.Second)
	e.task("huge", "waits", emulator.TaskSpec{})

	firing := func(name string) map[string]any {
		if a := prom.alert(name, "queue", "huge"); a != nil && a["state"] == "firing" {
			labels, _ := a["labels"].(map[string]any)
			return labels
		}
		return nil
	}
	var pending, backlog map[string]any
	e.waitFor(60*time.Second, "the pending and backlog alerts firing", func() bool {
		pending, backlog = firing("ClearMLGlueTaskPendingTooLong"), firing("ClearMLGlueQueueBacklogNoCapacity")
		return pending != nil && backlog != nil
	}, func() string {
		return fmt.Sprintf("pending %v, backlog %v", prom.alert("ClearMLGlueTaskPendingTooLong"), prom.alert("ClearMLGlueQueueBacklogNoCapacity"))
	})
	assert.Equal(t, pending["queue"], "huge")
	assert.Equal(t, pending["reason"], metrics.ReasonUnschedulable)
	assert.Equal(t, backlog["queue"], "huge")
	assert.Equal(t, backlog["limit"], metrics.LimitQueueMaxPods)
	sel := fmt.Sprintf(`job=%q,namespace=%q,queue="huge"`, job, e.ns)
	assert.Equal(t, prom.value(`clearml_glue_queue_depth{`+sel+`}`), "1")
	assert.Equal(t, prom.value(`clearml_glue_pending_tasks{`+sel+`,reason="Unschedulable"}`), "1")
}

// serveMetrics serves the controller's /metrics on a free loopback port, as the Deployment's
// metrics port does (the in-process glue shares the process' registry).
func (e *env) serveMetrics() string {
	e.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(e.t, err)
	addr := ln.Addr().String()
	assert.NilError(e.t, ln.Close())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- metrics.Serve(ctx, addr, addr, &metrics.Probes{}) }()
	e.t.Cleanup(func() { cancel(); <-done })
	e.waitFor(10*time.Second, "the metrics endpoint", func() bool {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	}, func() string { return addr })
	return addr
}

// rules renders the chart with the env's values, the PrometheusRule enabled and extra values, and
// returns the rule file Prometheus would get from the Prometheus Operator.
func (e *env) rules(extra string) []byte {
	e.t.Helper()
	values := chart.MergeValues(chart.MergeValues(map[string]any{}, e.values), parseValues(e.t, `
agentk8sglue:
  metrics:
    prometheusRule: {enabled: true}
`))
	if extra != "" {
		values = chart.MergeValues(values, parseValues(e.t, extra))
	}
	data, err := yaml.Marshal(values)
	assert.NilError(e.t, err)
	f := filepath.Join(e.t.TempDir(), "values.yaml")
	assert.NilError(e.t, os.WriteFile(f, data, 0o600))
	r, err := chart.Render(chart.RenderOptions{ChartDir: chartDir(e.t), ValuesFiles: []string{f}, ReleaseName: releaseName, Namespace: e.ns})
	assert.NilError(e.t, err)
	obj, ok := chart.ManifestObject(r.YAML(), "PrometheusRule")
	assert.Assert(e.t, ok, "no PrometheusRule rendered")
	out, err := yaml.Marshal(obj["spec"])
	assert.NilError(e.t, err)
	return out
}

func readDashboard(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir(t), "dashboards", "clearml-glue.json"))
	assert.NilError(t, err)
	return data
}

// dashboardExprs returns every PromQL expression of the dashboard's panels.
func dashboardExprs(t *testing.T, dashboard []byte) []string {
	t.Helper()
	var d struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	assert.NilError(t, json.Unmarshal(dashboard, &d))
	var exprs []string
	for _, p := range d.Panels {
		for _, q := range p.Targets {
			exprs = append(exprs, q.Expr)
		}
	}
	assert.Assert(t, len(exprs) > 20, "found %d queries", len(exprs))
	return exprs
}

var metricNameRE = regexp.MustCompile(`\b(clearml_glue_[a-z0-9_]+|up|ALERTS)\b`)

// referencedMetrics maps each metric family the rules and the dashboard (queries and variables)
// name to where; histogram series (_bucket, _sum, _count) count as their family.
func referencedMetrics(t *testing.T, rules, dashboard []byte) map[string][]string {
	t.Helper()
	var spec struct {
		Groups []struct {
			Rules []struct {
				Alert string `json:"alert"`
				Expr  string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	assert.NilError(t, yaml.Unmarshal(rules, &spec))
	sources := map[string]string{} // expression -> where
	for _, g := range spec.Groups {
		for _, r := range g.Rules {
			sources[r.Expr] = "alert " + r.Alert
		}
	}
	for _, expr := range dashboardExprs(t, dashboard) {
		sources[expr] = "dashboard"
	}
	var d struct {
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	assert.NilError(t, json.Unmarshal(dashboard, &d))
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(string); ok {
			sources[q] = "dashboard variable " + v.Name
		}
	}
	out := map[string][]string{}
	for expr, where := range sources {
		for _, m := range metricNameRE.FindAllString(expr, -1) {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if strings.HasSuffix(m, "_seconds"+suffix) {
					m = strings.TrimSuffix(m, suffix)
				}
			}
			if !slices.Contains(out[m], where) {
				out[m] = append(out[m], where)
			}
		}
	}
	return out
}

// scrapeFamilies returns the metric families (with at least one sample) an endpoint exposes.
func scrapeFamilies(t *testing.T, url string) map[string]bool {
	t.Helper()
	resp, err := http.Get(url)
	assert.NilError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, resp.StatusCode, http.StatusOK)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	assert.NilError(t, err)
	out := map[string]bool{}
	for name, f := range families {
		out[name] = len(f.GetMetric()) > 0
	}
	return out
}

// prometheus is a Prometheus process built by ci/build-tools.sh, on a loopback port.
type prometheus struct {
	t   *testing.T
	url string
}

// startPrometheus runs Prometheus scraping only the glue's metrics endpoint (loopback), every
// second, with the rules, labelling the target as the Prometheus Operator would.
func (e *env) startPrometheus(target, job string, rules []byte) *prometheus {
	e.t.Helper()
	root, err := localcluster.RepoRoot()
	assert.NilError(e.t, err)
	bin := os.Getenv("GLUE_TOOLS_BIN")
	if bin == "" {
		bin = filepath.Join(root, ".build", "tools", "current", "bin")
	}
	binary := filepath.Join(bin, "prometheus")
	if _, err := os.Stat(binary); err != nil {
		e.t.Fatalf("prometheus missing in %s: run `make tools` (ci/build-tools.sh) first", bin)
	}
	dir := e.t.TempDir()
	assert.NilError(e.t, os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o600))
	cfg := fmt.Sprintf(`
global:
  # A scrape of the test process' registry under -race, with every earlier test's series in it,
  # can take over a second on a loaded 2-core machine: a 1 s timeout then loses the data.
  scrape_interval: 3s
  scrape_timeout: 3s
  evaluation_interval: 1s
rule_files: [rules.yaml]
scrape_configs:
  - job_name: %q
    static_configs:
      - targets: [%q]
        labels: {namespace: %q, pod: glue-0, service: %q}
`, job, target, e.ns, job)
	assert.NilError(e.t, os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(e.t, err)
	listen := ln.Addr().String()
	assert.NilError(e.t, ln.Close())

	log, err := os.Create(filepath.Join(dir, "prometheus.log"))
	assert.NilError(e.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, binary, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+listen, "--log.level=warn")
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, log, log
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	assert.NilError(e.t, cmd.Start())
	e.t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		_ = log.Close()
		if e.t.Failed() {
			out, _ := os.ReadFile(log.Name())
			e.t.Logf("prometheus log:\n%s", out)
		}
	})
	p := &prometheus{t: e.t, url: "http://" + listen}
	e.waitFor(60*time.Second, "Prometheus ready", func() bool {
		resp, err := http.Get(p.url + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, func() string { out, _ := os.ReadFile(log.Name()); return string(out) })
	return p
}

// api calls the HTTP API and returns its data, or the API's error.
func (p *prometheus) api(path string, params url.Values) (json.RawMessage, error) {
	resp, err := http.Get(p.url + path + "?" + params.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%s: %w: %s", path, err, body)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s", r.Error)
	}
	return r.Data, nil
}

// query runs an instant query and returns its result array.
func (p *prometheus) query(q string) (json.RawMessage, error) {
	data, err := p.api("/api/v1/query", url.Values{"query": {q}})
	if err != nil {
		return nil, err
	}
	var r struct {
		Result json.RawMessage `json:"result"`
	}
	err = json.Unmarshal(data, &r)
	return r.Result, err
}

// value returns the value of a query with one result, "" otherwise.
func (p *prometheus) value(q string) string {
	res, err := p.query(q)
	if err != nil {
		p.t.Fatalf("query %s: %v", q, err)
	}
	var vec []struct {
		Value [2]any `json:"value"`
	}
	if json.Unmarshal(res, &vec) != nil || len(vec) != 1 {
		return ""
	}
	return fmt.Sprint(vec[0].Value[1])
}

// labelValues is what a Grafana label_values(match, label) variable lists.
func (p *prometheus) labelValues(label, match string) []string {
	data, err := p.api("/api/v1/label/"+label+"/values", url.Values{"match[]": {match}})
	assert.NilError(p.t, err)
	var values []string
	assert.NilError(p.t, json.Unmarshal(data, &values))
	return values
}

// alert returns the active (pending or firing) alert of that name whose labels include match
// (pairs of name and value), nil when there is none. The registry is the test process's, so
// series of earlier tests' glues can raise the same alert for their queues.
func (p *prometheus) alert(name string, match ...string) map[string]any {
	data, err := p.api("/api/v1/alerts", nil)
	assert.NilError(p.t, err)
	var r struct {
		Alerts []map[string]any `json:"alerts"`
	}
	assert.NilError(p.t, json.Unmarshal(data, &r))
	for _, a := range r.Alerts {
		labels, _ := a["labels"].(map[string]any)
		ok := labels["alertname"] == name
		for i := 0; ok && i+1 < len(match); i += 2 {
			ok = labels[match[i]] == match[i+1]
		}
		if ok {
			return a
		}
	}
	return nil
}
