package clearml_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"gotest.tools/v3/assert"
)

func TestLoginOnFirstCall(t *testing.T) {
	srv, _ := newEmulator(t)
	c := newClient(t, srv)
	for range 3 {
		_, err := c.QueuesGetAll(context.Background(), clearml.QueuesGetAllRequest{})
		assert.NilError(t, err)
	}
	assert.Equal(t, srv.Calls("auth.login"), 1, "a 30-day token is reused")
}

// TestUnauthorizedRefreshesOnceAndRetriesOnce: a revoked token costs one login and one retry.
func TestUnauthorizedRefreshesOnceAndRetriesOnce(t *testing.T) {
	srv, _ := newEmulator(t)
	c := newClient(t, srv)
	ctx := context.Background()
	assert.NilError(t, c.Login(ctx))
	srv.RevokeTokens()
	srv.ResetCalls()
	_, err := c.QueuesGetAll(ctx, clearml.QueuesGetAllRequest{})
	assert.NilError(t, err)
	assert.Equal(t, srv.Calls("auth.login"), 1)
	assert.Equal(t, srv.Calls("queues.get_all"), 2)
}

func TestPersistentUnauthorizedFailsAfterOneRetry(t *testing.T) {
	srv, _ := newEmulator(t)
	c := newClient(t, srv)
	ctx := context.Background()
	assert.NilError(t, c.Login(ctx))
	srv.ResetCalls()
	srv.InjectFault(emulator.Fault{Endpoint: "queues.get_all", Status: http.StatusUnauthorized, Count: 10})
	_, err := c.QueuesGetAll(ctx, clearml.QueuesGetAllRequest{})
	assertAPIError(t, err, 401, 0)
	assert.Equal(t, srv.Calls("auth.login"), 1)
	assert.Equal(t, srv.Calls("queues.get_all"), 2)
}

// TestConcurrentCallersShareOneLogin: 50 goroutines find the token expired; one login serves all.
func TestConcurrentCallersShareOneLogin(t *testing.T) {
	srv, _ := newEmulator(t)
	c := newClient(t, srv)
	ctx := context.Background()
	// A 2 s token is unusable at once: it would expire within one round trip (the HTTP timeout).
	srv.SetTokenLifetime(2 * time.Second)
	assert.NilError(t, c.Login(ctx))
	srv.SetTokenLifetime(emulator.DefaultTokenLifetime)
	srv.ResetCalls()
	// Slow the login down so that every goroutine arrives while it is in flight.
	srv.InjectFault(emulator.Fault{Endpoint: "auth.login", Latency: 100 * time.Millisecond})

	var wg sync.WaitGroup
	errs := make([]error, 50)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = c.QueuesGetAll(ctx, clearml.QueuesGetAllRequest{})
		})
	}
	wg.Wait()
	for _, err := range errs {
		assert.NilError(t, err)
	}
	assert.Equal(t, srv.Calls("auth.login"), 1)
	assert.Equal(t, srv.Calls("queues.get_all"), 50)
	claims, _ := c.Claims()
	assert.Assert(t, time.Until(claims.Expires) > 24*time.Hour)
}

// TestConcurrentUnauthorizedShareOneLogin: many calls rejected with the same revoked token
// trigger a single refresh.
func TestConcurrentUnauthorizedShareOneLogin(t *testing.T) {
	srv, _ := newEmulator(t)
	c := newClient(t, srv)
	ctx := context.Background()
	assert.NilError(t, c.Login(ctx))
	srv.RevokeTokens()
	srv.ResetCalls()
	srv.InjectFault(emulator.Fault{Endpoint: "auth.login", Latency: 100 * time.Millisecond})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			_, err := c.QueuesGetAll(ctx, clearml.QueuesGetAllRequest{})
			assert.Check(t, err)
		})
	}
	wg.Wait()
	assert.Assert(t, srv.Calls("auth.login") <= 2, "got %d logins", srv.Calls("auth.login"))
}

