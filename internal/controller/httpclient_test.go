package controller

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"gotest.tools/v3/assert"
)

// 32 launches in flight call the server at once, round after round: each call must find an
// idle connection, not dial a new one (net/http keeps 2 per host by default).
func TestHTTPClientKeepsAConnectionPerCallInFlight(t *testing.T) {
	var dialled atomic.Int64
	release := make(chan struct{})
	var arrived sync.WaitGroup
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		arrived.Done()
		<-release
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dialled.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := httpClient(true)
	for range 3 {
		arrived.Add(32)
		var done sync.WaitGroup
		for range 32 {
			done.Go(func() {
				resp, err := c.Get(srv.URL)
				if assert.Check(t, err) {
					_ = resp.Body.Close()
				}
			})
		}
		arrived.Wait() // all 32 in flight at once
		for range 32 {
			release <- struct{}{}
		}
		done.Wait()
	}
	assert.Equal(t, dialled.Load(), int64(32), "connections dialled for 3 rounds of 32 concurrent calls")
}
