package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"sigs.k8s.io/yaml"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"github.com/clearml-glue/clearml-glue/internal/localcluster"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
	"github.com/clearml-glue/clearml-glue/internal/testenv"
)

// The RBAC audit: the shared cluster logs every request made by a service account (Metadata
// level). After the tests, the requests the controllers made (user agent clearml-glue/..., as the
// chart's ServiceAccount of a release the tests installed) are compared with the Roles the chart
// rendered for those releases, in both directions: a controller request the API server refused
// is a missing grant, and a granted verb that no controller used in a full run is a grant the
// chart should not hold. The table goes to .build/e2e/rbac-audit.md.

// perm is one RBAC permission: a verb on a resource of an API group ("" is the core group), in
// the release's namespace (Scope ""), in another namespace ("other namespace": the Python glue's,
// for the migration) or on a cluster-scoped resource ("cluster").
type perm struct{ Verb, Group, Resource, Scope string }

func (p perm) String() string {
	s := p.Verb + " " + p.resource()
	if p.Scope != "" {
		s += " (" + p.Scope + ")"
	}
	return s
}

func (p perm) resource() string {
	g := p.Group
	if g == "" {
		g = "core"
	}
	return g + "/" + p.Resource
}

const otherNamespace = "other namespace"

// grantBook records, per ServiceAccount user name, the permissions the chart's Roles grant it
// (every revision of its release) and the test that installed it.
type grantBook struct {
	mu     sync.Mutex
	grants map[string]map[perm]bool
	tests  map[string]string
}

var grants = &grantBook{grants: map[string]map[perm]bool{}, tests: map[string]string{}}

// record adds the Roles of a release revision, bound to the release's ServiceAccount.
func (b *grantBook) record(test string, r *testenv.Release) error {
	sa, err := r.ObjectName("ServiceAccount")
	if err != nil {
		return err
	}
	user := "system:serviceaccount:" + r.Namespace + ":" + sa
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.grants[user] == nil {
		b.grants[user] = map[perm]bool{}
	}
	b.tests[user] = test
	for doc := range strings.SplitSeq(r.Release.Manifest, "\n---") {
		var role rbacv1.Role
		if err := yaml.Unmarshal([]byte(doc), &role); err != nil || role.Kind != "Role" {
			continue
		}
		scope := ""
		if role.Namespace != "" && role.Namespace != r.Namespace {
			scope = otherNamespace
		}
		for _, rule := range role.Rules {
			for _, g := range rule.APIGroups {
				for _, res := range rule.Resources {
					for _, v := range rule.Verbs {
						b.grants[user][perm{v, g, res, scope}] = true
					}
				}
			}
		}
	}
	return nil
}

// auditEvent is the part of an audit.k8s.io/v1 Event the comparison reads.
type auditEvent struct {
	AuditID   string `json:"auditID"`
	Verb      string `json:"verb"`
	UserAgent string `json:"userAgent"`
	User      struct {
		Username string `json:"username"`
	} `json:"user"`
	ImpersonatedUser *struct {
		Username string `json:"username"`
	} `json:"impersonatedUser"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		APIGroup    string `json:"apiGroup"`
		Namespace   string `json:"namespace"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
}

// usage is what the controllers did with one permission.
type usage struct {
	requests, refused int
	tests             map[string]bool
}

// auditResult compares the controllers' requests with the grants.
type auditResult struct {
	used      map[perm]*usage
	granted   map[perm]bool
	byChart   map[perm]bool // used perms some release's Role grants
	requests  int
	other     int // controller requests outside any resource (discovery) or impersonated
	fullSuite bool
}

// readAudit reads the audit log: each request once (watches log several stages).
func readAudit(r io.Reader, b *grantBook) (*auditResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	res := &auditResult{used: map[perm]*usage{}, granted: map[perm]bool{}, byChart: map[perm]bool{}}
	for _, g := range b.grants {
		for p := range g {
			res.granted[p] = true
		}
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev auditEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, fmt.Errorf("audit log: %w", err)
		}
		g, ok := b.grants[ev.User.Username]
		if !ok || !strings.HasPrefix(ev.UserAgent, "clearml-glue/") || seen[ev.AuditID] {
			continue
		}
		seen[ev.AuditID] = true
		res.requests++
		if ev.ObjectRef == nil || ev.ImpersonatedUser != nil {
			res.other++
			continue
		}
		resource := ev.ObjectRef.Resource
		if ev.ObjectRef.Subresource != "" {
			resource += "/" + ev.ObjectRef.Subresource
		}
		scope := ""
		switch own := strings.Split(ev.User.Username, ":")[2]; ev.ObjectRef.Namespace {
		case own:
		case "":
			scope = "cluster"
		default:
			scope = otherNamespace
		}
		p := perm{ev.Verb, ev.ObjectRef.APIGroup, resource, scope}
		u := res.used[p]
		if u == nil {
			u = &usage{tests: map[string]bool{}}
			res.used[p] = u
		}
		u.requests++
		u.tests[b.tests[ev.User.Username]] = true
		if ev.ResponseStatus != nil && ev.ResponseStatus.Code == 403 {
			u.refused++
		}
		if g[p] {
			res.byChart[p] = true
		}
	}
	return res, sc.Err()
}

