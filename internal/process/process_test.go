package process

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

func TestMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   map[string]string
		limit int64
		ok    bool
		err   string
	}{
		{name: "no container limit", env: map[string]string{}},
		{name: "a fifth left for the mapped binary", env: map[string]string{EnvContainerMemoryLimit: "268435456"}, limit: 214748364, ok: true},
		{name: "GOMEMLIMIT wins", env: map[string]string{EnvContainerMemoryLimit: "268435456", EnvGoMemLimit: "100MiB"}},
		{name: "GOMEMLIMIT=off wins too", env: map[string]string{EnvContainerMemoryLimit: "268435456", EnvGoMemLimit: "off"}},
		{name: "not bytes", env: map[string]string{EnvContainerMemoryLimit: "256Mi"}, err: `GLUE_CONTAINER_MEMORY_LIMIT="256Mi": not a positive number of bytes`},
		{name: "zero", env: map[string]string{EnvContainerMemoryLimit: "0"}, err: `GLUE_CONTAINER_MEMORY_LIMIT="0"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			limit, ok, err := MemoryLimit(func(k string) string { return tc.env[k] })
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			assert.NilError(t, err)
			assert.Equal(t, ok, tc.ok)
			assert.Equal(t, limit, tc.limit)
		})
	}
}

func TestGCPercent(t *testing.T) {
	pct, ok := GCPercentToSet(func(string) string { return "" })
	assert.Assert(t, ok)
	assert.Equal(t, pct, 50)
	_, ok = GCPercentToSet(func(k string) string { return map[string]string{"GOGC": "200"}[k] })
	assert.Assert(t, !ok, "GOGC set: the runtime's own setting wins")
}

func TestPprofOffByDefault(t *testing.T) {
	addr, err := ServePprof(t.Context(), "")
	assert.NilError(t, err)
	assert.Assert(t, addr == nil, "serving pprof on %v without GLUE_PPROF_ADDR", addr)
}

func TestPprofServesWhenSet(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	addr, err := ServePprof(ctx, "127.0.0.1:0")
	assert.NilError(t, err)
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/cmdline", "/debug/pprof/profile?seconds=1"} {
		resp, err := http.Get("http://" + addr.String() + path)
		assert.NilError(t, err, path)
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		assert.Equal(t, resp.StatusCode, http.StatusOK, "%s: %s", path, body)
		assert.Assert(t, len(body) > 0, path)
	}
	cancel()
	// The endpoint goes with ctx.
	assert.Assert(t, pollRefused("http://"+addr.String()+"/debug/pprof/"), "pprof still served after ctx ended")
}

func TestPprofBadAddressNamesTheVariable(t *testing.T) {
	_, err := ServePprof(t.Context(), "not an address")
	assert.ErrorContains(t, err, `GLUE_PPROF_ADDR="not an address"`)
}

// pollRefused says whether url stops answering within a few seconds.
func pollRefused(url string) bool {
	for range 50 {
		resp, err := http.Get(url)
		if err != nil && strings.Contains(err.Error(), "refused") {
			return true
		}
		if err == nil {
			_ = resp.Body.Close()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}
