package cpu

import (
	"fmt"
	"math"
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/tensor"
)

// refMatMul returns op(a) * op(b) in float64 together with sum |a||b| per
// element, the natural scale of a float32 dot product's rounding error.
func refMatMul(a, b []float32, m, n, k int, transA, transB bool) (out, mag []float64) {
	at := func(i, kk int) float64 {
		if transA {
			return float64(a[kk*m+i])
		}
		return float64(a[i*k+kk])
	}
	bt := func(kk, j int) float64 {
		if transB {
			return float64(b[j*k+kk])
		}
		return float64(b[kk*n+j])
	}
	out, mag = make([]float64, m*n), make([]float64, m*n)
	for i := range m {
		for j := range n {
			var s, s2 float64
			for kk := range k {
				s += at(i, kk) * bt(kk, j)
				s2 += math.Abs(at(i, kk) * bt(kk, j))
			}
			out[i*n+j], mag[i*n+j] = s, s2
		}
	}
	return out, mag
}

func TestMatMul(t *testing.T) {
	shapes := []struct{ m, n, k int }{
		{1, 1, 1}, {3, 5, 7}, {2, 9, 1}, {1, 67, 64}, {17, 33, 65}, {70, 150, 130}, {5, 1, 300}, {0, 4, 3}, {4, 3, 0},
	}
	flags := []backend.MatMul{
		{}, {TransB: true}, {TransA: true}, {TransA: true, TransB: true},
		{TransB: true, Alpha: 0.5, Accumulate: true}, {Alpha: -2, Accumulate: true}, {TransA: true, Accumulate: true},
	}
	for _, threads := range threadCounts {
		c := newTestBackend(threads)
		for si, s := range shapes {
			for _, f := range flags {
				name := fmt.Sprintf("%dthreads/%dx%dx%d/%+v", threads, s.m, s.n, s.k, f)
				t.Run(name, func(t *testing.T) {
					checkMatMul(t, c, tensor.F32, s.m, s.n, s.k, f, uint64(si))
				})
			}
		}
	}
}

// TestMatMulDTypes checks every weight dtype against a reference that
// dequantizes the whole of b first. Quantized rows must be whole blocks, so
// b's row length (K with TransB, N without) is a multiple of 32.
func TestMatMulDTypes(t *testing.T) {
	shapes := []struct {
		m, n, k int
		f       backend.MatMul
	}{
		{1, 40, 64, backend.MatMul{TransB: true}},  // matrix-vector, generation
		{7, 19, 96, backend.MatMul{TransB: true}},  // forward of a linear layer
		{70, 9, 160, backend.MatMul{TransB: true}}, // several row tiles
		{6, 160, 33, backend.MatMul{}},             // input gradient through a weight, two column tiles
		{40, 64, 20, backend.MatMul{Alpha: 2}},     // two row tiles
		{3, 64, 70, backend.MatMul{TransA: true, Alpha: 0.25}},
		{4, 32, 5, backend.MatMul{TransA: true, TransB: false, Accumulate: true}},
		{5, 3, 64, backend.MatMul{TransA: true, TransB: true, Accumulate: true, Alpha: 3}},
	}
	for _, dt := range []tensor.DType{tensor.F32, tensor.F16, tensor.BF16, tensor.Q8_0, tensor.Q4_0} {
		for _, threads := range threadCounts {
			c := newTestBackend(threads)
			// The exact mat-vec: TestMatMulGGMLTypes checks the integer one.
			c.SetExactMatVec(true)
			for si, s := range shapes {
				t.Run(fmt.Sprintf("%v/%dthreads/%dx%dx%d/%+v", dt, threads, s.m, s.n, s.k, s.f), func(t *testing.T) {
					checkMatMul(t, c, dt, s.m, s.n, s.k, s.f, 100+uint64(si))
				})
			}
		}
	}
}

func checkMatMul(t *testing.T, c *Backend, dt tensor.DType, m, n, k int, f backend.MatMul, seed uint64) {
	r := newRand(seed)
	av, bv, dv := randn(r, m*k, 1), randn(r, k*n, 1), randn(r, m*n, 1)
	aShape, bShape := []int{m, k}, []int{k, n}
	if f.TransA {
		aShape = []int{k, m}
	}
	if f.TransB {
		bShape = []int{n, k}
	}
	a := upload(t, c, av, aShape...)
	b, bDec := uploadAs(t, c, dt, bv, bShape...)
	dst := upload(t, c, dv, m, n)
	c.MatMul(dst, a, b, f)
	want, mag := refMatMul(av, bDec, m, n, k, f.TransA, f.TransB)
	alpha := float64(f.Alpha)
	if alpha == 0 {
		alpha = 1
	}
	for i := range want {
		want[i] *= alpha
		mag[i] *= math.Abs(alpha)
		if f.Accumulate {
			want[i] += float64(dv[i])
			mag[i] += math.Abs(float64(dv[i]))
		}
	}
	got := download(t, c, dst)
	for i := range got {
		if d := math.Abs(float64(got[i]) - want[i]); !(d <= 1e-5*mag[i]+1e-30) {
			t.Fatalf("dst[%d] = %g, want %g (diff %.3g, scale %.3g)", i, got[i], want[i], d, mag[i])
		}
	}
}

func TestMatMulRejectsBadShapes(t *testing.T) {
	c := New()
	a, b, d := c.Zeros(2, 3), c.Zeros(4, 3), c.Zeros(2, 4)
	mustPanic(t, "shapes do not fit", func() { c.MatMul(d, a, b, backend.MatMul{}) })
	mustPanic(t, "must not overlap", func() { c.MatMul(c.View(a, 0, 2, 2), a, c.Zeros(3, 2), backend.MatMul{}) })
	other := New()
	mustPanic(t, "another cpu backend", func() { c.MatMul(d, a, other.Zeros(4, 3), backend.MatMul{TransB: true}) })
	c.MatMul(d, a, b, backend.MatMul{TransB: true}) // the right orientation works
}
