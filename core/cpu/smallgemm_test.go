package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestSmallGemm checks smallGemm with every kernel against a float64
// reference on strided views (ld wider than the matrix), for every
// transpose combination and with k crossing a packing block.
func TestSmallGemm(t *testing.T) {
	shapes := []struct{ m, n, k int }{{1, 1, 1}, {3, 70, 64}, {13, 33, 257}, {48, 256, 64}, {64, 64, 300}}
	for _, kern := range gemmKernels {
		for si, s := range shapes {
			for _, tr := range []struct{ a, b, acc bool }{{false, false, false}, {false, true, true}, {true, false, true}, {true, true, false}} {
				t.Run(fmt.Sprintf("%s/%dx%dx%d/%+v", kern.name, s.m, s.n, s.k, tr), func(t *testing.T) {
					r := rand.New(rand.NewPCG(uint64(si), 11))
					a, b := randFloats(r, s.m*s.k), randFloats(r, s.k*s.n)
					// Embed the operands in wider rows to exercise ld.
					av := embed(a, s.m, s.k, tr.a, 5)
					bv := embed(b, s.k, s.n, tr.b, 3)
					const ldo = 7
					out := strided{data: randFloats(r, s.m*(s.n+ldo)), ld: s.n + ldo}
					before := append([]float32(nil), out.data...)
					const alpha = 0.5
					smallGemm(kern, out, av, tr.a, bv, tr.b, s.m, s.n, s.k, alpha, tr.acc, make([]float32, smallGemmScratch(kern, s.m, s.n)))
					want, mag := refMatMul(a, b, s.m, s.n, s.k, false, false)
					for i := range s.m {
						for j := range s.n + ldo {
							got, old := out.data[i*out.ld+j], before[i*out.ld+j]
							if j >= s.n {
								if got != old {
									t.Fatalf("(%d, %d) outside the product changed", i, j)
								}
								continue
							}
							w := alpha * want[i*s.n+j]
							if tr.acc {
								w += float64(old)
							}
							if d := float64(got) - w; d > 1e-5*(mag[i*s.n+j]+1) || d < -1e-5*(mag[i*s.n+j]+1) {
								t.Fatalf("(%d, %d): got %v, want %v", i, j, got, w)
							}
						}
					}
				})
			}
		}
	}
}

// embed stores the row-major [rows, cols] matrix x (or its transpose when
// trans) in rows padded by pad columns.
func embed(x []float32, rows, cols int, trans bool, pad int) strided {
	if trans {
		rows, cols = cols, rows
	}
	ld := cols + pad
	s := strided{data: make([]float32, rows*ld), ld: ld}
	for i := range rows {
		for j := range cols {
			v := x[i*cols+j]
			if trans {
				v = x[j*rows+i]
			}
			s.data[i*ld+j] = v
		}
	}
	return s
}
