// Package standalone runs the glue without the chart, as ClearML's K8s Glue script
// (k8s_glue_example.py) runs: `clearml-glue run --values my-values.yaml` renders the chart's glue
// configuration in-process and serves it, with the script's flags mapped onto the chart's values.
package standalone

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"

	helmchart "helm.sh/helm/v3/pkg/chart"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/clearml-glue/clearml-glue/charts"
	"github.com/clearml-glue/clearml-glue/internal/chart"
	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
)

// ReleaseName is the release the chart is rendered as: the glue's agent name is its full name,
// clearml-agent, unless the values set nameOverride or fullnameOverride.
const ReleaseName = "clearml-agent"

// PodConfSecretSuffix names the Secret that holds --pod-clearml-conf: <agent name>-pod-clearml-conf.
const PodConfSecretSuffix = "-pod-clearml-conf"

// ManagedByLabel marks the Secrets the glue writes itself (--pod-clearml-conf), so it never
// overwrites one it did not make.
const ManagedByLabel = "app.kubernetes.io/managed-by"

// Loader builds the glue configuration of a glue run without the chart. It is the Load of the
// controller's file source, called at start and whenever one of Paths changes.
type Loader struct {
	Flags  *Flags
	Server config.ClearMLServer
	// Cluster checks the credentials Secret and writes the --pod-clearml-conf Secret; nil in
	// unit tests, which then skip both.
	Cluster kubernetes.Interface
	Logger  *slog.Logger

	chart *helmchart.Chart
}

// Name says what the configuration is built from, for logs.
func (l *Loader) Name() string {
	if l.Flags.Config != "" {
		return "config " + l.Flags.Config
	}
	if len(l.Flags.Values) == 0 {
		return "chart defaults and flags"
	}
	return "values " + strings.Join(l.Flags.Values, ", ")
}

// Paths are the files the configuration is built from, watched for changes. clearml.conf is not
// one: the glue's own credentials are read once, at start.
func (l *Loader) Paths() []string {
	f := l.Flags
	var paths []string
	if f.Config != "" {
		paths = append(paths, f.Config)
	}
	paths = append(paths, f.Values...)
	for _, p := range []string{f.TemplateYAML, f.OverridesYAML, f.PodClearMLConf, f.ContainerBashScript} {
		if p != "" {
			paths = append(paths, p)
		}
	}
	return paths
}

// Load builds the configuration: the rendered chart (or the --config file), then the Secrets it
// names are checked.
func (l *Loader) Load(ctx context.Context) (*config.File, error) {
	var f *config.File
	var err error
	if l.Flags.Config != "" {
		f, err = config.Load(l.Flags.Config)
	} else {
		f, err = l.render()
	}
	if err != nil {
		return nil, err
	}
	if l.Flags.PodClearMLConf != "" {
		if err := l.podConf(ctx, f); err != nil {
			return nil, err
		}
	}
	if err := l.checkCredentials(ctx, f); err != nil {
		return nil, err
	}
	return f, nil
}

// render renders the chart with the values in this order, later winning: the chart's defaults;
// the ClearML servers found with the credentials (env, clearml.conf); --values files; --set;
// the script's flags.
func (l *Loader) render() (*config.File, error) {
	f := l.Flags
	if l.chart == nil && f.Chart == "" { // --chart is loaded by Render itself
		var err error
		if l.chart, err = chart.LoadFS(charts.ClearMLAgent()); err != nil {
			return nil, fmt.Errorf("built-in chart: %w", err)
		}
	}
	overrides, namespace, err := l.flagValues()
	if err != nil {
		return nil, err
	}
	rendered, err := chart.Render(chart.RenderOptions{
		ChartDir: f.Chart, Chart: l.chart, BaseValues: l.serverValues(), ValuesFiles: f.Values, Set: f.Set,
		OverrideValues: overrides, ReleaseName: ReleaseName, Namespace: namespace,
	})
	if err != nil {
		if strings.Contains(err.Error(), "existingAgentk8sglueSecret") {
			return nil, errors.New(credentialsHowTo(namespace, "no credentials Secret for the task pods"))
		}
		return nil, fmt.Errorf("rendering the chart: %w", err)
	}
	cfg, err := rendered.GlueConfig()
	if err != nil {
		return nil, err
	}
	if err := chartSecretsNamed(rendered, cfg); err != nil {
		return nil, err
	}
	if f.IsSet("queue") && len(cfg.Queues) > 0 {
		return nil, fmt.Errorf("--queue %q and agentk8sglue.queues (%s) both name the queues to serve: use one of them",
			f.Queue, strings.Join(slices.Sorted(maps.Keys(cfg.Queues)), ", "))
	}
	return cfg, nil
}

