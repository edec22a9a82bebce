package process

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// EnvReleaseStartupPages turns ReleaseStartupPages off with "false" (default on).
const EnvReleaseStartupPages = "GLUE_RELEASE_STARTUP_PAGES"

// ReleaseStartupPagesEnabled says whether GLUE_RELEASE_STARTUP_PAGES leaves the release on: unset
// or a true value; a value that is not a boolean is an error naming it.
func ReleaseStartupPagesEnabled(getenv func(string) string) (bool, error) {
	raw := getenv(EnvReleaseStartupPages)
	if raw == "" {
		return true, nil
	}
	on, err := strconv.ParseBool(raw)
	if err != nil {
		return false, fmt.Errorf("%s=%q: not true or false", EnvReleaseStartupPages, raw)
	}
	return on, nil
}

// PageRelease is what ReleaseStartupPages did: the process's resident memory before and after,
// and the mappings of the executable it released.
type PageRelease struct {
	RSSBefore, RSSAfter int64 // bytes (VmRSS)
	Mappings            int
}

// executableMappings returns the address ranges of maps (the text of /proc/self/maps) that map
// the file exe read-only: its code and read-only data, pages the kernel can always read again
// from the file. Writable mappings are left out: their written pages are the process's own.
func executableMappings(maps, exe string) ([][2]uintptr, error) {
	var out [][2]uintptr
	for _, line := range strings.Split(maps, "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || strings.Join(f[5:], " ") != exe || f[1][1] == 'w' {
			continue
		}
		from, to, ok := strings.Cut(f[0], "-")
		start, err1 := strconv.ParseUint(from, 16, 64)
		end, err2 := strconv.ParseUint(to, 16, 64)
		if !ok || err1 != nil || err2 != nil || end <= start {
			return nil, fmt.Errorf("/proc/self/maps: cannot read the range %q", f[0])
		}
		out = append(out, [2]uintptr{uintptr(start), uintptr(end)})
	}
	return out, nil
}

// residentBytes is the process's VmRSS from /proc/self/status.
func residentBytes() (int64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/self/status: no VmRSS")
}
