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
	kern     *gemmKernel
	blocks   int // query blocks per head
	backward bool

	out, q, k, v, dy []float32
	dq, dk, dv       []float32
}

// attentionBlocked computes Attention (already checked) by blocks.
func (c *Backend) attentionBlocked(s attnShape, out, q, k, v []float32) {
	blocks := (s.SeqQ + attnBlockRows - 1) / attnBlockRows
	runTask(c, &c.tasks.attnBlock, s.Batch*s.Heads*blocks, 1,
		attnBlockTask{s: s, kern: smallKernel(), blocks: blocks, out: out, q: q, k: k, v: v})
}

// attentionBackwardBlocked computes AttentionBackward (already checked) by
// blocks; any of dq, dk, dv may be nil.
func (c *Backend) attentionBackwardBlocked(s attnShape, dq, dk, dv, dy, q, k, v []float32) {
	runTask(c, &c.tasks.attnBlock, s.Batch*s.KVHeads, 1,
		attnBlockTask{s: s, kern: smallKernel(), blocks: (s.SeqQ + attnBlockRows - 1) / attnBlockRows, backward: true,
			q: q, k: k, v: v, dy: dy, dq: dq, dk: dk, dv: dv})
}

func (t *attnBlockTask) run(lo, hi int) {
	s := &t.s
	rows := min(attnBlockRows, s.SeqQ)
	gemmFloats := smallGemmScratch(t.kern, max(rows, s.SeqK), max(rows, s.SeqK, s.HeadDim))
	scores := rows * s.SeqK
	sp := getScratch(2*scores + gemmFloats)
	defer putScratch(sp)
	buf := *sp
	p, dp, gs := buf[:scores], buf[scores:2*scores], buf[2*scores:]
	for u := lo; u < hi; u++ {
		if !t.backward {
			bh := u / t.blocks
			t.forwardBlock(bh/s.Heads, bh%s.Heads, u%t.blocks, p, gs)
			continue
		}
		b, kvh := u/s.KVHeads, u%s.KVHeads
		for h := kvh * s.group; h < (kvh+1)*s.group; h++ {
			for blk := range t.blocks {
				t.backwardBlock(b, h, blk, p, dp, gs)
			}
		}
	}
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

// probabilities sets p [m, n] (n = kend-kbeg) to the block's attention
// probabilities: row r sees keys s.keys(i0+r) of [kbeg, kend); the rest
// are zero.
func (t *attnBlockTask) probabilities(p []float32, i0, m, kbeg, n int, q, k strided, gs []float32) {
	s := &t.s
	smallGemm(t.kern, strided{data: p, ld: n}, q, false, k, true, m, n, s.HeadDim, s.Scale, false, gs)
	// Row r sees keys [lo, hi) of s.keys(i0+r), hi = SeqK-SeqQ+i0+r+1:
	// relative to kbeg, hi0 + r, and lo = max(0, hi - Window) (kbeg is
	// row 0's lo, at most any row's).
	if externalSoftmax(SoftmaxRows{X: p, Out: p, N: n, Rows: m, Causal: true, Normalize: true,
		Hi0: s.SeqK - s.SeqQ + i0 + 1 - kbeg, Window: s.Window}) {
		return
	}
	for r := range m {
		row := p[r*n : (r+1)*n]
		lo, hi := s.keys(i0 + r)
		seen := row[lo-kbeg : hi-kbeg]
		mx := float32(math.Inf(-1))
		for _, x := range seen {
			mx = max(mx, x)
		}
		inv := 1 / expShift(seen, mx)
		for j := range seen {
			seen[j] *= inv
		}
		clear(row[:lo-kbeg])
		clear(row[hi-kbeg:])
	}
}

func (t *attnBlockTask) forwardBlock(b, h, blk int, p, gs []float32) {
	s := &t.s
	i0, m, kbeg, kend, q, k, v := t.views(b, h, blk)
	n := kend - kbeg
	p = p[:m*n]
	t.probabilities(p, i0, m, kbeg, n, q, k, gs)
	out := strided{data: t.out, ld: s.qCols}.at(b*s.SeqQ+i0, h*s.HeadDim)
	smallGemm(t.kern, out, strided{data: p, ld: n}, false, v, false, m, s.HeadDim, n, 1, false, gs)
}

// backwardBlock adds one block's contribution to dq (its own rows) and to
// dk, dv (the keys it sees): with P recomputed, dP = dy v^T,
// D_r = sum_j P_rj dP_rj and dS = P * (dP - D),
// dq += Scale dS k, dk += Scale dS^T q, dv += P^T dy.
func (t *attnBlockTask) backwardBlock(b, h, blk int, p, dp, gs []float32) {
	s := &t.s
	i0, m, kbeg, kend, q, k, v := t.views(b, h, blk)
	n := kend - kbeg
	p, dp = p[:m*n], dp[:m*n]
	t.probabilities(p, i0, m, kbeg, n, q, k, gs)
	dy := strided{data: t.dy, ld: s.qCols}.at(b*s.SeqQ+i0, h*s.HeadDim)
	smallGemm(t.kern, strided{data: dp, ld: n}, dy, false, v, true, m, n, s.HeadDim, 1, false, gs)
	if !externalSoftmaxBack(SoftmaxRows{X: p, Out: dp, N: n, Rows: m, Causal: true,
		Hi0: s.SeqK - s.SeqQ + i0 + 1 - kbeg, Window: s.Window}) {
		t.softmaxBack(p, dp, i0, m, kbeg, n)
	}
	ds, pm := strided{data: dp, ld: n}, strided{data: p, ld: n}
	if t.dq != nil {
		dq := strided{data: t.dq, ld: s.qCols}.at(b*s.SeqQ+i0, h*s.HeadDim)
		smallGemm(t.kern, dq, ds, false, k, false, m, s.HeadDim, n, s.Scale, true, gs)
	}
	kvh := h / s.group
	if t.dk != nil {
		dk := strided{data: t.dk, ld: s.kCols}.at(b*s.stride+kbeg, kvh*s.HeadDim)
		smallGemm(t.kern, dk, ds, true, q, false, n, s.HeadDim, m, s.Scale, true, gs)
	}
	if t.dv != nil {
		dv := strided{data: t.dv, ld: s.kCols}.at(b*s.stride+kbeg, kvh*s.HeadDim)
		smallGemm(t.kern, dv, pm, true, dy, false, n, s.HeadDim, m, 1, true, gs)
	}
}

// softmaxBack sets dp [m, n] to dS = P * (dP - D), D_r = sum_j P_rj dP_rj
// (in float64), on the keys each row of the block sees, and to 0 on the
// rest.
func (t *attnBlockTask) softmaxBack(p, dp []float32, i0, m, kbeg, n int) {
	s := &t.s
	for r := range m {
		pr, dr := p[r*n:(r+1)*n], dp[r*n:(r+1)*n]
		lo, hi := s.keys(i0 + r)
		lo, hi = lo-kbeg, hi-kbeg
		var d float64
		for j := lo; j < hi; j++ {
			d += float64(pr[j]) * float64(dr[j])
		}
		for j := lo; j < hi; j++ {
			dr[j] = pr[j] * (dr[j] - float32(d))
		}
		clear(dr[:lo])
		clear(dr[hi:])
	}
}
