package cpu

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// spawnFor is how operations were split before the worker pool: a closure
// per call and a new goroutine per helper. It stays here as the baseline
// of BenchmarkParallelDispatch.
func spawnFor(threads, n, grain int, body func(lo, hi int)) {
	grain = max(grain, 1)
	workers := min(threads, n/grain)
	if workers <= 1 {
		body(0, n)
		return
	}
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

// fillTask writes its index into every element of a range: work small
// enough that the benchmark measures the cost of splitting it.
type fillTask struct{ out []float32 }

func (f *fillTask) run(lo, hi int) {
	for i := lo; i < hi; i++ {
		f.out[i] = float32(i)
	}
}

// BenchmarkParallelDispatch compares handing a tiny job to the worker pool
// (pool) with the former closure-and-goroutines split (spawn), on the same
// chunks. ns/op is the dispatch overhead of one parallel operation.
func BenchmarkParallelDispatch(b *testing.B) {
	const n = 256
	for _, threads := range []int{2, 4} {
		c := NewWithThreads(threads)
		out := make([]float32, n)
		b.Run(fmt.Sprintf("pool/threads%d", threads), func(b *testing.B) {
			t := &fillTask{out: out}
			b.ReportAllocs()
			for b.Loop() {
				c.parallel(n, 1, t)
			}
		})
		b.Run(fmt.Sprintf("spawn/threads%d", threads), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				spawnFor(threads, n, 1, func(lo, hi int) {
					for i := lo; i < hi; i++ {
						out[i] = float32(i)
					}
				})
			}
		})
	}
}
