package cpu

import "math"

// Blocked attention with installed External kernels (the browser's
// WebAssembly SIMD): P and dS stay whole row-major matrices [m, n], so
// that the softmax steps and the products can each go to the external
// kernels in one call (see external.go). Without them, attention_block.go
// writes P and dS straight into the micro-kernel's panels instead.

// probabilitiesRows sets p [m, n] (n = kend-kbeg) to the block's attention
// probabilities: row r sees keys s.keys(i0+r) of [kbeg, kend); the rest
// are zero.
func (t *attnBlockTask) probabilitiesRows(p []float32, i0, m, kbeg, n int, q, k strided, gs []float32) {
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

func (t *attnBlockTask) forwardBlockRows(b, h, blk int, p, gs []float32) {
	s := &t.s
	i0, m, kbeg, kend, q, k, v := t.views(b, h, blk)
	n := kend - kbeg
	p = p[:m*n]
	t.probabilitiesRows(p, i0, m, kbeg, n, q, k, gs)
	out := strided{data: t.out, ld: s.qCols}.at(b*s.SeqQ+i0, h*s.HeadDim)
	smallGemm(t.kern, out, strided{data: p, ld: n}, false, v, false, m, s.HeadDim, n, 1, false, gs)
}

// backwardBlockRows is backwardBlock on row-major P and dS.
func (t *attnBlockTask) backwardBlockRows(b, h, blk int, p, dp, gs []float32) {
	s := &t.s
	i0, m, kbeg, kend, q, k, v := t.views(b, h, blk)
	n := kend - kbeg
	p, dp = p[:m*n], dp[:m*n]
	t.probabilitiesRows(p, i0, m, kbeg, n, q, k, gs)
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
