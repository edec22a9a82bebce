package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	appsv1 "k8s.io/api/apps/v1"
	authzv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
)

// The chart's acceptance on a real control plane: helm install/upgrade/test/uninstall through
// Helm's Go SDK, and the chart's RBAC checked by the API server's own authorizer.

// 1a. Adding a queue with helm upgrade changes only the ConfigMap: the controller pod template
// (and so the running pod) stays, and the running glue starts serving the new queue by reloading.
func TestChartUpgradeAddingQueueUpdatesConfigMapWithoutRollout(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  queues:
    queue-a: {}
`)
	ctx := context.Background()
	before := e.waitRolledOut(1)
	assert.DeepEqual(t, e.configQueues(), []string{"queue-a"})
	e.startGlue("glue-0")
	idA := e.task("queue-a", "before upgrade", emulator.TaskSpec{})
	e.waitJob(idA, 30*time.Second)

	e.upgrade(`
agentk8sglue:
  queues:
    queue-b: {}
`)
	assert.Equal(t, e.rel.Version, 2)
	assert.Equal(t, e.rel.Info.Status, release.StatusDeployed)
	hist, err := action.NewHistory(e.helm).Run(releaseName)
	assert.NilError(t, err)
	assert.Equal(t, len(hist), 2)
	assert.Equal(t, hist[0].Info.Status, release.StatusSuperseded, "revision 1")

	// The ConfigMap in the cluster (not only the manifest) holds both queues.
	assert.DeepEqual(t, e.configQueues(), []string{"queue-a", "queue-b"})

	// No rollout: the Deployment's spec is untouched (its generation would move on any change),
	// and the Deployment controller has still made exactly one ReplicaSet.
	after := e.waitRolledOut(1)
	assert.Equal(t, after.Generation, before.Generation, "the upgrade changed the Deployment spec")
	assert.Assert(t, apiequality.Semantic.DeepEqual(after.Spec.Template, before.Spec.Template),
		"pod template changed:\nbefore %+v\nafter  %+v", before.Spec.Template, after.Spec.Template)
	rs, err := e.cs.AppsV1().ReplicaSets(e.ns).List(ctx, metav1.ListOptions{})
	assert.NilError(t, err)
	assert.Equal(t, len(rs.Items), 1, "a new ReplicaSet means the controller pod was restarted")

	// Hot reload is what makes the restart unnecessary: the same glue serves the new queue.
	idB := e.task("queue-b", "after upgrade", emulator.TaskSpec{})
	job := e.waitJob(idB, 30*time.Second)
	assert.Equal(t, job.Labels[podtemplate.LabelQueueName], "queue-b")
}

// 1b. A new credential does restart the controller: the Secret checksum annotation of the pod
// template changes and the Deployment rolls out a new ReplicaSet.
func TestChartUpgradeChangingCredentialRollsOutController(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	before := e.waitRolledOut(1)
	oldSum := before.Spec.Template.Annotations["checksum/secrets"]
	assert.Assert(t, oldSum != "", "pod template has no checksum/secrets annotation: %v", before.Spec.Template.Annotations)
	oldCM := e.configMapData()

	e.upgrade(`
clearml:
  agentk8sglueSecret: rotated-secret-key
`)
	assert.Equal(t, e.rel.Version, 2)
	assert.Equal(t, e.rel.Info.Status, release.StatusDeployed)

	sec, err := e.cs.CoreV1().Secrets(e.ns).Get(ctx, releaseName+"-credentials", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, string(sec.Data["agentk8sglue_secret"]), "rotated-secret-key")
	assert.DeepEqual(t, e.configMapData(), oldCM) // credentials never reach the ConfigMap

	after := e.waitRolledOut(2)
	newSum := after.Spec.Template.Annotations["checksum/secrets"]
	assert.Assert(t, newSum != "" && newSum != oldSum, "checksum/secrets did not change: %q", newSum)
	assert.Assert(t, after.Generation > before.Generation)
	rs, err := e.cs.AppsV1().ReplicaSets(e.ns).List(ctx, metav1.ListOptions{})
	assert.NilError(t, err)
	var sums []string
	for _, r := range rs.Items {
		sums = append(sums, r.Spec.Template.Annotations["checksum/secrets"])
	}
	sort.Strings(sums)
	want := []string{oldSum, newSum}
	sort.Strings(want)
	assert.DeepEqual(t, sums, want)
}

// 2. helm test runs the chart's test hook pod (kwok plays it) and records its success.
func TestChartHelmTestHookSucceeds(t *testing.T) {
	e := newEnv(t, "")
	rt := action.NewReleaseTesting(e.helm)
	rt.Namespace, rt.Timeout = e.ns, time.Minute
	start := time.Now()
	rel, err := rt.Run(releaseName)
	assert.NilError(t, err, "helm test")

	var hooks []*release.Hook
	for _, h := range rel.Hooks {
		if slices.Contains(h.Events, release.HookTest) {
			hooks = append(hooks, h)
		}
	}
	assert.Equal(t, len(hooks), 1, "test hooks: %+v", hooks)
	h := hooks[0]
	assert.Equal(t, h.Kind, "Pod")
	assert.Equal(t, h.Name, releaseName+"-test")
	assert.Equal(t, h.LastRun.Phase, release.HookPhaseSucceeded)
	assert.Assert(t, !h.LastRun.StartedAt.Time.Before(start.Add(-time.Second)), "hook did not run in this helm test: %+v", h.LastRun)
	assert.Assert(t, !h.LastRun.CompletedAt.Time.Before(h.LastRun.StartedAt.Time))

	// The result is stored with the release, as `helm status` shows it.
	stored, err := e.helm.Releases.Last(releaseName)
	assert.NilError(t, err)
	for _, sh := range stored.Hooks {
		if sh.Name == h.Name {
			assert.Equal(t, sh.LastRun.Phase, release.HookPhaseSucceeded, "stored hook")
		}
	}
	// hook-delete-policy hook-succeeded: the pod is gone.
	_, err = e.cs.CoreV1().Pods(e.ns).Get(context.Background(), h.Name, metav1.GetOptions{})
	assert.Assert(t, apierrors.IsNotFound(err), "test pod still there after success: %v", err)
}

// 3. helm uninstall removes every object the chart made, with every optional object turned on,
// and Helm's own release Secrets (no KeepHistory).
func TestChartUninstallLeavesNothingInNamespace(t *testing.T) {
	e := newEnv(t, `
clearml:
  clearmlConfig: "sdk { }"
imageCredentials:
  enabled: true
  registry: registry.example.com
  username: puller
  password: pull-token
agentk8sglue:
  leaderElection:
    enabled: true
  additionalRoleBindings: [extra-role]
  fileMounts:
    - name: ca.pem
      folderPath: /etc/ssl/clearml
      fileContent: not-a-cert
sessions:
  portModeEnabled: true
  svcType: ClusterIP
  maxServices: 2
`)
	ctx := context.Background()
	e.upgrade(`agentk8sglue: {queues: {extra-queue: {}}}`) // two revisions of Helm storage

	// Everything the release rendered exists, and the generic lister sees it (with the Helm
	// storage Secrets and the Deployment's ReplicaSet and Pod), so an empty list later means
	// something.
	var present []string
	e.waitFor(time.Minute, "the controller's ReplicaSet and Pod", func() bool {
		present = e.namespaceObjects()
		return slices.ContainsFunc(present, func(s string) bool { return strings.HasPrefix(s, "ReplicaSet/") }) &&
			slices.ContainsFunc(present, func(s string) bool { return strings.HasPrefix(s, "Pod/") })
	}, func() string { return fmt.Sprintf("listed: %v", present) })
	manifest := e.manifestRefs()
	wantKinds := []string{"ConfigMap", "Deployment", "Role", "RoleBinding", "Secret", "Service", "ServiceAccount"}
	var kinds []string
	for _, r := range manifest {
		if !slices.Contains(kinds, r.kind) {
			kinds = append(kinds, r.kind)
		}
	}
	sort.Strings(kinds)
	assert.DeepEqual(t, kinds, wantKinds)
	assert.Equal(t, countKind(manifest, "Secret"), 4, "credentials, clearml.conf, registry, files: %v", manifest)
	assert.Equal(t, countKind(manifest, "Service"), 4, "metrics + diagnosis + 2 sessions: %v", manifest)
	assert.Equal(t, countKind(manifest, "RoleBinding"), 2, "own + additional: %v", manifest)
	helmSecrets := func() []string {
		list, err := e.cs.CoreV1().Secrets(e.ns).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,name=" + releaseName})
		assert.NilError(t, err)
		var names []string
		for _, s := range list.Items {
			names = append(names, s.Name)
		}
		return names
	}
	assert.Equal(t, len(helmSecrets()), 2, "Helm storage: %v", helmSecrets())
	for _, r := range manifest {
		assert.Assert(t, slices.Contains(present, r.String()), "%s not listed; listed: %v", r, present)
	}
	for _, s := range helmSecrets() {
		assert.Assert(t, slices.Contains(present, "Secret/"+s), "Helm storage %s not listed; listed: %v", s, present)
	}

	un := action.NewUninstall(e.helm)
	un.Wait, un.Timeout = true, time.Minute
	resp, err := un.Run(releaseName)
	assert.NilError(t, err, "helm uninstall")
	assert.Equal(t, resp.Release.Info.Status, release.StatusUninstalled)

	for _, r := range manifest {
		_, err := e.dynamic().Resource(r.gvr).Namespace(e.ns).Get(ctx, r.name, metav1.GetOptions{})
		assert.Assert(t, apierrors.IsNotFound(err), "%s survived helm uninstall (err %v)", r, err)
	}
	assert.Equal(t, len(helmSecrets()), 0, "Helm storage left: %v", helmSecrets())
	_, err = action.NewHistory(e.helm).Run(releaseName)
	assert.Assert(t, errors.Is(err, driver.ErrReleaseNotFound), "helm history after uninstall: %v", err)

	// Dependents (ReplicaSet, Pod, EndpointSlices) go through the garbage collector: wait for it.
	var left []string
	e.waitFor(time.Minute, "an empty namespace", func() bool {
		left = e.namespaceObjects()
		return len(left) == 0
	}, func() string { return fmt.Sprintf("left behind: %v", left) })
}

// 4. The chart's RBAC, asked of the API server's authorizer (SubjectAccessReview) and tried with
// a token of the chart's ServiceAccount: exactly what the controller needs, nothing more.
func TestChartRBACGrantsControllerNeedsAndRefusesTheRest(t *testing.T) {
	e := newEnv(t, "")
	cm := objectName(e.manifestObject("ConfigMap"))
	lease := releaseName // leaderElection.leaseName empty: the full name
	const other, allNamespaces = "default", "<all>"
	type attrs = authzv1.ResourceAttributes
	cases := map[string]struct {
		attrs   attrs
		allowed bool
	}{
		"create jobs": {attrs{Verb: "create", Group: "batch", Resource: "jobs"}, true},
		"get jobs":    {attrs{Verb: "get", Group: "batch", Resource: "jobs"}, true},
		"list jobs":   {attrs{Verb: "list", Group: "batch", Resource: "jobs"}, true},
		"watch jobs":  {attrs{Verb: "watch", Group: "batch", Resource: "jobs"}, true},
		"refused: patch jobs (nothing patches them)": {attrs{Verb: "patch", Group: "batch", Resource: "jobs"}, false},
		"delete jobs":                                       {attrs{Verb: "delete", Group: "batch", Resource: "jobs"}, true},
		"get pods":                                          {attrs{Verb: "get", Resource: "pods"}, true},
		"list pods":                                         {attrs{Verb: "list", Resource: "pods"}, true},
		"watch pods":                                        {attrs{Verb: "watch", Resource: "pods"}, true},
		"delete pods":                                       {attrs{Verb: "delete", Resource: "pods"}, true},
		"create events":                                     {attrs{Verb: "create", Resource: "events"}, true},
		"patch events":                                      {attrs{Verb: "patch", Resource: "events"}, true},
		"get own configmap":                                 {attrs{Verb: "get", Resource: "configmaps", Name: cm}, true},
		"list own configmap by name":                        {attrs{Verb: "list", Resource: "configmaps", Name: cm}, true},
		"watch own configmap by name":                       {attrs{Verb: "watch", Resource: "configmaps", Name: cm}, true},
		"refused: list all configmaps":                      {attrs{Verb: "list", Resource: "configmaps"}, false},
		"refused: watch all configmaps":                     {attrs{Verb: "watch", Resource: "configmaps"}, false},
		"refused: get other configmap":                      {attrs{Verb: "get", Resource: "configmaps", Name: "kube-root-ca.crt"}, false},
		"refused: update own configmap":                     {attrs{Verb: "update", Resource: "configmaps", Name: cm}, false},
		"refused: create configmaps":                        {attrs{Verb: "create", Resource: "configmaps"}, false},
		"refused: create secrets":                           {attrs{Verb: "create", Resource: "secrets"}, false},
		"refused: update secrets":                           {attrs{Verb: "update", Resource: "secrets", Name: releaseName + "-credentials"}, false},
		"refused: patch secrets":                            {attrs{Verb: "patch", Resource: "secrets", Name: releaseName + "-credentials"}, false},
		"refused: delete secrets":                           {attrs{Verb: "delete", Resource: "secrets", Name: releaseName + "-credentials"}, false},
		"get the Secret the config names (preflight)":       {attrs{Verb: "get", Resource: "secrets", Name: releaseName + "-credentials"}, true},
		"refused: get another secret":                       {attrs{Verb: "get", Resource: "secrets", Name: "someone-elses"}, false},
		"get own deployment (preflight Events)":             {attrs{Verb: "get", Group: "apps", Resource: "deployments", Name: releaseName}, true},
		"refused: get another deployment":                   {attrs{Verb: "get", Group: "apps", Resource: "deployments", Name: "someone-elses"}, false},
		"refused: list deployments":                         {attrs{Verb: "list", Group: "apps", Resource: "deployments"}, false},
		"refused: update own deployment":                    {attrs{Verb: "update", Group: "apps", Resource: "deployments", Name: releaseName}, false},
		"refused: list secrets":                             {attrs{Verb: "list", Resource: "secrets"}, false},
		"refused: create pods (taskKind Job)":               {attrs{Verb: "create", Resource: "pods"}, false},
		"refused: pods exec":                                {attrs{Verb: "create", Resource: "pods", Subresource: "exec"}, false},
		"refused: deletecollection jobs":                    {attrs{Verb: "deletecollection", Group: "batch", Resource: "jobs"}, false},
		"refused: services (no port mode)":                  {attrs{Verb: "create", Resource: "services"}, false},
		"refused: serviceaccount tokens":                    {attrs{Verb: "create", Resource: "serviceaccounts", Subresource: "token", Name: releaseName}, false},
		"refused: create roles":                             {attrs{Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "roles"}, false},
		"refused: update own role":                          {attrs{Verb: "update", Group: "rbac.authorization.k8s.io", Resource: "roles", Name: releaseName}, false},
		"refused: create rolebindings":                      {attrs{Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "rolebindings"}, false},
		"refused: jobs in another namespace":                {attrs{Namespace: other, Verb: "create", Group: "batch", Resource: "jobs"}, false},
		"refused: pods in another namespace":                {attrs{Namespace: other, Verb: "list", Resource: "pods"}, false},
		"refused: same configmap name in another namespace": {attrs{Namespace: other, Verb: "get", Resource: "configmaps", Name: cm}, false},
		"refused: events in another namespace":              {attrs{Namespace: other, Verb: "create", Resource: "events"}, false},
		"refused: jobs in all namespaces":                   {attrs{Namespace: allNamespaces, Verb: "list", Group: "batch", Resource: "jobs"}, false},
		"refused: list nodes":                               {attrs{Verb: "list", Resource: "nodes"}, false},
		"refused: get nodes":                                {attrs{Verb: "get", Resource: "nodes", Name: "cpu-0"}, false},
		"refused: list namespaces":                          {attrs{Verb: "list", Resource: "namespaces"}, false},
		"refused: get own namespace":                        {attrs{Verb: "get", Resource: "namespaces", Name: e.ns}, false},
		"refused: list clusterroles":                        {attrs{Verb: "list", Group: "rbac.authorization.k8s.io", Resource: "clusterroles"}, false},
		"refused: create clusterrolebindings":               {attrs{Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"}, false},
		"refused: persistentvolumes":                        {attrs{Verb: "list", Resource: "persistentvolumes"}, false},
		"refused: create leases without leader election":    {attrs{Verb: "create", Group: "coordination.k8s.io", Resource: "leases"}, false},
		"refused: get lease without leader election":        {attrs{Verb: "get", Group: "coordination.k8s.io", Resource: "leases", Name: lease}, false},
		"refused: update lease without leader election":     {attrs{Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Name: lease}, false},
	}
	clusterScoped := map[string]bool{"nodes": true, "namespaces": true, "clusterroles": true, "clusterrolebindings": true, "persistentvolumes": true}
	for name, tc := range cases {
		t.Run("review/"+name, func(t *testing.T) {
			a := tc.attrs
			switch {
			case clusterScoped[a.Resource], a.Namespace == allNamespaces:
				a.Namespace = ""
			case a.Namespace == "":
				a.Namespace = e.ns
			}
			allowed, reason := e.reviewServiceAccount(a)
			assert.Equal(t, allowed, tc.allowed, "%+v: %s", a, reason)
		})
	}

	// The same rights, tried for real with the ServiceAccount's token (dry-run writes).
	sa, err := kubernetes.NewForConfig(e.serviceAccountConfig())
	assert.NilError(t, err)
	ctx := context.Background()
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	byName := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", cm).String()}
	calls := map[string]struct {
		call    func() error
		allowed bool
	}{
		"get own configmap": {func() error {
			_, err := sa.CoreV1().ConfigMaps(e.ns).Get(ctx, cm, metav1.GetOptions{})
			return err
		}, true},
		"list own configmap with field selector": {func() error {
			l, err := sa.CoreV1().ConfigMaps(e.ns).List(ctx, byName)
			if err == nil && len(l.Items) != 1 {
				return fmt.Errorf("listed %d configmaps", len(l.Items))
			}
			return err
		}, true},
		"watch own configmap with field selector": {func() error {
			w, err := sa.CoreV1().ConfigMaps(e.ns).Watch(ctx, byName)
			if err == nil {
				w.Stop()
			}
			return err
		}, true},
		"create job (dry run)": {func() error {
			_, err := sa.BatchV1().Jobs(e.ns).Create(ctx, probeJob(e.ns), dry)
			return err
		}, true},
		"list and watch jobs": {func() error {
			if _, err := sa.BatchV1().Jobs(e.ns).List(ctx, metav1.ListOptions{}); err != nil {
				return err
			}
			w, err := sa.BatchV1().Jobs(e.ns).Watch(ctx, metav1.ListOptions{})
			if err == nil {
				w.Stop()
			}
			return err
		}, true},
		"list and watch pods": {func() error {
			if _, err := sa.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{}); err != nil {
				return err
			}
			w, err := sa.CoreV1().Pods(e.ns).Watch(ctx, metav1.ListOptions{})
			if err == nil {
				w.Stop()
			}
			return err
		}, true},
		"create event (dry run)": {func() error {
			_, err := sa.CoreV1().Events(e.ns).Create(ctx, &corev1.Event{
				ObjectMeta:     metav1.ObjectMeta{GenerateName: "probe-"},
				InvolvedObject: corev1.ObjectReference{Kind: "ConfigMap", Namespace: e.ns, Name: cm},
				Reason:         "Probe", Message: "rbac probe", Type: corev1.EventTypeNormal,
			}, dry)
			return err
		}, true},
		"refused: list all configmaps": {func() error {
			_, err := sa.CoreV1().ConfigMaps(e.ns).List(ctx, metav1.ListOptions{})
			return err
		}, false},
		"refused: get other configmap": {func() error {
			_, err := sa.CoreV1().ConfigMaps(e.ns).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
			return err
		}, false},
		"refused: create secret (dry run)": {func() error {
			_, err := sa.CoreV1().Secrets(e.ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "probe"}}, dry)
			return err
		}, false},
		"get credentials secret (preflight)": {func() error {
			_, err := sa.CoreV1().Secrets(e.ns).Get(ctx, releaseName+"-credentials", metav1.GetOptions{})
			return err
		}, true},
		"refused: get another secret": {func() error {
			_, err := sa.CoreV1().Secrets(e.ns).Get(ctx, "someone-elses", metav1.GetOptions{})
			return err
		}, false},
		"get own deployment": {func() error {
			_, err := sa.AppsV1().Deployments(e.ns).Get(ctx, releaseName, metav1.GetOptions{})
			return err
		}, true},
		"refused: delete credentials secret (dry run)": {func() error {
			return sa.CoreV1().Secrets(e.ns).Delete(ctx, releaseName+"-credentials", metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
		}, false},
		"refused: create job in another namespace (dry run)": {func() error {
			_, err := sa.BatchV1().Jobs(other).Create(ctx, probeJob(other), dry)
			return err
		}, false},
		"refused: list pods in another namespace": {func() error {
			_, err := sa.CoreV1().Pods(other).List(ctx, metav1.ListOptions{})
			return err
		}, false},
		"refused: list nodes": {func() error {
			_, err := sa.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			return err
		}, false},
		"refused: get own namespace": {func() error {
			_, err := sa.CoreV1().Namespaces().Get(ctx, e.ns, metav1.GetOptions{})
			return err
		}, false},
		"refused: list clusterroles": {func() error {
			_, err := sa.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})
			return err
		}, false},
		"refused: create lease without leader election (dry run)": {func() error {
			_, err := sa.CoordinationV1().Leases(e.ns).Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: lease}}, dry)
			return err
		}, false},
	}
	for name, tc := range calls {
		t.Run("token/"+name, func(t *testing.T) {
			err := tc.call()
			if tc.allowed {
				assert.NilError(t, err)
			} else {
				assert.Assert(t, apierrors.IsForbidden(err), "want Forbidden, got %v", err)
			}
		})
	}

	// Leader election on: the Role gains create on leases and get/update on its own Lease only.
	e.upgrade(`agentk8sglue: {leaderElection: {enabled: true}}`)
	leaseCases := map[string]struct {
		attrs   attrs
		allowed bool
	}{
		"create leases":                        {attrs{Verb: "create", Group: "coordination.k8s.io", Resource: "leases"}, true},
		"get own lease":                        {attrs{Verb: "get", Group: "coordination.k8s.io", Resource: "leases", Name: lease}, true},
		"update own lease":                     {attrs{Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Name: lease}, true},
		"refused: get other lease":             {attrs{Verb: "get", Group: "coordination.k8s.io", Resource: "leases", Name: "kube-scheduler"}, false},
		"refused: update other lease":          {attrs{Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Name: "someone-else"}, false},
		"refused: delete own lease":            {attrs{Verb: "delete", Group: "coordination.k8s.io", Resource: "leases", Name: lease}, false},
		"refused: list leases":                 {attrs{Verb: "list", Group: "coordination.k8s.io", Resource: "leases"}, false},
		"refused: leases in another namespace": {attrs{Namespace: "kube-system", Verb: "get", Group: "coordination.k8s.io", Resource: "leases", Name: "kube-scheduler"}, false},
	}
	for name, tc := range leaseCases {
		t.Run("leader-election/"+name, func(t *testing.T) {
			a := tc.attrs
			if a.Namespace == "" {
				a.Namespace = e.ns
			}
			allowed, reason := e.reviewServiceAccount(a)
			assert.Equal(t, allowed, tc.allowed, "%+v: %s", a, reason)
		})
	}
	t.Run("leader-election/token/create lease (dry run)", func(t *testing.T) {
		_, err := sa.CoordinationV1().Leases(e.ns).Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: lease}}, dry)
		assert.NilError(t, err)
	})
}

// 5. Leader election wired end to end: two glues running as the chart's ServiceAccount, one Lease
// (the name the chart gives the Deployment and the Role) naming one of them, kept renewed.
func TestChartLeaderElectionLeaseNamesOneHolder(t *testing.T) {
	// A custom Lease name: what is checked is that the Deployment, the Role and the controller
	// (the harness reads the name from the Deployment, as the pod would) agree on it.
	const leaseName = "clearml-agent-leader"
	e := newEnv(t, `
agentk8sglue:
  replicaCount: 2
  leaderElection:
    enabled: true
    leaseName: clearml-agent-leader
`)
	ctx := context.Background()
	dep := e.manifestObject("Deployment")
	assert.Equal(t, containerEnv(t, dep, "GLUE_LEASE_NAME"), leaseName)
	assert.Equal(t, containerEnv(t, dep, "GLUE_LEADER_ELECTION"), "true")
	assert.Equal(t, e.settings("x").LeaseName, leaseName)

	e.startGlue("glue-a")
	e.startGlue("glue-b")
	var l *coordinationv1.Lease
	e.waitFor(time.Minute, "the Lease to name a holder", func() bool {
		var err error
		l, err = e.cs.CoordinationV1().Leases(e.ns).Get(ctx, leaseName, metav1.GetOptions{})
		return err == nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != ""
	}, func() string { return fmt.Sprintf("lease %+v", l) })
	holder := *l.Spec.HolderIdentity
	assert.Assert(t, holder == "glue-a" || holder == "glue-b", "holder %q", holder)
	leases, err := e.cs.CoordinationV1().Leases(e.ns).List(ctx, metav1.ListOptions{})
	assert.NilError(t, err)
	assert.Equal(t, len(leases.Items), 1, "leases: %+v", leases.Items)

	// The holder renews it (update on its own Lease is granted) and keeps it.
	first := l.Spec.RenewTime.Time
	e.waitFor(20*time.Second, "the Lease to be renewed", func() bool {
		l, err = e.cs.CoordinationV1().Leases(e.ns).Get(ctx, leaseName, metav1.GetOptions{})
		return err == nil && l.Spec.RenewTime != nil && l.Spec.RenewTime.After(first)
	}, func() string { return fmt.Sprintf("lease %+v", l) })
	assert.Equal(t, *l.Spec.HolderIdentity, holder)
	if tr := l.Spec.LeaseTransitions; tr != nil {
		assert.Equal(t, *tr, int32(0), "the Lease changed hands")
	}
}

// --- helpers ---

// waitRolledOut waits until the Deployment controller has seen the current spec and the
// Deployment has n ReplicaSets; it returns the Deployment.
func (e *env) waitRolledOut(n int) *appsv1.Deployment {
	e.t.Helper()
	ctx := context.Background()
	name := objectName(e.manifestObject("Deployment"))
	var dep *appsv1.Deployment
	var rsNames []string
	e.waitFor(time.Minute, fmt.Sprintf("deployment %s observed with %d ReplicaSets", name, n), func() bool {
		var err error
		dep, err = e.cs.AppsV1().Deployments(e.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil || dep.Status.ObservedGeneration < dep.Generation {
			return false
		}
		rs, err := e.cs.AppsV1().ReplicaSets(e.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		rsNames = rsNames[:0]
		for _, r := range rs.Items {
			rsNames = append(rsNames, r.Name)
		}
		return len(rsNames) == n
	}, func() string {
		if dep == nil {
			return "no deployment"
		}
		return fmt.Sprintf("generation %d, observed %d, ReplicaSets %v", dep.Generation, dep.Status.ObservedGeneration, rsNames)
	})
	return dep
}

func (e *env) configMapData() map[string]string {
	e.t.Helper()
	cm, err := e.cs.CoreV1().ConfigMaps(e.ns).Get(context.Background(), objectName(e.manifestObject("ConfigMap")), metav1.GetOptions{})
	assert.NilError(e.t, err)
	return cm.Data
}

// configQueues decodes the glue.yaml of the ConfigMap in the cluster as the controller does.
func (e *env) configQueues() []string {
	e.t.Helper()
	f, err := config.Parse([]byte(e.configMapData()["glue.yaml"]), "configmap glue.yaml")
	assert.NilError(e.t, err)
	names := f.QueueNames()
	sort.Strings(names)
	return names
}

// reviewServiceAccount asks the API server whether the chart's ServiceAccount may do a, with the
// groups its token carries.
func (e *env) reviewServiceAccount(a authzv1.ResourceAttributes) (bool, string) {
	e.t.Helper()
	sa := objectName(e.manifestObject("ServiceAccount"))
	r, err := e.cs.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), &authzv1.SubjectAccessReview{
		Spec: authzv1.SubjectAccessReviewSpec{
			User:               "system:serviceaccount:" + e.ns + ":" + sa,
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + e.ns, "system:authenticated"},
			ResourceAttributes: &a,
		},
	}, metav1.CreateOptions{})
	assert.NilError(e.t, err)
	return r.Status.Allowed && !r.Status.Denied, r.Status.Reason + r.Status.EvaluationError
}

func probeJob(ns string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "rbac-probe", Namespace: ns},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "main", Image: "busybox"}},
		}}},
	}
}

func containerEnv(t *testing.T, dep map[string]any, name string) string {
	t.Helper()
	spec := dep["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	for _, c := range spec["containers"].([]any) {
		for _, v := range c.(map[string]any)["env"].([]any) {
			if v := v.(map[string]any); v["name"] == name {
				s, _ := v["value"].(string)
				return s
			}
		}
	}
	t.Fatalf("deployment has no env %s", name)
	return ""
}

func (e *env) dynamic() dynamic.Interface {
	e.t.Helper()
	cfg := rest.CopyConfig(e.admin)
	cfg.WarningHandler = rest.NoWarnings{} // listing every type includes deprecated v1 Endpoints
	d, err := dynamic.NewForConfig(cfg)
	assert.NilError(e.t, err)
	return d
}

type objectRef struct {
	kind, name string
	gvr        schema.GroupVersionResource
}

func (r objectRef) String() string { return r.kind + "/" + r.name }

func countKind(refs []objectRef, kind string) int {
	n := 0
	for _, r := range refs {
		if r.kind == kind {
			n++
		}
	}
	return n
}

// manifestRefs lists the objects of the release manifest with their resource.
func (e *env) manifestRefs() []objectRef {
	e.t.Helper()
	mapper := e.namespacedResources()
	var refs []objectRef
	for doc := range strings.SplitSeq(e.rel.Manifest, "\n---") {
		var m struct {
			APIVersion string            `json:"apiVersion"`
			Kind       string            `json:"kind"`
			Metadata   metav1.ObjectMeta `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil || m.Kind == "" {
			continue
		}
		gv, err := schema.ParseGroupVersion(m.APIVersion)
		assert.NilError(e.t, err)
		gvr, ok := mapper[gv.WithKind(m.Kind)]
		assert.Assert(e.t, ok, "no resource for %s %s", m.APIVersion, m.Kind)
		refs = append(refs, objectRef{kind: m.Kind, name: m.Metadata.Name, gvr: gvr})
	}
	return refs
}

