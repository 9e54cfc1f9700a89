package cpu

import (
	"math"

	"github.com/graft-ml/graft/core/backend"
)

// GELU's tanh form: gelu(g) = g/2 · (1 + tanh(√(2/π) · (g + 0.044715 g³))).
const (
	geluC = 0.7978845608028654 // √(2/π)
	geluA = 0.044715
)

// geluTanh returns gelu(g) and its derivative, computed in float64.
func geluTanh(g float32) (y, dy float64) {
	x := float64(g)
	t := math.Tanh(geluC * (x + geluA*x*x*x))
	y = 0.5 * x * (1 + t)
	dy = 0.5*(1+t) + 0.5*x*(1-t*t)*geluC*(1+3*geluA*x*x)
	return y, dy
}

// GELUTanhMul sets dst = gelu(gate) * up with GELU's tanh approximation
// (PyTorch's gelu(approximate="tanh"), Gemma's gelu_pytorch_tanh). dst may
// be gate or up.
func (c *Backend) GELUTanhMul(dst, gate, up backend.Buffer) {
	const op = "GELUTanhMul"
	d, g, u := c.f32(dst, op, "dst"), c.f32(gate, op, "gate"), c.f32(up, op, "up")
	checkSize(op, "gate", g, d.n)
	checkSize(op, "up", u, d.n)
	o := d.data()
	runTask(c, &c.tasks.gelu, len(o), elemGrain/8, geluTask{o: o, gate: g.data(), up: u.data()})
}

// geluTask is GELUTanhMul over a range of elements.
type geluTask struct{ o, gate, up []float32 }

func (t *geluTask) run(lo, hi int) {
	for i := lo; i < hi; i++ {
		y, _ := geluTanh(t.gate[i])
		t.o[i] = float32(y) * t.up[i]
	}
}

// GELUTanhMulBackward sets dgate = dy * up * gelu'(gate) and dup = dy *
// gelu(gate), overwriting both; either may be nil.
func (c *Backend) GELUTanhMulBackward(dgate, dup, dy, gate, up backend.Buffer) {
	const op = "GELUTanhMulBackward"
	dyb, g, u := c.f32(dy, op, "dy"), c.f32(gate, op, "gate"), c.f32(up, op, "up")
	checkSize(op, "gate", g, dyb.n)
	checkSize(op, "up", u, dyb.n)
	var dgs, dus []float32
	if dgate != nil {
		b := c.f32(dgate, op, "dgate")
		checkSize(op, "dgate", b, dyb.n)
		dgs = b.data()
	}
	if dup != nil {
		b := c.f32(dup, op, "dup")
		checkSize(op, "dup", b, dyb.n)
		dus = b.data()
	}
	ds := dyb.data()
	runTask(c, &c.tasks.geluBack, len(ds), elemGrain/8,
		geluBackTask{dgate: dgs, dup: dus, dy: ds, gate: g.data(), up: u.data()})
}

// geluBackTask is GELUTanhMulBackward over a range of elements.
type geluBackTask struct{ dgate, dup, dy, gate, up []float32 }

func (t *geluBackTask) run(lo, hi int) {
	for i := lo; i < hi; i++ {
		// Read everything before writing: dgate or dup may alias an input.
		y, dydg := geluTanh(t.gate[i])
		u, d := t.up[i], t.dy[i]
		if t.dup != nil {
			t.dup[i] = d * float32(y)
		}
		if t.dgate != nil {
			t.dgate[i] = float32(float64(d) * float64(u) * dydg)
		}
	}
}
