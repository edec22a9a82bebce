package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/controller"
	"github.com/clearml-glue/clearml-glue/internal/metrics"
	"github.com/clearml-glue/clearml-glue/internal/standalone"
)

// runStandalone runs the glue without the chart (`clearml-glue run --values ...`), as ClearML's
// K8s Glue script runs: the configuration is rendered in-process and reloaded when its files
// change; the ClearML server and credentials come from CLEARML_API_* or clearml.conf.
func runStandalone(ctx context.Context, flags *standalone.Flags, restConfig *rest.Config, stderr io.Writer, proc processSettings) error {
	home, _ := os.UserHomeDir()
	server, err := config.FindClearMLServer(os.Getenv, home)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if flags.Debug {
		level = slog.LevelDebug
	} else if v := os.Getenv("GLUE_LOG_LEVEL"); v != "" {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			return fmt.Errorf("GLUE_LOG_LEVEL: %w", err)
		}
	}
	logger := newLogger(stderr, level)
	cs, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	loader := &standalone.Loader{Flags: flags, Server: server, Cluster: cs, Logger: logger}
	// The first load fails the start with its message; later ones are reloads, refused one by
	// one while the last good configuration keeps serving.
	first, err := loader.Load(ctx)
	if err != nil {
		return err
	}
	if err := standalone.CheckTemplates(first); err != nil {
		return err
	}
	settings, err := config.LoadStandaloneSettings(server, first.Namespace)
	if err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	if flags.Debug {
		settings.LogLevel = "debug"
	}
	for _, name := range []string{"GLUE_NAMESPACE", "GLUE_CONFIGMAP"} {
		if os.Getenv(name) != "" {
			logger.Warn(name+" is not read without the chart: the configuration comes from the files and flags", "config", loader.Name())
		}
	}
	metrics.SetBuildInfo(version)
	logger.Info("starting without the chart", "version", version, "namespace", first.Namespace, "config", loader.Name(),
		"clearml", server.APIHost, "clearmlConf", server.ConfigFile, "found", server.Sources, "leaderElection", settings.LeaderElection, proc.attrs())
	return controller.Run(ctx, controller.Options{
		Settings: settings, RESTConfig: restConfig, Logger: logger, ServeHTTP: true, Started: proc.started(logger),
		File: &controller.FileSource{Name: loader.Name(), Paths: loader.Paths(), Load: loader.Load},
	})
}
