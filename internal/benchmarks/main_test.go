package benchmarks

import (
	"flag"
	"os"
	"testing"

	"github.com/clearml-glue/clearml-glue/internal/localcluster"
)

// The kwok stages that play task pods (shared with the e2e tests and the demo).
const stagesFile = "../../ci/kwok-stages.yaml"

// clusterNodes hold the benchmarks' pods up to BenchmarkThroughput's 2,000 (1,000 pods per node);
// BenchmarkHeap adds its own nodes for 10,000 (addNodes).
const clusterNodes = 3

// clusterShape is the shared cluster's, and that of the clusters each throughput run starts.
var clusterShape = localcluster.Options{Nodes: clusterNodes, StageFiles: []string{stagesFile}}

// TestMain starts a local control plane only when benchmarks were asked for (-bench), so
// `go test ./...` runs the report test (skipped without BENCH_RESULTS) and nothing heavy.
func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		os.Exit(m.Run())
	}
	os.Exit(localcluster.Main(m, clusterShape))
}
