package clearml_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"gotest.tools/v3/assert"
)

// fakeClock is the emulator's clock, movable forward by tests.
type fakeClock struct{ offset atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *fakeClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// newEmulator starts an emulator with a movable clock.
func newEmulator(t testing.TB) (*emulator.Server, *fakeClock) {
	clock := &fakeClock{}
	return emulator.NewTestServer(t, emulator.Options{Now: clock.Now}), clock
}

// newClient is a client of srv with fast retries, adjusted by mods.
func newClient(t testing.TB, srv *emulator.Server, mods ...func(*clearml.Config)) *clearml.Client {
	t.Helper()
	cfg := clearml.Config{
		APIHost:              srv.URL(),
		AccessKey:            emulator.DefaultAccessKey,
		SecretKey:            emulator.DefaultSecretKey,
		WorkerHeader:         "test-worker",
		RetryInitialInterval: 5 * time.Millisecond,
		RetryMaxInterval:     50 * time.Millisecond,
		MaxRetryElapsed:      2 * time.Second,
	}
	for _, mod := range mods {
		mod(&cfg)
	}
	c, err := clearml.New(cfg)
	assert.NilError(t, err)
	return c
}

// assertAPIError checks that err is an *APIError with this code and subcode.
func assertAPIError(t testing.TB, err error, code, subcode int) {
	t.Helper()
	assert.Assert(t, clearml.IsSubcode(err, code, subcode), "want %d/%d, got %v", code, subcode, err)
}

// mustQueue creates a queue through the emulator hook.
func mustQueue(t testing.TB, srv *emulator.Server, name string, systemTags ...string) string {
	t.Helper()
	id, err := srv.CreateQueue(name, systemTags...)
	assert.NilError(t, err)
	return id
}

// task returns the emulator's copy of a task.
func task(t testing.TB, srv *emulator.Server, id string) emulator.Task {
	t.Helper()
	tk, ok := srv.Task(id)
	assert.Assert(t, ok, "task %s not found", id)
	return tk
}
