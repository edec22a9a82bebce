package standalone

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Defaults of ClearML's k8s_glue_example.py that this glue keeps.
const (
	DefaultNamespace     = "clearml"
	DefaultNumOfServices = 20
	DefaultBasePodNum    = 1
	DefaultPodNamePrefix = "clearml-id-"
	DefaultLimitPodLabel = "ai.allegro.agent.serial=pod-{pod_number}"
)

// Flags are the flags of `clearml-glue run`. Only --kubeconfig serves the chart's ConfigMap (the
// chart's Deployment); any other flag runs the glue without the chart (Standalone).
type Flags struct {
	Kubeconfig string

	// The glue configuration: the chart rendered in-process, or a rendered glue.yaml.
	Values, Set       []string
	Chart             string
	Config            string
	CredentialsSecret string

	// ClearML's k8s_glue_example.py flags, same names and meaning.
	Queue               string
	Namespace           string
	MaxPods             int
	CreateQueue         bool
	TemplateYAML        string
	OverridesYAML       string
	PodClearMLConf      string
	PendingQueueName    string
	PortsMode           bool
	NumOfServices       int
	BasePort            int
	BasePodNum          int
	GatewayAddress      string
	PodNamePrefix       string
	LimitPodLabel       string
	ContainerBashScript string
	Debug               bool

	// Flags of the script with no equivalent: refused when given.
	sshServerPort    int
	useOwnerToken    bool
	noSystemPackages bool

	set map[string]bool
}

// IsSet says whether the flag name was given on the command line.
func (f *Flags) IsSet(name string) bool { return f.set[name] }

