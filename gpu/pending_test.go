package gpu

import (
	"testing"

	"github.com/graft-ml/graft/core/backend"
)

// TestScaleFolded checks that an in-place Scale costs no dispatch of its
// own when the next operation folds it in (a zeroing before an
// accumulating product, the clipping before AdamW), and one when the next
// operation cannot; backendtest's Scale/then_used checks the values.
func TestScaleFolded(t *testing.T) {
	g := testBackend(t)
	a, w, dst := g.Zeros(4, 8), g.Zeros(5, 8), g.Zeros(4, 5)
	p, gr, m, v := g.Zeros(3, 3), g.Zeros(3, 3), g.Zeros(3, 3), g.Zeros(3, 3)
	for _, b := range []backend.Buffer{a, w, dst, p, gr, m, v} {
		defer g.Free(b)
	}
	count := func(what string, want int64, ops func()) {
		t.Helper()
		before := g.Dispatches()
		ops()
		if err := g.Sync(); err != nil {
			t.Fatal(err)
		}
		if got := g.Dispatches() - before; got != want {
			t.Errorf("%s: %d dispatches, want %d", what, got, want)
		}
	}
	count("zeroing, then an accumulating product", 1, func() {
		g.Scale(dst, dst, 0)
		g.MatMul(dst, a, w, backend.MatMul{TransB: true, Accumulate: true})
	})
	count("zeroing, an upload to another buffer, then an accumulating product", 1, func() {
		g.Scale(dst, dst, 0)
		if err := g.Write(a, 0, make([]float32, 32)); err != nil {
			t.Fatal(err)
		}
		g.MatMul(dst, a, w, backend.MatMul{TransB: true, Accumulate: true})
	})
	count("scaling, then an accumulating product", 2, func() {
		g.Scale(dst, dst, 0.5)
		g.MatMul(dst, a, w, backend.MatMul{TransB: true, Accumulate: true})
	})
	count("clipping, then AdamW", 1, func() {
		g.Scale(gr, gr, 0.5)
		g.AdamWStep(p, gr, m, v, backend.AdamW{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Step: 1})
	})
	count("a Scale before a sync", 1, func() { g.Scale(gr, gr, 2) })
	if g.groupsAdamW() {
		// Nine tensors, each its own p, g, m and v: two dispatches.
		var ts [9][4]backend.Buffer
		for i := range ts {
			for j := range ts[i] {
				ts[i][j] = g.Zeros(2, 3)
				defer g.Free(ts[i][j])
			}
		}
		count("nine AdamW steps with the same factors", 2, func() {
			for _, x := range ts {
				g.AdamWStep(x[0], x[1], x[2], x[3], backend.AdamW{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Step: 1})
			}
		})
	}
	count("an in-place Mul, then its Add", 1, func() {
		g.Mul(p, p, gr)
		g.Add(m, m, p)
	})
	rope := backend.RoPE{Style: backend.RoPEHalf, HeadDim: 4, Theta: 10000}
	kr := g.Zeros(4, 4)
	defer g.Free(kr)
	count("a rotation of q, then of k at the same positions", 1, func() {
		g.ApplyRoPE(a, []int32{0, 1, 2, 3}, rope)
		g.ApplyRoPE(kr, []int32{0, 1, 2, 3}, rope)
	})
	count("rotations at other positions", 2, func() {
		g.ApplyRoPE(a, []int32{0, 1, 2, 3}, rope)
		g.ApplyRoPE(kr, []int32{0, 1, 2, 4}, rope)
	})
	zeros := g.Zeros(4, 5)
	defer g.Free(zeros)
	count("a copy of zeros, then an accumulating product", 1, func() {
		g.Copy(dst, zeros)
		g.MatMul(dst, a, w, backend.MatMul{TransB: true, Accumulate: true})
	})
	// The product into zeros leaves the first copy pending (it binds
	// zeros, not dst); the second copy is a real one and records the
	// pending fill before it: product, fill, copy, product.
	count("a copy of what a product wrote, then an accumulating product", 4, func() {
		g.Copy(dst, zeros)
		g.MatMul(zeros, a, w, backend.MatMul{TransB: true})
		g.Copy(dst, zeros)
		g.MatMul(dst, a, w, backend.MatMul{TransB: true, Accumulate: true})
	})
}
