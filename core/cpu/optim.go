package cpu

import (
	"fmt"
	"math"

	"github.com/graft-ml/graft/core/backend"
)

// SumSquares returns the sum of the squares of all elements of the F32
// buffers, accumulated in float64. Fixed-size blocks are summed in parallel
// and then added in order, so the result does not depend on the thread
// count.
func (c *Backend) SumSquares(bufs ...backend.Buffer) float64 {
	const block = 1 << 14
	var total float64
	for i, x := range bufs {
		xs := c.f32(x, "SumSquares", fmt.Sprintf("bufs[%d]", i)).data()
		partial := make([]float64, (len(xs)+block-1)/block)
		c.parallelFor(len(partial), elemGrain/block+1, func(lo, hi int) {
			for p := lo; p < hi; p++ {
				var s float64
				for _, v := range xs[p*block : min(len(xs), (p+1)*block)] {
					s += float64(v) * float64(v)
				}
				partial[p] = s
			}
		})
		for _, s := range partial {
			total += s
		}
	}
	return total
}

// AdamWStep applies one step of AdamW with PyTorch's semantics (decoupled
// weight decay, bias correction, eps added after the square root):
//
//	p -= lr*wd*p
//	m = b1*m + (1-b1)*g
//	v = b2*v + (1-b2)*g^2
//	p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
//
// The scalar factors are computed in float64, the elementwise update in
// float32, as torch.optim.AdamW does for float32 parameters. param, grad, m
// and v are F32 with the same number of elements; Step must be at least 1.
func (c *Backend) AdamWStep(param, grad, m, v backend.Buffer, h backend.AdamW) {
	const op = "AdamWStep"
	pb, gb, mb, vb := c.f32(param, op, "param"), c.f32(grad, op, "grad"), c.f32(m, op, "m"), c.f32(v, op, "v")
	checkSize(op, "grad", gb, pb.n)
	checkSize(op, "m", mb, pb.n)
	checkSize(op, "v", vb, pb.n)
	if h.Step < 1 {
		panic(fmt.Sprintf("cpu: %s: Step is %d, want 1 or more (it is 1-based)", op, h.Step))
	}
	lr, b1, b2 := float64(h.LR), float64(h.Beta1), float64(h.Beta2)
	decay := float32(1 - lr*float64(h.WeightDecay))
	stepSize := float32(lr / (1 - math.Pow(b1, float64(h.Step))))
	bc2Sqrt := float32(math.Sqrt(1 - math.Pow(b2, float64(h.Step))))
	beta1, beta2 := h.Beta1, h.Beta2
	oneMinusB1, oneMinusB2 := float32(1-b1), float32(1-b2)
	eps := h.Eps
	ps, gs, ms, vs := pb.data(), gb.data(), mb.data(), vb.data()
	c.parallelFor(len(ps), elemGrain/4, func(lo, hi int) {
		ps, gs, ms, vs := ps[lo:hi], gs[lo:hi], ms[lo:hi], vs[lo:hi]
		for i, g := range gs {
			mi := beta1*ms[i] + oneMinusB1*g
			vi := beta2*vs[i] + oneMinusB2*g*g
			ms[i], vs[i] = mi, vi
			denom := float32(math.Sqrt(float64(vi)))/bc2Sqrt + eps
			ps[i] = ps[i]*decay - stepSize*mi/denom
		}
	})
}
