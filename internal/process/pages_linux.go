package process

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ReleaseStartupPages asks the kernel to reclaim the pages of the controller's executable that
// are resident now (madvise MADV_PAGEOUT, Linux 5.4 and later). Starting touches far more of the
// binary than serving needs: every package's initialisation, the API type registrations, the
// first sync. Those pages are clean copies of the file, charged to the pod while resident;
// measured (BenchmarkRSS), the binary's pages are ~40 of the ~47 MiB an idle controller holds,
// and serving needs about a quarter of them, which come back on first use (a page fault each,
// read from the page cache or the image). Called once, when the glue serves or stands by.
func ReleaseStartupPages() (PageRelease, error) {
	var r PageRelease
	var err error
	if r.RSSBefore, err = residentBytes(); err != nil {
		return r, err
	}
	exe, err := os.Executable()
	if err != nil {
		return r, err
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return r, err
	}
	ranges, err := executableMappings(string(maps), exe)
	if err != nil {
		return r, err
	}
	for _, m := range ranges {
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, m[0], m[1]-m[0], unix.MADV_PAGEOUT); errno != 0 {
			return r, fmt.Errorf("madvise(MADV_PAGEOUT) of %s: %w", exe, errno)
		}
		r.Mappings++
	}
	r.RSSAfter, err = residentBytes()
	return r, err
}
