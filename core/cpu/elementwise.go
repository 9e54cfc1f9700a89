package cpu

import (
	"fmt"
	"math"

	"github.com/graft-ml/graft/core/backend"
)

// elemGrain is the fewest elements worth handing to another goroutine in a
// memory-bound elementwise loop.
const elemGrain = 1 << 15

// checkSize panics unless b holds n elements.
func checkSize(op, name string, b *buffer, n int) {
	if b.n != n {
		panic(fmt.Sprintf("cpu: %s: %s has %d elements (shape %v), want %d", op, name, b.n, b.shape, n))
	}
}

// Copy copies src into dst; both are F32 with the same number of elements
// (shapes may differ). Overlapping buffers are copied like Go's copy.
func (c *Backend) Copy(dst, src backend.Buffer) {
	d, s := c.f32(dst, "Copy", "dst"), c.f32(src, "Copy", "src")
	checkSize("Copy", "src", s, d.n)
	copy(d.data(), s.data())
}

// Add sets dst = a + b elementwise; dst may be a or b.
func (c *Backend) Add(dst, a, b backend.Buffer) {
	if c.hostBufs(HostOpAdd, dst, a, b) {
		return
	}
	c.broadcast("Add", dst, a, b, func(x, y float32) float32 { return x + y })
}

// Scale sets dst = s * x; dst may be x.
func (c *Backend) Scale(dst, x backend.Buffer, s float32) {
	if _, ok := c.hostOp(HostOpScale, []backend.Buffer{dst, x}, hostSlice{}, hostSlice{}, math.Float32bits(s)); ok {
		return
	}
	d, xb := c.f32(dst, "Scale", "dst"), c.f32(x, "Scale", "x")
	checkSize("Scale", "x", xb, d.n)
	o := d.data()
	runTask(c, &c.tasks.scale, len(o), elemGrain, scaleTask{o: o, x: xb.data(), s: s})
}

// scaleTask is Scale (add false) or AddScaled (add true) over a range.
type scaleTask struct {
	o, x []float32
	s    float32
	add  bool
}

func (t *scaleTask) run(lo, hi int) {
	o, xs := t.o[lo:hi], t.x[lo:hi]
	if t.add {
		axpy(o, xs, t.s)
		return
	}
	for i := range o {
		o[i] = t.s * xs[i]
	}
}

// AddScaled sets dst += s * x.
func (c *Backend) AddScaled(dst, x backend.Buffer, s float32) {
	if _, ok := c.hostOp(HostOpAddScaled, []backend.Buffer{dst, x}, hostSlice{}, hostSlice{}, math.Float32bits(s)); ok {
		return
	}
	d, xb := c.f32(dst, "AddScaled", "dst"), c.f32(x, "AddScaled", "x")
	checkSize("AddScaled", "x", xb, d.n)
	o := d.data()
	runTask(c, &c.tasks.scale, len(o), elemGrain, scaleTask{o: o, x: xb.data(), s: s, add: true})
}

// Mul sets dst = a * b elementwise; dst may be a or b. When b has as many
// elements as a they are multiplied element by element. Otherwise, with a
// seen as a [rows, cols] matrix, b is broadcast: a b of shape [rows, 1] is a
// column (one factor per row); otherwise a b of cols elements is a row
// vector (one factor per column) and a b of rows elements a column. A row
// vector wins when rows == cols and b's shape does not say [rows, 1].
func (c *Backend) Mul(dst, a, b backend.Buffer) {
	if c.hostBufs(HostOpMul, dst, a, b) {
		return
	}
	c.broadcast("Mul", dst, a, b, func(x, y float32) float32 { return x * y })
}

// broadcast sets dst = f(a, b) elementwise, b being the same size as a, a
// row vector of a's width, or a column [rows, 1] (see Mul's contract).
func (c *Backend) broadcast(op string, dst, a, b backend.Buffer, f func(x, y float32) float32) {
	d, x, y := c.f32(dst, op, "dst"), c.f32(a, op, "a"), c.f32(b, op, "b")
	checkSize(op, "a", x, d.n)
	rows, cols := x.dims()
	column := len(y.shape) == 2 && y.shape[0] == rows && y.shape[1] == 1
	t := broadcastTask{o: d.data(), x: x.data(), y: y.data(), cols: cols, f: f}
	switch {
	case y.n == x.n:
		t.elems = true
		runTask(c, &c.tasks.broadcast, len(t.o), elemGrain, t)
	case y.n == cols && !column:
		t.perCol = true
		runTask(c, &c.tasks.broadcast, rows, elemGrain/max(cols, 1)+1, t)
	case y.n == rows:
		runTask(c, &c.tasks.broadcast, rows, elemGrain/max(cols, 1)+1, t)
	default:
		panic(fmt.Sprintf("cpu: %s: b %v broadcasts over neither the rows nor the columns of a %v", op, y.shape, x.shape))
	}
}

// broadcastTask applies f to a and b: over elements when b is as large as
// a (elems), otherwise over rows of cols elements, b holding one value per
// column (perCol) or per row.
type broadcastTask struct {
	o, x, y       []float32
	cols          int
	elems, perCol bool
	f             func(x, y float32) float32
}

