package cpu

import (
	"runtime"
	"sync"
	"sync/atomic"
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
type workerPool struct {
	size int           // helpers to start
	mu   sync.Mutex    // held by the parallel call that owns the current job
	wake chan struct{} // one token per helper asked to join the job
	done sync.WaitGroup

	started, stopped bool // guarded by mu

	// The current job, written under mu before the wake tokens are sent
	// (which orders the writes before the helpers' reads) and cleared
	// after they are all done, so the pool keeps no task alive.
	t     task
	n     int
	chunk int
	next  atomic.Int64
}

// newWorkerPool returns a pool that will run up to size helpers.
func newWorkerPool(size int) *workerPool { return &workerPool{size: size} }

// do runs t over [0, n) in chunks on the caller and helpers helpers. The
// caller holds p.mu, which do releases.
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
	p.done.Add(helpers)
	// Wait even when t panics on the caller, so no helper still reads the
	// job when the next one is written.
	defer p.finish()
	for range helpers {
		p.wake <- struct{}{}
	}
	p.chunks()
}

// finish waits for the helpers of the current job and forgets the job.
func (p *workerPool) finish() {
	p.done.Wait()
	p.t = nil
}

// start launches the helpers; p.mu is held.
func (p *workerPool) start() {
	p.started = true
	p.wake = make(chan struct{}, p.size)
	for range p.size {
		go p.work()
	}
}

// work is a helper's life: one job per wake token until the pool stops.
func (p *workerPool) work() {
	for range p.wake {
		p.chunks()
		p.done.Done()
	}
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

// parallelFor runs body like parallel runs a task. body is a closure, so
// each call allocates it and its captured variables; the operations use
// tasks instead.
func (c *Backend) parallelFor(n, grain int, body func(lo, hi int)) {
	c.parallel(n, grain, funcTask(body))
}

// funcTask adapts a function to a task.
type funcTask func(lo, hi int)

func (f funcTask) run(lo, hi int) { f(lo, hi) }
