package e2e

import (
	"os"
	"testing"

	"github.com/clearml-glue/clearml-glue/internal/localcluster"
)

// The kwok stages that play task pods, shared with the demo.
const stagesFile = "../../ci/kwok-stages.yaml"

func TestMain(m *testing.M) {
	os.Exit(localcluster.Main(m, localcluster.Options{Nodes: 3, GPUNodes: 1, StageFiles: []string{stagesFile},
		AuditServiceAccounts: true, AfterRun: auditRBAC}))
}
