package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestGemmKernels checks the packed driver with every micro-kernel this
// build has (the plain-Go one always, the SIMD one where built in) against
// a float64 reference, on shapes that cut every tile, block and chunk size
// and for every transpose, alpha and accumulate combination.
func TestGemmKernels(t *testing.T) {
	shapes := []struct{ m, n, k int }{
		{4, 16, 1}, {6, 16, 256}, {12, 32, 256}, {7, 17, 257}, {97, 65, 513}, {5, 40, 2500}, {73, 300, 40}, {13, 2100, 19}, {150, 33, 600},
	}
	for _, kern := range gemmKernels {
		name := kern.name
		for _, threads := range []int{1, 3} {
			c := NewWithThreads(threads)
			c.splitAll = threads > 1
			for si, s := range shapes {
				for _, tr := range []struct{ a, b, acc bool }{{false, false, false}, {false, true, true}, {true, false, false}, {true, true, true}} {
					t.Run(fmt.Sprintf("%s/%dthreads/%dx%dx%d/%+v", name, threads, s.m, s.n, s.k, tr), func(t *testing.T) {
						r := rand.New(rand.NewPCG(uint64(si), 7))
						a, b := randFloats(r, s.m*s.k), randFloats(r, s.k*s.n)
						out := randFloats(r, s.m*s.n)
						before := append([]float32(nil), out...)
						shape := []int{s.k, s.n}
						if tr.b {
							shape = []int{s.n, s.k}
						}
						bb := c.f32(c.Zeros(shape...), "test", "b")
						copy(bb.data(), b)
						const alpha = 0.75
						c.gemm(kern, out, gemmOperandA{data: a, trans: tr.a}, bb, tr.b, s.m, s.n, s.k, alpha, tr.acc)
						want, mag := refMatMul(a, b, s.m, s.n, s.k, tr.a, tr.b)
						for i := range out {
							w := alpha * want[i]
							if tr.acc {
								w += float64(before[i])
							}
							if d := float64(out[i]) - w; d > 1e-5*(mag[i]+1) || d < -1e-5*(mag[i]+1) {
								t.Fatalf("element %d: got %v, want %v", i, out[i], w)
							}
						}
					})
				}
			}
		}
	}
}

func randFloats(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}
