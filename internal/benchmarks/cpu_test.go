package benchmarks

import (
	"fmt"
	"os/exec"
	"testing"

	"gotest.tools/v3/assert"
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
	return statCPU(string(b))
}

// statCPU reads utime+stime from a /proc/<pid>/stat line. The command name (field 2) may hold
// spaces and parentheses: fields are counted after its last closing parenthesis.
func statCPU(s string) float64 {
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

// cluster is the CPU seconds of the cluster's processes alone.
func (u cpuUse) cluster() float64 {
	var t float64
	for k, v := range u {
		if k != "bench" && k != "machine" {
			t += v
		}
	}
	return t
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

func TestCPUAccounting(t *testing.T) {
	// A command name with spaces and parentheses; utime 250 and stime 50 ticks.
	line := "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 100 0 0"
	assert.Equal(t, statCPU(line), 3.0)
	assert.Equal(t, statCPU("garbage"), 0.0)

	// A process run from a cluster's bin directory is counted under its binary's name.
	bin := filepath.Join(t.TempDir(), "clusters", "c1", "bin")
	must(t, os.MkdirAll(bin, 0o755))
	sh, err := exec.LookPath("sh")
	must(t, err)
	must(t, os.Symlink(sh, filepath.Join(bin, "busy")))
	before := readCPU("c1")
	cmd := exec.Command(filepath.Join(bin, "busy"), "-c", "i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done; echo done; read -r x") // waits on stdin, no child
	out, err := cmd.StdoutPipe()
	must(t, err)
	_, err = cmd.StdinPipe()
	must(t, err)
	must(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	_, err = out.Read(make([]byte, 4)) // the loop is over
	must(t, err)
	used := readCPU("c1").since(before)
	assert.Assert(t, used["busy"] > 0.1, "%v", used)
	assert.Assert(t, used["machine"] >= used["busy"], "%v", used)
	assert.Equal(t, used.cluster(), used["busy"])
	_, other := readCPU("c2")["busy"]
	assert.Assert(t, !other, "another cluster's processes are not counted")
	assert.Assert(t, strings.Contains(used.describe(time.Second, 10), "busy"), used.describe(time.Second, 10))
}
