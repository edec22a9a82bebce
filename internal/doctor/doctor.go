package doctor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
	"github.com/clearml-glue/clearml-glue/internal/taskops"
)

// Finding is the result of one check.
type Finding struct {
	Check string
	OK    bool
	// Detail says what was found; Fix, for a failed check, the values key to change.
	Detail, Fix string
}

// Inputs are what the checks look at.
type Inputs struct {
	Settings config.Settings
	// File and Builder are the glue config in force (nil: not loaded, the config checks are left
	// out).
	File    *config.File
	Builder *podtemplate.Builder
	// Clientset acts as the controller (its ServiceAccount), or as a user who may review its
	// rights (ServiceAccount).
	Clientset kubernetes.Interface
	// ServiceAccount, when set ("namespace/name"), is whose rights the permission check reviews
	// (SubjectAccessReview: `clearml-glue doctor` run from a laptop); empty reviews the
	// Clientset's own identity (SelfSubjectAccessReview, as in the controller's pod).
	ServiceAccount string
	// DialTimeout bounds each network check (default 5 s).
	DialTimeout time.Duration
	// LoginFirst tries the login before the step-by-step reachability checks, which then run
	// only when it fails: a login that works proves the URL, and saves the controller a
	// debug.ping on every start and reload.
	LoginFirst bool
	// Client, when set, is the client LoginFirst logs in with (the controller's own, which then
	// need not log in again); the checks after a failed login use one of their own, which does
	// not retry.
	Client *clearml.Client
}

const defaultDialTimeout = 5 * time.Second

// Names of the checks a caller looks for.
const (
	CheckReachable   = "ClearML API reachable"
	CheckCredentials = "ClearML credentials"
)

// Values keys named by the findings.
const (
	keyAPIURL      = "agentk8sglue.apiServerUrlReference"
	keyCredentials = "clearml.agentk8sglueKey / clearml.agentk8sglueSecret (or clearml.existingAgentk8sglueSecret)"
	keyQueues      = "agentk8sglue.queues (or agentk8sglue.queue)"
	keyCreate      = "agentk8sglue.createQueues"
	keyRBAC        = "the chart's Role (do not remove its rules; agentk8sglue.serviceExistingAccountName names a ServiceAccount that needs them)"
)

// Run runs every check and returns the findings in order. Checks that need an earlier one to
// pass (a login needs a reachable API) are left out when it failed.
func Run(ctx context.Context, in Inputs) []Finding {
	if in.DialTimeout == 0 {
		in.DialTimeout = defaultDialTimeout
	}
	var out []Finding
	var client *clearml.Client
	var login Finding
	if in.LoginFirst {
		lctx, cancel := context.WithTimeout(ctx, in.DialTimeout)
		client, login = loginCheck(lctx, in, in.Client)
		cancel()
	}
	reach := Finding{Check: CheckReachable, OK: true, Detail: in.Settings.APIHost + " answered the login"}
	if !login.OK { // no login tried, or it failed: find out step by step why, then log in
		reach = reachable(ctx, in.Settings.APIHost, in.Settings.VerifyCert, in.DialTimeout)
		if reach.OK {
			client, login = loginCheck(ctx, in, nil)
		}
	}
	out = append(out, reach)
	if reach.OK {
		out = append(out, login)
		if login.OK {
			out = append(out, server(client))
		} else {
			client = nil
		}
	}
	if client != nil && in.File != nil {
		out = append(out, queues(ctx, client, in.File)...)
	}
	if in.Clientset != nil && in.File != nil {
		out = append(out, permissions(ctx, in.Clientset, in.File, in.Settings, in.ServiceAccount)...)
		out = append(out, secrets(ctx, in.Clientset, in.File)...)
	}
	if in.Builder != nil && in.File != nil {
		out = append(out, templates(in.File, in.Builder)...)
	}
	return out
}

// Failed returns the findings that did not pass.
func Failed(findings []Finding) []Finding {
	var bad []Finding
	for _, f := range findings {
		if !f.OK {
			bad = append(bad, f)
		}
	}
	return bad
}

// Table formats findings for a terminal or a log: one line each, a failed one with its fix.
func Table(findings []Finding) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(w, "CHECK\tRESULT\tDETAIL")
	for _, f := range findings {
		result := "ok"
		detail := f.Detail
		if !f.OK {
			result = "FAIL"
			if f.Fix != "" {
				detail += "; fix: " + f.Fix
			}
		}
		_, _ = fmt.Fprintf(w, "%s\t%s\t%s\n", f.Check, result, detail)
	}
	_ = w.Flush()
	return b.String()
}

