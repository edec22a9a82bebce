package chart

import (
	"maps"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime"
)

type rule struct {
	APIGroups     []string `json:"apiGroups"`
	Resources     []string `json:"resources"`
	ResourceNames []string `json:"resourceNames,omitempty"`
	Verbs         []string `json:"verbs"`
}

func roleRules(t *testing.T, r *Rendered) []rule {
	t.Helper()
	var role struct {
		Rules []rule `json:"rules"`
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(object(t, r, "Role", fullname).Object, &role); err != nil {
		t.Fatal(err)
	}
	return role.Rules
}

// TestPythonGlueNamespacesGetOnlyReadByName: migration namespaces get a Role that reads pods
// and jobs by name, nothing else, bound to the controller's ServiceAccount.
func TestPythonGlueNamespacesGetOnlyReadByName(t *testing.T) {
	r := withCreds(t, "agentk8sglue.pythonGlueNamespaces={legacy,clearml}")
	var roles, bindings []string
	for _, doc := range objects(t, r) {
		switch {
		case doc.GetName() != fullname+"-python-glue":
		case doc.GetKind() == "RoleBinding":
			bindings = append(bindings, doc.GetNamespace())
		case doc.GetKind() == "Role":
			var role struct {
				Rules []rule `json:"rules"`
			}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(doc.Object, &role); err != nil {
				t.Fatal(err)
			}
			roles = append(roles, doc.GetNamespace())
			want := []rule{
				{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}},
				{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"get"}},
			}
			if diff := cmp.Diff(want, role.Rules); diff != "" {
				t.Errorf("Role %s rules (-want +got):\n%s", doc.GetNamespace(), diff)
			}
		}
	}
	slices.Sort(roles)
	slices.Sort(bindings)
	if diff := cmp.Diff([]string{"clearml", "legacy"}, roles); diff != "" {
		t.Errorf("python glue Roles (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(roles, bindings); diff != "" {
		t.Errorf("python glue Roles (-want +got):\n%s", diff)
	}
}

// TestRoleRules: the Role grants exactly what the controller needs, and each optional feature
// adds exactly its own rights.
func TestRoleRules(t *testing.T) {
	base := []rule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{fullname}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"create", "get", "list", "watch", "delete"}},
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch", "delete"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		// Preflight: Events on its own Deployment, and whether the Secrets it names exist.
		{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, ResourceNames: []string{fullname}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{fullname + "-credentials"}, Verbs: []string{"get"}},
	}
	with := func(extra ...rule) []rule { return append(append([]rule(nil), base...), extra...) }
	secretsGet := func(names ...string) []rule {
		r := append([]rule(nil), base...)
		r[5] = rule{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: names, Verbs: []string{"get"}}
		return r
	}
	podCreate := append([]rule(nil), base...)
	podCreate[2] = rule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create", "get", "list", "watch", "delete"}}
	tests := []struct {
		name string
		set  []string
		want []rule
	}{
		{"defaults", nil, base},
		{"leader election", []string{"agentk8sglue.leaderElection.enabled=true", "agentk8sglue.leaderElection.leaseName=my-lease"}, with(
			rule{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
			rule{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{"my-lease"}, Verbs: []string{"get", "update"}},
		)},
		{"port mode", []string{"sessions.portModeEnabled=true"}, with(
			rule{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"list"}},
		)},
		{"bare pods", []string{"agentk8sglue.taskKind=Pod"}, podCreate},
		{"bare pods, open-source key", []string{"agentk8sglue.taskAsJob=false"}, podCreate},
		{"bare pods, Python glue variable", []string{"agentk8sglue.extraEnvs[0].name=CLEARML_K8S_GLUE_KIND", "agentk8sglue.extraEnvs[0].value=pod"}, podCreate},
		// Owner tokens: the per-task Secret is created, never read, listed or changed.
		{"owner tokens", []string{"agentk8sglue.useOwnerToken=true"}, with(
			rule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create"}},
		)},
		{"task credentials", []string{"clearml.taskCredentials.accessKey=TASK-KEY", "clearml.taskCredentials.secretKey=task-secret"},
			secretsGet(fullname+"-credentials", fullname+"-task-credentials")},
		{"every Secret the config names", []string{"clearml.existingAgentk8sglueSecret=glue-keys", "clearml.taskCredentials.existingSecret=task-keys",
			"clearml.existingClearmlConfigSecret=task-conf", "imageCredentials.enabled=true", "imageCredentials.existingSecret=registry"},
			secretsGet("glue-keys", "task-keys", "task-conf", "registry")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, roleRules(t, withCreds(t, tt.set...))); diff != "" {
				t.Errorf("Role rules (-want +got):\n%s", diff)
			}
		})
	}
}