// serverValues are the values that point task pods at the ClearML server the glue found, under
// the user's values: a values file that sets them wins.
func (l *Loader) serverValues() map[string]any {
	s := l.Server
	return map[string]any{"agentk8sglue": map[string]any{
		"apiServerUrlReference":   s.APIHost,
		"webServerUrlReference":   s.WebHost,
		"fileServerUrlReference":  s.FilesHost,
		"clearmlcheckCertificate": s.VerifyCert,
	}}
}

// flagValues maps the script's flags onto the chart's values, and returns the namespace.
func (l *Loader) flagValues() (map[string]any, string, error) {
	f := l.Flags
	g := map[string]any{}
	vals := map[string]any{"agentk8sglue": g}
	namespace := f.Namespace
	if f.IsSet("queue") {
		g["queue"] = strings.Join(queueList(f.Queue), ",")
	}
	if f.IsSet("max-pods") {
		g["maxPods"] = f.MaxPods
	}
	if f.CreateQueue {
		g["createQueueIfNotExists"] = true
	}
	if f.PendingQueueName != "" {
		g["pendingQueueName"] = f.PendingQueueName
	}
	if f.CredentialsSecret != "" {
		vals["clearml"] = map[string]any{"existingAgentk8sglueSecret": f.CredentialsSecret}
	}
	if f.PortsMode {
		// Without --gateway-address the script sets no k8s-gateway-address: no externalIP either.
		sessions := map[string]any{"portModeEnabled": true, "maxServices": f.NumOfServices, "externalIP": f.GatewayAddress}
		if f.BasePort > 0 {
			sessions["startingPort"] = f.BasePort
		}
		vals["sessions"] = sessions
	}
	if f.ContainerBashScript != "" {
		data, err := os.ReadFile(f.ContainerBashScript)
		if err != nil {
			return nil, "", fmt.Errorf("--container-bash-script: %w", err)
		}
		g["containerCustomBashScript"] = string(data)
	}
	var tmpl *podTemplate
	var err error
	switch {
	case f.TemplateYAML != "":
		tmpl, err = readPodTemplate(f.TemplateYAML)
	case f.OverridesYAML != "":
		tmpl, err = readOverrides(f.OverridesYAML)
	}
	if err != nil {
		return nil, "", err
	}
	if tmpl != nil {
		g["basePodTemplate"] = tmpl.keys
		for _, n := range tmpl.notes {
			l.logger().Info("pod template: " + n)
		}
		if tmpl.namespace != "" {
			if f.IsSet("namespace") && f.Namespace != tmpl.namespace {
				return nil, "", fmt.Errorf("--namespace %q and the template's metadata.namespace %q differ: task pods go to one namespace", f.Namespace, tmpl.namespace)
			}
			namespace = tmpl.namespace // where the script creates the pods
		}
	}
	return vals, namespace, nil
}

func (l *Loader) logger() *slog.Logger {
	if l.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l.Logger
}

// chartSecretsNamed refuses a configuration that names a Secret the chart would create: without
// the chart nothing creates it, and task pods would not start.
func chartSecretsNamed(r *chart.Rendered, cfg *config.File) error {
	objs, err := r.Objects()
	if err != nil {
		return err
	}
	created := map[string][]string{} // Secret name -> its keys
	for _, o := range objs {
		if o.GetKind() == "Secret" {
			data, _ := o.Object["data"].(map[string]any)
			created[o.GetName()] = slices.Sorted(maps.Keys(data))
		}
	}
	if len(created) == 0 {
		return nil
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return err
	}
	var errs []error
	walkStrings(tree, "", func(path, value string) {
		keys, ok := created[value]
		if !ok {
			return
		}
		switch path {
		case "clearml.credentialsSecret":
			errs = append(errs, errors.New(credentialsHowTo(cfg.Namespace,
				"the values set clearml.agentk8sglueKey/agentk8sglueSecret, which the chart puts in a Secret of its own")))
		case "clearml.configSecret":
			errs = append(errs, fmt.Errorf("the values set clearml.clearmlConfig, which the chart puts in the Secret %s, and clearml-glue run "+
				"creates no chart objects: give the file with --pod-clearml-conf FILE instead, or name a Secret you created with clearml.existingClearmlConfigSecret", value))
		default:
			errs = append(errs, fmt.Errorf("the glue configuration names, at %s, the Secret %s (keys %s) that the chart would create, and clearml-glue run "+
				"creates no chart objects: create it yourself and name it in your values (imageCredentials.existingSecret for registry credentials)",
				path, value, strings.Join(keys, ", ")))
		}
	})
	return errors.Join(errs...)
}

func walkStrings(v any, path string, fn func(path, value string)) {
	switch v := v.(type) {
	case string:
		fn(path, v)
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			p := k
			if path != "" {
				p = path + "." + k
			}
			walkStrings(v[k], p, fn)
		}
	case []any:
		for i, e := range v {
			walkStrings(e, fmt.Sprintf("%s[%d]", path, i), fn)
		}
	}
}

