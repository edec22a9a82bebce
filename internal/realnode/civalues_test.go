package realnode

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/clearml-glue/clearml-glue/internal/chart"
	"github.com/clearml-glue/clearml-glue/internal/localcluster"
)

// What `ct install` does in CI (ci/ct-install.sh, .github/workflows/chart.yaml), on the real
// node: every charts/clearml-agent/ci/*-values.yaml is installed with Helm's --wait (the
// controller Ready) and passes `helm test`, with the same overrides ct gets (the emulator's URL
// and credentials, createQueues since the emulator starts without the queues a real server has,
// NO_PROXY) plus the real node's toleration and label. Images are this
// checkout's, under the names the values files resolve to; what a fixture names but does not
// create is created first, as ci/ct-install.sh does on kind.
func TestCIValuesFilesInstallAndPassHelmTest(t *testing.T) {
	needNode(t)
	ctx := context.Background()
	files, err := filepath.Glob(filepath.Join(chartDir(t), "ci", "*-values.yaml"))
	assert.NilError(t, err)
	assert.Assert(t, len(files) > 0)
	prepareFixtures(t, files)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), "-values.yaml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fixture := parse(t, string(must(os.ReadFile(f))))
			e := newEnv(t)
			e.startEmulatorWith("CI-ACCESS-KEY", "CI-SECRET-KEY")
			createNamedObjects(t, e, fixture)
			overrides := parse(t, fmt.Sprintf(`
clearml:
  agentk8sglueKey: CI-ACCESS-KEY
  agentk8sglueSecret: CI-SECRET-KEY
agentk8sglue:
  apiServerUrlReference: http://%s
  createQueues: true
  extraEnvs: [{name: NO_PROXY, value: "*"}]
  nodeSelector: {%s: "true"}
  tolerations: [{key: %s, operator: Exists, effect: NoSchedule}]
`, e.emuAddr, localcluster.RealNodeLabel, localcluster.RealNodeTaintKey))
			e.values = chart.MergeValues(fixture, overrides)
			ch, err := loader.Load(chartDir(t))
			assert.NilError(t, err)
			in := action.NewInstall(e.helm)
			in.ReleaseName, in.Namespace, in.Wait, in.Timeout = releaseName, e.ns, true, 2*time.Minute
			start := time.Now()
			e.rel, err = in.RunWithContext(ctx, ch, e.values)
			assert.NilError(t, err, "helm install --wait with ci/%s", filepath.Base(f))
			installed := time.Since(start)
			seen := watchPods(t, e.cs, e.ns)
			rt := action.NewReleaseTesting(e.helm)
			rt.Namespace, rt.Timeout = e.ns, 3*time.Minute
			_, err = rt.Run(releaseName)
			assert.NilError(t, err, "helm test with ci/%s", filepath.Base(f))
			pods := seen(chart.ObjectName(e.object("Deployment")) + "-test")
			assert.Assert(t, len(pods) == 1 && pods[0].Spec.NodeName == node.Name && pods[0].Status.Phase == corev1.PodSucceeded,
				"the test pod did not succeed on %s", node.Name)
			for _, p := range e.controllerPods() {
				assert.Equal(t, p.Spec.NodeName, node.Name)
			}
			t.Logf("installed (Ready) in %s, helm test passed in %s", installed.Round(time.Second), (time.Since(start) - installed).Round(time.Second))
			_, err = action.NewUninstall(e.helm).Run(releaseName)
			assert.NilError(t, err)
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

var fixturesOnce sync.Once

