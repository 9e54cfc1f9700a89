package cpu

import (
	"math"
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/tensor"
)

func TestSumSquares(t *testing.T) {
	r := newRand(12)
	sizes := []int{1, 17, 40000}
	var want float64
	for _, threads := range threadCounts {
		c := newTestBackend(threads)
		var bufs []backend.Buffer
		want = 0
		for _, n := range sizes {
			v := randn(r, n, 1)
			for _, x := range v {
				want += float64(x) * float64(x)
			}
			bufs = append(bufs, upload(t, c, v, n))
		}
		if got := c.SumSquares(bufs...); math.Abs(got-want) > 1e-12*want {
			t.Errorf("%d threads: SumSquares = %v, want %v", threads, got, want)
		}
		if got := c.SumSquares(); got != 0 {
			t.Errorf("SumSquares() = %v, want 0", got)
		}
	}
}

// TestSumSquaresIndependentOfThreads checks the promise that the blocked
// reduction gives bit-identical results whatever the thread count.
func TestSumSquaresIndependentOfThreads(t *testing.T) {
	v := randn(newRand(13), 100003, 1)
	var first float64
	for i, threads := range []int{1, 2, 3, 8} {
		c := newTestBackend(threads)
		got := c.SumSquares(upload(t, c, v, len(v)))
		if i == 0 {
			first = got
		} else if got != first {
			t.Errorf("%d threads: %v, 1 thread: %v", threads, got, first)
		}
	}
}

// refAdamW is torch.optim.AdamW's update for one element, in float64.
func refAdamW(p, g, m, v float64, h backend.AdamW) (float64, float64, float64) {
	lr, b1, b2, eps, wd := float64(h.LR), float64(h.Beta1), float64(h.Beta2), float64(h.Eps), float64(h.WeightDecay)
	p -= lr * wd * p
	m = b1*m + (1-b1)*g
	v = b2*v + (1-b2)*g*g
	mh := m / (1 - math.Pow(b1, float64(h.Step)))
	vh := v / (1 - math.Pow(b2, float64(h.Step)))
	return p - lr*mh/(math.Sqrt(vh)+eps), m, v
}

func TestAdamWStep(t *testing.T) {
	const n = 1001
	r := newRand(14)
	pv := randn(r, n, 1)
	p64, m64, v64 := to64(pv), make([]float64, n), make([]float64, n)
	for _, threads := range threadCounts {
		c := newTestBackend(threads)
		param, m, v := upload(t, c, pv, n), c.Zeros(n), c.Zeros(n)
		copy(p64, to64(pv))
		clear(m64)
		clear(v64)
		gr := newRand(15)
		for step := 1; step <= 3; step++ {
			h := backend.AdamW{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1, Step: step}
			gv := randn(gr, n, 0.1)
			for i := range p64 {
				p64[i], m64[i], v64[i] = refAdamW(p64[i], float64(gv[i]), m64[i], v64[i], h)
			}
			c.AdamWStep(param, upload(t, c, gv, n), m, v, h)
		}
		assertClose(t, "param", download(t, c, param), p64, 1e-5, 1e-6)
		assertClose(t, "m", download(t, c, m), m64, 1e-5, 1e-9)
		assertClose(t, "v", download(t, c, v), v64, 1e-5, 1e-12)
	}
	c := New()
	mustPanic(t, "1-based", func() { c.AdamWStep(c.Zeros(2), c.Zeros(2), c.Zeros(2), c.Zeros(2), backend.AdamW{}) })
	mustPanic(t, "want 2", func() {
		c.AdamWStep(c.Zeros(2), c.Zeros(3), c.Zeros(2), c.Zeros(2), backend.AdamW{Step: 1})
	})
	w, _ := uploadAs(t, c, tensor.F16, []float32{1, 2}, 2)
	mustPanic(t, "must be F32", func() { c.AdamWStep(w, c.Zeros(2), c.Zeros(2), c.Zeros(2), backend.AdamW{Step: 1}) })
}
