package gpu

import (
	"fmt"

	"github.com/gogpu/wgpu"

	"github.com/graft-ml/graft/core/backend"
)

// Copy copies src into dst; both F32 with the same number of elements.
func (g *Backend) Copy(dst, src backend.Buffer) {
	d, s := g.f32(dst, "Copy", "dst"), g.f32(src, "Copy", "src")
	checkSize("Copy", "src", s, d.n)
	if d.st == s.st && d.off == s.off {
		return
	}
	if overlaps(d, s) {
		panic("gpu: Copy: dst and src overlap")
	}
	if g.deferZeroCopy(d, s) {
		return // a fill with 0, pending for the next operation on dst
	}
	for _, p := range spans("Copy", d.n, operand{"dst", d, 1}, operand{"src", s, 1}) {
		g.run(kCopy, groupsFor(p.n, 256), args{}.u(p.offs[0], p.offs[1], p.n), p.bufs[0], p.bufs[1])
	}
}

// broadcast returns how b's elements line up with a's, following Mul's rule
// (see backend.Backend.Mul): 0 element by element, 1 a row vector, 2 a
// column.
func broadcast(op string, a, b *buffer) int {
	rows, cols := a.dims()
	column := len(b.shape) == 2 && b.shape[0] == rows && b.shape[1] == 1
	switch {
	case b.n == a.n:
		return 0
	case b.n == cols && !column:
		return 1
	case b.n == rows:
		return 2
	}
	panic(fmt.Sprintf("gpu: %s: b %v broadcasts over neither the rows nor the columns of a %v", op, b.shape, a.shape))
}

func (g *Backend) binary(op string, code int, dst, a, b backend.Buffer) {
	d, x, y := g.f32(dst, op, "dst"), g.f32(a, op, "a"), g.f32(b, op, "b")
	checkSize(op, "a", x, d.n)
	mode := broadcast(op, x, y)
	if mode == 0 && d.st == x.st && d.off == x.off && d.st != y.st && g.fuseInPlace(code, d, y) {
		return
	}
	_, cols := x.dims()
	// b goes element by element with a, or is bound whole and indexed by
	// the position of the span in a.
	ops := []operand{{"dst", d, 1}, {"a", x, 1}, {"b", y, 1}}
	var wb *wgpu.Buffer
	var woff int
	if mode != 0 {
		ops = ops[:2]
		wb, woff = whole(op, "b", y)
	}
	for _, s := range spans(op, d.n, ops...) {
		if mode == 0 {
			wb, woff = s.bufs[2], s.offs[2]
		}
		a := args{}.u(s.n, max(cols, 1), s.offs[0], s.offs[1], woff, code, mode, s.start)
		g.run(kBinary, groupsFor(s.n, 256), a, s.bufs[0], s.bufs[1], wb)
	}
}

// fuseInPlace handles dst = dst (op) y for a y of dst's size through a
// pending Mul (pending.go): a Mul by y waits, and an Add of a y with a
// Mul pending records both in one muladd dispatch. It reports whether it
// did.
func (g *Backend) fuseInPlace(code int, d, y *buffer) bool {
	if code == 1 {
		g.deferMul(d, y)
		return true
	}
	p, ok := g.takePending(y, func(p pendingScale) bool { return p.mul != nil && p.mul.st != d.st })
	if !ok {
		return false
	}
	for _, s := range spans("Add", d.n, operand{"dst", d, 1}, operand{"x", y, 1}, operand{"m", p.mul, 1}) {
		g.run(kMulAdd, groupsFor(s.n, 256), args{}.u(s.n, s.offs[0], s.offs[1], s.offs[2]), s.bufs...)
	}
	return true
}

// Add sets dst = a + b; dst may be a or b; b may be broadcast as in Mul.
func (g *Backend) Add(dst, a, b backend.Buffer) { g.binary("Add", 0, dst, a, b) }

// Mul sets dst = a * b; dst may be a or b; see backend.Backend.Mul for the
// broadcasting rule.
func (g *Backend) Mul(dst, a, b backend.Buffer) { g.binary("Mul", 1, dst, a, b) }

// Scale sets dst = s * x; dst may be x.
func (g *Backend) Scale(dst, x backend.Buffer, s float32) {
	d, xb := g.f32(dst, "Scale", "dst"), g.f32(x, "Scale", "x")
	checkSize("Scale", "x", xb, d.n)
	if d.st == xb.st && d.off == xb.off {
		// In place: kept pending for the next operation on d to fold in
		// (see pending.go).
		g.deferScale(d, s)
		return
	}
	g.axpby("Scale", d, xb, 0, s)
}

// axpby sets dst = c*dst + s*x span by span.
func (g *Backend) axpby(op string, d, x *buffer, c, s float32) {
	for _, p := range spans(op, d.n, operand{"dst", d, 1}, operand{"x", x, 1}) {
		g.run(kAxpby, groupsFor(p.n, 256), args{}.u(p.n, p.offs[0], p.offs[1]).f(c, s), p.bufs[0], p.bufs[1])
	}
}

