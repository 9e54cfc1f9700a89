package cpu

import (
	"sync"
	"sync/atomic"
)

// parallelFor runs body over [0, n) split into contiguous chunks of at least
// grain items, on up to c.threads goroutines, and returns when all chunks are
// done. When the work fits in one chunk (or there is one thread) body runs
// once on the calling goroutine, so tiny operations never pay for a
// goroutine. Workers take chunks from a shared counter, so uneven chunks
// (causal attention rows) still balance. body must be safe to call
// concurrently on disjoint ranges.
func (c *Backend) parallelFor(n, grain int, body func(lo, hi int)) {
	if n <= 0 {
		return
	}
	grain = max(grain, 1)
	if c.splitAll {
		grain = 1
	}
	workers := min(c.threads, n/grain)
	if workers <= 1 {
		body(0, n)
		return
	}
	// About four chunks per worker lets fast workers pick up the slack of
	// slow ones without making chunks so small that their overhead shows.
	chunk := max(grain, (n+4*workers-1)/(4*workers))
	var next atomic.Int64
	work := func() {
		for {
			hi := int(next.Add(int64(chunk)))
			lo := hi - chunk
			if lo >= n {
				return
			}
			body(lo, min(hi, n))
		}
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
}

// scratchPool recycles the float32 scratch that workers dequantize rows
// into, so token-by-token generation does not allocate per call.
var scratchPool sync.Pool

// getScratch returns a slice of n float32s with unspecified contents.
func getScratch(n int) *[]float32 {
	if p, ok := scratchPool.Get().(*[]float32); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	s := make([]float32, n)
	return &s
}

func putScratch(p *[]float32) { scratchPool.Put(p) }