// expectedRefusals are controller requests the API server may refuse by design (a probe that
// handles the refusal), with the reason. A refusal not listed fails the run.
var expectedRefusals = map[perm]string{
	// The Role names the Secrets it grants; a helm upgrade that renames one (TestDiagnosis's fixes)
	// changes the Role and the ConfigMap at once, and the preflight check of the new name can reach
	// the API server's authorizer before the upgraded Role does. The check handles it ("not
	// checked (no right to read it)") and runs again on the next reload.
	{Verb: "get", Resource: "secrets"}: "a preflight check racing the Role of the same helm upgrade",
}

// problems are the findings that fail the run: refused controller requests, and (in a full run)
// granted permissions no controller used.
func (res *auditResult) problems() []string {
	var out []string
	for p, u := range res.used {
		if _, expected := expectedRefusals[p]; u.refused > 0 && !expected {
			out = append(out, fmt.Sprintf("%s: %d controller request(s) refused (403): the chart's Role misses it", p, u.refused))
		}
	}
	if res.fullSuite {
		for p := range res.granted {
			if res.used[p] == nil {
				out = append(out, fmt.Sprintf("%s: granted by the chart's Role but no controller used it in the whole suite", p))
			}
		}
	}
	sort.Strings(out)
	return out
}

// table is the report: every permission granted or used, with what the controllers did.
func (res *auditResult) table() string {
	keys := map[perm]bool{}
	for p := range res.granted {
		keys[p] = true
	}
	for p := range res.used {
		keys[p] = true
	}
	sorted := make([]perm, 0, len(keys))
	for p := range keys {
		sorted = append(sorted, p)
	}
	sort.Slice(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.Scope != b.Scope {
			return a.Scope < b.Scope
		}
		if a.resource() != b.resource() {
			return a.resource() < b.resource()
		}
		return a.Verb < b.Verb
	})
	var sb strings.Builder
	fmt.Fprintf(&sb, "Controller requests: %d (%d outside resources or impersonated); full suite: %v\n\n", res.requests, res.other, res.fullSuite)
	sb.WriteString("| verb | resource | where | granted by the chart | controller requests | refused | tests (example) |\n|---|---|---|---|---|---|---|\n")
	for _, p := range sorted {
		g := "no"
		if res.granted[p] {
			g = "yes"
		}
		n, refused, tests, example := 0, 0, 0, ""
		if u := res.used[p]; u != nil {
			n, refused, tests = u.requests, u.refused, len(u.tests)
			names := make([]string, 0, len(u.tests))
			for t := range u.tests {
				names = append(names, t)
			}
			slices.Sort(names)
			example = names[0]
		}
		where := p.Scope
		if where == "" {
			where = "release namespace"
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %d | %d | %d (%s) |\n", p.Verb, p.resource(), where, g, n, refused, tests, example)
	}
	return sb.String()
}

// fullSuite says whether every test of the package ran (no -run, -skip or -short).
func fullSuite() bool {
	for _, name := range []string{"test.run", "test.skip"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	f := flag.Lookup("test.short")
	return f == nil || f.Value.String() != "true"
}

// auditRBAC is the e2e TestMain's AfterRun: it judges the audit log of the whole run.
func auditRBAC(c *localcluster.Cluster, code int) int {
	f, err := os.Open(c.AuditLog())
	if err != nil {
		fmt.Fprintln(os.Stderr, "rbac audit:", err)
		return max(code, 1)
	}
	defer f.Close()
	res, err := readAudit(f, grants)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rbac audit:", err)
		return max(code, 1)
	}
	res.fullSuite = fullSuite()
	report := res.table()
	problems := res.problems()
	if len(problems) > 0 {
		report += "\nProblems:\n- " + strings.Join(problems, "\n- ") + "\n"
	}
	if root, err := localcluster.RepoRoot(); err == nil {
		dir := filepath.Join(root, ".build", "e2e")
		if os.MkdirAll(dir, 0o755) == nil {
			_ = os.WriteFile(filepath.Join(dir, "rbac-audit.md"), []byte(report), 0o644)
		}
	}
	if len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "rbac audit: the chart's RBAC and the controllers' requests differ:\n%s", report)
		return max(code, 1)
	}
	return code
}

