package cpu

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// task is work over index ranges, run by the worker pool. run must be safe
// to call concurrently on disjoint ranges.
type task interface{ run(lo, hi int) }

// parallel runs t over [0, n) split into contiguous chunks of at least
// grain items, on up to c.threads goroutines (the caller included), and
// returns when all chunks are done. When the work fits in one chunk (or
// there is one thread) t runs once on the calling goroutine, so tiny
// operations never wake a worker. Workers take chunks from a shared
// counter, so uneven chunks (causal attention rows) still balance.
//
// The helpers are the Backend's persistent workers; handing them a task
// allocates nothing. While another goroutine's operation holds them (the
// Backend is shared, or t itself calls parallel), t runs whole on the
// caller instead of waiting, so concurrent use never deadlocks. Every
// operation gives the same result however its range is split.
func (c *Backend) parallel(n, grain int, t task) {
	if n <= 0 {
		return
	}
	grain = max(grain, 1)
	if c.splitAll {
		grain = 1
	}
	workers := min(c.threads, n/grain)
	if workers <= 1 || c.pool == nil || !c.pool.mu.TryLock() {
		t.run(0, n)
		return
	}
	// About four chunks per worker lets fast workers pick up the slack of
	// slow ones without making chunks so small that their overhead shows.
	chunk := max(grain, (n+4*workers-1)/(4*workers))
	c.pool.do(t, n, chunk, workers-1)
}

// workerPool is a Backend's threads-1 helper goroutines. They start on the
// first parallel operation and sleep on wake between jobs. They reference
// only the pool, never the Backend, so a dropped Backend becomes
// unreachable and the cleanup registered by NewWithThreads stops them.
//
// A job is open from the moment it is published until the caller has run
// out of chunks; a helper joins it only while it is open, and the caller
// then waits only for the helpers that joined. A helper that wakes late
// (its thread was not scheduled: on a machine busy with other work that
// can take milliseconds) finds the job closed and goes back to waiting,
// instead of the caller waiting for it to arrive and find nothing to do.
type workerPool struct {
	size   int           // helpers to start
	mu     sync.Mutex    // held by the parallel call that owns the current job
	wake   chan struct{} // wake-up hints for sleeping helpers
	idle   chan struct{} // a hint that the last helper in a job has left it
	open   atomic.Bool   // the current job takes helpers
	active atomic.Int32  // helpers inside the current job

	started, stopped bool // guarded by mu

	// The current job, written under mu before open is set (which orders
	// the writes before the reads of any helper that then sees it open)
	// and cleared once no helper is in it, so the pool keeps no task
	// alive.
	t     task
	n     int
	chunk int
	next  atomic.Int64
}

// newWorkerPool returns a pool that will run up to size helpers.
func newWorkerPool(size int) *workerPool { return &workerPool{size: size} }

// do runs t over [0, n) in chunks on the caller and up to helpers
// helpers. The caller holds p.mu, which do releases.
func (p *workerPool) do(t task, n, chunk, helpers int) {
	defer p.mu.Unlock()
	if p.stopped {
		t.run(0, n)
		return
	}
	if !p.started {
		p.start()
	}
	p.t, p.n, p.chunk = t, n, chunk
	p.next.Store(0)
	p.open.Store(true)
	// Wait even when t panics on the caller, so no helper still reads the
	// job when the next one is written.
	defer p.finish()
	for range helpers {
		// A full channel means enough helpers are already on their way.
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	p.chunks()
}

// finish closes the current job, waits for the helpers in it and forgets
// it. A helper joins by counting itself in active and then checking open;
// finish clears open and then reads active: whichever comes first in
// that order, either the helper sees the job closed or finish sees it in.
func (p *workerPool) finish() {
	p.open.Store(false)
	if !spin(func() bool { return p.active.Load() == 0 }) {
		for p.active.Load() != 0 {
			<-p.idle
		}
	}
	p.t = nil
}

// spinTime is how long a helper waits for the next job, and the caller for
// its helpers, before parking. Parking is what makes a small job slow:
// waking a parked thread takes a futex and, on a virtual machine, a wake-up
// of the idle virtual CPU, tens of microseconds that token-by-token
// generation would pay on every one of its hundreds of products per token.
// Operations follow one another far closer than this, so a busy Backend
// never parks, and an idle one parks after this long.
const spinTime = 50 * time.Microsecond

// spin yields the processor until ready reports true or spinTime has
// passed, and reports whether ready did.
func spin(ready func() bool) bool {
	var deadline time.Time
	for i := 0; ; i++ {
		if ready() {
			return true
		}
		if i%16 == 0 {
			now := time.Now()
			if deadline.IsZero() {
				deadline = now.Add(spinTime)
			} else if now.After(deadline) {
				return false
			}
		}
		runtime.Gosched()
	}
}

// start launches the helpers; p.mu is held.
func (p *workerPool) start() {
	p.started = true
	p.wake = make(chan struct{}, p.size)
	p.idle = make(chan struct{}, 1)
	for range p.size {
		go p.work()
	}
}

// work is a helper's life: for each wake-up, the current job's chunks if
// it is still open, until the pool stops.
func (p *workerPool) work() {
	for p.await() {
		p.active.Add(1)
		if p.open.Load() {
			p.chunks()
		}
		if p.active.Add(-1) == 0 {
			// finish may be parked on idle; a stale hint only makes it
			// check active once more.
			select {
			case p.idle <- struct{}{}:
			default:
			}
		}
	}
}

// await takes a wake token, spinning for up to spinTime before it blocks,
// and reports false once the pool is stopped.
func (p *workerPool) await() bool {
	ok, open := false, true
	spin(func() bool {
		select {
		case _, open = <-p.wake:
			ok = true
		default:
		}
		return ok
	})
	if !ok {
		_, open = <-p.wake
	}
	return open
}

// chunks runs chunks of the current job until none is left.
func (p *workerPool) chunks() {
	t, n, chunk := p.t, p.n, p.chunk
	for {
		hi := int(p.next.Add(int64(chunk)))
		lo := hi - chunk
		if lo >= n {
			return
		}
		t.run(lo, min(hi, n))
	}
}

// stop ends the helpers once the current job, if any, is over. Later
// parallel calls run on the caller alone.
func (p *workerPool) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started && !p.stopped {
		close(p.wake)
	}
	p.stopped = true
}

// stopWorkersWhenDropped arranges for c's helpers to end once c is
// garbage: runtime.AddCleanup runs p.stop when nothing references c any
// more, and the helpers hold p, not c.
func stopWorkersWhenDropped(c *Backend) {
	if c.pool != nil {
		runtime.AddCleanup(c, (*workerPool).stop, c.pool)
	}
}
