// Command clearml-emulator serves the in-repo ClearML API emulator (internal/clearml/emulator)
// for the demo, tests and chart-testing. It is a test fixture: the product binary, clearml-glue,
// does not link the emulator.
//
//	clearml-emulator [-listen 127.0.0.1:8008] [-access-key KEY] [-secret-key SECRET]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "clearml-emulator:", err)
		os.Exit(1)
	}
}

// run serves the emulator until ctx ends (SIGINT or SIGTERM), then shuts it down gracefully.
func run(ctx context.Context) error {
	listen := flag.String("listen", "127.0.0.1:8008", "listen address")
	key := flag.String("access-key", emulator.DefaultAccessKey, "the access key the emulator accepts")
	secret := flag.String("secret-key", emulator.DefaultSecretKey, "the secret key the emulator accepts")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	fmt.Fprintf(os.Stderr, "ClearML emulator listening on http://%s\n", *listen)
	return emulator.New(emulator.Options{AccessKey: *key, SecretKey: *secret}).ListenAndServe(ctx, *listen)
}
