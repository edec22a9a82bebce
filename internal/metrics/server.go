package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Probes answers /healthz (the process is alive and, when it leads, still serving) and /readyz
// (set by the controller once it has a valid config and, when it leads, synced caches).
type Probes struct {
	ready atomic.Bool
	dead  atomic.Pointer[string]
}

// SetReady flips /readyz.
func (p *Probes) SetReady(v bool) { p.ready.Store(v) }

// Healthz answers /healthz: ok while the process serves, 503 with the reason once it stopped.
func (p *Probes) Healthz(w http.ResponseWriter, _ *http.Request) {
	if why := p.dead.Load(); why != nil {
		http.Error(w, "serving stopped: "+*why, http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok"))
}

// SetDead fails /healthz from now on with why: serving ended and the process is on its way out.
func (p *Probes) SetDead(why string) { p.dead.Store(&why) }

// Serve runs the metrics endpoint on metricsAddr and the probes on healthAddr (the same server
// when equal) until ctx ends.
func Serve(ctx context.Context, metricsAddr, healthAddr string, p *Probes) error {
	health := http.NewServeMux()
	health.HandleFunc("/healthz", p.Healthz)
	health.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !p.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	m := health
	if metricsAddr != healthAddr {
		m = http.NewServeMux()
	}
	m.Handle("/metrics", promhttp.HandlerFor(Registry, promhttp.HandlerOpts{Registry: Registry}))

	servers := []*http.Server{{Addr: healthAddr, Handler: health, ReadHeaderTimeout: 5 * time.Second}}
	if metricsAddr != healthAddr {
		servers = append(servers, &http.Server{Addr: metricsAddr, Handler: m, ReadHeaderTimeout: 5 * time.Second})
	}
	errc := make(chan error, len(servers))
	for _, s := range servers {
		ln, err := net.Listen("tcp", s.Addr)
		if err != nil {
			return err
		}
		go func() { errc <- s.Serve(ln) }()
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(shutdown)
	}
	return nil
}
