package gpu

import (
	"fmt"
	"math"

	"github.com/gogpu/wgpu"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/tensor"
)

// checkIDs panics unless every id indexes one of vocab rows.
func checkIDs(op string, ids []int32, vocab int) {
	for i, id := range ids {
		if id < 0 || int(id) >= vocab {
			panic(fmt.Sprintf("gpu: %s: ids[%d] = %d is outside the table's %d rows", op, i, id, vocab))
		}
	}
}

// Embedding gathers rows of table (any dtype, decoded in the kernel) into
// dst [len(ids), dim].
func (g *Backend) Embedding(dst, table backend.Buffer, ids []int32) {
	d, t := g.f32(dst, "Embedding", "dst"), g.buf(table, "Embedding", "table")
	vocab, dim := t.dims()
	if dr, dc := d.dims(); dr != len(ids) || dc != dim {
		panic(fmt.Sprintf("gpu: Embedding: dst %v, want [%d %d] for %d ids into table %v", d.shape, len(ids), dim, len(ids), t.shape))
	}
	checkIDs("Embedding", ids, vocab)
	// One dispatch per part of dst and part of the table holding some of
	// its ids; the kernel gathers only the ids in the table part's rows.
	tSpans := spans("Embedding", vocab, operand{"table", t, dim})
	for _, ds := range spans("Embedding", len(ids), operand{"dst", d, dim}) {
		sub := ids[ds.start : ds.start+ds.n]
		for _, ts := range tSpans {
			if !anyIn(sub, ts.start, ts.start+ts.n) {
				continue
			}
			a := args{}.u(len(sub), dim, ds.offs[0], ts.offs[0], ts.start, ts.start+ts.n).i32s(sub)
			g.run(kEmbedding.withWeight(t.dtype), groupsFor(len(sub)*dim, 256), a, ts.bufs[0], ds.bufs[0])
		}
	}
}

// anyIn reports whether some id is in [lo, hi).
func anyIn(ids []int32, lo, hi int) bool {
	for _, id := range ids {
		if int(id) >= lo && int(id) < hi {
			return true
		}
	}
	return false
}

// EmbeddingBackward adds row r of dy into row ids[r] of dtable; repeated
// ids add up. One thread per column walks the ids in order, so no two
// threads touch the same element.
func (g *Backend) EmbeddingBackward(dtable, dy backend.Buffer, ids []int32) {
	t, y := g.f32(dtable, "EmbeddingBackward", "dtable"), g.f32(dy, "EmbeddingBackward", "dy")
	vocab, dim := t.dims()
	if yr, yc := y.dims(); yr != len(ids) || yc != dim {
		panic(fmt.Sprintf("gpu: EmbeddingBackward: dy %v, want [%d %d] for %d ids into table %v", y.shape, len(ids), dim, len(ids), t.shape))
	}
	checkIDs("EmbeddingBackward", ids, vocab)
	// dy's parts go in order, so each element still adds its rows in id
	// order; each table part takes the ids in its rows.
	tSpans := spans("EmbeddingBackward", vocab, operand{"dtable", t, dim})
	for _, ys := range spans("EmbeddingBackward", len(ids), operand{"dy", y, dim}) {
		sub := ids[ys.start : ys.start+ys.n]
		for _, ts := range tSpans {
			if !anyIn(sub, ts.start, ts.start+ts.n) {
				continue
			}
			a := args{}.u(len(sub), dim, ts.offs[0], ys.offs[0], ts.start, ts.start+ts.n).i32s(sub)
			g.run(kEmbedBack, groupsFor(dim, 256), a, ts.bufs[0], ys.bufs[0])
		}
	}
}

// normWeight checks an RMSNorm weight and returns the kernel variant's
// weight dtype, its device buffer and offset (F32 and the dummy for none).
func (g *Backend) normWeight(op string, w backend.Buffer, cols int) (tensor.DType, *wgpu.Buffer, int, int) {
	if w == nil {
		return tensor.F32, nil, 0, 0
	}
	wb := g.buf(w, op, "w")
	if wb.n != cols {
		panic(fmt.Sprintf("gpu: %s: w has %d elements (shape %v), want %d", op, wb.n, wb.shape, cols))
	}
	buf, off := whole(op, "w", wb)
	return wb.dtype, buf, off, 1
}

// RMSNorm sets dst = x / sqrt(mean(x^2) + eps) * w row by row, one
// workgroup a row; dst may be x.
func (g *Backend) RMSNorm(dst, x, w backend.Buffer, eps float32) {
	d, xb := g.f32(dst, "RMSNorm", "dst"), g.f32(x, "RMSNorm", "x")
	checkSize("RMSNorm", "dst", d, xb.n)
	rows, cols := xb.dims()
	dt, ws, woff, has := g.normWeight("RMSNorm", w, cols)
	for _, s := range spans("RMSNorm", rows, operand{"dst", d, cols}, operand{"x", xb, cols}) {
		a := args{}.u(s.n, cols, s.offs[0], s.offs[1], has, woff).f(eps)
		g.run(kRMSNorm.withWeight(dt), s.n, a, s.bufs[0], s.bufs[1], ws)
	}
}

