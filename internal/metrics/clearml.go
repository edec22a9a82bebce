package metrics

import (
	"io"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	// ClearMLRequestSeconds times every ClearML API request (each retry on its own), from the
	// request to the response body closed, per endpoint.
	ClearMLRequestSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "clearml_request_duration_seconds",
		Help:    "ClearML API request latency (each attempt), per endpoint.",
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
	}, []string{"endpoint"})
	// ClearMLRequests counts ClearML API requests per endpoint and HTTP status code; code is
	// "error" when no response came (connection refused, reset, timeout).
	ClearMLRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "clearml_requests_total",
		Help: "ClearML API requests (each attempt), per endpoint and HTTP code (\"error\": no response).",
	}, []string{"endpoint", "code"})
)

// endpointRE is a ClearML endpoint, service.action: the last segment of /v2.31/tasks.get_all.
var endpointRE = regexp.MustCompile(`^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$`)

// ClearMLEndpoint returns the endpoint label of a request path, "other" for anything that is
// not service.action, so a path can never grow the label's values.
func ClearMLEndpoint(p string) string {
	if e := path.Base(p); endpointRE.MatchString(e) {
		return e
	}
	return "other"
}

// ClearMLTransport wraps next (nil: http.DefaultTransport) to time and count every request in
// clearml_glue_clearml_request_duration_seconds and clearml_glue_clearml_requests_total. Install
// it as the Transport of the ClearML client's http.Client.
func ClearMLTransport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return clearMLTransport{next}
}

type clearMLTransport struct{ next http.RoundTripper }

func (t clearMLTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	endpoint := ClearMLEndpoint(req.URL.Path)
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		ClearMLRequests.WithLabelValues(endpoint, "error").Inc()
		ClearMLRequestSeconds.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
		return resp, err
	}
	ClearMLRequests.WithLabelValues(endpoint, strconv.Itoa(resp.StatusCode)).Inc()
	resp.Body = &timedBody{ReadCloser: resp.Body, done: func() {
		ClearMLRequestSeconds.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
	}}
	return resp, nil
}

// timedBody observes the latency once, when the body is closed: the time includes reading it.
type timedBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *timedBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.done)
	return err
}
