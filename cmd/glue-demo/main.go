// Command glue-demo runs the whole product locally (`make demo`): a local control plane with CPU
// and GPU nodes, the ClearML emulator, the chart and the controller, and 20 sample tasks.
// `glue-demo enqueue` adds tasks to a demo left running with -keep.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/clearml-glue/clearml-glue/internal/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills at once; the cluster's watchdog then deletes it
	}()
	err := run(ctx, os.Args[1:])
	switch {
	case errors.Is(err, demo.ErrInterrupted):
		fmt.Fprintln(os.Stderr, "glue-demo: interrupted")
		os.Exit(130)
	case err != nil:
		fmt.Fprintln(os.Stderr, "glue-demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "enqueue" {
		var o demo.EnqueueOptions
		fs := flag.NewFlagSet("enqueue", flag.ExitOnError)
		fs.StringVar(&o.APIHost, "api", "http://127.0.0.1:8008", "ClearML API URL of the running demo")
		fs.StringVar(&o.Queue, "queue", "cpu", "queue to enqueue into")
		fs.StringVar(&o.Name, "name", "my-experiment", "task name (suffixed -1, -2, ... when -count > 1)")
		fs.IntVar(&o.Count, "count", 1, "number of tasks")
		fs.IntVar(&o.RunMs, "run-ms", 3000, "how long the simulated task pod runs, in milliseconds")
		fs.StringVar(&o.ValuesFile, "values", "", "values file holding the demo credentials (default ci/demo-values.yaml)")
		_ = fs.Parse(args[1:])
		ids, err := demo.EnqueueTasks(ctx, o)
		for _, id := range ids {
			fmt.Printf("enqueued task %s into %s\n", id, o.Queue)
		}
		return err
	}
	var o demo.Options
	fs := flag.NewFlagSet("glue-demo", flag.ExitOnError)
	fs.IntVar(&o.Tasks, "tasks", 20, "sample tasks to enqueue")
	fs.IntVar(&o.CPUNodes, "cpu-nodes", 3, "simulated CPU nodes")
	fs.IntVar(&o.GPUNodes, "gpu-nodes", 2, "simulated GPU nodes (8 nvidia.com/gpu each)")
	fs.StringVar(&o.ValuesFile, "values", "", "chart values (default ci/demo-values.yaml)")
	fs.StringVar(&o.EmulatorBin, "emulator-bin", "", "clearml-emulator binary, the ClearML server (default: go build ./cmd/clearml-emulator)")
	fs.StringVar(&o.EmulatorAddr, "emulator-addr", "127.0.0.1:8008", "emulator listen address (a free port when taken)")
	fs.DurationVar(&o.Timeout, "timeout", 0, "how long to wait for the tasks (default 5m)")
	fs.BoolVar(&o.Keep, "keep", os.Getenv("KEEP") != "" && os.Getenv("KEEP") != "0", "keep everything running until Ctrl-C (also KEEP=1)")
	plain := fs.Bool("plain", false, "print plain progress lines even on a terminal")
	_ = fs.Parse(args)
	o.Live = !*plain && isTerminal(os.Stdout)
	return demo.Run(ctx, o)
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb"
}
