package gpu

import (
	"fmt"

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
	g.run(kCopy, groupsFor(d.n, 256), args{}.u(d.off, s.off, d.n), d.st, s.st)
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
	_, cols := x.dims()
	g.run(kBinary, groupsFor(d.n, 256), args{}.u(d.n, max(cols, 1), d.off, x.off, y.off, code, mode), d.st, x.st, y.st)
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
	g.run(kAxpby, groupsFor(d.n, 256), args{}.u(d.n, d.off, xb.off).f(0, s), d.st, xb.st)
}

// AddScaled sets dst += s * x.
func (g *Backend) AddScaled(dst, x backend.Buffer, s float32) {
	d, xb := g.f32(dst, "AddScaled", "dst"), g.f32(x, "AddScaled", "x")
	checkSize("AddScaled", "x", xb, d.n)
	g.run(kAxpby, groupsFor(d.n, 256), args{}.u(d.n, d.off, xb.off).f(1, s), d.st, xb.st)
}

// SiLUMul sets dst = silu(gate) * up; dst may be gate or up.
func (g *Backend) SiLUMul(dst, gate, up backend.Buffer) {
	const op = "SiLUMul"
	d, gb, u := g.f32(dst, op, "dst"), g.f32(gate, op, "gate"), g.f32(up, op, "up")
	checkSize(op, "gate", gb, d.n)
	checkSize(op, "up", u, d.n)
	g.run(kSiLUMul, groupsFor(d.n, 256), args{}.u(d.n, d.off, gb.off, u.off), d.st, gb.st, u.st)
}

// SiLUMulBackward sets dgate = dy * up * silu'(gate) and dup = dy *
// silu(gate), overwriting them; either may be nil.
func (g *Backend) SiLUMulBackward(dgate, dup, dy, gate, up backend.Buffer) {
	const op = "SiLUMulBackward"
	dyb, gb, u := g.f32(dy, op, "dy"), g.f32(gate, op, "gate"), g.f32(up, op, "up")
	checkSize(op, "gate", gb, dyb.n)
	checkSize(op, "up", u, dyb.n)
	dg, du := g.opt(dgate, op, "dgate"), g.opt(dup, op, "dup")
	a := args{}.u(dyb.n, dyb.off, gb.off, u.off)
	a = a.u(optOff(op, "dgate", dg, dyb.n)...).u(optOff(op, "dup", du, dyb.n)...)
	g.run(kSiLUMulBack, groupsFor(dyb.n, 256), a, dyb.st, gb.st, u.st, optSt(dg), optSt(du))
}

// optOff returns an optional operand's presence flag and offset, checking
// its size.
func optOff(op, name string, b *buffer, n int) []int {
	if b == nil {
		return []int{0, 0}
	}
	checkSize(op, name, b, n)
	return []int{1, b.off}
}

func optSt(b *buffer) *storage {
	if b == nil {
		return nil
	}
	return b.st
}