// Standalone says whether the glue runs without the chart: any flag besides --kubeconfig.
func (f *Flags) Standalone() bool {
	for name := range f.set {
		if name != "kubeconfig" {
			return true
		}
	}
	return false
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// flagGroups orders the flags in --help.
var flagGroups = []struct {
	title string
	names []string
}{
	{"Kubernetes", []string{"kubeconfig"}},
	{"Glue configuration, rendered from the chart in-process (no ConfigMap, no chart install) and reloaded when a file changes",
		[]string{"values", "set", "chart", "config", "credentials-secret"}},
	{"ClearML's k8s_glue_example.py flags, same names and meaning", []string{
		"queue", "namespace", "max-pods", "create-queue", "template-yaml", "overrides-yaml", "pod-clearml-conf",
		"k8s-pending-queue-name", "ports-mode", "num-of-services", "base-port", "base-pod-num", "gateway-address",
		"pod-name-prefix", "limit-pod-label", "container-bash-script", "debug"}},
	{"k8s_glue_example.py flags with no equivalent (refused)", []string{"ssh-server-port", "use-owner-token", "no-system-packages"}},
}

const usageHead = `Usage:
  clearml-glue run [--kubeconfig FILE]
      Serve the chart's ConfigMap (what the chart's Deployment runs); settings come from the
      environment (GLUE_NAMESPACE, GLUE_CONFIGMAP, CLEARML_API_*; docs/configuration.md).
  clearml-glue run [--kubeconfig FILE] [--values FILE]... [--set KEY=VALUE]... --credentials-secret NAME [flags]
  clearml-glue run [--kubeconfig FILE] --config glue.yaml [--debug]
      Run without the chart, as ClearML's K8s Glue script runs: the glue configuration is the
      chart's, rendered in-process from your values (or a rendered glue.yaml), watched and
      reloaded when a file changes. The ClearML server and credentials are found as the script
      finds them: CLEARML_API_HOST, CLEARML_API_ACCESS_KEY, CLEARML_API_SECRET_KEY, else the
      clearml.conf named by CLEARML_CONFIG_FILE, else ~/clearml.conf. Task pods read their
      credentials from the Secret --credentials-secret names. Leader election is off unless
      GLUE_LEADER_ELECTION=true. Script flags win over --set, which wins over --values.

`

// ParseFlags parses the arguments of `clearml-glue run` and checks them. --help prints the usage
// to out and returns flag.ErrHelp.
func ParseFlags(args []string, out io.Writer) (*Flags, error) {
	f := &Flags{set: map[string]bool{}}
	fs := flag.NewFlagSet("clearml-glue run", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&f.Kubeconfig, "kubeconfig", "", "kubeconfig `FILE` (default: the in-cluster config)")

	fs.Var((*stringList)(&f.Values), "values", "Helm values `FILE` of the chart, repeatable; later files win")
	fs.Var((*stringList)(&f.Set), "set", "Helm `KEY=VALUE` override, repeatable")
	fs.StringVar(&f.Chart, "chart", "", "chart `DIR` (default: the chart built into this binary)")
	fs.StringVar(&f.Config, "config", "", "an already rendered glue configuration `FILE` (glue.yaml of the chart's ConfigMap), instead of values")
	fs.StringVar(&f.CredentialsSecret, "credentials-secret", "", "`NAME` of the Secret (keys agentk8sglue_key, agentk8sglue_secret) task pods read their ClearML credentials from; required (clearml.existingAgentk8sglueSecret)")

	fs.StringVar(&f.Queue, "queue", "", "queues to pull tasks from, comma separated, polled in this order (agentk8sglue.queue)")
	fs.StringVar(&f.Namespace, "namespace", DefaultNamespace, "`NAMESPACE` task pods are created in (the release namespace)")
	fs.IntVar(&f.MaxPods, "max-pods", 0, "limit of task pods running at the same time; not with --ports-mode (agentk8sglue.maxPods)")
	fs.BoolVar(&f.CreateQueue, "create-queue", false, "create the queues that do not exist (agentk8sglue.createQueueIfNotExists)")
	fs.StringVar(&f.TemplateYAML, "template-yaml", "", "pod template `FILE` (a Pod, or a Job, manifest as the script takes it), used as agentk8sglue.basePodTemplate")
	fs.StringVar(&f.OverridesYAML, "overrides-yaml", "", "pod overrides `FILE` (a Pod manifest; its containers give only their resources), merged into agentk8sglue.basePodTemplate; not with --template-yaml")
	fs.StringVar(&f.PodClearMLConf, "pod-clearml-conf", "", "clearml.conf `FILE` for the task pods: kept in the Secret <agent name>-pod-clearml-conf and mounted, never inlined")
	fs.StringVar(&f.PendingQueueName, "k8s-pending-queue-name", "", "`QUEUE` tasks wait in while their pod is pending (agentk8sglue.pendingQueueName; default k8s_scheduler)")
	fs.BoolVar(&f.PortsMode, "ports-mode", false, "label each task pod ai.allegro.agent.serial=pod-<n> for session Services you created; not with --max-pods (sessions.portModeEnabled)")
	fs.IntVar(&f.NumOfServices, "num-of-services", DefaultNumOfServices, "number of session Services, so of task pods, in ports mode (sessions.maxServices)")
	fs.IntVar(&f.BasePort, "base-port", 0, "in ports mode, the task's k8s-pod-port is base-port + pod number unless a Service selecting the pod says otherwise (sessions.startingPort)")
	fs.IntVar(&f.BasePodNum, "base-pod-num", DefaultBasePodNum, "first pod number in ports mode; only 1 (the chart's session Services are numbered from 1)")
	fs.StringVar(&f.GatewayAddress, "gateway-address", "", "in ports mode, the external `ADDRESS` set as the task's k8s-gateway-address (sessions.externalIP)")
	fs.StringVar(&f.PodNamePrefix, "pod-name-prefix", DefaultPodNamePrefix, "prefix of task object names; only "+DefaultPodNamePrefix+" (the glue finds its objects by it)")
	fs.StringVar(&f.LimitPodLabel, "limit-pod-label", DefaultLimitPodLabel, "ports-mode label; only "+DefaultLimitPodLabel)
	fs.StringVar(&f.ContainerBashScript, "container-bash-script", "", "`FILE` replacing the task container's start script, with the script's {placeholders} (agentk8sglue.containerCustomBashScript)")
	fs.BoolVar(&f.Debug, "debug", false, "debug logging (GLUE_LOG_LEVEL=debug)")

	fs.IntVar(&f.sshServerPort, "ssh-server-port", 0, "refused: install and start an SSH server in the task image (or agentk8sglue.customBashScript); the glue sets no root password")
	fs.BoolVar(&f.useOwnerToken, "use-owner-token", false, "refused: tasks run with the glue's credentials Secret")
	fs.BoolVar(&f.noSystemPackages, "no-system-packages", false, "refused: task pods always use the image's Python packages")

	fs.Usage = func() { printUsage(fs, out) }
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return f, f.check()
}

func printUsage(fs *flag.FlagSet, out io.Writer) {
	fmt.Fprint(out, usageHead)
	for _, g := range flagGroups {
		fmt.Fprintf(out, "%s:\n", g.title)
		for _, name := range g.names {
			fl := fs.Lookup(name)
			arg, usage := flag.UnquoteUsage(fl)
			line := "  --" + name
			if arg != "" {
				line += " " + arg
			}
			if fl.DefValue != "" && fl.DefValue != "0" && fl.DefValue != "false" {
				usage += fmt.Sprintf(" (default %s)", fl.DefValue)
			}
			fmt.Fprintf(out, "%s\n      %s\n", line, usage)
		}
		fmt.Fprintln(out)
	}
}

// chartInputs are the flags that feed the chart; --config replaces all of them.
var chartInputs = []string{
	"values", "set", "chart", "credentials-secret", "queue", "namespace", "max-pods", "create-queue",
	"template-yaml", "overrides-yaml", "pod-clearml-conf", "k8s-pending-queue-name", "ports-mode",
	"num-of-services", "base-port", "base-pod-num", "gateway-address", "container-bash-script",
}

// check refuses flags with no equivalent and combinations the script refuses or ignores.
func (f *Flags) check() error {
	var errs []error
	refuse := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if f.IsSet("ssh-server-port") {
		refuse("--ssh-server-port has no equivalent: the script installs an SSH server with a fixed root password in every task pod; " +
			"install and start one in the task image, or with agentk8sglue.customBashScript")
	}
	if f.IsSet("use-owner-token") {
		refuse("--use-owner-token has no equivalent: task pods run with the credentials of the Secret --credentials-secret names")
	}
	if f.IsSet("no-system-packages") {
		refuse("--no-system-packages has no equivalent: task pods always use the Python packages of their image")
	}
	if f.PodNamePrefix != DefaultPodNamePrefix {
		refuse("--pod-name-prefix %q cannot be honoured: task objects are always named %s<task id>, which is how the glue finds them after a restart", f.PodNamePrefix, DefaultPodNamePrefix)
	}
	if f.LimitPodLabel != DefaultLimitPodLabel {
		refuse("--limit-pod-label %q cannot be honoured: ports mode labels pods %s, which the chart's session Services select", f.LimitPodLabel, DefaultLimitPodLabel)
	}
	if f.PortsMode && f.IsSet("max-pods") {
		// argparse's own words, then why.
		refuse("argument --max-pods: not allowed with argument --ports-mode (as in ClearML's k8s_glue_example.py: in ports mode --num-of-services bounds the task pods)")
	}
	if !f.PortsMode {
		for _, name := range []string{"num-of-services", "base-port", "base-pod-num", "gateway-address"} {
			if f.IsSet(name) {
				refuse("--%s is used with --ports-mode only", name)
			}
		}
	}
	if f.BasePodNum != DefaultBasePodNum {
		refuse("--base-pod-num %d cannot be honoured: ports-mode pods are numbered from 1 (pod-1, pod-2, ...), as the chart's session Services are", f.BasePodNum)
	}
	if f.MaxPods < 0 {
		refuse("--max-pods must not be negative, got %d", f.MaxPods)
	}
	if f.NumOfServices < 1 {
		refuse("--num-of-services must be at least 1, got %d", f.NumOfServices)
	}
	if f.BasePort < 0 {
		refuse("--base-port must not be negative, got %d", f.BasePort)
	}
	if f.TemplateYAML != "" && f.OverridesYAML != "" {
		refuse("--overrides-yaml is not used with --template-yaml (the script ignores the overrides then): put the overrides into the template")
	}
	if f.IsSet("queue") && len(queueList(f.Queue)) == 0 {
		refuse("--queue %q names no queue", f.Queue)
	}
	if f.IsSet("namespace") && strings.TrimSpace(f.Namespace) == "" {
		refuse("--namespace must not be empty")
	}
	if f.Config != "" {
		var with []string
		for _, name := range chartInputs {
			if f.IsSet(name) {
				with = append(with, "--"+name)
			}
		}
		if len(with) > 0 {
			refuse("--config is an already rendered glue configuration: it cannot be used with %s (put those settings in the file, or render from values instead)", strings.Join(with, ", "))
		}
	}
	return errors.Join(errs...)
}

// queueList splits a comma list of queue names, as the script does.
func queueList(s string) []string {
	var out []string
	for _, q := range strings.Split(s, ",") {
		if q = strings.TrimSpace(q); q != "" {
			out = append(out, q)
		}
	}
	return out
}
