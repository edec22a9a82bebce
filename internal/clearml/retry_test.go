package clearml_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"gotest.tools/v3/assert"
)

// TestRidesOutRealOutage waits out a real 30 s maintenance window (503 on every call) with
// the default backoff settings.
func TestRidesOutRealOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a real 30 s outage")
	}
	t.Parallel()
	srv, _ := newEmulator(t)
	c, err := clearml.New(clearml.Config{APIHost: srv.URL(), AccessKey: emulator.DefaultAccessKey, SecretKey: emulator.DefaultSecretKey})
	assert.NilError(t, err)
	qid := mustQueue(t, srv, "work")
	ctx := context.Background()
	assert.NilError(t, c.Login(ctx))

	srv.Outage(30*time.Second, 503)
	start := time.Now()
	next, err := c.QueuesGetNextTask(ctx, qid)
	elapsed := time.Since(start)
	assert.NilError(t, err)
	assert.Assert(t, next == nil)
	assert.Assert(t, elapsed >= 30*time.Second, "returned after %v", elapsed)
	calls := srv.Calls("queues.get_next_task")
	assert.Assert(t, calls >= 4 && calls <= 12, "%d attempts: backoff should be exponential", calls)
	t.Logf("outage ridden out after %v in %d attempts", elapsed.Round(time.Millisecond), calls)
}

func TestRetries(t *testing.T) {
	fast := func(cfg *clearml.Config) {
		cfg.RetryInitialInterval, cfg.RetryMaxInterval, cfg.MaxRetryElapsed = 10*time.Millisecond, 100*time.Millisecond, 5*time.Second
	}
	tests := map[string]struct {
		setup     func(srv *emulator.Server)
		mod       func(*clearml.Config)
		call      func(ctx context.Context, c *clearml.Client, queueID string) error
		endpoint  string
		wantCalls int // 0: more than one
		wantErr   func(t *testing.T, err error)
	}{
		"scaled-down 503 outage is ridden out": {
			setup: func(srv *emulator.Server) { srv.Outage(time.Second, 503) },
		},
		"502s are retried": {
			setup: func(srv *emulator.Server) {
				srv.InjectFault(emulator.Fault{Endpoint: "queues.get_next_task", Status: 502, Count: 3})
			},
			wantCalls: 4,
		},
		"429 and 509 are retried": {
			setup: func(srv *emulator.Server) {
				srv.InjectFault(emulator.Fault{Status: 429})
				srv.InjectFault(emulator.Fault{Status: 509})
			},
			wantCalls: 3,
		},
		"dropped connections are retried": {
			setup: func(srv *emulator.Server) {
				srv.InjectFault(emulator.Fault{Endpoint: "queues.get_next_task", DropConnection: true, Count: 2})
			},
			wantCalls: 3,
		},
		"a 4xx answer is not retried": {
			call: func(ctx context.Context, c *clearml.Client, _ string) error {
				_, err := c.TasksGetByID(ctx, "missing")
				return err
			},
			endpoint: "tasks.get_by_id", wantCalls: 1,
			wantErr: func(t *testing.T, err error) { assertAPIError(t, err, 400, 101) },
		},
		"an injected 400 is not retried": {
			setup:     func(srv *emulator.Server) { srv.InjectFault(emulator.Fault{Status: 400, Count: 5}) },
			wantCalls: 1,
			wantErr:   func(t *testing.T, err error) { assertAPIError(t, err, 400, 0) },
		},
		"a 500 is not retried": {
			setup:     func(srv *emulator.Server) { srv.InjectFault(emulator.Fault{Status: 500, Count: 5}) },
			wantCalls: 1,
			wantErr:   func(t *testing.T, err error) { assertAPIError(t, err, 500, 0) },
		},
		"retries end after MaxRetryElapsed": {
			setup: func(srv *emulator.Server) { srv.Outage(time.Minute, 503) },
			mod:   func(cfg *clearml.Config) { cfg.MaxRetryElapsed = 300 * time.Millisecond },
			wantErr: func(t *testing.T, err error) {
				assertAPIError(t, err, 503, 0)
				assert.ErrorContains(t, err, "Service Unavailable (emulator fault)")
			},
		},
		"negative MaxRetryElapsed disables retries": {
			setup:     func(srv *emulator.Server) { srv.InjectFault(emulator.Fault{Status: 503}) },
			mod:       func(cfg *clearml.Config) { cfg.MaxRetryElapsed = -1 },
			wantCalls: 1,
			wantErr:   func(t *testing.T, err error) { assertAPIError(t, err, 503, 0) },
		},
		"the context bounds retries and the last error is kept": {
			setup: func(srv *emulator.Server) { srv.Outage(time.Minute, 503) },
			call: func(ctx context.Context, c *clearml.Client, queueID string) error {
				ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
				defer cancel()
				_, err := c.QueuesGetNextTask(ctx, queueID)
				return err
			},
			endpoint: "queues.get_next_task",
			wantErr: func(t *testing.T, err error) {
				assert.Assert(t, errors.Is(err, context.DeadlineExceeded), "got %v", err)
				assertAPIError(t, err, 503, 0)
			},
		},
		"a slow answer is cut by the context": {
			setup: func(srv *emulator.Server) { srv.InjectFault(emulator.Fault{Latency: 5 * time.Second}) },
			call: func(ctx context.Context, c *clearml.Client, queueID string) error {
				ctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
				defer cancel()
				_, err := c.QueuesGetNextTask(ctx, queueID)
				return err
			},
			endpoint:  "queues.get_next_task",
			wantCalls: 1,
			wantErr: func(t *testing.T, err error) {
				assert.Assert(t, errors.Is(err, context.DeadlineExceeded), "got %v", err)
			},
		},
		"a slow answer within the HTTP timeout succeeds": {
			setup:     func(srv *emulator.Server) { srv.InjectFault(emulator.Fault{Latency: 100 * time.Millisecond}) },
			wantCalls: 1,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv, _ := newEmulator(t)
			mods := []func(*clearml.Config){fast}
			if tc.mod != nil {
				mods = append(mods, tc.mod)
			}
			c := newClient(t, srv, mods...)
			qid := mustQueue(t, srv, "work")
			ctx := context.Background()
			assert.NilError(t, c.Login(ctx))
			srv.ResetCalls()
			if tc.setup != nil {
				tc.setup(srv)
			}
			call, endpoint := tc.call, tc.endpoint
			if call == nil {
				call = func(ctx context.Context, c *clearml.Client, queueID string) error {
					_, err := c.QueuesGetNextTask(ctx, queueID)
					return err
				}
				endpoint = "queues.get_next_task"
			}
			err := call(ctx, c, qid)
			if tc.wantErr != nil {
				tc.wantErr(t, err)
			} else {
				assert.NilError(t, err)
			}
			if tc.wantCalls > 0 {
				assert.Equal(t, srv.Calls(endpoint), tc.wantCalls)
			} else {
				assert.Assert(t, srv.Calls(endpoint) > 1, "retried")
			}
		})
	}
}

