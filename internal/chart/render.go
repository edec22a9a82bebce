package chart

import (
	"cmp"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"

	helmchart "helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
	"helm.sh/helm/v3/pkg/strvals"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/clearml-glue/clearml-glue/internal/config"
)

// DefaultKubeVersion is the Kubernetes version charts are rendered against unless told otherwise:
// Helm's own default (v1.20) is below the chart's kubeVersion floor.
const DefaultKubeVersion = "v1.37.2"

// RenderOptions say what to render, like the arguments of helm template.
type RenderOptions struct {
	// ChartDir is the chart directory or archive, for example charts/clearml-agent.
	ChartDir string
	// Chart is a chart already loaded (LoadFS of the embedded chart); when set, ChartDir is
	// not read.
	Chart *helmchart.Chart
	// BaseValues are merged first, under ValuesFiles: defaults of the caller's own.
	BaseValues map[string]any
	// ValuesFiles are merged in order, later files winning, like helm -f.
	ValuesFiles []string
	// Set holds helm --set expressions, applied after ValuesFiles.
	Set []string
	// OverrideValues are merged last, over Set: values the caller derives from its own flags.
	OverrideValues map[string]any
	// ReleaseName defaults to "clearml-agent", Namespace to "default".
	ReleaseName, Namespace string
	// KubeVersion is .Capabilities.KubeVersion, checked against the chart's kubeVersion;
	// empty means DefaultKubeVersion.
	KubeVersion string
}

// Rendered is a chart rendered for one set of values.
type Rendered struct {
	// Manifests maps a template path (clearml-agent/templates/x.yaml) to its rendered YAML;
	// templates that render nothing are absent. Hooks (helm test) are included.
	Manifests map[string]string
	// Notes is the rendered NOTES.txt.
	Notes string
	// docs are the YAML documents in helm template order: install order, then hooks.
	docs []doc
}

type doc struct{ path, content string }

// Render renders the chart like helm install --dry-run: values files and --set merged over the
// chart's values, validated against values.schema.json (so bad values fail with the schema's
// message naming the key), the kubeVersion constraint checked, then every template executed.
func Render(opts RenderOptions) (*Rendered, error) {
	chrt := opts.Chart
	if chrt == nil {
		var err error
		if chrt, err = loader.Load(opts.ChartDir); err != nil {
			return nil, fmt.Errorf("loading chart: %w", err)
		}
	}
	vals, err := userValues(opts)
	if err != nil {
		return nil, err
	}
	kubeVersion, err := chartutil.ParseKubeVersion(cmp.Or(opts.KubeVersion, DefaultKubeVersion))
	if err != nil {
		return nil, fmt.Errorf("kube version: %w", err)
	}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = *kubeVersion
	if c := chrt.Metadata.KubeVersion; c != "" && !chartutil.IsCompatibleRange(c, kubeVersion.String()) {
		return nil, fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s", c, kubeVersion)
	}
	top, err := chartutil.ToRenderValues(chrt, vals, chartutil.ReleaseOptions{
		Name:      cmp.Or(opts.ReleaseName, "clearml-agent"),
		Namespace: cmp.Or(opts.Namespace, "default"),
		Revision:  1,
		IsInstall: true,
	}, caps)
	if err != nil {
		return nil, err
	}
	files, err := engine.Render(chrt, top)
	if err != nil {
		return nil, err
	}
	r := &Rendered{Manifests: map[string]string{}}
	for name, content := range files {
		if path.Base(name) == "NOTES.txt" {
			r.Notes = content
			delete(files, name)
		}
	}
	// SortManifests also parses every document, so a template that renders invalid YAML fails
	// here as it would in helm.
	hooks, manifests, err := releaseutil.SortManifests(files, caps.APIVersions, releaseutil.InstallOrder)
	if err != nil {
		return nil, err
	}
	for _, m := range manifests {
		r.docs = append(r.docs, doc{m.Name, m.Content})
	}
	for _, h := range hooks {
		r.docs = append(r.docs, doc{h.Path, h.Manifest})
	}
	for _, d := range r.docs {
		if prev, ok := r.Manifests[d.path]; ok {
			r.Manifests[d.path] = prev + "\n---\n" + d.content
		} else {
			r.Manifests[d.path] = d.content
		}
	}
	return r, nil
}

// YAML returns every document the way helm template prints them.
func (r *Rendered) YAML() string {
	var b strings.Builder
	for _, d := range r.docs {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", d.path, d.content)
	}
	return b.String()
}

// Objects decodes every rendered document, in helm template order.
func (r *Rendered) Objects() ([]unstructured.Unstructured, error) {
	objs := make([]unstructured.Unstructured, 0, len(r.docs))
	for _, d := range r.docs {
		js, err := yaml.YAMLToJSON([]byte(d.content))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.path, err)
		}
		// UnmarshalJSON keeps integers as int64, as the API machinery expects.
		var o unstructured.Unstructured
		if err := o.UnmarshalJSON(js); err != nil {
			return nil, fmt.Errorf("%s: %w", d.path, err)
		}
		objs = append(objs, o)
	}
	return objs, nil
}

// GlueConfig parses the glue configuration from the rendered ConfigMap (key config.FileKey)
// exactly as the controller does, strictly, with defaults and validation.
func (r *Rendered) GlueConfig() (*config.File, error) {
	objs, err := r.Objects()
	if err != nil {
		return nil, err
	}
	var found []string
	var file *config.File
	for _, o := range objs {
		if o.GetKind() != "ConfigMap" {
			continue
		}
		data, ok, _ := unstructured.NestedString(o.Object, "data", config.FileKey)
		if !ok {
			continue
		}
		found = append(found, o.GetName())
		if file, err = config.Parse([]byte(data), "configmap "+o.GetNamespace()+"/"+o.GetName()); err != nil {
			return nil, err
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("no ConfigMap with key %s in the rendered chart", config.FileKey)
	case 1:
		return file, nil
	default:
		sort.Strings(found)
		return nil, fmt.Errorf("%d ConfigMaps with key %s: %s", len(found), config.FileKey, strings.Join(found, ", "))
	}
}

// userValues merges values files and --set expressions the way the helm CLI does, between
// BaseValues and OverrideValues.
func userValues(opts RenderOptions) (map[string]any, error) {
	vals := MergeValues(map[string]any{}, opts.BaseValues)
	for _, f := range opts.ValuesFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		m, err := chartutil.ReadValues(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		vals = MergeValues(vals, m.AsMap())
	}
	for _, s := range opts.Set {
		if err := strvals.ParseInto(s, vals); err != nil {
			return nil, fmt.Errorf("--set %s: %w", s, err)
		}
	}
	return MergeValues(vals, opts.OverrideValues), nil
}

// MergeValues merges b into a copy of a, b winning, as helm does with several -f files: nested
// maps merge, everything else is replaced.
func MergeValues(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if bm, ok := v.(map[string]any); ok {
			if am, ok := out[k].(map[string]any); ok {
				out[k] = MergeValues(am, bm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// ManifestObject returns the first object of kind in a release manifest (documents separated by
// "---"), as a map.
func ManifestObject(manifest, kind string) (map[string]any, bool) {
	for _, doc := range strings.Split(manifest, "\n---") {
		m := map[string]any{}
		if yaml.Unmarshal([]byte(doc), &m) == nil && m["kind"] == kind {
			return m, true
		}
	}
	return nil, false
}

// ObjectName is metadata.name of an object returned by ManifestObject.
func ObjectName(obj map[string]any) string {
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	return name
}