// namespacedResources lists every namespaced resource type the API server serves that can be
// listed, by kind, in its preferred version.
func (e *env) namespacedResources() map[schema.GroupVersionKind]schema.GroupVersionResource {
	e.t.Helper()
	lists, err := e.cs.Discovery().ServerPreferredNamespacedResources()
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		assert.NilError(e.t, err)
	}
	out := map[schema.GroupVersionKind]schema.GroupVersionResource{}
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		assert.NilError(e.t, err)
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") {
				continue
			}
			out[gv.WithKind(r.Kind)] = gv.WithResource(r.Name)
		}
	}
	return out
}

// namespaceObjects lists every object in the namespace, of every listable namespaced type, as
// Kind/name, except what every namespace holds (the default ServiceAccount, kube-root-ca.crt)
// and Events, which record history rather than being made by anyone.
func (e *env) namespaceObjects() []string {
	e.t.Helper()
	ctx := context.Background()
	d := e.dynamic()
	var out []string
	for gvk, gvr := range e.namespacedResources() {
		if gvr.Resource == "events" {
			continue
		}
		list, err := d.Resource(gvr).Namespace(e.ns).List(ctx, metav1.ListOptions{})
		if apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
			continue
		}
		assert.NilError(e.t, err, "list %s", gvr)
		for _, o := range list.Items {
			id := gvk.Kind + "/" + o.GetName()
			if id == "ServiceAccount/default" || id == "ConfigMap/kube-root-ca.crt" {
				continue
			}
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}
