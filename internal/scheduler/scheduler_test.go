package scheduler

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"gotest.tools/v3/assert"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestTransientTellsOutagesFromRefusals(t *testing.T) {
	gr := schema.GroupResource{Group: "batch", Resource: "jobs"}
	for name, tc := range map[string]struct {
		err  error
		want bool
	}{
		"connection refused": {&net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		"deadline":           {fmt.Errorf("create: %w", context.DeadlineExceeded), true},
		"503":                {apierrors.NewServiceUnavailable("down"), true},
		"429":                {apierrors.NewTooManyRequests("slow down", 1), true},
		"500":                {apierrors.NewInternalError(errors.New("boom")), true},
		"invalid":            {apierrors.NewInvalid(schema.GroupKind{Group: "batch", Kind: "Job"}, "x", nil), false},
		"forbidden":          {apierrors.NewForbidden(gr, "x", errors.New("quota")), false},
		"nil":                {nil, false},
	} {
		t.Run(name, func(t *testing.T) { assert.Equal(t, transient(tc.err), tc.want) })
	}
}
