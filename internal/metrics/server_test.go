package metrics

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	var resp *http.Response
	var err error
	for range 50 { // the server starts in the background
		if resp, err = http.Get(url); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	assert.NilError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestProbesAndMetricsEndpoints(t *testing.T) {
	health, metricsAddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	p := &Probes{}
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, metricsAddr, health, p) }()

	code, _ := get(t, "http://"+health+"/healthz")
	assert.Equal(t, code, http.StatusOK)
	code, _ = get(t, "http://"+health+"/readyz")
	assert.Equal(t, code, http.StatusServiceUnavailable, "ready before the glue serves")
	p.SetReady(true)
	code, _ = get(t, "http://"+health+"/readyz")
	assert.Equal(t, code, http.StatusOK)

	// A failed preflight check makes the glue not ready; /readyz and /diagnosis say why.
	p.SetDiagnosis("CHECK  RESULT  DETAIL\nqueue gpu  FAIL  no such queue; fix: agentk8sglue.createQueues\n", true)
	code, body := get(t, "http://"+health+"/readyz")
	assert.Equal(t, code, http.StatusServiceUnavailable)
	assert.Assert(t, strings.Contains(body, "preflight check failed") && strings.Contains(body, "fix: agentk8sglue.createQueues"), body)
	code, body = get(t, "http://"+health+"/diagnosis")
	assert.Equal(t, code, http.StatusOK)
	assert.Assert(t, strings.HasPrefix(body, "not ready: ") && strings.Contains(body, "queue gpu"), body)
	p.SetDiagnosis("CHECK  RESULT  DETAIL\nqueue gpu  ok  exists\n", false)
	code, body = get(t, "http://"+health+"/readyz")
	assert.Equal(t, code, http.StatusOK, body)
	_, body = get(t, "http://"+health+"/diagnosis")
	assert.Assert(t, strings.HasPrefix(body, "ready\n"), body)
	p.SetReady(false)
	p.SetStatus("waiting for the leader Lease")
	_, body = get(t, "http://"+health+"/readyz")
	assert.Assert(t, strings.HasPrefix(body, "not ready: waiting for the leader Lease\n"), body)

	TasksLaunched.WithLabelValues("probe-test").Inc()
	code, body = get(t, "http://"+metricsAddr+"/metrics")
	assert.Equal(t, code, http.StatusOK)
	assert.Assert(t, strings.Contains(body, `clearml_glue_tasks_launched_total{queue="probe-test"} 1`), body)

	cancel()
	assert.NilError(t, <-done)
}
