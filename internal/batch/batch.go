// Package batch groups concurrent requests into one call, the way databases group commits: a
// request made while no call is in flight is sent at once, alone; requests made while a call is
// in flight wait for it and then go together in the next call. A lone request is never delayed,
// and under load the number of calls grows with the round trip, not with the requests.
//
// No maintained library does exactly this (the Go batching libraries found wait for a size or a
// timer, which delays a lone request); it is a mutex, a slice and one goroutine per flush.
package batch

import (
	"context"
	"sync"
	"time"
)

// Func makes one call for items and returns one result per item, in order; an error is the
// call's own and is given to every item.
type Func[T, R any] func(ctx context.Context, items []T) ([]R, error)

// Batcher sends items through one Func call at a time, at most Max items per call.
type Batcher[T, R any] struct {
	do      Func[T, R]
	max     int
	timeout time.Duration
	linger  time.Duration

	mu      sync.Mutex
	queue   []*request[T, R]
	running bool
	idle    sync.WaitGroup // one count while a flush goroutine runs
}

type request[T, R any] struct {
	item T
	res  R
	err  error
	done chan struct{} // nil for Go
}

// New returns a Batcher that calls do with at most maxItems items (at least 1), each call bounded
// by timeout. Calls do not inherit a caller's context: they carry other callers' items too.
func New[T, R any](maxItems int, timeout time.Duration, do Func[T, R]) *Batcher[T, R] {
	return &Batcher[T, R]{do: do, max: max(maxItems, 1), timeout: timeout}
}

// Lingering makes a call that no other call preceded wait d for company before it is sent: for
// items nobody waits on (Go), where fewer calls matter more than a delay.
func (b *Batcher[T, R]) Lingering(d time.Duration) *Batcher[T, R] {
	b.linger = d
	return b
}

// Do sends item with the next call and returns its result. A ctx that ends stops the wait, not
// the call: the item is sent anyway.
func (b *Batcher[T, R]) Do(ctx context.Context, item T) (R, error) {
	r := &request[T, R]{item: item, done: make(chan struct{})}
	b.add(r)
	select {
	case <-r.done:
		return r.res, r.err
	case <-ctx.Done():
		var zero R
		return zero, ctx.Err()
	}
}

// Go sends item with the next call without waiting for the result.
func (b *Batcher[T, R]) Go(item T) { b.add(&request[T, R]{item: item}) }

// Wait returns once every item handed over so far has been sent.
func (b *Batcher[T, R]) Wait() { b.idle.Wait() }

func (b *Batcher[T, R]) add(r *request[T, R]) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.queue = append(b.queue, r)
	if !b.running {
		b.running = true
		b.idle.Add(1)
		go b.flush()
	}
}

// flush sends what is queued, call after call, until the queue is empty.
func (b *Batcher[T, R]) flush() {
	defer b.idle.Done()
	time.Sleep(b.linger)
	for {
		b.mu.Lock()
		n := min(len(b.queue), b.max)
		if n == 0 {
			b.running = false
			b.mu.Unlock()
			return
		}
		reqs := b.queue[:n:n]
		b.queue = b.queue[n:]
		if len(b.queue) == 0 {
			b.queue = nil // drop the sent requests the backing array still holds
		}
		b.mu.Unlock()

		items := make([]T, n)
		for i, r := range reqs {
			items[i] = r.item
		}
		ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
		res, err := b.do(ctx, items)
		cancel()
		for i, r := range reqs {
			if err != nil {
				r.err = err
			} else if i < len(res) {
				r.res = res[i]
			}
			if r.done != nil {
				close(r.done)
			}
		}
	}
}
