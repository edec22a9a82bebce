package clearml_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"gotest.tools/v3/assert"
)

// syncBuffer collects log output from concurrent goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func containsAny(s string, needles ...string) bool {
	for _, n := range needles {
		if n != "" && strings.Contains(s, n) {
			return true
		}
	}
	return false
}

// TestSecretsNeverInErrorsOrLogs runs the failure paths against the emulator and against a
// hostile server that echoes the Authorization header into every answer.
func TestSecretsNeverInErrorsOrLogs(t *testing.T) {
	const key, secret = "AKEY1234567890SECRETISH", "s3cr3t-v4lue-do-not-leak"
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var errs []string
	record := func(err error) {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	ctx := context.Background()
	fast := func(cfg *clearml.Config) {
		cfg.AccessKey, cfg.SecretKey, cfg.Logger = key, secret, logger
		cfg.MaxRetryElapsed = 300 * time.Millisecond
	}

	// Emulator paths: bad secret, 401 refresh, retried outage, exhausted retries.
	srv := emulator.NewTestServer(t, emulator.Options{AccessKey: key, SecretKey: secret})
	bad := newClient(t, srv, fast, func(cfg *clearml.Config) { cfg.SecretKey = secret + "x" })
	record(bad.Login(ctx))
	c := newClient(t, srv, fast)
	assert.NilError(t, c.Login(ctx))
	srv.RevokeTokens()
	_, err := c.QueuesGetAll(ctx, clearml.QueuesGetAllRequest{})
	assert.NilError(t, err)
	srv.Outage(time.Minute, 503)
	_, err = c.QueuesGetAll(ctx, clearml.QueuesGetAllRequest{})
	record(err)
	srv.ClearFaults()
	_, err = c.TasksGetByID(ctx, "missing")
	record(err)

	// A hostile server: it hands out a token, then echoes headers back in errors and bodies.
	var issued []string
	var mu sync.Mutex
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		if strings.HasSuffix(r.URL.Path, "auth.login") {
			token := "eyJhbGciOiJIUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(
				[]byte(fmt.Sprintf(`{"identity":{"user":"u"},"exp":%d,"n":%d}`, time.Now().Add(time.Hour).Unix(), time.Now().UnixNano()))) + ".c2lnbmF0dXJl"
			mu.Lock()
			issued = append(issued, token)
			mu.Unlock()
			fmt.Fprintf(w, `{"meta":{"result_code":200},"data":{"token":%q}}`, token)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"meta":{"result_code":401,"result_subcode":30,"result_msg":"bad %s","error_data":{"auth":%q,"nested":[{"a":%q}]}},"data":{}}`, auth, auth, auth)
	}))
	t.Cleanup(echo.Close)
	hostile, err := clearml.New(clearml.Config{APIHost: echo.URL, AccessKey: key, SecretKey: secret, Logger: logger, MaxRetryElapsed: -1})
	assert.NilError(t, err)
	_, err = hostile.QueuesGetAll(ctx, clearml.QueuesGetAllRequest{})
	record(err)
	var apiErr *clearml.APIError
	assert.Assert(t, errors.As(err, &apiErr))
	record(fmt.Errorf("%v %v", apiErr.ErrorData, apiErr.Msg))
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprintf(w, "<html>upstream said %s and key %s</html>", r.Header.Get("Authorization"), key)
	}))
	t.Cleanup(html.Close)
	proxied, err := clearml.New(clearml.Config{APIHost: html.URL, AccessKey: key, SecretKey: secret, Logger: logger, MaxRetryElapsed: -1})
	assert.NilError(t, err)
	record(proxied.Login(ctx))

	mu.Lock()
	secrets := append([]string{key, secret, base64.StdEncoding.EncodeToString([]byte(key + ":" + secret))}, issued...)
	mu.Unlock()
	assert.Assert(t, len(issued) >= 2 && len(errs) >= 5)
	for _, e := range errs {
		assert.Assert(t, !containsAny(e, secrets...), "secret in error: %s", e)
	}
	assert.Assert(t, strings.Contains(strings.Join(errs, "\n"), "[REDACTED]"), "the hostile echoes were redacted")
	out := logs.String()
	assert.Assert(t, strings.Contains(out, "retrying"), "retries are logged")
	assert.Assert(t, !containsAny(out, secrets...), "secret in logs:\n%s", out)
}
