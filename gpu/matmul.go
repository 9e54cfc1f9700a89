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
	// Each operand splits along its own rows: dst and a (unless
	// transposed) along M, a transposed and b along K, b transposed along
	// N. One dispatch per block of M, N and K ranges; the K blocks after
	// the first accumulate.
	_, ldd := d.dims()
	var aM, aK, bK, bN *buffer
	if f.TransA {
		aK = x
	} else {
		aM = x
	}
	if f.TransB {
		bN = w
	} else {
		bK = w
	}
	mSpans := spans(op, m, operand{"dst", d, n}, operand{"a", aM, k})
	kSpans := spans(op, k, operand{"a", aK, m}, operand{"b", bK, n})
	nSpans := spans(op, n, operand{"b", bN, k})
	for _, ms := range mSpans {
		for _, ns := range nSpans {
			for ki, ks := range kSpans {
				ab, aoff := ms.bufs[1], ms.offs[1]+ks.start
				if f.TransA {
					ab, aoff = ks.bufs[0], ks.offs[0]+ms.start
				}
				wb, woff := ks.bufs[1], ks.offs[1]+ns.start
				if f.TransB {
					wb, woff = ns.bufs[0], ns.offs[0]+ks.start
				}
				acc := f.Accumulate || ki > 0
				a32 := args{}.u(ms.n, ns.n, ks.n, ms.offs[0]+ns.start, aoff, woff, bit(f.TransA), bit(f.TransB), bit(acc)).f(alpha).u(ldd, ac, bc)
				tiles := groupsFor(ms.n, 64) * groupsFor(ns.n, 64)
				g.run(kMatMul.withWeight(w.dtype), tiles, a32, ms.bufs[0], ab, wb)
			}
		}
	}
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
