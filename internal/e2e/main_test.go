package e2e

import (
	"os"
	"testing"

	"github.com/clearml-glue/clearml-glue/internal/localcluster"
)

func TestMain(m *testing.M) {
	os.Exit(localcluster.Main(m, localcluster.Options{Nodes: 3, GPUNodes: 1, StageFiles: []string{"testdata/stages.yaml"}}))
}
