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

// views returns the block's query rows [i0, i1), the keys it sees (kend)
// and the strided views of q, k and v for head h of batch row b.
func (t *attnBlockTask) views(b, h, blk int) (i0, m, kend int, q, k, v strided) {
	s := &t.s
	i0 = blk * attnBlockRows
	m = min(attnBlockRows, s.SeqQ-i0)
	kend = s.SeqK - s.SeqQ + i0 + m
	kvh := h / s.group
	q = strided{data: t.q, ld: s.qCols}.at(b*s.SeqQ+i0, h*s.HeadDim)
	k = strided{data: t.k, ld: s.kCols}.at(b*s.stride, kvh*s.HeadDim)
	v = strided{data: t.v, ld: s.kCols}.at(b*s.stride, kvh*s.HeadDim)
	return
}

// probabilities sets p [m, kend] to the block's causal attention
// probabilities: row r sees keys [0, SeqK-SeqQ+i0+r]; the rest are zero.
func (t *attnBlockTask) probabilities(p []float32, i0, m, kend int, q, k strided, gs []float32) {
	s := &t.s
	smallGemm(t.kern, strided{data: p, ld: kend}, q, false, k, true, m, kend, s.HeadDim, s.Scale, false, gs)
	for r := range m {
		row := p[r*kend : (r+1)*kend]
		seen := row[:s.SeqK-s.SeqQ+i0+r+1]
		mx := float32(math.Inf(-1))
		for _, x := range seen {
			mx = max(mx, x)
		}
		inv := 1 / expShift(seen, mx)
		for j := range seen {
			seen[j] *= inv
		}
		clear(row[len(seen):])
	}
}

func (t *attnBlockTask) forwardBlock(b, h, blk int, p, gs []float32) {
	s := &t.s
	i0, m, kend, q, k, v := t.views(b, h, blk)
	p = p[:m*kend]
	t.probabilities(p, i0, m, kend, q, k, gs)
	out := strided{data: t.out, ld: s.qCols}.at(b*s.SeqQ+i0, h*s.HeadDim)
	smallGemm(t.kern, out, strided{data: p, ld: kend}, false, v, false, m, s.HeadDim, kend, 1, false, gs)
}

// backwardBlock adds one block's contribution to dq (its own rows) and to
// dk, dv (the keys it sees): with P recomputed, dP = dy v^T,
// D_r = sum_j P_rj dP_rj and dS = P * (dP - D),
// dq += Scale dS k, dk += Scale dS^T q, dv += P^T dy.
func (t *attnBlockTask) backwardBlock(b, h, blk int, p, dp, gs []float32) {
	s := &t.s
	i0, m, kend, q, k, v := t.views(b, h, blk)
	p, dp = p[:m*kend], dp[:m*kend]
	t.probabilities(p, i0, m, kend, q, k, gs)
	dy := strided{data: t.dy, ld: s.qCols}.at(b*s.SeqQ+i0, h*s.HeadDim)
	smallGemm(t.kern, strided{data: dp, ld: kend}, dy, false, v, true, m, kend, s.HeadDim, 1, false, gs)
	for r := range m {
		pr, dr := p[r*kend:(r+1)*kend], dp[r*kend:(r+1)*kend]
		seen := s.SeqK - s.SeqQ + i0 + r + 1
		var d float64
		for j, x := range pr[:seen] {
			d += float64(x) * float64(dr[j])
		}
		for j, x := range pr[:seen] {
			dr[j] = x * (dr[j] - float32(d))
		}
		clear(dr[seen:])
	}
	ds, pm := strided{data: dp, ld: kend}, strided{data: p, ld: kend}
	if t.dq != nil {
		dq := strided{data: t.dq, ld: s.qCols}.at(b*s.SeqQ+i0, h*s.HeadDim)
		smallGemm(t.kern, dq, ds, false, k, false, m, s.HeadDim, kend, s.Scale, true, gs)
	}
	kvh := h / s.group
	if t.dk != nil {
		dk := strided{data: t.dk, ld: s.kCols}.at(b*s.stride, kvh*s.HeadDim)
		smallGemm(t.kern, dk, ds, true, q, false, kend, s.HeadDim, m, s.Scale, true, gs)
	}
	if t.dv != nil {
		dv := strided{data: t.dv, ld: s.kCols}.at(b*s.stride, kvh*s.HeadDim)
		smallGemm(t.kern, dv, pm, true, dy, false, kend, s.HeadDim, m, 1, true, gs)
	}
}
