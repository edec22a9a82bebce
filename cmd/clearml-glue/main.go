// Command clearml-glue runs ClearML tasks as Kubernetes Jobs. Subcommands: run (default, the
// controller), doctor, render, version. The ClearML emulator of the tests and the demo is a separate
// command, cmd/clearml-emulator, so this binary does not link it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	runtimemetrics "runtime/metrics"
	"strings"
	"syscall"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/controller"
	"github.com/clearml-glue/clearml-glue/internal/doctor/doctorcmd"
	"github.com/clearml-glue/clearml-glue/internal/metrics"
	"github.com/clearml-glue/clearml-glue/internal/preview"
	"github.com/clearml-glue/clearml-glue/internal/process"
	"github.com/clearml-glue/clearml-glue/internal/standalone"
)

// version is stamped by the build (-X main.version=...).
var version = "dev"

const usage = `usage: clearml-glue [command] [flags]

commands:
  run        run the controller (default); settings come from the environment
             (CLEARML_API_HOST, CLEARML_API_ACCESS_KEY, CLEARML_API_SECRET_KEY,
             GLUE_NAMESPACE, GLUE_CONFIGMAP, ...; see docs/configuration.md);
             run --values FILE --credentials-secret NAME [flags] runs it without the chart,
             like ClearML's K8s Glue script (run --help lists the flags)
  doctor     check an install and say which value to change: ClearML URL, credentials, server,
             queues, Kubernetes rights, Secrets, templates; exits 1 when a check fails:
             doctor [--kubeconfig FILE] [--namespace NS] [--configmap NAME]
             doctor [--kubeconfig FILE] [--values FILE]... [--config FILE] (without the chart)
  render     print the Job or Pod the controller would create for a task, without a cluster:
             render --values FILE [--values FILE ...] [--set k=v] --queue NAME --task TASK.json
  version    print the version
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "clearml-glue:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return runController(ctx, args, stderr)
	case "doctor":
		home, _ := os.UserHomeDir()
		return doctorcmd.Run(ctx, doctorcmd.Options{Args: args, Stdout: stdout, Stderr: stderr, Getenv: os.Getenv, Home: home,
			RESTConfig: kubeConfig})
	case "render":
		return preview.Run(ctx, args, stdout, stderr)
	case "version":
		_, err := fmt.Fprintln(stdout, version)
		return err
	case "help":
		_, err := fmt.Fprint(stdout, usage)
		return err
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

func runController(ctx context.Context, args []string, stderr io.Writer) error {
	flags, err := standalone.ParseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	proc, err := startProcess(ctx)
	if err != nil {
		return err
	}
	if flags.Standalone() {
		restConfig, err := kubeConfig(flags.Kubeconfig)
		if err != nil {
			return err
		}
		return runStandalone(ctx, flags, restConfig, stderr, proc)
	}
	settings, err := config.LoadSettings()
	if err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	restConfig, err := kubeConfig(flags.Kubeconfig)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(settings.LogLevel)); err != nil {
		return fmt.Errorf("GLUE_LOG_LEVEL: %w", err)
	}
	logger := newLogger(stderr, level)
	metrics.SetBuildInfo(version)
	logger.Info("starting", "version", version, "namespace", settings.Namespace, "configmap", settings.ConfigMap, proc.attrs())
	return controller.Run(ctx, controller.Options{Settings: settings, RESTConfig: restConfig, Logger: logger, ServeHTTP: true,
		Started: proc.started(logger)})
}

// processSettings are what the controller process set up for itself before the glue starts.
type processSettings struct {
	goMemLimit uint64   // the Go runtime's soft memory limit in force (math.MaxInt64: none)
	gcPercent  uint64   // the garbage collection target in force (GOGC)
	pprof      net.Addr // where pprof is served; nil: off
	release    bool     // release the start-up pages once started (GLUE_RELEASE_STARTUP_PAGES)
}

// startProcess sets the Go runtime's memory limit from the container's (unless GOMEMLIMIT is
// set) and its garbage collection target (unless GOGC is set), and serves pprof if
// GLUE_PPROF_ADDR asks for it, until ctx ends.
func startProcess(ctx context.Context) (processSettings, error) {
	var p processSettings
	if pct, ok := process.GCPercentToSet(os.Getenv); ok {
		debug.SetGCPercent(pct)
	}
	limit, ok, err := process.MemoryLimit(os.Getenv)
	if err != nil {
		return p, err
	}
	if ok {
		debug.SetMemoryLimit(limit)
	}
	// What is in force: GOGC's and GOMEMLIMIT's if set, else what was just set.
	in := []runtimemetrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
	runtimemetrics.Read(in)
	p.gcPercent, p.goMemLimit = in[0].Value.Uint64(), in[1].Value.Uint64()
	if p.release, err = process.ReleaseStartupPagesEnabled(os.Getenv); err != nil {
		return p, err
	}
	p.pprof, err = process.ServePprof(ctx, os.Getenv(process.EnvPprofAddr))
	return p, err
}

// started is what the process does once the glue has started (controller.Options.Started):
// release the pages only starting needed, and say what that gave.
func (p processSettings) started(log *slog.Logger) func() {
	return func() {
		if !p.release {
			return
		}
		r, err := process.ReleaseStartupPages()
		if err != nil {
			log.Info("start-up pages kept", "err", err)
			return
		}
		log.Info("start-up pages released", "rssBeforeMiB", r.RSSBefore>>20, "rssAfterMiB", r.RSSAfter>>20)
	}
}

// attrs are the settings for the "starting" log line.
func (p processSettings) attrs() slog.Attr {
	attrs := []any{"goMemLimit", "off", "gcPercent", p.gcPercent, "releaseStartupPages", p.release}
	if p.goMemLimit != math.MaxInt64 {
		attrs[1] = p.goMemLimit
	}
	if p.pprof != nil {
		attrs = append(attrs, "pprof", p.pprof.String())
	}
	return slog.Group("process", attrs...)
}

// kubeConfig is the client config of the kubeconfig file, else the in-cluster one.
func kubeConfig(kubeconfig string) (*rest.Config, error) {
	var restConfig *rest.Config
	var err error
	if kubeconfig != "" {
		restConfig, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	} else {
		restConfig, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes config: %w", err)
	}
	return restConfig, nil
}

// newLogger returns the controller's JSON logger on w and routes client-go's klog output
// (reflector and leader election errors, for instance) into it, so that the log stream holds
// JSON lines only. klog's verbosity levels become slog levels below Info (V(4) is Debug).
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	logger := slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
	klog.SetSlogLogger(logger)
	return logger
}
