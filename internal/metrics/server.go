package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Probes answers /healthz (the process is alive and, when it leads, still serving), /readyz
// (ready once the glue serves and no preflight check fails; otherwise 503 with the reasons) and
// /diagnosis (the same text, always 200, for clients that drop the body of an error answer, such
// as busybox wget in the chart's helm test).
type Probes struct {
	ready  atomic.Bool
	dead   atomic.Pointer[string]
	status atomic.Pointer[string]
	report atomic.Pointer[report]
}

type report struct {
	text   string
	failed bool
}

// SetReady says whether the glue serves, or stands by as a follower that can take over at once;
// /readyz also needs no failed check.
func (p *Probes) SetReady(v bool) { p.ready.Store(v) }

// SetStatus says what the glue is doing while it does not serve ("waiting for a valid glue
// config", "waiting for the leader Lease"), for the body of /readyz.
func (p *Probes) SetStatus(s string) { p.status.Store(&s) }

// SetDiagnosis publishes the newest preflight report (a table, one check a line); failed makes
// the glue not ready until a report without failure replaces it.
func (p *Probes) SetDiagnosis(text string, failed bool) {
	p.report.Store(&report{text: text, failed: failed})
}

// Ready says whether /readyz answers 200, and the text it answers.
func (p *Probes) Ready() (bool, string) {
	r := p.report.Load()
	failed := r != nil && r.failed
	var b strings.Builder
	switch {
	case failed:
		b.WriteString("not ready: a preflight check failed; each FAIL line names the values key to change\n")
	case !p.ready.Load():
		status := "starting"
		if s := p.status.Load(); s != nil && *s != "" {
			status = *s
		}
		b.WriteString("not ready: " + status + "\n")
	default:
		b.WriteString("ready")
		if s := p.status.Load(); s != nil && *s != "" {
			b.WriteString(": " + *s)
		}
		b.WriteString("\n")
	}
	if r != nil && r.text != "" {
		b.WriteString("\n" + r.text)
	}
	return !failed && p.ready.Load(), b.String()
}

// Readyz answers /readyz: 200 "ok" when ready, else 503 with the reasons (Ready's text).
func (p *Probes) Readyz(w http.ResponseWriter, _ *http.Request) {
	ok, text := p.Ready()
	if !ok {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(text))
		return
	}
	_, _ = w.Write([]byte("ok"))
}

// Diagnosis answers /diagnosis: always 200, first line "ready" or "not ready: <why>", then the
// newest preflight report.
func (p *Probes) Diagnosis(w http.ResponseWriter, _ *http.Request) {
	_, text := p.Ready()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte(text))
}

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
	health.HandleFunc("/readyz", p.Readyz)
	health.HandleFunc("/diagnosis", p.Diagnosis)
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