// reachable checks the API URL step by step, so the finding says which step failed: the URL,
// the name, the port, then an HTTP answer (TLS included) from debug.ping.
func reachable(ctx context.Context, apiHost string, verifyCert bool, timeout time.Duration) Finding {
	f := Finding{Check: CheckReachable, Fix: keyAPIURL}
	u, err := url.Parse(apiHost)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		f.Detail = fmt.Sprintf("%q is not an http(s) URL", apiHost)
		return f
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if net.ParseIP(host) == nil {
		if _, err := net.DefaultResolver.LookupHost(dctx, host); err != nil {
			f.Detail = fmt.Sprintf("%s: the name %s does not resolve: %v", apiHost, host, err)
			return f
		}
	}
	conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		f.Detail = fmt.Sprintf("%s: nothing answers on %s port %s: %v", apiHost, host, port, err)
		return f
	}
	_ = conn.Close()
	c, err := clearml.New(clearml.Config{APIHost: apiHost, AccessKey: "-", SecretKey: "-", MaxRetryElapsed: -1, HTTPClient: httpClient(verifyCert)})
	if err != nil {
		f.Detail = err.Error()
		return f
	}
	if err := c.DebugPing(dctx); err != nil {
		var certErr *tls.CertificateVerificationError
		var recordErr tls.RecordHeaderError
		switch {
		case errors.As(err, &certErr):
			f.Detail = fmt.Sprintf("%s: the server's TLS certificate is not trusted: %v", apiHost, certErr)
			f.Fix = keyAPIURL + " (the server's name as its certificate gives it), or agentk8sglue.clearmlcheckCertificate: false"
		case errors.As(err, &recordErr):
			f.Detail = fmt.Sprintf("%s: the server does not speak TLS on port %s (an https URL for an http port?)", apiHost, port)
		default:
			f.Detail = fmt.Sprintf("%s answers, but not as a ClearML API server (debug.ping: %v)", apiHost, err)
		}
		return f
	}
	f.OK, f.Detail, f.Fix = true, apiHost+" answers debug.ping", ""
	return f
}

// httpClient checks the server's certificate unless the user turned that off
// (agentk8sglue.clearmlcheckCertificate: false), as the controller's own client does.
func httpClient(verifyCert bool) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if !verifyCert {
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user turned verification off
	}
	return &http.Client{Transport: t, Timeout: clearml.DefaultHTTPTimeout}
}

// loginCheck logs in with c, or with a client of its own (no retries) when c is nil.
func loginCheck(ctx context.Context, in Inputs, c *clearml.Client) (*clearml.Client, Finding) {
	f := Finding{Check: CheckCredentials}
	if c == nil {
		var err error
		c, err = clearml.New(clearml.Config{APIHost: in.Settings.APIHost, AccessKey: in.Settings.AccessKey,
			SecretKey: in.Settings.SecretKey, MaxRetryElapsed: -1, HTTPClient: httpClient(in.Settings.VerifyCert)})
		if err != nil {
			f.Detail, f.Fix = err.Error(), keyCredentials
			return nil, f
		}
	}
	if err := c.TryLogin(ctx); err != nil {
		var apiErr *clearml.APIError
		if errors.As(err, &apiErr) && apiErr.HTTPStatus == 401 {
			f.Detail = "the server refused the access key and secret (" + apiErr.Msg + ")"
		} else {
			f.Detail = "login failed: " + err.Error()
		}
		f.Fix = keyCredentials
		return nil, f
	}
	f.OK, f.Detail = true, "login ok"
	return c, f
}

