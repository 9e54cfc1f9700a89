package cpu

import "math"

// Blocked attention: a block of query rows of one head meets the keys it
// may see as two small matrix products (S = Q K^T, then O = P V), run by
// the same micro-kernels as MatMul. Only the block's scores are ever held,
// attnBlockRows rows by the keys the block sees, never a whole T x T matrix
// per head. Every row of a block sees all of its keys at once, so the
// softmax needs no running rescaling, and backward recomputes P from q and
// k the same way, needing nothing saved from forward.
const (
	attnBlockRows = 64
	// Below this many query rows (token-by-token generation) the
	// products are too thin for the kernels, and attention goes row by row.
	attnBlockMinRows = 16
)

// attnBlockTask is blocked attention forward (over units of one block of
// query rows of one head) or backward (over units of one key/value head of
// one batch row, which owns that head's dk and dv rows, so no two
// goroutines add into the same row).
type attnBlockTask struct {
	s        attnShape
	kern     *gemmKernel // for the products as wide as the keys
	thin     *gemmKernel // for those as wide as a head, whose a is in panels
	blocks   int         // query blocks per head
	backward bool

	out, q, k, v, dy []float32
	dq, dk, dv       []float32
}

// attentionBlocked computes Attention (already checked) by blocks.
func (c *Backend) attentionBlocked(s attnShape, out, q, k, v []float32) {
	blocks := (s.SeqQ + attnBlockRows - 1) / attnBlockRows
	runTask(c, &c.tasks.attnBlock, s.Batch*s.Heads*blocks, 1,
		attnBlockTask{s: s, kern: smallKernel(), thin: thinSmallKernel(s.HeadDim), blocks: blocks, out: out, q: q, k: k, v: v})
}

// attentionBackwardBlocked computes AttentionBackward (already checked) by
// blocks; any of dq, dk, dv may be nil.
func (c *Backend) attentionBackwardBlocked(s attnShape, dq, dk, dv, dy, q, k, v []float32) {
	runTask(c, &c.tasks.attnBlock, s.Batch*s.KVHeads, 1,
		attnBlockTask{s: s, kern: smallKernel(), thin: thinSmallKernel(s.HeadDim), blocks: (s.SeqQ + attnBlockRows - 1) / attnBlockRows, backward: true,
			q: q, k: k, v: v, dy: dy, dq: dq, dk: dk, dv: dv})
}

func (t *attnBlockTask) run(lo, hi int) {
	s := &t.s
	rows := min(attnBlockRows, s.SeqQ)
	mr := t.thin.mr
	// Panels of a block's probabilities (or of dS) as the micro-kernel's a
	// operand, written by the softmax itself: pa holds P (dS) by query rows,
	// pt holds P^T (dS^T) by key rows, each padded to whole panels.
	panelsQ := (rows + mr - 1) / mr * mr
	panelsK := (s.SeqK + mr - 1) / mr * mr
	scores := rows * attnRowStride(s.SeqK)
	gemmFloats := smallGemmScratch(t.kern, max(rows, s.SeqK), max(rows, s.SeqK, s.HeadDim))
	sp := getScratch(2*scores + panelsQ*s.SeqK + panelsK*rows + gemmFloats)
	defer putScratch(sp)
	buf := *sp
	w := attnWork{
		p: buf[:scores], dp: buf[scores : 2*scores],
		pa: buf[2*scores : 2*scores+panelsQ*s.SeqK],
	}
	w.pt = buf[2*scores+panelsQ*s.SeqK : 2*scores+panelsQ*s.SeqK+panelsK*rows]
	w.gs = buf[2*scores+panelsQ*s.SeqK+panelsK*rows:]
	if external != nil {
		t.runRows(lo, hi, w.p, w.dp, w.gs)
		return
	}
	for u := lo; u < hi; u++ {
		if !t.backward {
			bh := u / t.blocks
			t.forwardBlock(bh/s.Heads, bh%s.Heads, u%t.blocks, &w)
			continue
		}
		b, kvh := u/s.KVHeads, u%s.KVHeads
		for h := kvh * s.group; h < (kvh+1)*s.group; h++ {
			for blk := range t.blocks {
				t.backwardBlock(b, h, blk, &w)
			}
		}
	}
}

// runRows is run with External kernels installed: P and dS as whole
// row-major matrices (attention_block_external.go).
func (t *attnBlockTask) runRows(lo, hi int, p, dp, gs []float32) {
	s := &t.s
	for u := lo; u < hi; u++ {
		if !t.backward {
			bh := u / t.blocks
			t.forwardBlockRows(bh/s.Heads, bh%s.Heads, u%t.blocks, p, gs)
			continue
		}
		b, kvh := u/s.KVHeads, u%s.KVHeads
		for h := kvh * s.group; h < (kvh+1)*s.group; h++ {
			for blk := range t.blocks {
				t.backwardBlockRows(b, h, blk, p, dp, gs)
			}
		}
	}
}

