// Package doctorcmd is `clearml-glue doctor`: the preflight checks of internal/doctor run on
// demand, inside the controller's pod or from a laptop with a kubeconfig, with the settings
// `clearml-glue run` reads.
package doctorcmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/doctor"
	"github.com/clearml-glue/clearml-glue/internal/podtemplate"
	"github.com/clearml-glue/clearml-glue/internal/standalone"
)

// ErrFailed is returned when a check failed (the command exits 1).
var ErrFailed = errors.New("a preflight check failed")

// Options are the command's surroundings; tests set them.
type Options struct {
	Args           []string
	Stdout, Stderr io.Writer
	// Getenv reads the environment (os.Getenv) and Home is the user's home (for clearml.conf).
	Getenv func(string) string
	Home   string
	// RESTConfig returns the client config of a kubeconfig file ("" : in-cluster).
	RESTConfig func(kubeconfig string) (*rest.Config, error)
}

const usage = `Usage:
  clearml-glue doctor [--kubeconfig FILE] [--namespace NS] [--configmap NAME]
      Check an install of the chart: its ConfigMap (GLUE_NAMESPACE/GLUE_CONFIGMAP in the
      controller's pod: kubectl exec deploy/<release> -- clearml-glue doctor). The ClearML server
      and credentials are CLEARML_API_* when set (as in the pod), else the ConfigMap's API URL and
      the credentials Secret it names, else clearml.conf. From a laptop the rights checked are
      those of the Deployment's ServiceAccount (SubjectAccessReview).
  clearml-glue doctor [--kubeconfig FILE] [--values FILE]... [--set K=V]... [--config glue.yaml]
                      [--credentials-secret NAME] [--namespace NS]
      Check a glue run without the chart, with the configuration clearml-glue run would serve;
      the server and credentials as clearml-glue run finds them (CLEARML_API_*, clearml.conf).

Prints one line per check; a failed one names the values key to change. Exits 1 when one fails.

`

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// Run runs the command: it prints the findings and returns ErrFailed when one failed.
func Run(ctx context.Context, o Options) error {
	fs := flag.NewFlagSet("clearml-glue doctor", flag.ContinueOnError)
	fs.SetOutput(o.Stderr)
	fs.Usage = func() {
		_, _ = fmt.Fprint(o.Stderr, usage)
		fs.PrintDefaults()
	}
	var kubeconfig, namespace, configMap, configFile, credentialsSecret string
	var values, set stringList
	fs.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig `FILE` (default: the in-cluster config)")
	fs.StringVar(&namespace, "namespace", "", "the release's `NAMESPACE` (default GLUE_NAMESPACE); without the chart, the task namespace")
	fs.StringVar(&configMap, "configmap", "", "the glue's ConfigMap `NAME` (default GLUE_CONFIGMAP, else clearml-agent)")
	fs.Var(&values, "values", "Helm values `FILE` of a glue run without the chart, repeatable")
	fs.Var(&set, "set", "Helm `KEY=VALUE` override, repeatable")
	fs.StringVar(&configFile, "config", "", "a rendered glue configuration `FILE` (glue.yaml)")
	fs.StringVar(&credentialsSecret, "credentials-secret", "", "`NAME` of the task pods' credentials Secret (clearml-glue run --credentials-secret)")
	if err := fs.Parse(o.Args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("doctor: unexpected argument %q", fs.Arg(0))
	}
	if configMap != "" && (len(values) > 0 || len(set) > 0 || configFile != "" || credentialsSecret != "") {
		return errors.New("doctor: --configmap checks an install of the chart; --values, --set, --config and --credentials-secret a glue run without it: use one or the other")
	}

	var pre []doctor.Finding
	var cs kubernetes.Interface
	restConfig, err := o.RESTConfig(kubeconfig)
	if err == nil {
		cs, err = kubernetes.NewForConfig(restConfig)
	}
	if err != nil {
		pre = append(pre, doctor.Finding{Check: "Kubernetes client", Detail: err.Error(),
			Fix: "--kubeconfig FILE (outside the cluster)"})
		cs = nil
	}

	var in doctor.Inputs
	if len(values) > 0 || len(set) > 0 || configFile != "" || credentialsSecret != "" {
		var argv []string
		add := func(name string, vs ...string) {
			for _, v := range vs {
				if v != "" {
					argv = append(argv, "--"+name, v)
				}
			}
		}
		add("kubeconfig", kubeconfig)
		add("namespace", namespace)
		add("values", values...)
		add("set", set...)
		add("config", configFile)
		add("credentials-secret", credentialsSecret)
		in, pre, err = standaloneInputs(ctx, o, argv, pre)
		if err != nil {
			return err
		}
	} else {
		in, pre = chartInputs(ctx, o, cs, kubeconfig, namespace, configMap, pre)
	}
	in.Clientset = cs
	if in.File != nil {
		b, err := podtemplate.NewBuilder(in.File)
		if err != nil {
			pre = append(pre, doctor.Finding{Check: "glue config", Detail: err.Error(), Fix: "agentk8sglue.basePodTemplate / agentk8sglue.queues"})
			in.File = nil
		} else {
			in.Builder = b
		}
	}
	findings := append(pre, doctor.Run(ctx, in)...)
	if _, err := fmt.Fprint(o.Stdout, doctor.Table(findings)); err != nil {
		return err
	}
	if bad := doctor.Failed(findings); len(bad) > 0 {
		return fmt.Errorf("%w: %d of %d checks", ErrFailed, len(bad), len(findings))
	}
	return nil
}