// TestRefreshBeforeExpiry: inside the refresh window the current token is still used while one
// background login replaces it.
func TestRefreshBeforeExpiry(t *testing.T) {
	srv, _ := newEmulator(t)
	c := newClient(t, srv, func(cfg *clearml.Config) { cfg.HTTPClient = &http.Client{Timeout: time.Second} })
	ctx := context.Background()
	srv.SetTokenLifetime(6 * time.Second) // refresh after half its life, unusable 1 s before expiry
	assert.NilError(t, c.Login(ctx))
	first, _ := c.Claims()
	srv.SetTokenLifetime(emulator.DefaultTokenLifetime)
	srv.ResetCalls()

	_, err := c.QueuesGetAll(ctx, clearml.QueuesGetAllRequest{})
	assert.NilError(t, err)
	assert.Equal(t, srv.Calls("auth.login"), 0, "fresh token")

	time.Sleep(3200 * time.Millisecond)
	// Below the client's 1 s HTTP timeout, so the login itself succeeds the first time.
	srv.InjectFault(emulator.Fault{Endpoint: "auth.login", Latency: 800 * time.Millisecond})
	_, err = c.QueuesGetAll(ctx, clearml.QueuesGetAllRequest{})
	assert.NilError(t, err)
	// Observed, not timed: the call returned while the slow login was still in flight.
	during, _ := c.Claims()
	assert.Equal(t, during.Expires, first.Expires, "the call waited for the login")
	poll(t, func() bool { claims, _ := c.Claims(); return claims.Expires.After(first.Expires) })
	assert.Equal(t, srv.Calls("auth.login"), 1)
}

// TestTokenWithoutExpiry: a token with no exp claim never expires client-side.
func TestTokenWithoutExpiry(t *testing.T) {
	srv, _ := newEmulator(t)
	c := newClient(t, srv)
	srv.SetTokenLifetime(0)
	assert.NilError(t, c.Login(context.Background()))
	claims, _ := c.Claims()
	assert.Assert(t, claims.Expires.IsZero())
	_, err := c.QueuesGetAll(context.Background(), clearml.QueuesGetAllRequest{})
	assert.NilError(t, err)
	assert.Equal(t, srv.Calls("auth.login"), 1)
}

func TestMalformedLoginAnswer(t *testing.T) {
	tests := map[string]string{
		"token is not a JWT": `{"meta":{"result_code":200},"data":{"token":"opaque-secret-token"}}`,
		"no data":            `{"meta":{"result_code":200},"data":null}`,
		"not JSON":           `<html>`,
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(body)) }))
			t.Cleanup(ts.Close)
			c, err := clearml.New(clearml.Config{APIHost: ts.URL, AccessKey: "k", SecretKey: "s"})
			assert.NilError(t, err)
			err = c.Login(context.Background())
			assert.ErrorContains(t, err, "clearml: auth.login:")
			assert.Assert(t, !containsAny(err.Error(), "opaque-secret-token"), err.Error())
		})
	}
}

func TestLoginWaitHonoursContext(t *testing.T) {
	srv, _ := newEmulator(t)
	c := newClient(t, srv)
	srv.InjectFault(emulator.Fault{Endpoint: "auth.login", Latency: 1500 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.QueuesGetAll(ctx, clearml.QueuesGetAllRequest{})
	assert.ErrorContains(t, err, "waiting for auth.login: context deadline exceeded")
	// The caller gave up before the login ended (no token yet), rather than waiting for it.
	_, loggedIn := c.Claims()
	assert.Assert(t, !loggedIn, "the call waited for the login")
	// The shared login goes on and serves the next caller.
	_, err = c.QueuesGetAll(context.Background(), clearml.QueuesGetAllRequest{})
	assert.NilError(t, err)
	assert.Equal(t, srv.Calls("auth.login"), 1)
}

func poll(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
