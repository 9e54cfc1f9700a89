package cpu

import (
	"fmt"
	"math"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/tensor"
)

// SumSquares returns the sum of the squares of all elements of the F32
// buffers, accumulated in float64. Fixed-size blocks are summed in parallel
// and then added in order, so the result does not depend on the thread
// count.
func (c *Backend) SumSquares(bufs ...backend.Buffer) float64 {
	var total float64
	for i, x := range bufs {
		// Checked here rather than by f32, whose operand name would have
		// to be formatted (allocated) for every buffer.
		b, err := c.lookup(x)
		if err != nil {
			panic(fmt.Sprintf("cpu: SumSquares: bufs[%d]: %v", i, err))
		}
		if b.dtype != tensor.F32 {
			panic(fmt.Sprintf("cpu: SumSquares: bufs[%d] must be F32, is %v", i, b.dtype))
		}
		xs := b.data()
		pp := getScratch64((len(xs) + sumBlock - 1) / sumBlock)
		partial := *pp
		runTask(c, &c.tasks.sumSquares, len(partial), elemGrain/sumBlock+1, sumSquaresTask{x: xs, partial: partial})
		for _, s := range partial {
			total += s
		}
		putScratch64(pp)
	}
	return total
}

// sumBlock is the size of the blocks SumSquares sums separately.
const sumBlock = 1 << 14

// sumSquaresTask sums the squares of a range of blocks of x into partial.
type sumSquaresTask struct {
	x       []float32
	partial []float64
}

func (t *sumSquaresTask) run(lo, hi int) {
	for p := lo; p < hi; p++ {
		var s float64
		for _, v := range t.x[p*sumBlock : min(len(t.x), (p+1)*sumBlock)] {
			s += float64(v) * float64(v)
		}
		t.partial[p] = s
	}
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
	if h.Step >= 1 && h.Step <= math.MaxInt32 {
		if _, ok := c.hostOp(HostOpAdamW, []backend.Buffer{param, grad, m, v}, hostSlice{}, hostSlice{},
			math.Float32bits(h.LR), math.Float32bits(h.Beta1), math.Float32bits(h.Beta2), math.Float32bits(h.Eps),
			math.Float32bits(h.WeightDecay), uint32(h.Step)); ok {
			return
		}
	}
	pb, gb, mb, vb := c.f32(param, op, "param"), c.f32(grad, op, "grad"), c.f32(m, op, "m"), c.f32(v, op, "v")
	checkSize(op, "grad", gb, pb.n)
	checkSize(op, "m", mb, pb.n)
	checkSize(op, "v", vb, pb.n)
	if h.Step < 1 {
		panic(fmt.Sprintf("cpu: %s: Step is %d, want 1 or more (it is 1-based)", op, h.Step))
	}
	lr, b1, b2 := float64(h.LR), float64(h.Beta1), float64(h.Beta2)
	t := adamWTask{
		p: pb.data(), g: gb.data(), m: mb.data(), v: vb.data(),
		decay:      float32(1 - lr*float64(h.WeightDecay)),
		stepSize:   float32(lr / (1 - math.Pow(b1, float64(h.Step)))),
		bc2Sqrt:    float32(math.Sqrt(1 - math.Pow(b2, float64(h.Step)))),
		beta1:      h.Beta1,
		beta2:      h.Beta2,
		oneMinusB1: float32(1 - b1),
		oneMinusB2: float32(1 - b2),
		eps:        h.Eps,
	}
	runTask(c, &c.tasks.adamW, len(t.p), elemGrain/4, t)
}

// adamWTask is AdamWStep over a range of elements, with its scalar factors
// worked out once.
type adamWTask struct {
	p, g, m, v                                  []float32
	decay, stepSize, bc2Sqrt, beta1, beta2, eps float32
	oneMinusB1, oneMinusB2                      float32
}

func (t *adamWTask) run(lo, hi int) {
	ps, gs, ms, vs := t.p[lo:hi], t.g[lo:hi], t.m[lo:hi], t.v[lo:hi]
	beta1, beta2, oneMinusB1, oneMinusB2 := t.beta1, t.beta2, t.oneMinusB1, t.oneMinusB2
	decay, stepSize, bc2Sqrt, eps := t.decay, t.stepSize, t.bc2Sqrt, t.eps
	for i, g := range gs {
		mi := beta1*ms[i] + oneMinusB1*g
		vi := beta2*vs[i] + oneMinusB2*g*g
		ms[i], vs[i] = mi, vi
		denom := float32(math.Sqrt(float64(vi)))/bc2Sqrt + eps
		ps[i] = ps[i]*decay - stepSize*mi/denom
	}
}
