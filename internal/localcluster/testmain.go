package localcluster

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"
)

var shared *Cluster

// Main is a TestMain body: it starts one cluster for the test binary, runs the tests, and deletes
// the cluster even when tests fail or the run is interrupted (SIGINT/SIGTERM).
func Main(m *testing.M, opts Options) int {
	if opts.Logf == nil {
		opts.Logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	}
	c, err := Start(context.Background(), opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "localcluster:", err)
		return 1
	}
	shared = c
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		// Interrupted: delete the cluster now, since m.Run will not return.
		<-sigs
		_ = c.Stop()
		os.Exit(130)
	}()
	code := m.Run()
	signal.Stop(sigs)
	if opts.AfterRun != nil {
		code = opts.AfterRun(c, code)
	}
	if err := c.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "localcluster:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Shared returns the cluster Main started; tests of a package without that TestMain fail.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	if shared == nil {
		t.Fatal("localcluster.Shared: no cluster; call localcluster.Main from TestMain")
	}
	return shared
}
