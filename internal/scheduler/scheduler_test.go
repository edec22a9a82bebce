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

	"github.com/clearml-glue/clearml-glue/internal/config"
)

func TestQueueNeedReadsOverrideThenBase(t *testing.T) {
	f := &config.File{BasePodTemplate: map[string]any{"resources": map[string]any{"limits": map[string]any{"nvidia.com/gpu": "1"}}}}
	two := config.Queue{TemplateOverrides: map[string]any{"resources": map[string]any{"limits": map[string]any{"nvidia.com/gpu": 2}}}}
	for name, tc := range map[string]struct {
		q     config.Queue
		paths string
		want  int64
	}{
		"override wins":           {two, "resources.limits.nvidia.com/gpu", 2},
		"base when no override":   {config.Queue{}, "resources.limits.nvidia.com/gpu", 1},
		"alternatives":            {config.Queue{}, "resources.limits.amd.com/gpu|resources.limits.nvidia.com/gpu", 1},
		"absent":                  {config.Queue{}, "resources.requests.cpu", 0},
		"templated is not a need": {config.Queue{TemplateOverrides: map[string]any{"resources": map[string]any{"limits": map[string]any{"nvidia.com/gpu": "{{ .Task.X }}"}}}}, "resources.limits.nvidia.com/gpu", 0},
	} {
		t.Run(name, func(t *testing.T) { assert.Equal(t, queueNeed(f, tc.q, tc.paths), tc.want) })
	}
}

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