// standaloneInputs builds the configuration as `clearml-glue run --values ...` does.
func standaloneInputs(ctx context.Context, o Options, argv []string, pre []doctor.Finding) (doctor.Inputs, []doctor.Finding, error) {
	flags, err := standalone.ParseFlags(argv, o.Stderr)
	if err != nil {
		return doctor.Inputs{}, nil, err
	}
	server, err := config.FindClearMLServer(o.Getenv, o.Home)
	if err != nil {
		return doctor.Inputs{}, nil, err
	}
	// No Cluster: the loader then writes nothing; the Secret checks are the doctor's.
	loader := &standalone.Loader{Flags: flags, Server: server}
	f, err := loader.Load(ctx)
	if err != nil {
		pre = append(pre, doctor.Finding{Check: "glue config", Detail: err.Error(), Fix: "your values files and flags (" + loader.Name() + ")"})
		f = nil
	}
	s := config.Settings{APIHost: server.APIHost, AccessKey: server.AccessKey, SecretKey: server.SecretKey, VerifyCert: server.VerifyCert,
		LeaderElection: isTrue(o.Getenv("GLUE_LEADER_ELECTION")), LeaseName: orDefault(o.Getenv("GLUE_LEASE_NAME"), "clearml-glue")}
	if f != nil {
		s.Namespace = f.Namespace
	}
	return doctor.Inputs{Settings: s, File: f}, pre, nil
}

