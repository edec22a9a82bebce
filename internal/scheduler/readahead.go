package scheduler

import (
	"context"
	"sync"
	"time"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
)

// maxReadAhead bounds how many tasks a cycle reads ahead of its pops in one queue: reads then
// carry about half as many tasks each, well within the server's page of 500.
const maxReadAhead = 200

// readAhead reads the tasks a cycle is about to pop while it pops them. The cycle's
// queues.get_all lists the entries waiting in each queue, front first, which is the order pops
// return them; one tasks.get_all then serves many launches, where reading after each pop took a
// call per launch or two (calls made while another is in flight share it, see internal/batch).
// How far ahead it reads grows with the pops sent in the queue (up to maxReadAhead), so a cycle
// that pops one task, as at capacity, reads that one task, alongside the pop instead of after it.
//
// A task read ahead is used only if its pop returns the very entry the cycle listed (same task,
// same time added). A task that left the queue and came back in between, and could have been
// edited while out, is read again, as is one another glue popped first.
type readAhead struct {
	ctx     context.Context
	wg      *sync.WaitGroup // the scheduler's: Run waits for reads in flight
	read    func(ctx context.Context, ids []string) ([]map[string]any, error)
	entries map[string][]clearml.QueueEntry // by queue id, front first
	sent    map[string]int                  // pops sent per queue; the cycle's goroutine only
	asked   map[string]int                  // entries read or being read per queue; ditto

	mu    sync.Mutex
	reads map[string]*aheadRead // by task id, until a pop claims it
}

type aheadRead struct {
	added time.Time
	done  chan struct{} // closed when task is set (or the read failed)
	task  map[string]any
}

func (s *Scheduler) readAhead(ctx context.Context, queues []clearml.Queue) *readAhead {
	r := &readAhead{ctx: ctx, wg: &s.wg, read: s.opts.Ops.ReadTasks, entries: map[string][]clearml.QueueEntry{},
		sent: map[string]int{}, asked: map[string]int{}, reads: map[string]*aheadRead{}}
	for _, q := range queues {
		r.entries[q.ID] = q.Entries
	}
	return r
}

// popping is called as the cycle sends a pop to queueID. Once the entries already asked for run
// short of half the distance ahead, it reads on to the full distance.
func (r *readAhead) popping(queueID string) {
	i := r.sent[queueID]
	r.sent[queueID]++
	es := r.entries[queueID]
	ahead := min(max(i, 1), maxReadAhead)
	if r.asked[queueID] > i+ahead/2 {
		return
	}
	from, to := max(r.asked[queueID], i), min(i+ahead, len(es))
	if from >= to {
		return
	}
	r.asked[queueID] = to
	ids := make([]string, 0, to-from)
	reads := make([]*aheadRead, 0, to-from)
	done := make(chan struct{})
	r.mu.Lock()
	for _, e := range es[from:to] {
		a := &aheadRead{added: e.Added.Time, done: done}
		ids, reads = append(ids, e.Task), append(reads, a)
		r.reads[e.Task] = a
	}
	r.mu.Unlock()
	r.wg.Go(func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(r.ctx, popTimeout)
		defer cancel()
		tasks, err := r.read(ctx, ids)
		if err != nil {
			return // each launch reads its task itself
		}
		for k, a := range reads {
			a.task = tasks[k]
		}
	})
}

// claim returns the task read ahead for a popped entry, nil if there is none to trust: then the
// launch reads the task itself.
func (r *readAhead) claim(ctx context.Context, e clearml.QueueEntry) map[string]any {
	r.mu.Lock()
	a := r.reads[e.Task]
	delete(r.reads, e.Task)
	r.mu.Unlock()
	if a == nil || !a.added.Equal(e.Added.Time) {
		return nil
	}
	select {
	case <-a.done:
		return a.task
	case <-ctx.Done():
		return nil
	}
}
