package process

import (
	"errors"
	"runtime"
	"syscall"
	"testing"

	"gotest.tools/v3/assert"
)

func TestExecutableMappings(t *testing.T) {
	const exe = "/usr/local/bin/clearml glue"
	for _, tc := range []struct {
		name string
		maps string
		want [][2]uintptr
		err  string
	}{
		{
			name: "code and read-only data of the executable, not its data nor other files",
			maps: `00400000-01eb4000 r-xp 00000000 fd:00 123 /usr/local/bin/clearml glue
01eb4000-03f4b000 r--p 01ab4000 fd:00 123 /usr/local/bin/clearml glue
03f4b000-03ff6000 rw-p 03b4b000 fd:00 123 /usr/local/bin/clearml glue
03ff6000-04033000 rw-p 00000000 00:00 0
7f0000000000-7f0000001000 r-xp 00000000 fd:00 456 /usr/lib/libc.so
7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0 [stack]
`,
			want: [][2]uintptr{{0x400000, 0x1eb4000}, {0x1eb4000, 0x3f4b000}},
		},
		{name: "nothing of the executable", maps: "7f0000000000-7f0000001000 r-xp 00000000 fd:00 456 /usr/lib/libc.so\n"},
		{name: "a range that is not one", maps: "00400000 r-xp 00000000 fd:00 123 /usr/local/bin/clearml glue\n", err: `cannot read the range "00400000"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := executableMappings(tc.maps, exe)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			assert.NilError(t, err)
			assert.DeepEqual(t, got, tc.want)
		})
	}
}

func TestReleaseStartupPagesEnabled(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		on          bool
		err         string
	}{
		{name: "on unless set", on: true},
		{name: "off", value: "false"},
		{name: "on", value: "true", on: true},
		{name: "not a boolean", value: "sometimes", err: `GLUE_RELEASE_STARTUP_PAGES="sometimes": not true or false`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			on, err := ReleaseStartupPagesEnabled(func(string) string { return tc.value })
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			assert.NilError(t, err)
			assert.Equal(t, on, tc.on)
		})
	}
}

// The test binary's start touched its pages like the controller's does: releasing them must
// lower the resident memory of this process.
func TestReleaseStartupPagesLowersResidentMemory(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux only")
	}
	r, err := ReleaseStartupPages()
	if errors.Is(err, syscall.EINVAL) {
		t.Skipf("this kernel has no MADV_PAGEOUT (Linux 5.4): %v", err)
	}
	assert.NilError(t, err)
	assert.Assert(t, r.Mappings >= 2, "the executable's code and read-only data: %+v", r)
	assert.Assert(t, r.RSSAfter < r.RSSBefore-(1<<20), "resident %d -> %d bytes", r.RSSBefore, r.RSSAfter)
	t.Logf("resident %.1f -> %.1f MiB", float64(r.RSSBefore)/(1<<20), float64(r.RSSAfter)/(1<<20))
}