func server(c *clearml.Client) Finding {
	claims, _ := c.Claims()
	return Finding{Check: "ClearML server", OK: true,
		Detail: fmt.Sprintf("server %s, API %s, feature set %s", orUnknown(claims.ServerVersion), orUnknown(claims.APIVersion), orUnknown(claims.FeatureSet))}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// queues checks every served queue and the pending queue, with one lookup for all of them.
func queues(ctx context.Context, c *clearml.Client, f *config.File) []Finding {
	names := f.QueueNames()
	found, err := taskops.LookupQueues(ctx, c, append(slices.Clip(names), f.PendingQueue))
	var out []Finding
	for _, name := range names {
		fd := Finding{Check: "queue " + name}
		switch n := len(found[name]); {
		case err != nil:
			fd.Detail, fd.Fix = "lookup failed: "+err.Error(), keyAPIURL
		case n == 1:
			fd.OK, fd.Detail = true, "exists"
		case n > 1:
			fd.Detail, fd.Fix = fmt.Sprintf("the name matches %d queues", n), "rename or delete the other queues of that name in ClearML"
		case f.ShouldCreateQueues():
			fd.OK, fd.Detail = true, "missing; the glue creates it (createQueues)"
		default:
			fd.Detail, fd.Fix = "no such queue on the ClearML server", "create it in ClearML, or set "+keyCreate+": true, or remove it from "+keyQueues
		}
		out = append(out, fd)
	}
	fd := Finding{Check: "pending queue " + f.PendingQueue, OK: true, Detail: "exists"}
	switch {
	case err != nil:
		fd.OK, fd.Detail, fd.Fix = false, "lookup failed: "+err.Error(), keyAPIURL
	case len(found[f.PendingQueue]) == 0:
		fd.Detail = "missing; the glue creates it (hidden, tag " + clearml.PendingQueueTag + ")"
	case len(found[f.PendingQueue]) > 1:
		fd.OK, fd.Detail, fd.Fix = false, fmt.Sprintf("the name matches %d queues", len(found[f.PendingQueue])),
			"rename or delete the other queues of that name in ClearML, or set agentk8sglue.pendingQueueName"
	}
	return append(out, fd)
}

// Permission is one verb on one resource the controller uses.
type Permission struct {
	Group, Resource, Verb, Name, Namespace string
}

func (p Permission) String() string {
	r := p.Resource
	if p.Group != "" {
		r += "." + p.Group
	}
	if p.Name != "" {
		r += "/" + p.Name
	}
	return p.Verb + " " + r + " in " + p.Namespace
}

// Needs lists exactly what the controller calls for this config, in namespace (where it runs).
func Needs(f *config.File, s config.Settings) []Permission {
	ns := f.Namespace
	var p []Permission
	if s.ConfigMap != "" { // empty: a glue run without the chart reads its config from files
		for _, v := range []string{"get", "list", "watch"} {
			p = append(p, Permission{Resource: "configmaps", Verb: v, Name: s.ConfigMap, Namespace: s.Namespace})
		}
	}
	for _, v := range []string{"create", "get", "list", "watch", "delete"} {
		p = append(p, Permission{Group: "batch", Resource: "jobs", Verb: v, Namespace: ns})
	}
	for _, v := range []string{"get", "list", "watch", "delete"} {
		p = append(p, Permission{Resource: "pods", Verb: v, Namespace: ns})
	}
	if f.TaskKind == config.TaskKindPod {
		p = append(p, Permission{Resource: "pods", Verb: "create", Namespace: ns})
	}
	for _, v := range []string{"create", "patch"} {
		p = append(p, Permission{Resource: "events", Verb: v, Namespace: s.Namespace})
	}
	if f.Sessions.PortModeEnabled {
		// The session Services' ports, for the task's properties (internal/scheduler/documented.go).
		p = append(p, Permission{Resource: "services", Verb: "list", Namespace: ns})
	}
	if f.UseOwnerToken {
		// The per-task owner token Secret (internal/scheduler/ownertoken.go); never read.
		p = append(p, Permission{Resource: "secrets", Verb: "create", Namespace: ns})
	}
	if s.LeaderElection {
		p = append(p, Permission{Group: "coordination.k8s.io", Resource: "leases", Verb: "create", Namespace: s.Namespace})
		for _, v := range []string{"get", "update"} {
			p = append(p, Permission{Group: "coordination.k8s.io", Resource: "leases", Verb: v, Name: s.LeaseName, Namespace: s.Namespace})
		}
	}
	for _, other := range f.PythonGlueNamespaces {
		p = append(p, Permission{Resource: "pods", Verb: "get", Namespace: other},
			Permission{Group: "batch", Resource: "jobs", Verb: "get", Namespace: other})
	}
	return p
}

func permissions(ctx context.Context, cs kubernetes.Interface, f *config.File, s config.Settings, serviceAccount string) []Finding {
	var missing []string
	var reviewErr error
	for _, p := range Needs(f, s) {
		attrs := &authorizationv1.ResourceAttributes{Namespace: p.Namespace, Verb: p.Verb, Group: p.Group, Resource: p.Resource, Name: p.Name}
		allowed, err := review(ctx, cs, attrs, serviceAccount)
		if err != nil {
			reviewErr = err
			break
		}
		if !allowed {
			missing = append(missing, p.String())
		}
	}
	fd := Finding{Check: "Kubernetes permissions"}
	switch {
	case reviewErr != nil:
		fd.Detail, fd.Fix = "could not ask the API server: "+reviewErr.Error(), keyRBAC
	case len(missing) > 0:
		fd.Detail, fd.Fix = "not allowed: "+strings.Join(missing, ", "), keyRBAC
	default:
		fd.OK, fd.Detail = true, fmt.Sprintf("all %d rights the controller uses", len(Needs(f, s)))
	}
	return []Finding{fd}
}

// review asks the API server whether the Clientset's identity (serviceAccount empty) or the
// ServiceAccount "namespace/name" may do attrs.
func review(ctx context.Context, cs kubernetes.Interface, attrs *authorizationv1.ResourceAttributes, serviceAccount string) (bool, error) {
	if serviceAccount == "" {
		r, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: attrs}}, metav1.CreateOptions{})
		if err != nil {
			return false, err
		}
		return r.Status.Allowed, nil
	}
	ns, name, _ := strings.Cut(serviceAccount, "/")
	r, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{ResourceAttributes: attrs,
			User:   "system:serviceaccount:" + ns + ":" + name,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}}, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return r.Status.Allowed, nil
}

