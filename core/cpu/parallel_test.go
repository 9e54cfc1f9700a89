package cpu

import (
	"fmt"
	"sync/atomic"
	"testing"
)

// TestParallelFor checks that every index is visited exactly once, for
// thread counts and grains that do and do not divide the range.
func TestParallelFor(t *testing.T) {
	for _, threads := range []int{1, 2, 3, 8} {
		for _, n := range []int{0, 1, 5, 64, 1001} {
			for _, grain := range []int{0, 1, 7, 100, 5000} {
				t.Run(fmt.Sprintf("threads%d/n%d/grain%d", threads, n, grain), func(t *testing.T) {
					c := NewWithThreads(threads)
					seen := make([]atomic.Int32, n)
					var calls atomic.Int32
					c.parallelFor(n, grain, func(lo, hi int) {
						calls.Add(1)
						if lo >= hi || lo < 0 || hi > n {
							t.Errorf("bad chunk [%d, %d) of %d", lo, hi, n)
							return
						}
						for i := lo; i < hi; i++ {
							seen[i].Add(1)
						}
					})
					for i := range seen {
						if v := seen[i].Load(); v != 1 {
							t.Fatalf("index %d visited %d times", i, v)
						}
					}
					if n > 0 && n < 2*max(grain, 1) && calls.Load() != 1 {
						t.Errorf("%d items under two grains took %d calls, want 1", n, calls.Load())
					}
				})
			}
		}
	}
}