// credentialsHowTo says why the glue will not start without a credentials Secret and how to make one.
func credentialsHowTo(namespace, why string) string {
	return fmt.Sprintf(`%s: task pods read the ClearML credentials from a Secret you create, never from the pod spec, and clearml-glue run creates none. Create it and name it with --credentials-secret:
  kubectl -n %s create secret generic clearml-glue-credentials \
    --from-literal=%s="$CLEARML_API_ACCESS_KEY" --from-literal=%s="$CLEARML_API_SECRET_KEY"
  clearml-glue run --credentials-secret clearml-glue-credentials ...`,
		why, namespace, config.CredentialsAccessKeyKey, config.CredentialsSecretKeyKey)
}

// checkCredentials refuses a configuration without a credentials Secret, or naming one that does
// not exist or lacks a key. A glue that may not read Secrets (RBAC) only warns.
func (l *Loader) checkCredentials(ctx context.Context, f *config.File) error {
	name := f.ClearML.CredentialsSecret
	if name == "" {
		return errors.New(credentialsHowTo(f.Namespace, "the glue configuration names no credentials Secret (clearml.credentialsSecret)"))
	}
	if l.Cluster == nil {
		return nil
	}
	s, err := l.Cluster.CoreV1().Secrets(f.Namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return errors.New(credentialsHowTo(f.Namespace, fmt.Sprintf("the credentials Secret %s/%s does not exist", f.Namespace, name)))
	case apierrors.IsForbidden(err):
		l.logger().Warn("cannot check the credentials Secret (no get on secrets); task pods need it", "secret", f.Namespace+"/"+name)
		return nil
	case err != nil:
		return fmt.Errorf("credentials Secret %s/%s: %w", f.Namespace, name, err)
	}
	var missing []string
	for _, k := range []string{config.CredentialsAccessKeyKey, config.CredentialsSecretKeyKey} {
		if len(s.Data[k]) == 0 {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return errors.New(credentialsHowTo(f.Namespace, fmt.Sprintf("the credentials Secret %s/%s has no %s", f.Namespace, name, strings.Join(missing, ", "))))
	}
	return nil
}

// podConf keeps --pod-clearml-conf in the Secret <agent name>-pod-clearml-conf (key clearml.conf),
// which task pods mount; the file's content never goes into a pod spec.
func (l *Loader) podConf(ctx context.Context, f *config.File) error {
	if f.ClearML.ConfigSecret != "" {
		return fmt.Errorf("--pod-clearml-conf and the values (clearml.existingClearmlConfigSecret or clearml.clearmlConfig, Secret %s) both give the task pods a clearml.conf: use one", f.ClearML.ConfigSecret)
	}
	data, err := os.ReadFile(l.Flags.PodClearMLConf)
	if err != nil {
		return fmt.Errorf("--pod-clearml-conf: %w", err)
	}
	name := f.AgentName + PodConfSecretSuffix
	f.ClearML.ConfigSecret = name
	if l.Cluster == nil {
		return nil
	}
	secrets := l.Cluster.CoreV1().Secrets(f.Namespace)
	want := map[string][]byte{config.ConfigSecretKey: data}
	s, err := secrets.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.Namespace,
				Labels:      map[string]string{ManagedByLabel: "clearml-glue"},
				Annotations: map[string]string{"clearml-glue/source": "--pod-clearml-conf " + l.Flags.PodClearMLConf}},
			Type: corev1.SecretTypeOpaque, Data: want,
		}, metav1.CreateOptions{})
		if err == nil {
			l.logger().Info("pod clearml.conf stored", "secret", f.Namespace+"/"+name)
		}
	case err != nil:
	case s.Labels[ManagedByLabel] != "clearml-glue":
		return fmt.Errorf("--pod-clearml-conf: the Secret %s/%s exists and was not made by clearml-glue: delete it, or name it with clearml.existingClearmlConfigSecret instead", f.Namespace, name)
	case !bytes.Equal(s.Data[config.ConfigSecretKey], data) || len(s.Data) != 1:
		s.Data = want
		_, err = secrets.Update(ctx, s, metav1.UpdateOptions{})
		if err == nil {
			l.logger().Info("pod clearml.conf updated", "secret", f.Namespace+"/"+name)
		}
	}
	if err != nil {
		return fmt.Errorf("--pod-clearml-conf: Secret %s/%s: %w", f.Namespace, name, err)
	}
	return nil
}

// CheckTemplates compiles the queue templates of f and returns their errors. At start a glue run
// by hand stops on them, rather than serving and failing every task of a broken queue.
func CheckTemplates(f *config.File) error {
	b, err := podtemplate.NewBuilder(f)
	if err != nil {
		return err
	}
	qerrs := b.QueueErrors()
	var errs []error
	for _, q := range slices.Sorted(maps.Keys(qerrs)) {
		errs = append(errs, qerrs[q])
	}
	return errors.Join(errs...)
}