// secrets checks that the Secrets task pods reference exist (the chart's Role may get exactly
// these, by name).
func secrets(ctx context.Context, cs kubernetes.Interface, f *config.File) []Finding {
	refs := []struct{ name, key string }{
		{f.ClearML.CredentialsSecret, "clearml.existingAgentk8sglueSecret"},
		{f.ClearML.TaskCredentialsSecret, "clearml.taskCredentials.existingSecret"},
		{f.ClearML.ConfigSecret, "clearml.existingClearmlConfigSecret"},
	}
	for _, s := range f.ImagePullSecrets {
		refs = append(refs, struct{ name, key string }{s, "imageCredentials.existingSecret"})
	}
	var out []Finding
	for _, r := range refs {
		if r.name == "" {
			continue
		}
		fd := Finding{Check: "Secret " + r.name}
		_, err := cs.CoreV1().Secrets(f.Namespace).Get(ctx, r.name, metav1.GetOptions{})
		switch {
		case err == nil:
			fd.OK, fd.Detail = true, "exists"
		case apierrors.IsNotFound(err):
			fd.Detail = fmt.Sprintf("no Secret %s in namespace %s: task pods that reference it cannot start", r.name, f.Namespace)
			fd.Fix = r.key + " (create the Secret, or let the chart create it)"
		case apierrors.IsForbidden(err):
			fd.OK, fd.Detail = true, "not checked (no right to read it)"
		default:
			fd.Detail, fd.Fix = "lookup failed: "+err.Error(), keyRBAC
		}
		out = append(out, fd)
	}
	return out
}

// sampleTask is a task as a user would create it with only a name, for the template check.
var sampleTask = map[string]any{"id": "0123456789abcdef0123456789abcdef", "name": "doctor sample", "project": "",
	"user": "", "type": "training", "container": map[string]any{}, "hyperparams": map[string]any{}, "execution": map[string]any{}}

// templates renders every queue's template for a sample task.
func templates(f *config.File, b *podtemplate.Builder) []Finding {
	var out []Finding
	for _, name := range f.QueueNames() {
		fd := Finding{Check: "template of queue " + name}
		_, err := b.Build(name, podtemplate.Input{Task: sampleTask, QueueID: "doctor", QueueName: name, PodNumber: 1,
			ProjectName: "doctor", User: map[string]any{"id": "doctor", "name": "doctor"}})
		if err != nil {
			fd.Detail, fd.Fix = err.Error(), "agentk8sglue.queues."+name+".templateOverrides or agentk8sglue.basePodTemplate"
		} else {
			fd.OK, fd.Detail = true, "renders for a sample task"
		}
		out = append(out, fd)
	}
	return out
}
