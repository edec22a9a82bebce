// Package testenv is the world the end-to-end tests, the benchmarks and the demo run the glue in:
// the chart installed with the Helm SDK into a namespace of a local control plane, a token of the
// chart's ServiceAccount, and the controller running in-process as that ServiceAccount with the
// settings the chart's Deployment gives it. It holds no assertions: callers decide what a
// failure means (a test fails, the demo reports).
package testenv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/clearml-glue/clearml-glue/internal/chart"
	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/controller"
	"github.com/clearml-glue/clearml-glue/internal/localcluster"
	"github.com/clearml-glue/clearml-glue/internal/metrics"
)

// HelmTimeout bounds an install or upgrade: the chart's objects are created at once and nothing
// waits for readiness (the controller runs in-process, not in the Deployment's pod).
const HelmTimeout = time.Minute

// ChartDir returns the chart's directory, <repo>/charts/clearml-agent.
func ChartDir() (string, error) {
	root, err := localcluster.RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "charts", "clearml-agent"), nil
}

// BaseValues are the values every install starts from: the ClearML server's URL and the glue's
// credentials.
func BaseValues(apiURL, accessKey, secretKey string) map[string]any {
	return map[string]any{
		"clearml":      map[string]any{"agentk8sglueKey": accessKey, "agentk8sglueSecret": secretKey},
		"agentk8sglue": map[string]any{"apiServerUrlReference": apiURL},
	}
}

// ParseValues decodes a YAML values document.
func ParseValues(s string) (map[string]any, error) {
	m := map[string]any{}
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	return m, nil
}

// CreateNamespace creates the namespace name.
func CreateNamespace(ctx context.Context, cs kubernetes.Interface, name string) error {
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}

// Release is the chart installed in a namespace of a local cluster.
type Release struct {
	Cluster   *localcluster.Cluster
	Namespace string
	Name      string
	// Helm talks to the cluster as its admin, storing releases in Namespace.
	Helm *action.Configuration
	// Release is the newest revision and Values the values it was installed or upgraded with.
	Release *release.Release
	Values  map[string]any
}

// Install installs the chart as release name into namespace (which must exist) with values, as
// `helm install -n namespace name charts/clearml-agent -f values` would.
func Install(ctx context.Context, cluster *localcluster.Cluster, namespace, name string, values map[string]any) (*Release, error) {
	dir, err := ChartDir()
	if err != nil {
		return nil, err
	}
	ch, err := loader.Load(dir)
	if err != nil {
		return nil, err
	}
	helm, err := cluster.Helm(namespace, nil)
	if err != nil {
		return nil, err
	}
	in := action.NewInstall(helm)
	in.ReleaseName, in.Namespace, in.Timeout = name, namespace, HelmTimeout
	rel, err := in.RunWithContext(ctx, ch, values)
	if err != nil {
		return nil, fmt.Errorf("helm install %s: %w", name, err)
	}
	return &Release{Cluster: cluster, Namespace: namespace, Name: name, Helm: helm, Release: rel, Values: values}, nil
}

// Upgrade runs `helm upgrade` with values (the whole set, not a change) and keeps the new revision.
func (r *Release) Upgrade(ctx context.Context, values map[string]any) error {
	dir, err := ChartDir()
	if err != nil {
		return err
	}
	ch, err := loader.Load(dir)
	if err != nil {
		return err
	}
	up := action.NewUpgrade(r.Helm)
	up.Namespace, up.Timeout = r.Namespace, HelmTimeout
	rel, err := up.RunWithContext(ctx, r.Name, ch, values)
	if err != nil {
		return fmt.Errorf("helm upgrade %s: %w", r.Name, err)
	}
	r.Release, r.Values = rel, values
	return nil
}

// Object returns the release's first rendered object of kind.
func (r *Release) Object(kind string) (map[string]any, error) {
	obj, ok := chart.ManifestObject(r.Release.Manifest, kind)
	if !ok {
		return nil, fmt.Errorf("release %s has no %s", r.Name, kind)
	}
	return obj, nil
}

// ObjectName returns the name of the release's first object of kind.
func (r *Release) ObjectName(kind string) (string, error) {
	obj, err := r.Object(kind)
	if err != nil {
		return "", err
	}
	return chart.ObjectName(obj), nil
}

// ServiceAccountConfig returns a client config with a token (valid for ttl) of the chart's
// ServiceAccount, so a controller run with it has exactly the rights the chart's RBAC grants.
func (r *Release) ServiceAccountConfig(ctx context.Context, ttl time.Duration) (*rest.Config, error) {
	sa, err := r.ObjectName("ServiceAccount")
	if err != nil {
		return nil, err
	}
	return r.Cluster.ServiceAccountConfig(ctx, r.Namespace, sa, ttl)
}

