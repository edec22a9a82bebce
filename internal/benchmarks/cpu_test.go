package benchmarks

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc's CPU times (100 on Linux for every architecture Go
// supports here).
const clockTicks = 100

// cpuUse is CPU seconds spent per process of one local cluster (by binary: kube-apiserver,
// etcd, ...), by this benchmark process ("bench": the emulator, the recorders and an in-process
// glue or limit client) and by the whole machine ("machine", every process), read from /proc.
// The difference of two readings says where a run's CPU went: the ratio of the glue's rate to
// the limit's is a question of which of them pays for the difference.
type cpuUse map[string]float64

// readCPU reads cpuUse for the cluster whose processes run from .../clusters/<cluster>/bin/.
func readCPU(cluster string) cpuUse {
	use := cpuUse{"bench": procCPU("self"), "machine": machineCPU()}
	marker := "/clusters/" + cluster + "/bin/"
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmdline, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil {
			continue
		}
		bin, _, _ := strings.Cut(string(cmdline), "\x00")
		if i := strings.Index(bin, marker); i >= 0 {
			use[bin[i+len(marker):]] += procCPU(filepath.Base(d))
		}
	}
	return use
}

// procCPU is utime+stime of /proc/<pid>/stat in seconds (0 if it cannot be read).
func procCPU(pid string) float64 {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: count fields after its closing parenthesis.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / clockTicks
}

// machineCPU is the busy time of every CPU in seconds: /proc/stat's first line without idle and
// iowait.
func machineCPU() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	var busy float64
	for i, f := range strings.Fields(line)[1:] {
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest times are already in user
			continue
		}
		v, _ := strconv.ParseFloat(f, 64)
		busy += v
	}
	return busy / clockTicks
}

// since is u minus an earlier reading.
func (u cpuUse) since(before cpuUse) cpuUse {
	out := cpuUse{}
	for k, v := range u {
		out[k] = v - before[k]
	}
	return out
}

// describe formats the use over wall: each part's CPU seconds, per task when n > 0, and how busy
// the machine's cores were.
func (u cpuUse) describe(wall time.Duration, n int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(u)) {
		if k != "machine" && u[k] >= 0.005 {
			parts = append(parts, fmt.Sprintf("%s %.2f s (%.2f ms/task)", k, u[k], 1000*u[k]/float64(max(n, 1))))
		}
	}
	return fmt.Sprintf("CPU %s; machine %.2f s busy in %.2f s wall (%.0f %% of its cores)",
		strings.Join(parts, ", "), u["machine"], wall.Seconds(), 100*u["machine"]/wall.Seconds()/float64(runtime.NumCPU()))
}