func (t *broadcastTask) run(lo, hi int) {
	f, cols := t.f, t.cols
	if t.elems {
		o, xs, ys := t.o[lo:hi], t.x[lo:hi], t.y[lo:hi]
		for i := range o {
			o[i] = f(xs[i], ys[i])
		}
		return
	}
	for r := lo; r < hi; r++ {
		o, xs := t.o[r*cols:(r+1)*cols], t.x[r*cols:(r+1)*cols]
		if t.perCol {
			for i, s := range t.y {
				o[i] = f(xs[i], s)
			}
			continue
		}
		s := t.y[r]
		for i := range o {
			o[i] = f(xs[i], s)
		}
	}
}

// sigmoid is the logistic function, computed in float64.
func sigmoid(x float32) float32 { return float32(1 / (1 + math.Exp(-float64(x)))) }

// sigmoids sets dst[i] = sigmoid(x[i]); on amd64 with AVX2, and on arm64, it is switched
// to the assembly version at start-up.
var sigmoids = sigmoidsGo

func sigmoidsGo(dst, x []float32) {
	x = x[:len(dst)]
	for i, v := range x {
		dst[i] = sigmoid(v)
	}
}

// SiLUMul sets dst = silu(gate) * up, where silu(g) = g * sigmoid(g). dst
// may be gate or up.
func (c *Backend) SiLUMul(dst, gate, up backend.Buffer) {
	if c.hostBufs(HostOpSiLUMul, dst, gate, up) {
		return
	}
	d, g, u := c.f32(dst, "SiLUMul", "dst"), c.f32(gate, "SiLUMul", "gate"), c.f32(up, "SiLUMul", "up")
	checkSize("SiLUMul", "gate", g, d.n)
	checkSize("SiLUMul", "up", u, d.n)
	o := d.data()
	if externalSiLU(o, nil, nil, g.data(), u.data()) {
		return
	}
	runTask(c, &c.tasks.silu, len(o), elemGrain/8, siluTask{o: o, gate: g.data(), up: u.data()})
}

// siluTask is SiLUMul over a range of elements.
type siluTask struct{ o, gate, up []float32 }

func (t *siluTask) run(lo, hi int) {
	sp := getScratch(sigmoidBlock)
	defer putScratch(sp)
	for b0 := lo; b0 < hi; b0 += sigmoidBlock {
		b1 := min(hi, b0+sigmoidBlock)
		o, gs, us := t.o[b0:b1], t.gate[b0:b1], t.up[b0:b1]
		sg := (*sp)[:len(o)]
		sigmoids(sg, gs)
		for i := range o {
			o[i] = gs[i] * sg[i] * us[i]
		}
	}
}

// sigmoidBlock is how many gates the SiLU tasks pass through sigmoids at
// a time: the block stays in L1 between the vector pass and the loop that
// uses it, and dst may alias gate or up since sigmoids writes scratch.
const sigmoidBlock = 512

// SiLUMulBackward sets dgate = dy * up * silu'(gate) and dup = dy *
// silu(gate), overwriting both. Either may be nil when its gradient is not
// needed.
func (c *Backend) SiLUMulBackward(dgate, dup, dy, gate, up backend.Buffer) {
	if c.hostBufs(HostOpSiLUMulBackward, dgate, dup, dy, gate, up) {
		return
	}
	const op = "SiLUMulBackward"
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
	if externalSiLU(dgs, dus, ds, g.data(), u.data()) {
		return
	}
	runTask(c, &c.tasks.siluBack, len(ds), elemGrain/8,
		siluBackTask{dgate: dgs, dup: dus, dy: ds, gate: g.data(), up: u.data()})
}

// siluBackTask is SiLUMulBackward over a range of elements; dgate or dup
// is nil when not wanted.
type siluBackTask struct{ dgate, dup, dy, gate, up []float32 }

func (t *siluBackTask) run(lo, hi int) {
	sp := getScratch(sigmoidBlock)
	defer putScratch(sp)
	for b0 := lo; b0 < hi; b0 += sigmoidBlock {
		b1 := min(hi, b0+sigmoidBlock)
		t.block(b0, b1, (*sp)[:b1-b0])
	}
}

// block is run over [lo, hi), with sg as scratch for the gates.
func (t *siluBackTask) block(lo, hi int, sg []float32) {
	// Slices cut to the block's length, so the loops check no bounds, and
	// one loop per case, so they test no nil slice per element.
	gs := t.gate[lo:hi]
	sg, ds, us := sg[:len(gs)], t.dy[lo:hi][:len(gs)], t.up[lo:hi][:len(gs)]
	sigmoids(sg, gs)
	// Read everything before writing: dgate or dup may alias an input.
	switch {
	case t.dgate != nil && t.dup != nil:
		dgs, dus := t.dgate[lo:hi][:len(gs)], t.dup[lo:hi][:len(gs)]
		for i, x := range gs {
			s, d, ug := sg[i], ds[i], us[i]
			dus[i] = d * x * s
			dgs[i] = d * ug * s * (1 + x*(1-s))
		}
	case t.dup != nil:
		dus := t.dup[lo:hi][:len(gs)]
		for i, x := range gs {
			dus[i] = ds[i] * x * sg[i]
		}
	case t.dgate != nil:
		dgs := t.dgate[lo:hi][:len(gs)]
		for i, x := range gs {
			s := sg[i]
			dgs[i] = ds[i] * us[i] * s * (1 + x*(1-s))
		}
	}
}