// container is the controller container of the chart's Deployment.
func (r *Release) container() (corev1.Container, error) {
	obj, err := r.Object("Deployment")
	if err != nil {
		return corev1.Container{}, err
	}
	var d struct {
		Spec struct {
			Template struct {
				Spec corev1.PodSpec `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	data, err := yaml.Marshal(obj)
	if err == nil {
		err = yaml.Unmarshal(data, &d)
	}
	if err != nil {
		return corev1.Container{}, fmt.Errorf("release %s: Deployment: %w", r.Name, err)
	}
	if len(d.Spec.Template.Spec.Containers) == 0 {
		return corev1.Container{}, fmt.Errorf("release %s: the Deployment has no container", r.Name)
	}
	return d.Spec.Template.Spec.Containers[0], nil
}

// DeploymentEnv returns the value the chart's Deployment gives the controller for the variable
// name (a plain value; an error when the Deployment does not set it so).
func (r *Release) DeploymentEnv(name string) (string, error) {
	c, err := r.container()
	if err != nil {
		return "", err
	}
	for _, v := range c.Env {
		if v.Name == name && v.ValueFrom == nil {
			return v.Value, nil
		}
	}
	return "", fmt.Errorf("release %s: the Deployment sets no value for %s", r.Name, name)
}

// Settings are the controller settings the chart's Deployment gives its pod named pod: every
// GLUE_* and CLEARML_* variable of the container as the kubelet would resolve it (values,
// the pod's namespace and name), the defaults of config.Settings for the others. The credentials
// come from a Secret in the chart, so they are given here.
func (r *Release) Settings(pod, accessKey, secretKey string) (config.Settings, error) {
	c, err := r.container()
	if err != nil {
		return config.Settings{}, err
	}
	env := map[string]string{}
	for _, v := range c.Env {
		switch {
		case v.ValueFrom == nil:
			env[v.Name] = v.Value
		case v.ValueFrom.FieldRef != nil && v.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			env[v.Name] = r.Namespace
		case v.ValueFrom.FieldRef != nil && v.ValueFrom.FieldRef.FieldPath == "metadata.name":
			env[v.Name] = pod
		}
	}
	env["CLEARML_API_ACCESS_KEY"], env["CLEARML_API_SECRET_KEY"] = accessKey, secretKey
	var s config.Settings
	if err := fromEnv(&s, env); err != nil {
		return config.Settings{}, fmt.Errorf("release %s: %w", r.Name, err)
	}
	return s, s.Validate()
}

// fromEnv fills the envconfig-tagged fields of s from env, or from their default tags, as
// config.LoadSettings does from the process environment.
func fromEnv(s *config.Settings, env map[string]string) error {
	v := reflect.ValueOf(s).Elem()
	var errs []error
	for i := range v.NumField() {
		f := v.Type().Field(i)
		name := f.Tag.Get("envconfig")
		if name == "" {
			continue
		}
		raw, ok := env[name]
		if !ok {
			raw = f.Tag.Get("default")
		}
		if raw == "" {
			continue // envconfig leaves the zero value too
		}
		field := v.Field(i)
		var err error
		switch field.Kind() {
		case reflect.String:
			field.SetString(raw)
		case reflect.Bool:
			var b bool
			b, err = strconv.ParseBool(raw)
			field.SetBool(b)
		case reflect.Int64:
			if field.Type() != reflect.TypeFor[time.Duration]() {
				err = fmt.Errorf("unsupported type %s", field.Type())
				break
			}
			var d time.Duration
			d, err = time.ParseDuration(raw)
			field.SetInt(int64(d))
		case reflect.Int:
			var n int64
			n, err = strconv.ParseInt(raw, 10, 0)
			field.SetInt(n)
		case reflect.Slice:
			if field.Type().Elem().Kind() != reflect.String {
				err = fmt.Errorf("unsupported type %s", field.Type())
				break
			}
			field.Set(reflect.ValueOf(strings.Split(raw, ",")))
		case reflect.Float32:
			var x float64
			x, err = strconv.ParseFloat(raw, 32)
			field.SetFloat(x)
		default:
			err = fmt.Errorf("unsupported type %s", field.Type())
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", name, raw, err))
		}
	}
	return errors.Join(errs...)
}

// UserAgent is what an in-process controller sends to the API server. Like the clearml-glue
// binary's own ("clearml-glue/<version> ..."), it starts with "clearml-glue/", so an audit log
// tells the controller's requests from a test's made with the same ServiceAccount token.
const UserAgent = "clearml-glue/testenv"

// StartedMessage is what a glue StartGlue runs logs when controller.Options.Started is called.
const StartedMessage = "test: glue started"

// Glue is a controller running in-process, as the chart's Deployment would run it.
type Glue struct {
	cancel  context.CancelFunc
	done    chan struct{}
	err     error // Run's result, set before done closes
	stopped chan struct{}
	once    sync.Once
	stopErr error
}

// StartGlue runs controller.Run with cfg and s in a goroutine. onExit, when not nil, is called
// with Run's result if Run returns before Stop was called (an error, or nil: it should not
// return by itself).
func StartGlue(cfg *rest.Config, s config.Settings, logger *slog.Logger, onExit func(error)) *Glue {
	cfg = rest.CopyConfig(cfg)
	if cfg.UserAgent == "" {
		cfg.UserAgent = UserAgent
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &Glue{cancel: cancel, done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(g.done)
		// Started is the process's hook (it releases start-up pages); here a line tests can count.
		g.err = controller.Run(ctx, controller.Options{Settings: s, RESTConfig: cfg, Logger: logger, Probes: &metrics.Probes{},
			Started: func() { logger.Info(StartedMessage) }})
		select {
		case <-g.stopped:
		default:
			if onExit != nil {
				onExit(g.err)
			}
		}
	}()
	return g
}

// Stop ends the controller and waits for it to return, at most timeout (0: no limit). It
// returns Run's error unless Run ended because it was stopped; calling it again returns the
// same result.
func (g *Glue) Stop(timeout time.Duration) error {
	g.once.Do(func() {
		close(g.stopped)
		g.cancel()
		var expired <-chan time.Time
		if timeout > 0 {
			t := time.NewTimer(timeout)
			defer t.Stop()
			expired = t.C
		}
		select {
		case <-g.done:
			if g.err != nil && !errors.Is(g.err, context.Canceled) {
				g.stopErr = g.err
			}
		case <-expired:
			g.stopErr = fmt.Errorf("controller did not stop within %s", timeout)
		}
	})
	return g.stopErr
}

// Done is closed when the controller returned.
func (g *Glue) Done() <-chan struct{} { return g.done }