// prepareFixtures gives the node the labels the fixtures select, the images under the names they
// resolve to (the chart's appVersion, each fixture's global.imageRegistry), and the monitoring
// CRDs the monitoring fixture needs.
func prepareFixtures(t *testing.T, files []string) {
	t.Helper()
	fixturesOnce.Do(func() {
		ctx := context.Background()
		var meta struct {
			AppVersion string `json:"appVersion"`
		}
		assert.NilError(t, yaml.Unmarshal(must(os.ReadFile(filepath.Join(chartDir(t), "Chart.yaml"))), &meta))
		var defaults struct {
			Global struct {
				ImageRegistry string `json:"imageRegistry"`
			} `json:"global"`
			Agentk8sglue map[string]any `json:"agentk8sglue"`
			Tests        struct {
				Image struct{ Repository, Tag string } `json:"image"`
			} `json:"tests"`
		}
		values := must(os.ReadFile(filepath.Join(chartDir(t), "values.yaml")))
		assert.NilError(t, yaml.Unmarshal(values, &defaults))
		var controller struct{ Repository, Tag string }
		assert.NilError(t, yaml.Unmarshal(must(yaml.Marshal(defaults.Agentk8sglue[controllerImageKey(t)])), &controller))
		registries := map[string]bool{defaults.Global.ImageRegistry: true}
		labels := map[string]string{}
		for _, f := range files {
			var v struct {
				Global struct {
					ImageRegistry string `json:"imageRegistry"`
				} `json:"global"`
				Agentk8sglue struct {
					NodeSelector map[string]string `json:"nodeSelector"`
				} `json:"agentk8sglue"`
			}
			assert.NilError(t, yaml.Unmarshal(must(os.ReadFile(f)), &v))
			if v.Global.ImageRegistry != "" {
				registries[v.Global.ImageRegistry] = true
			}
			for k, val := range v.Agentk8sglue.NodeSelector {
				labels[k] = val
			}
		}
		for reg := range registries {
			full := func(repo string) string {
				if reg == "" || reg == "docker.io" {
					if !strings.Contains(repo, "/") {
						repo = "library/" + repo
					}
					return "docker.io/" + repo
				}
				return reg + "/" + repo
			}
			assert.NilError(t, node.TagImage(ctx, "docker.io/"+glueRepo+":"+glueTag, full(controller.Repository)+":"+meta.AppVersion))
			assert.NilError(t, node.TagImage(ctx, "docker.io/"+busyboxRepo+":"+busyboxTag, full(defaults.Tests.Image.Repository)+":"+defaults.Tests.Image.Tag))
		}
		cs, err := cluster.Clientset()
		assert.NilError(t, err)
		n, err := cs.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
		assert.NilError(t, err)
		for k, v := range labels {
			n.Labels[k] = v
		}
		_, err = cs.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
		assert.NilError(t, err)
		createMonitoringCRDs(t)
		imgs, _ := node.Images(ctx)
		sort.Strings(imgs)
		t.Logf("node labels %v; images %v", labels, imgs)
	})
}

// createMonitoringCRDs creates the prometheus-operator kinds the chart can render (schema-less:
// nothing reads them here), as ci/ct-install.sh installs the real CRDs on kind.
func createMonitoringCRDs(t *testing.T) {
	t.Helper()
	dyn, err := dynamic.NewForConfig(cluster.RESTConfig())
	assert.NilError(t, err)
	for _, k := range []struct{ kind, plural string }{{"ServiceMonitor", "servicemonitors"}, {"PrometheusRule", "prometheusrules"}} {
		crd := apiextensionsv1.CustomResourceDefinition{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition"},
			ObjectMeta: metav1.ObjectMeta{Name: k.plural + ".monitoring.coreos.com"},
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{
				Group: "monitoring.coreos.com", Scope: apiextensionsv1.NamespaceScoped,
				Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: k.kind, Plural: k.plural, ListKind: k.kind + "List", Singular: strings.ToLower(k.kind)},
				Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true,
					Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
						Type: "object", XPreserveUnknownFields: new(true)}}}},
			},
		}
		obj := map[string]any{}
		assert.NilError(t, yaml.Unmarshal(must(yaml.Marshal(crd)), &obj))
		_, err := dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}).
			Create(context.Background(), &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second) // the API server serves a new CRD within a moment
}

// createNamedObjects creates what a fixture names but does not create: existing Secrets and
// ServiceAccount, and ConfigMaps its controller volumes mount.
func createNamedObjects(t *testing.T, e *env, fixture map[string]any) {
	t.Helper()
	var v struct {
		Clearml struct {
			ExistingAgentk8sglueSecret  string `json:"existingAgentk8sglueSecret"`
			ExistingClearmlConfigSecret string `json:"existingClearmlConfigSecret"`
		} `json:"clearml"`
		Agentk8sglue struct {
			ServiceExistingAccountName string `json:"serviceExistingAccountName"`
			Volumes                    []corev1.Volume
		} `json:"agentk8sglue"`
	}
	assert.NilError(t, yaml.Unmarshal(must(yaml.Marshal(fixture)), &v))
	ctx := context.Background()
	core := e.cs.CoreV1()
	if s := v.Clearml.ExistingAgentk8sglueSecret; s != "" {
		_, err := core.Secrets(e.ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: s},
			StringData: map[string]string{"agentk8sglue_key": "CI-ACCESS-KEY", "agentk8sglue_secret": "CI-SECRET-KEY"}}, metav1.CreateOptions{})
		assert.NilError(t, err)
	}
	if s := v.Clearml.ExistingClearmlConfigSecret; s != "" {
		_, err := core.Secrets(e.ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: s},
			StringData: map[string]string{"clearml.conf": "sdk {}"}}, metav1.CreateOptions{})
		assert.NilError(t, err)
	}
	if sa := v.Agentk8sglue.ServiceExistingAccountName; sa != "" {
		_, err := core.ServiceAccounts(e.ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
		assert.NilError(t, err)
	}
	for _, vol := range v.Agentk8sglue.Volumes {
		if vol.ConfigMap != nil {
			_, err := core.ConfigMaps(e.ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: vol.ConfigMap.Name}}, metav1.CreateOptions{})
			assert.NilError(t, err)
		}
	}
}