// AddScaled sets dst += s * x.
func (g *Backend) AddScaled(dst, x backend.Buffer, s float32) {
	d, xb := g.f32(dst, "AddScaled", "dst"), g.f32(x, "AddScaled", "x")
	checkSize("AddScaled", "x", xb, d.n)
	g.axpby("AddScaled", d, xb, 1, s)
}

// SiLUMul sets dst = silu(gate) * up; dst may be gate or up.
func (g *Backend) SiLUMul(dst, gate, up backend.Buffer) {
	const op = "SiLUMul"
	d, gb, u := g.f32(dst, op, "dst"), g.f32(gate, op, "gate"), g.f32(up, op, "up")
	checkSize(op, "gate", gb, d.n)
	checkSize(op, "up", u, d.n)
	for _, s := range spans(op, d.n, operand{"dst", d, 1}, operand{"gate", gb, 1}, operand{"up", u, 1}) {
		g.run(kSiLUMul, groupsFor(s.n, 256), args{}.u(s.n, s.offs[0], s.offs[1], s.offs[2]), s.bufs[0], s.bufs[1], s.bufs[2])
	}
}

// SiLUMulBackward sets dgate = dy * up * silu'(gate) and dup = dy *
// silu(gate), overwriting them; either may be nil.
func (g *Backend) SiLUMulBackward(dgate, dup, dy, gate, up backend.Buffer) {
	const op = "SiLUMulBackward"
	dyb, gb, u := g.f32(dy, op, "dy"), g.f32(gate, op, "gate"), g.f32(up, op, "up")
	checkSize(op, "gate", gb, dyb.n)
	checkSize(op, "up", u, dyb.n)
	dg, du := g.opt(dgate, op, "dgate"), g.opt(dup, op, "dup")
	checkOpt(op, "dgate", dg, dyb.n)
	checkOpt(op, "dup", du, dyb.n)
	ops := []operand{{"dy", dyb, 1}, {"gate", gb, 1}, {"up", u, 1}, {"dgate", dg, 1}, {"dup", du, 1}}
	for _, s := range spans(op, dyb.n, ops...) {
		a := args{}.u(s.n, s.offs[0], s.offs[1], s.offs[2], bit(dg != nil), s.offs[3], bit(du != nil), s.offs[4])
		g.run(kSiLUMulBack, groupsFor(s.n, 256), a, s.bufs...)
	}
}

// GELUTanhMul sets dst = gelu(gate) * up with GELU's tanh form; dst may be
// gate or up.
func (g *Backend) GELUTanhMul(dst, gate, up backend.Buffer) {
	const op = "GELUTanhMul"
	d, gb, u := g.f32(dst, op, "dst"), g.f32(gate, op, "gate"), g.f32(up, op, "up")
	checkSize(op, "gate", gb, d.n)
	checkSize(op, "up", u, d.n)
	for _, s := range spans(op, d.n, operand{"dst", d, 1}, operand{"gate", gb, 1}, operand{"up", u, 1}) {
		g.run(kGELUMul, groupsFor(s.n, 256), args{}.u(s.n, s.offs[0], s.offs[1], s.offs[2]), s.bufs[0], s.bufs[1], s.bufs[2])
	}
}

// GELUTanhMulBackward sets dgate = dy * up * gelu'(gate) and dup = dy *
// gelu(gate), overwriting them; either may be nil.
func (g *Backend) GELUTanhMulBackward(dgate, dup, dy, gate, up backend.Buffer) {
	const op = "GELUTanhMulBackward"
	dyb, gb, u := g.f32(dy, op, "dy"), g.f32(gate, op, "gate"), g.f32(up, op, "up")
	checkSize(op, "gate", gb, dyb.n)
	checkSize(op, "up", u, dyb.n)
	dg, du := g.opt(dgate, op, "dgate"), g.opt(dup, op, "dup")
	checkOpt(op, "dgate", dg, dyb.n)
	checkOpt(op, "dup", du, dyb.n)
	ops := []operand{{"dy", dyb, 1}, {"gate", gb, 1}, {"up", u, 1}, {"dgate", dg, 1}, {"dup", du, 1}}
	for _, s := range spans(op, dyb.n, ops...) {
		a := args{}.u(s.n, s.offs[0], s.offs[1], s.offs[2], bit(dg != nil), s.offs[3], bit(du != nil), s.offs[4])
		g.run(kGELUMulBack, groupsFor(s.n, 256), a, s.bufs...)
	}
}

// checkOpt checks the size of an optional operand.
func checkOpt(op, name string, b *buffer, n int) {
	if b != nil {
		checkSize(op, name, b, n)
	}
}
