package cpu

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestVectorKernels checks the vector primitives in use (SIMD where this
// build and CPU have them) against the portable ones on lengths that leave
// every remainder of the vector loops. Sums run in another order, so they
// agree to rounding: within a few ulp of the sum of magnitudes.
func TestVectorKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	near := func(got, want, mag float32) bool {
		return math.Abs(float64(got-want)) <= 1e-6*float64(mag)+1e-30
	}
	for _, n := range []int{1, 3, 15, 16, 17, 31, 32, 33, 64, 100, 257, 1000} {
		a := randFloats(r, n)
		b := [4][]float32{randFloats(r, n), randFloats(r, n), randFloats(r, n), randFloats(r, n)}
		mag := make([]float32, 4)
		for q := range mag {
			for i := range a {
				mag[q] += float32(math.Abs(float64(a[i] * b[q][i])))
			}
		}
		if got, want := dot(a, b[0]), dotGo(a, b[0]); !near(got, want, mag[0]) {
			t.Fatalf("n=%d: dot = %v, portable %v", n, got, want)
		}
		var got, want [4]float32
		got[0], got[1], got[2], got[3] = dot1x4(a, b[0], b[1], b[2], b[3])
		want[0], want[1], want[2], want[3] = dot1x4Go(a, b[0], b[1], b[2], b[3])
		for q := range got {
			if !near(got[q], want[q], mag[q]) {
				t.Fatalf("n=%d: dot1x4[%d] = %v, portable %v", n, q, got[q], want[q])
			}
		}

		d0 := randFloats(r, n)
		dg, dw := append([]float32(nil), d0...), append([]float32(nil), d0...)
		axpy(dg, a, 0.375)
		axpyGo(dw, a, 0.375)
		for i := range dg {
			if !near(dg[i], dw[i], float32(math.Abs(float64(d0[i])))+0.375*float32(math.Abs(float64(a[i])))) {
				t.Fatalf("n=%d: axpy [%d] = %v, portable %v", n, i, dg[i], dw[i])
			}
		}
		al := [4]float32{0.5, -1.25, 2, 0.125}
		copy(dg, d0)
		copy(dw, d0)
		axpy4(dg, b[0], b[1], b[2], b[3], al[0], al[1], al[2], al[3])
		axpy4Go(dw, b[0], b[1], b[2], b[3], al[0], al[1], al[2], al[3])
		for i := range dg {
			m := float32(math.Abs(float64(d0[i])))
			for q := range al {
				m += float32(math.Abs(float64(al[q] * b[q][i])))
			}
			if !near(dg[i], dw[i], m) {
				t.Fatalf("n=%d: axpy4 [%d] = %v, portable %v", n, i, dg[i], dw[i])
			}
		}
	}
}

// TestMaxOf checks the row maximum of attention's softmax (maxOf, the
// vector kernel where there is one) against the portable maxOfGo, NaNs,
// infinities and signed zeros included: a NaN past x[0] is skipped, a NaN
// x[0] is the result, and equal values may differ only in the sign of
// zero (whose exponential is the same).
func TestMaxOf(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, n := range []int{1, 2, 7, 8, 9, 15, 16, 17, 24, 63, 64, 65, 200} {
		for trial, special := range []func(x []float32){
			func([]float32) {},
			func(x []float32) { x[len(x)-1] = nan },
			func(x []float32) { x[len(x)/2] = nan; x[len(x)-1] = inf },
			func(x []float32) { x[0] = nan },
			func(x []float32) {
				for i := range x {
					x[i] = float32(math.Copysign(0, float64(i%2*2-1)))
				}
			},
			func(x []float32) {
				for i := range x {
					x[i] = -inf
				}
			},
		} {
			x := randFloats(r, n)
			special(x)
			got, want := maxOf(x), maxOfGo(x)
			if got != want && !(got != got && want != want) {
				t.Errorf("n=%d case %d: maxOf = %v, portable %v", n, trial, got, want)
			}
		}
	}
}