// An API server that does not stream the initial list of a watch (the WatchList feature, off or
// absent on older clusters) makes client-go's informers LIST before they WATCH: the chart grants
// list on the controller's ConfigMap, Jobs and Pods for those clusters. The clearml-glue binary
// with client-go's WatchListClient off lists so here, and serves a task to completion.
func TestInformersListWhereWatchListIsUnavailable(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  queues:
    work:
      templateOverrides:
        annotations: {e2e.glue/run-ms: "200ms"}
`)
	e.startGlueProcess("glue-lists", "KUBE_FEATURE_WatchListClient=false")
	id := e.task("work", "listed", emulator.TaskSpec{})
	e.waitStatus(id, clearml.StatusCompleted, 60*time.Second)
}

// taskKind Pod: a bare Pod has no ttlSecondsAfterFinished, so the glue deletes it itself once its
// task ended, here at once (completedPodDeletionDelayMinutes: 0). The chart's delete on pods is
// for this (and for bare Pods left from before a switch to Jobs).
func TestBarePodDeletedByTheGlueOnceItsTaskEnded(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  taskKind: Pod
  completedPodDeletionDelayMinutes: 0
  queues:
    work:
      templateOverrides:
        annotations: {e2e.glue/run-ms: "200ms"}
`)
	e.startGlue("glue-0")
	id := e.task("work", "bare", emulator.TaskSpec{})
	e.waitStatus(id, clearml.StatusCompleted, 60*time.Second)
	name := podtemplate.ObjectName(id)
	e.waitFor(60*time.Second, "the bare Pod deleted", func() bool {
		_, err := e.cs.CoreV1().Pods(e.ns).Get(context.Background(), name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, func() string { return "Pod " + name + " still there" })
}

// A config whose queue template is invalid is refused for that queue on every reload, with the
// same Warning each time: client-go's recorder counts it on the one Event (the chart's patch on
// events) instead of adding an Event per reload.
func TestRepeatedWarningCountedOnOneEvent(t *testing.T) {
	e := newEnv(t, `
agentk8sglue:
  queues:
    broken:
      templateOverrides:
        resources: {limits: {memory: "12 GB"}}
`)
	cm := objectName(e.manifestObject("ConfigMap"))
	events := func() []corev1.Event {
		list, err := e.cs.CoreV1().Events(e.ns).List(context.Background(), metav1.ListOptions{FieldSelector: fields.AndSelectors(
			fields.OneTermEqualSelector("reason", "InvalidQueueTemplate"), fields.OneTermEqualSelector("involvedObject.name", cm)).String()})
		assert.NilError(t, err)
		return list.Items
	}
	describe := func() string { return fmt.Sprintf("events %+v", events()) }
	e.startGlue("glue-0")
	e.waitFor(30*time.Second, "the InvalidQueueTemplate Event", func() bool { return len(events()) == 1 }, describe)
	e.upgrade(`
agentk8sglue:
  pollIntervalSeconds: 2
`) // a new ConfigMap version, the same broken queue
	e.waitFor(30*time.Second, "the Event counted twice", func() bool {
		ev := events()
		return len(ev) == 1 && ev[0].Count == 2
	}, describe)
}

// Migration side by side with ClearML's Python glue: a task whose object that glue runs in one of
// agentk8sglue.pythonGlueNamespaces (clearml-id-<task>, label CLEARML=agent-...) is not launched a
// second time. The chart's Role there grants get on pods and jobs, by name, and nothing else.
func TestTaskRunByThePythonGlueIsLeftToIt(t *testing.T) {
	cs, err := localcluster.Shared(t).Clientset()
	assert.NilError(t, err)
	ctx := context.Background()
	other := namespaceFor(t) + "-py"
	assert.NilError(t, testenv.CreateNamespace(ctx, cs, other))
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), other, metav1.DeleteOptions{}) })
	e := newEnv(t, fmt.Sprintf(`
agentk8sglue:
  pythonGlueNamespaces: [%q]
  queues:
    work: {}
`, other))
	id := e.task("work", "migrating", emulator.TaskSpec{})
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: podtemplate.ObjectName(id), Namespace: other,
			Labels: map[string]string{"CLEARML": "agent-0123abcd", "e2e.glue/behavior": "hold"}},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "k8s-glue", Image: "allegroai/clearml-agent-k8s-base"}}},
	}
	// The namespace's default ServiceAccount comes a moment after the namespace; until then Pods
	// are refused.
	e.waitFor(30*time.Second, "the Python glue's Pod", func() bool {
		_, err := cs.CoreV1().Pods(other).Create(ctx, pod, metav1.CreateOptions{})
		return err == nil
	}, func() string { return "Pod not created" })

	e.startGlue("glue-0")
	e.waitFor(30*time.Second, "the task left to the Python glue", func() bool { return logContains(e, id, "runs this task already") },
		func() string { return fmt.Sprintf("task log %q", e.emu.TaskLog(id)) })
	_, err = e.job(id)
	assert.Assert(t, apierrors.IsNotFound(err), "the glue launched a task the Python glue runs: %v", err)

	// A task with no object of the Python glue (its Pod and Job looked up there) is launched.
	e.waitJob(e.task("work", "not-migrated", emulator.TaskSpec{}), 30*time.Second)
}