// clusterScoped lists cluster-scoped resources, none of which belongs in a Role.
var clusterScoped = map[string]bool{
	"namespaces": true, "nodes": true, "persistentvolumes": true, "clusterroles": true,
	"clusterrolebindings": true, "customresourcedefinitions": true, "storageclasses": true,
	"priorityclasses": true, "ingressclasses": true, "runtimeclasses": true, "csidrivers": true,
	"csinodes": true, "volumeattachments": true, "mutatingwebhookconfigurations": true,
	"validatingwebhookconfigurations": true, "apiservices": true, "certificatesigningrequests": true,
	"componentstatuses": true, "tokenreviews": true, "subjectaccessreviews": true,
}

// TestRBACInvariants checks every ci values file, and one with every feature on, against the
// open-source chart's RBAC defects: no wildcard, no right on secrets (but get by name of exactly
// the Secrets the glue config names, for the preflight, and create with owner tokens, and only
// then), no extensions group, nothing cluster-scoped in a Role, and no ClusterRole or
// ClusterRoleBinding unless asked for.
func TestRBACInvariants(t *testing.T) {
	type renderCase struct {
		name  string
		files []string
		set   []string
	}
	cases := []renderCase{{name: "everything on", files: []string{filepath.Join(chartDir, "ci", "default-values.yaml")}, set: []string{
		"agentk8sglue.leaderElection.enabled=true", "sessions.portModeEnabled=true", "agentk8sglue.taskKind=Pod", "agentk8sglue.metrics.serviceMonitor.enabled=true",
		"agentk8sglue.useOwnerToken=true",
	}}}
	for _, f := range ciValuesFiles(t) {
		cases = append(cases, renderCase{name: feature(f), files: []string{f}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := render(t, c.files, c.set...)
			clusterBindingsAsked := c.name == "open-source-compatibility"
			cfg := glueConfig(t, r)
			ownerTokens := cfg.UseOwnerToken
			secretsCreated := false
			named := map[string]bool{}
			for _, n := range append([]string{cfg.ClearML.CredentialsSecret, cfg.ClearML.TaskCredentialsSecret, cfg.ClearML.ConfigSecret}, cfg.ImagePullSecrets...) {
				if n != "" {
					named[n] = true
				}
			}
			var readable []string
			for _, o := range objects(t, r) {
				switch o.GetKind() {
				case "ClusterRole":
					t.Errorf("ClusterRole %s rendered", o.GetName())
				case "ClusterRoleBinding":
					if !clusterBindingsAsked {
						t.Errorf("ClusterRoleBinding %s rendered without additionalClusterRoleBindings", o.GetName())
					}
				}
			}
			for _, ru := range roleRules(t, r) {
				for _, g := range ru.APIGroups {
					if g == "*" || g == "extensions" {
						t.Errorf("apiGroup %q in %+v", g, ru)
					}
				}
				for _, res := range ru.Resources {
					if res == "*" || clusterScoped[res] {
						t.Errorf("resource %q in %+v", res, ru)
					}
					for _, v := range ru.Verbs {
						if res == "secrets" && v == "create" && ownerTokens && len(ru.ResourceNames) == 0 {
							secretsCreated = true
							continue
						}
						if res == "secrets" && v == "get" && len(ru.ResourceNames) > 0 {
							readable = append(readable, ru.ResourceNames...)
							continue
						}
						if v == "*" || res == "secrets" {
							t.Errorf("verb %q on %s", v, res)
						}
					}
				}
			}
			if ownerTokens != secretsCreated {
				t.Errorf("useOwnerToken %v but secrets create granted: %v", ownerTokens, secretsCreated)
			}
			want := slices.Sorted(maps.Keys(named))
			slices.Sort(readable)
			if diff := cmp.Diff(want, readable); diff != "" {
				t.Errorf("secrets get: not exactly the Secrets the glue config names (-named +readable):\n%s", diff)
			}
		})
	}
}
