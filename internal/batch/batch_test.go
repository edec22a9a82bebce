package batch_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/clearml-glue/clearml-glue/internal/batch"
)

// recorder is a Func that records the items of each call and, while gate is closed, blocks the
// call so that requests pile up behind it.
type recorder struct {
	mu    sync.Mutex
	calls [][]int
	gate  chan struct{}
	err   error
}

func (r *recorder) do(_ context.Context, items []int) ([]string, error) {
	r.mu.Lock()
	r.calls = append(r.calls, append([]int(nil), items...))
	gate := r.gate
	r.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if r.err != nil {
		return nil, r.err
	}
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = fmt.Sprint("r", it)
	}
	return out, nil
}

func (r *recorder) seen() [][]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]int(nil), r.calls...)
}

// waitCalls waits until the recorder has seen n calls.
func waitCalls(t *testing.T, r *recorder, n int) {
	t.Helper()
	for i := 0; len(r.seen()) < n; i++ {
		if i > 5000 {
			t.Fatalf("only %d calls, want %d", len(r.seen()), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLoneRequestGoesAloneAtOnce(t *testing.T) {
	r := &recorder{}
	b := batch.New(10, time.Second, r.do)
	got, err := b.Do(context.Background(), 7)
	assert.NilError(t, err)
	assert.Equal(t, got, "r7")
	assert.DeepEqual(t, r.seen(), [][]int{{7}})
}

func TestRequestsDuringACallGoTogetherInTheNext(t *testing.T) {
	for name, tc := range map[string]struct {
		max       int
		waiting   int
		wantSizes []int // sizes of the calls after the first (which holds item 0 alone)
	}{
		"one call for all":     {max: 10, waiting: 6, wantSizes: []int{6}},
		"split at max":         {max: 4, waiting: 10, wantSizes: []int{4, 4, 2}},
		"max one is unbatched": {max: 1, waiting: 3, wantSizes: []int{1, 1, 1}},
	} {
		t.Run(name, func(t *testing.T) {
			r := &recorder{gate: make(chan struct{})}
			b := batch.New(tc.max, time.Second, r.do)
			b.Go(0)
			waitCalls(t, r, 1) // item 0 is in flight; the others queue behind it
			for i := 1; i <= tc.waiting; i++ {
				b.Go(i)
			}
			close(r.gate)
			b.Wait()
			calls := r.seen()
			assert.DeepEqual(t, calls[0], []int{0})
			var sizes, items []int
			for _, c := range calls[1:] {
				sizes = append(sizes, len(c))
				items = append(items, c...)
			}
			assert.DeepEqual(t, sizes, tc.wantSizes)
			for i, it := range items {
				assert.Equal(t, it, i+1, "every item sent once, in order")
			}
		})
	}
}

func TestEachCallerGetsItsOwnResult(t *testing.T) {
	r := &recorder{}
	b := batch.New(8, time.Second, r.do)
	results := make([]string, 50)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			var err error
			results[i], err = b.Do(context.Background(), i)
			assert.Check(t, err)
		})
	}
	wg.Wait()
	for i, res := range results {
		assert.Equal(t, res, fmt.Sprint("r", i))
	}
}

func TestCallErrorReachesEveryItem(t *testing.T) {
	boom := errors.New("server down")
	r := &recorder{err: boom}
	b := batch.New(10, time.Second, r.do)
	_, err := b.Do(context.Background(), 1)
	assert.ErrorIs(t, err, boom)
}

func TestCancelledCallerStopsWaitingButItemIsSent(t *testing.T) {
	r := &recorder{gate: make(chan struct{})}
	b := batch.New(10, time.Second, r.do)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := b.Do(ctx, 1); done <- err }()
	waitCalls(t, r, 1)
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
	close(r.gate)
	b.Wait()
	assert.DeepEqual(t, r.seen(), [][]int{{1}})
}

func TestGoDoesNotWaitAndWaitFlushes(t *testing.T) {
	r := &recorder{gate: make(chan struct{})}
	b := batch.New(10, time.Second, r.do)
	b.Go(1) // returns while its call is blocked
	waitCalls(t, r, 1)
	b.Go(2)
	b.Go(3)
	close(r.gate)
	b.Wait()
	assert.DeepEqual(t, r.seen(), [][]int{{1}, {2, 3}})
}

func TestCallHasItsOwnTimeout(t *testing.T) {
	b := batch.New(10, 20*time.Millisecond, func(ctx context.Context, items []int) ([]int, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	_, err := b.Do(context.Background(), 1)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestLingeringWaitsForCompanyBeforeTheFirstCall(t *testing.T) {
	r := &recorder{}
	b := batch.New(10, time.Second, r.do).Lingering(50 * time.Millisecond)
	b.Go(1)
	b.Go(2) // 50 ms later than needed without lingering, but in the same call
	b.Go(3)
	b.Wait()
	assert.DeepEqual(t, r.seen(), [][]int{{1, 2, 3}})
}
