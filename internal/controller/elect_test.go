package controller

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/metrics"
)

// TestElectionEndsWithServing: when serving ends with an error while this replica leads, the
// Lease is released for another replica, /healthz fails and elect returns the error (so the
// process exits) instead of renewing a Lease nobody serves.
func TestElectionEndsWithServing(t *testing.T) {
	cs := fake.NewClientset()
	s := config.Settings{Namespace: "ml", LeaseName: "glue", PodName: "replica-0"}
	probes := &metrics.Probes{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	boom := errors.New("pending queue unreachable")
	served := 0
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := elect(ctx, cs, s, record.NewFakeRecorder(10), probes, log, func(context.Context) error {
		served++
		return boom
	})
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, served, 1)
	lease, err := cs.CoordinationV1().Leases("ml").Get(ctx, "glue", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Assert(t, lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "", "Lease still held by %v", *lease.Spec.HolderIdentity)

	rec := httptest.NewRecorder()
	probes.Healthz(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	assert.Equal(t, rec.Code, http.StatusServiceUnavailable)
	assert.Assert(t, strings.Contains(rec.Body.String(), boom.Error()), rec.Body.String())
}