// TestNonIdempotentRetries: calls whose replay is visible are retried only when the request
// provably was not processed, unless RetryNonIdempotent is set.
func TestNonIdempotentRetries(t *testing.T) {
	tests := map[string]struct {
		fault     emulator.Fault
		retryAll  bool
		wantCalls int
		wantOK    bool
	}{
		"503 is retried":                              {fault: emulator.Fault{Status: 503}, wantCalls: 2, wantOK: true},
		"502 is not retried":                          {fault: emulator.Fault{Status: 502}, wantCalls: 1},
		"502 is retried with RetryNonIdempotent":      {fault: emulator.Fault{Status: 502}, retryAll: true, wantCalls: 2, wantOK: true},
		"a dropped connection is not retried":         {fault: emulator.Fault{DropConnection: true}, wantCalls: 1},
		"a dropped connection, RetryNonIdempotent":    {fault: emulator.Fault{DropConnection: true}, retryAll: true, wantCalls: 2, wantOK: true},
		"an answer lost after a delay is not retried": {fault: emulator.Fault{Latency: 50 * time.Millisecond, DropConnection: true}, wantCalls: 1},
	}
	for name, tc := range tests {
		for _, endpoint := range []string{"tasks.enqueue", "events.add_batch"} {
			t.Run(name+"/"+endpoint, func(t *testing.T) {
				t.Parallel()
				srv, _ := newEmulator(t)
				c := newClient(t, srv, func(cfg *clearml.Config) { cfg.RetryNonIdempotent = tc.retryAll })
				qid := mustQueue(t, srv, "work")
				id := srv.CreateTask(emulator.TaskSpec{Name: "t"})
				ctx := context.Background()
				assert.NilError(t, c.Login(ctx))
				fault := tc.fault
				fault.Endpoint = endpoint
				srv.InjectFault(fault)
				var err error
				if endpoint == "tasks.enqueue" {
					err = c.TasksEnqueue(ctx, clearml.TasksEnqueueRequest{Task: id, Queue: qid})
				} else {
					_, err = c.EventsAddBatch(ctx, []clearml.Event{clearml.LogEvent(id, "INFO", "x")})
				}
				assert.Equal(t, err == nil, tc.wantOK, "err: %v", err)
				assert.Equal(t, srv.Calls(endpoint), tc.wantCalls)
			})
		}
	}
}

// TestDialErrorsAreRetriedForAnyCall: a refused connection sent nothing, so even
// non-idempotent calls are retried, until MaxRetryElapsed.
func TestDialErrorsAreRetriedForAnyCall(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	addr := ln.Addr().String()
	assert.NilError(t, ln.Close())
	var logs syncBuffer
	c, err := clearml.New(clearml.Config{APIHost: "http://" + addr, AccessKey: "k", SecretKey: "s",
		RetryInitialInterval: 10 * time.Millisecond, MaxRetryElapsed: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	assert.NilError(t, err)
	err = c.TasksEnqueue(context.Background(), clearml.TasksEnqueueRequest{Task: "t", Queue: "q"})
	assert.ErrorContains(t, err, "clearml: auth.login: Post")
	assert.ErrorContains(t, err, "connection refused")
	// Counted, not timed: the retry log line says each retry happened.
	retries := strings.Count(logs.String(), "clearml call failed, retrying")
	assert.Assert(t, retries >= 2, "retried %d times", retries)
}