// attnWork is one goroutine's scratch for a block: scores (and P) and dP
// by rows, the panels of P or dS by query rows (pa) and of P^T or dS^T by
// key rows (pt), and smallGemm's scratch.
type attnWork struct {
	p, dp, pa, pt, gs []float32
}

// views returns the block's query rows [i0, i0+m), the keys it sees
// [kbeg, kend) and the strided views of q, and of k and v from row kbeg,
// for head h of batch row b.
func (t *attnBlockTask) views(b, h, blk int) (i0, m, kbeg, kend int, q, k, v strided) {
	s := &t.s
	i0 = blk * attnBlockRows
	m = min(attnBlockRows, s.SeqQ-i0)
	kbeg, _ = s.keys(i0)
	_, kend = s.keys(i0 + m - 1)
	kvh := h / s.group
	q = strided{data: t.q, ld: s.qCols}.at(b*s.SeqQ+i0, h*s.HeadDim)
	k = strided{data: t.k, ld: s.kCols}.at(b*s.stride+kbeg, kvh*s.HeadDim)
	v = strided{data: t.v, ld: s.kCols}.at(b*s.stride+kbeg, kvh*s.HeadDim)
	return
}

// probabilities computes the block's attention probabilities: row r sees
// keys s.keys(i0+r) of [kbeg, kend), n = kend-kbeg of them. Where pa is
// set, P goes there as the micro-kernel's a panels, zero outside the seen
// keys, so the products with P need no packing, and p (rows ld apart,
// ld >= attnRowStride(n)) holds only scratch; else P's seen entries are
// in p (the rest of each row is scratch), and where pt is set P^T is also
// written there as panels.
func (t *attnBlockTask) probabilities(p, pa, pt []float32, ld, i0, m, kbeg, n int, q, k strided, gs []float32) {
	s := &t.s
	mr := t.thin.mr
	smallGemm(t.kern, strided{data: p, ld: ld}, q, false, k, true, m, n, s.HeadDim, s.Scale, false, gs)
	if pa != nil {
		clear(pa[:(m+mr-1)/mr*mr*n])
	}
	if pt != nil {
		clear(pt[:(n+mr-1)/mr*mr*m])
	}
	for r := range m {
		lo, hi := s.keys(i0 + r)
		lo, hi = lo-kbeg, hi-kbeg
		row := p[r*ld : (r+1)*ld]
		seen := row[lo:hi]
		// The exponentials run over whole vectors: the keys past the seen
		// ones (the row has room for them) are set to -Inf, whose
		// exponential is exp32's floor, about 1e-38, far below the one of
		// the maximum that the sum always holds.
		ext := lo + (hi-lo+7)&^7
		for j := hi; j < ext; j++ {
			row[j] = float32(math.Inf(-1))
		}
		inv := 1 / expShift(row[lo:ext], maxOf(seen))
		switch {
		case pa != nil:
			// Row r of P is step j of panel r/mr, lane r%mr.
			dst := pa[r/mr*mr*n+r%mr:]
			for j, x := range seen {
				dst[(lo+j)*mr] = x * inv
			}
		case pt != nil:
			// Column c of P (a key) is row c of P^T: panel c/mr, step r,
			// lane c%mr, walked without dividing.
			col := panelWalk{mr: mr, panel: mr * m}
			col.start(lo, r)
			for j, x := range seen {
				y := x * inv
				seen[j] = y
				pt[col.at] = y
				col.next()
			}
		default:
			for j := range seen {
				seen[j] *= inv
			}
		}
	}
}

// panelWalk walks the entries of one step (a query row r) of the panels of
// P^T or dS^T key by key: key c sits at panel c/mr (panel floats apart),
// step r, lane c%mr, and moving to the next key needs no division.
type panelWalk struct {
	mr, panel int
	lane, at  int
}

// start places the walk at key c of step r.
func (w *panelWalk) start(c, r int) {
	w.lane = c % w.mr
	w.at = c/w.mr*w.panel + r*w.mr + w.lane
}

// next moves to the following key.
func (w *panelWalk) next() {
	w.at++
	w.lane++
	if w.lane == w.mr {
		w.lane = 0
		w.at += w.panel - w.mr
	}
}

// attnRowStride is the row stride of a block's scores for n keys: room
// for the seen keys of any row rounded up to whole vectors of 8.
func attnRowStride(n int) int { return (n+7)&^7 + 8 }

// maxOf returns the largest element of x (x not empty); a NaN is skipped
// here (unless it is x[0]) and shows in the exponentials instead. AVX2
// machines take maxAVX, the same comparisons eight lanes at a time.
var maxOf = maxOfGo