// RMSNormBackward accumulates the input gradient into dx and, when dw is
// non-nil, the weight gradient into dw. The first kernel handles a row per
// workgroup and keeps each row's 1/rms; the second sums dw column by column.
func (g *Backend) RMSNormBackward(dx, dw, dy, x, w backend.Buffer, eps float32) {
	const op = "RMSNormBackward"
	dxb, dyb, xb := g.f32(dx, op, "dx"), g.f32(dy, op, "dy"), g.f32(x, op, "x")
	checkSize(op, "dx", dxb, xb.n)
	checkSize(op, "dy", dyb, xb.n)
	rows, cols := xb.dims()
	dt, ws, woff, has := g.normWeight(op, w, cols)
	dwb := g.opt(dw, op, "dw")
	if dwb != nil {
		checkSize(op, "dw", dwb, cols)
	}
	dwBuf, dwOff := whole(op, "dw", dwb)
	// Each run of rows keeps its 1/rms in inv and adds its share of dw.
	for _, s := range spans(op, rows, operand{"dx", dxb, cols}, operand{"dy", dyb, cols}, operand{"x", xb, cols}) {
		inv, err := g.temp("rmsnorm-inv", 4*int64(s.n))
		if err != nil {
			panic(fmt.Sprintf("gpu: %s: %v", op, err))
		}
		a := args{}.u(s.n, cols, s.offs[0], s.offs[1], s.offs[2], has, woff).f(eps)
		g.run(kRMSNormBack.withWeight(dt), s.n, a, s.bufs[0], s.bufs[1], s.bufs[2], ws, inv.parts[0].buf)
		if dwb != nil {
			a := args{}.u(s.n, cols, dwOff, s.offs[1], s.offs[2])
			g.run(kRMSNormDW, groupsFor(cols, 256), a, dwBuf, s.bufs[1], s.bufs[2], inv.parts[0].buf)
		}
		g.release(inv)
	}
}

// ApplyRoPE rotates x in place by the angles of pos.
func (g *Backend) ApplyRoPE(x backend.Buffer, pos []int32, r backend.RoPE) {
	g.rope("ApplyRoPE", x, pos, r, 1)
}

// ApplyRoPEBackward rotates a gradient by the negated angles.
func (g *Backend) ApplyRoPEBackward(dx backend.Buffer, pos []int32, r backend.RoPE) {
	g.rope("ApplyRoPEBackward", dx, pos, r, -1)
}

// rope rotates x by sign times the RoPE angles. The frequencies are
// computed on the host in float64 and handed over in turns per position,
// so the shader reduces each angle to one turn before taking its sine.
func (g *Backend) rope(op string, x backend.Buffer, pos []int32, r backend.RoPE, sign float32) {
	xb := g.f32(x, op, "x")
	rows, cols := xb.dims()
	hd, d := r.HeadDim, r.Dims
	if d == 0 {
		d = hd
	}
	switch {
	case hd <= 0 || cols%hd != 0:
		panic(fmt.Sprintf("gpu: %s: HeadDim %d does not divide the %d columns of x %v", op, hd, cols, xb.shape))
	case d < 0 || d > hd || d%2 != 0:
		panic(fmt.Sprintf("gpu: %s: Dims %d must be even and at most HeadDim %d", op, r.Dims, hd))
	case r.Freqs == nil && !(r.Theta > 0):
		panic(fmt.Sprintf("gpu: %s: Theta %v must be positive", op, r.Theta))
	case r.Freqs != nil && len(r.Freqs) != d/2:
		panic(fmt.Sprintf("gpu: %s: %d Freqs for %d rotated pairs", op, len(r.Freqs), d/2))
	case len(pos) != rows:
		panic(fmt.Sprintf("gpu: %s: %d positions for %d rows", op, len(pos), rows))
	case r.Style != backend.RoPEInterleaved && r.Style != backend.RoPEHalf:
		panic(fmt.Sprintf("gpu: %s: unknown RoPE style %d", op, r.Style))
	}
	half := d / 2
	a := args{}.u(rows, cols, xb.off, hd, half, int(r.Style)).f(sign)
	for i := range half {
		f := math.Pow(float64(r.Theta), -2*float64(i)/float64(d))
		if r.Freqs != nil {
			f = r.Freqs[i]
		}
		a = a.f(float32(f / (2 * math.Pi)))
	}
	ss := spans(op, rows, operand{"x", xb, cols})
	if len(ss) == 1 {
		// One part: kept pending to pair with the next rotation at the
		// same positions (pending.go).
		s := ss[0]
		sa := append(args{}.u(s.n, cols, s.offs[0]), a[3:]...).i32s(pos)
		g.deferRoPE(&ropeWork{x: xb, buf: s.bufs[0], args: sa, threads: rows * (cols / hd) * half})
		return
	}
	for _, s := range ss {
		sa := append(args{}.u(s.n, cols, s.offs[0]), a[3:]...).i32s(pos[s.start : s.start+s.n])
		g.run(kRoPE, groupsFor(s.n*(cols/hd)*half, 256), sa, s.bufs[0])
	}
}
