package cpu

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// visitTask counts the visits of every index and the chunks it ran.
type visitTask struct {
	t     *testing.T
	seen  []atomic.Int32
	calls atomic.Int32
}

func (v *visitTask) run(lo, hi int) {
	v.calls.Add(1)
	if lo >= hi || lo < 0 || hi > len(v.seen) {
		v.t.Errorf("bad chunk [%d, %d) of %d", lo, hi, len(v.seen))
		return
	}
	for i := lo; i < hi; i++ {
		v.seen[i].Add(1)
	}
}

// check fails unless every index was visited exactly once, and work
// under two grains ran as a single call.
func (v *visitTask) check(n, grain int) {
	v.t.Helper()
	for i := range v.seen {
		if c := v.seen[i].Load(); c != 1 {
			v.t.Fatalf("index %d visited %d times", i, c)
		}
	}
	if n > 0 && n < 2*max(grain, 1) && v.calls.Load() != 1 {
		v.t.Errorf("%d items under two grains took %d calls, want 1", n, v.calls.Load())
	}
}

// TestParallel checks that parallel visits every index
// exactly once, for thread counts and grains that do and do not divide
// the range, on a pool that serves many jobs in a row.
func TestParallel(t *testing.T) {
	for _, threads := range []int{1, 2, 3, 8} {
		c := NewWithThreads(threads)
		for _, n := range []int{0, 1, 5, 64, 1001} {
			for _, grain := range []int{0, 1, 7, 100, 5000} {
				t.Run(fmt.Sprintf("threads%d/n%d/grain%d", threads, n, grain), func(t *testing.T) {
					v := &visitTask{t: t, seen: make([]atomic.Int32, n)}
					c.parallel(n, grain, v)
					v.check(n, grain)
				})
			}
		}
	}
}

// nestedTask runs an inner parallel job from inside each chunk.
type nestedTask struct {
	c     *Backend
	inner []*visitTask
}

func (t *nestedTask) run(lo, hi int) {
	for i := lo; i < hi; i++ {
		t.c.parallel(len(t.inner[i].seen), 1, t.inner[i])
	}
}

// TestParallelConcurrent runs jobs on one Backend from several goroutines
// at once, each job starting further jobs from its chunks: every index must
// still be visited once and nothing may deadlock. Run it with -race.
func TestParallelConcurrent(t *testing.T) {
	c := NewWithThreads(4)
	c.splitAll = true
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			for round := range 20 {
				n := 10 + g + round
				outer := &nestedTask{c: c, inner: make([]*visitTask, n)}
				for i := range outer.inner {
					outer.inner[i] = &visitTask{t: t, seen: make([]atomic.Int32, 3+i%5)}
				}
				c.parallel(n, 1, outer)
				for _, v := range outer.inner {
					v.check(len(v.seen), 1)
				}
			}
		})
	}
	wg.Wait()
}

// TestParallelAllocations checks that handing a task to the workers
// allocates nothing once they have started.
func TestParallelAllocations(t *testing.T) {
	c := NewWithThreads(4)
	c.splitAll = true
	v := &visitTask{t: t, seen: make([]atomic.Int32, 64)}
	for range 50 {
		c.parallel(64, 1, v)
	}
	if a := testing.AllocsPerRun(200, func() { c.parallel(64, 1, v) }); a != 0 {
		t.Errorf("parallel allocates %.0f times per call, want 0", a)
	}
}

// TestWorkersStopWhenDropped checks that the helpers of a Backend nobody
// references any more end, so creating Backends in a loop leaks nothing.
func TestWorkersStopWhenDropped(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		for range 4 {
			c := NewWithThreads(5)
			c.parallel(100, 1, &visitTask{t: t, seen: make([]atomic.Int32, 100)})
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines before, %d after dropping the backends", before, runtime.NumGoroutine())
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}
