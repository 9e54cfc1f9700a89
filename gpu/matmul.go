package gpu

import (
	"fmt"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/tensor"
)

// MatMul computes dst (+)= alpha * op(a) * op(b) in one tiled kernel; b of
// any loaded dtype is dequantized as its tiles are loaded. Shapes come from
// the buffers seen as matrices. Mismatched shapes and a dst overlapping a
// or b panic.
func (g *Backend) MatMul(dst, a, b backend.Buffer, f backend.MatMul) {
	const op = "MatMul"
	d, x, w := g.f32(dst, op, "dst"), g.f32(a, op, "a"), g.buf(b, op, "b")
	ar, ac := x.dims()
	br, bc := w.dims()
	m, k := ar, ac
	if f.TransA {
		m, k = ac, ar
	}
	kb, n := br, bc
	if f.TransB {
		kb, n = bc, br
	}
	if dr, dc := d.dims(); k != kb || dr != m || dc != n {
		panic(fmt.Sprintf("gpu: MatMul: dst %v = op(a %v) * op(b %v) with TransA=%v TransB=%v: shapes do not fit",
			d.shape, x.shape, w.shape, f.TransA, f.TransB))
	}
	if overlaps(d, x) || (w.dtype == tensor.F32 && overlaps(d, w)) {
		panic("gpu: MatMul: dst must not overlap a or b")
	}
	alpha := f.Alpha
	if alpha == 0 {
		alpha = 1
	}
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		if !f.Accumulate {
			g.fill(d, 0)
		}
		return
	}
	tiles := groupsFor(m, 64) * groupsFor(n, 64)
	a32 := args{}.u(m, n, k, d.off, x.off, w.off, bit(f.TransA), bit(f.TransB), bit(f.Accumulate)).f(alpha)
	g.run(kMatMul.withWeight(w.dtype), tiles, a32, d.st, x.st, w.st)
}

func bit(b bool) int {
	if b {
		return 1
	}
	return 0
}

// overlaps reports whether two buffers share any element.
func overlaps(a, b *buffer) bool {
	return a.st == b.st && a.off < b.off+b.n && b.off < a.off+a.n
}
