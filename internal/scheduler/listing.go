package scheduler

import (
	"context"
	"sync"
	"time"
)

// maxListed bounds the entries a cycle's queues.get_all lists per queue (max_task_entries, a
// $slice on the server's side). Without it every poll carried every waiting entry: with 50,000
// tasks queued, ~4 MB of JSON a cycle for the server to write and the glue to decode, for pops
// that take a few hundred at most. A cycle pops no further into a queue than it listed; when a
// queue filled its listing the cycle ends there and the next one, at once, lists it again (see
// next), so the queues' priority holds. It covers the read-ahead (maxReadAhead).
const maxListed = 500

// depthRefresh is how often a queue that fills the listing is counted exactly
// (queues.get_num_entries, one call per such queue), for clearml_glue_queue_depth.
const depthRefresh = 10 * time.Second

// deepCounts holds the last exact count of each queue that filled a cycle's listing.
type deepCounts struct {
	mu      sync.Mutex
	num     map[string]int
	counted map[string]time.Time // when the last count was asked for
}

// depth returns the depth to export for a queue whose cycle listed `listed` entries: that
// number when the listing held them all, else the last exact count (at least what was listed),
// asking for a fresh one apart from the cycle when it is older than depthRefresh.
func (s *Scheduler) depth(ctx context.Context, queueID string, listed int) int {
	d := &s.deep
	d.mu.Lock()
	defer d.mu.Unlock()
	if listed < maxListed {
		delete(d.num, queueID)
		delete(d.counted, queueID)
		return listed
	}
	if d.num == nil {
		d.num, d.counted = map[string]int{}, map[string]time.Time{}
	}
	if time.Since(d.counted[queueID]) >= depthRefresh {
		d.counted[queueID] = time.Now()
		s.wg.Go(func() {
			n, err := s.opts.Client.QueuesGetNumEntries(ctx, queueID)
			if err != nil {
				if ctx.Err() == nil {
					s.opts.Logger.Warn("queue depth not counted", "queue", s.queueName(queueID), "err", err)
				}
				return
			}
			d.mu.Lock()
			if _, deep := d.counted[queueID]; deep {
				d.num[queueID] = n
			}
			d.mu.Unlock()
		})
	}
	return max(d.num[queueID], listed)
}