// maxOfGo is maxOf in four running maxima, so that the comparisons do not
// wait on one another.
func maxOfGo(x []float32) float32 {
	m0 := x[0]
	m1, m2, m3 := m0, m0, m0
	i := 0
	for ; i+4 <= len(x); i += 4 {
		v := x[i : i+4 : i+4]
		if v[0] > m0 {
			m0 = v[0]
		}
		if v[1] > m1 {
			m1 = v[1]
		}
		if v[2] > m2 {
			m2 = v[2]
		}
		if v[3] > m3 {
			m3 = v[3]
		}
	}
	for ; i < len(x); i++ {
		if x[i] > m0 {
			m0 = x[i]
		}
	}
	return max(m0, m1, m2, m3)
}

func (t *attnBlockTask) forwardBlock(b, h, blk int, w *attnWork) {
	s := &t.s
	i0, m, kbeg, kend, q, k, v := t.views(b, h, blk)
	n := kend - kbeg
	t.probabilities(w.p, w.pa, nil, attnRowStride(n), i0, m, kbeg, n, q, k, w.gs)
	out := strided{data: t.out, ld: s.qCols}.at(b*s.SeqQ+i0, h*s.HeadDim)
	smallGemmPackedA(t.thin, out, w.pa, v, false, m, s.HeadDim, n, 1, false, w.gs)
}

// backwardBlock adds one block's contribution to dq (its own rows) and to
// dk, dv (the keys it sees): with P recomputed, dP = dy v^T,
// D_r = sum_j P_rj dP_rj and dS = P * (dP - D),
// dq += Scale dS k, dk += Scale dS^T q, dv += P^T dy. dS and dS^T go
// straight into panels (pa, pt) as they are computed.
func (t *attnBlockTask) backwardBlock(b, h, blk int, w *attnWork) {
	s := &t.s
	mr := t.thin.mr
	i0, m, kbeg, kend, q, k, v := t.views(b, h, blk)
	n := kend - kbeg
	ld := attnRowStride(n)
	p, dp := w.p, w.dp
	dy := strided{data: t.dy, ld: s.qCols}.at(b*s.SeqQ+i0, h*s.HeadDim)
	kvh := h / s.group
	if t.dv != nil {
		t.probabilities(p, nil, w.pt, ld, i0, m, kbeg, n, q, k, w.gs)
		dv := strided{data: t.dv, ld: s.kCols}.at(b*s.stride+kbeg, kvh*s.HeadDim)
		smallGemmPackedA(t.thin, dv, w.pt, dy, false, n, s.HeadDim, m, 1, true, w.gs)
	} else {
		t.probabilities(p, nil, nil, ld, i0, m, kbeg, n, q, k, w.gs)
	}
	if t.dq == nil && t.dk == nil {
		return
	}
	smallGemm(t.kern, strided{data: dp, ld: ld}, dy, false, v, true, m, n, s.HeadDim, 1, false, w.gs)
	pa, pt := w.pa[:(m+mr-1)/mr*mr*n], w.pt[:(n+mr-1)/mr*mr*m]
	clear(pa)
	clear(pt)
	for r := range m {
		lo, hi := s.keys(i0 + r)
		lo, hi = lo-kbeg, hi-kbeg
		pr, dr := p[r*ld+lo:r*ld+hi], dp[r*ld+lo:r*ld+hi]
		d := float32(dotF64(pr, dr))
		rowA := pa[r/mr*mr*n+r%mr:]
		col := panelWalk{mr: mr, panel: mr * m}
		col.start(lo, r)
		for j, x := range pr {
			ds := x * (dr[j] - d)
			rowA[(lo+j)*mr] = ds
			pt[col.at] = ds
			col.next()
		}
	}
	if t.dq != nil {
		dq := strided{data: t.dq, ld: s.qCols}.at(b*s.SeqQ+i0, h*s.HeadDim)
		smallGemmPackedA(t.thin, dq, pa, k, false, m, s.HeadDim, n, s.Scale, true, w.gs)
	}
	if t.dk != nil {
		dk := strided{data: t.dk, ld: s.kCols}.at(b*s.stride+kbeg, kvh*s.HeadDim)
		smallGemmPackedA(t.thin, dk, pt, q, false, n, s.HeadDim, m, s.Scale, true, w.gs)
	}
}

// dotF64 returns sum a[j]*b[j] accumulated in float64, in four running
// sums so that the additions do not wait on one another.
func dotF64(a, b []float32) float64 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float64
	j := 0
	for ; j+4 <= len(a); j += 4 {
		x, y := a[j:j+4:j+4], b[j:j+4:j+4]
		s0 += float64(x[0]) * float64(y[0])
		s1 += float64(x[1]) * float64(y[1])
		s2 += float64(x[2]) * float64(y[2])
		s3 += float64(x[3]) * float64(y[3])
	}
	for ; j < len(a); j++ {
		s0 += float64(a[j]) * float64(b[j])
	}
	return (s0 + s1) + (s2 + s3)
}
