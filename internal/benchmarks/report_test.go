package benchmarks

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// renamed maps benchmark metrics that do not carry their JSON key as unit.
var renamed = map[string]string{
	"BenchmarkBuild/templated builds/s":      "render_per_s",
	"BenchmarkBuild/static builds/s":         "render_static_per_s",
	"BenchmarkGetNextTaskEmptyQueue calls/s": "clearml_empty_polls_per_s",
}

// keyUnit is a unit that is a figure of the BENCH line (snake_case, no slash).
var keyUnit = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]*$`)

// TestReport turns `go test -bench` output into the BENCH JSON: the median over every result line
// of each figure. It runs only when BENCH_RESULTS names the output files (comma separated) and
// writes the JSON to BENCH_JSON (`make bench` prints it as `BENCH {json}`).
func TestReport(t *testing.T) {
	files := os.Getenv("BENCH_RESULTS")
	if files == "" {
		t.Skip("BENCH_RESULTS not set: no benchmark output to report (run `make bench`)")
	}
	values := map[string][]float64{}
	for _, path := range strings.Split(files, ",") {
		f, err := os.Open(path)
		must(t, err)
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
				continue
			}
			if _, err := strconv.Atoi(fields[1]); err != nil {
				continue
			}
			name := regexp.MustCompile(`-\d+$`).ReplaceAllString(fields[0], "")
			for i := 2; i+1 < len(fields); i += 2 {
				v, err := strconv.ParseFloat(fields[i], 64)
				if err != nil {
					continue
				}
				unit := fields[i+1]
				if key, ok := renamed[name+" "+unit]; ok {
					values[key] = append(values[key], v)
				} else if keyUnit.MatchString(unit) {
					values[unit] = append(values[unit], v)
				}
			}
		}
		must(t, sc.Err())
		_ = f.Close()
	}
	out := map[string]any{}
	for k, vs := range values {
		out[k] = round(median(vs))
	}
	out["machine"] = fmt.Sprintf("%s/%s, %d CPUs, shared with other test runs", runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	data, err := json.Marshal(out)
	must(t, err)
	if path := os.Getenv("BENCH_JSON"); path != "" {
		must(t, os.WriteFile(path, data, 0o644))
	}
	t.Logf("BENCH %s", data)
}

func round(v float64) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 4, 64), 64)
	return f
}
