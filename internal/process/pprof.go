package process

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// EnvPprofAddr is the address of the profiling endpoint; unset or empty, there is none.
const EnvPprofAddr = "GLUE_PPROF_ADDR"

// ServePprof serves net/http/pprof's endpoints (/debug/pprof/...) on addr until ctx ends, and
// returns the address it listens on. With addr empty it serves nothing and returns nil: profiling
// is off unless asked for, as the profiles show the process's internals to whoever reaches them.
func ServePprof(ctx context.Context, addr string) (net.Addr, error) {
	if addr == "" {
		return nil, nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: %w", EnvPprofAddr, addr, err)
	}
	// No write timeout: a CPU profile or a trace answers after the seconds it was asked for.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }() // ErrServerClosed once ctx ends
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	return ln.Addr(), nil
}
