package controller

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/doctor"
	"github.com/clearml-glue/clearml-glue/internal/metrics"
)

func drain(r *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-r.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// TestDiagnosisPublishesChangesOnly: the first report is logged whole; afterwards only a check
// that starts failing, fails differently or passes again is logged and becomes an Event, and
// /readyz follows the newest report.
func TestDiagnosisPublishesChangesOnly(t *testing.T) {
	var logs bytes.Buffer
	rec := record.NewFakeRecorder(100)
	probes := &metrics.Probes{}
	probes.SetReady(true)
	d := newDiagnosis(context.Background(), config.Settings{Namespace: "ml", Deployment: "glue"}, fake.NewClientset(), probes, rec,
		slog.New(slog.NewTextHandler(&logs, nil)), true)

	down := doctor.Finding{Check: doctor.CheckReachable, Detail: "http://127.0.0.1:1: nothing answers", Fix: "agentk8sglue.apiServerUrlReference"}
	queue := doctor.Finding{Check: "queue work", OK: true, Detail: "exists"}
	d.publish([]doctor.Finding{down, queue})
	assert.Equal(t, strings.Count(logs.String(), "msg=preflight "), 2, logs.String())
	assert.DeepEqual(t, drain(rec), []string{"Warning PreflightFailed ClearML API reachable: http://127.0.0.1:1: nothing answers; fix: agentk8sglue.apiServerUrlReference"})
	ready, body := probes.Ready()
	assert.Assert(t, !ready)
	assert.Assert(t, strings.Contains(body, "fix: agentk8sglue.apiServerUrlReference"), body)

	logs.Reset()
	d.publish([]doctor.Finding{down, queue})
	assert.Equal(t, logs.String(), "", "nothing changed")
	assert.Equal(t, len(drain(rec)), 0)

	up := doctor.Finding{Check: doctor.CheckReachable, OK: true, Detail: "answers debug.ping"}
	d.publish([]doctor.Finding{up, queue})
	assert.Assert(t, strings.Contains(logs.String(), "result=ok"), logs.String())
	assert.Assert(t, strings.Contains(logs.String(), "every check passes"), logs.String())
	assert.DeepEqual(t, drain(rec), []string{"Normal PreflightPassed ClearML API reachable: answers debug.ping"})
	ready, body = probes.Ready()
	assert.Assert(t, ready, body)
}