// chartInputs reads an install of the chart: its ConfigMap, and what the Deployment gives the
// controller when the command runs outside its pod.
func chartInputs(ctx context.Context, o Options, cs kubernetes.Interface, kubeconfig, namespace, configMap string,
	pre []doctor.Finding) (doctor.Inputs, []doctor.Finding) {
	inPod := kubeconfig == "" && o.Getenv("GLUE_NAMESPACE") != ""
	s := config.Settings{
		Namespace:  orDefault(namespace, o.Getenv("GLUE_NAMESPACE")),
		ConfigMap:  orDefault(configMap, orDefault(o.Getenv("GLUE_CONFIGMAP"), "clearml-agent")),
		Deployment: o.Getenv("GLUE_DEPLOYMENT"),
		APIHost:    o.Getenv("CLEARML_API_HOST"), AccessKey: o.Getenv("CLEARML_API_ACCESS_KEY"), SecretKey: o.Getenv("CLEARML_API_SECRET_KEY"),
		VerifyCert:     o.Getenv("CLEARML_API_HOST_VERIFY_CERT") == "" || isTrue(o.Getenv("CLEARML_API_HOST_VERIFY_CERT")),
		LeaderElection: isTrue(o.Getenv("GLUE_LEADER_ELECTION")), LeaseName: orDefault(o.Getenv("GLUE_LEASE_NAME"), "clearml-glue"),
	}
	in := doctor.Inputs{}
	if s.Namespace == "" {
		pre = append(pre, doctor.Finding{Check: "glue config", Detail: "no namespace to look in", Fix: "--namespace (the release's namespace)"})
	}
	if cs != nil && s.Namespace != "" {
		cm, err := cs.CoreV1().ConfigMaps(s.Namespace).Get(ctx, s.ConfigMap, metav1.GetOptions{})
		if err == nil {
			var f *config.File
			f, err = config.Parse([]byte(cm.Data[config.FileKey]), fmt.Sprintf("configmap %s/%s key %s", s.Namespace, s.ConfigMap, config.FileKey))
			in.File = f
		}
		if err != nil {
			pre = append(pre, doctor.Finding{Check: "glue config", Detail: err.Error(),
				Fix: "--namespace and --configmap (the release's namespace and full name), or helm upgrade with valid values"})
		}
		if !inPod {
			// Outside the pod: the settings and the ServiceAccount are the Deployment's.
			name := orDefault(s.Deployment, s.ConfigMap)
			if d, err := cs.AppsV1().Deployments(s.Namespace).Get(ctx, name, metav1.GetOptions{}); err == nil {
				deploymentSettings(d, &s)
				sa := orDefault(d.Spec.Template.Spec.ServiceAccountName, "default")
				in.ServiceAccount = s.Namespace + "/" + sa
			}
		}
	}
	if f := in.File; f != nil {
		if s.APIHost == "" {
			s.APIHost = f.ClearML.APIServerURL
		}
		if f.ClearML.CheckCertificate != nil && o.Getenv("CLEARML_API_HOST_VERIFY_CERT") == "" {
			s.VerifyCert = *f.ClearML.CheckCertificate
		}
		if (s.AccessKey == "" || s.SecretKey == "") && cs != nil && f.ClearML.CredentialsSecret != "" {
			if sec, err := cs.CoreV1().Secrets(s.Namespace).Get(ctx, f.ClearML.CredentialsSecret, metav1.GetOptions{}); err == nil {
				s.AccessKey = string(sec.Data[config.CredentialsAccessKeyKey])
				s.SecretKey = string(sec.Data[config.CredentialsSecretKeyKey])
			}
		}
	}
	if s.APIHost == "" || s.AccessKey == "" || s.SecretKey == "" {
		if server, err := config.FindClearMLServer(o.Getenv, o.Home); err == nil {
			s.APIHost = orDefault(s.APIHost, server.APIHost)
			if s.AccessKey == "" || s.SecretKey == "" {
				s.AccessKey, s.SecretKey = server.AccessKey, server.SecretKey
			}
		}
	}
	in.Settings = s
	return in, pre
}

// deploymentSettings fills what the chart's Deployment gives the controller and the command
// could not read from its own environment.
func deploymentSettings(d *appsv1.Deployment, s *config.Settings) {
	if len(d.Spec.Template.Spec.Containers) == 0 {
		return
	}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.ValueFrom != nil {
			continue
		}
		switch e.Name {
		case "GLUE_LEADER_ELECTION":
			s.LeaderElection = isTrue(e.Value)
		case "GLUE_LEASE_NAME":
			s.LeaseName = e.Value
		case "CLEARML_API_HOST":
			if s.APIHost == "" {
				s.APIHost = e.Value
			}
		}
	}
}

func isTrue(v string) bool {
	b, _ := strconv.ParseBool(v)
	return b
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
