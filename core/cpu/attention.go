package cpu

import (
	"fmt"
	"math"

	"github.com/graft-ml/graft/core/backend"
)

// attnShape is a checked backend.Attention with the derived sizes the
// kernels index with.
type attnShape struct {
	backend.Attention
	stride int // KVStride, resolved
	group  int // query heads per key/value head
	qCols  int // Heads * HeadDim
	kCols  int // KVHeads * HeadDim
}

// checkAttention validates p against the operand shapes and panics, naming
// op, when they disagree.
func checkAttention(op string, p backend.Attention, q, k, v *buffer) attnShape {
	s := attnShape{Attention: p, stride: p.KVStride}
	if s.stride == 0 {
		s.stride = p.SeqK
	}
	if p.Batch < 0 || p.SeqQ < 0 || p.SeqK < p.SeqQ || s.stride < p.SeqK || p.Window < 0 ||
		p.Heads <= 0 || p.KVHeads <= 0 || p.Heads%p.KVHeads != 0 || p.HeadDim <= 0 {
		panic(fmt.Sprintf("cpu: %s: invalid parameters %+v (want 0 <= SeqQ <= SeqK <= KVStride, KVHeads dividing Heads, Window >= 0)", op, p))
	}
	s.group = p.Heads / p.KVHeads
	s.qCols, s.kCols = p.Heads*p.HeadDim, p.KVHeads*p.HeadDim
	want := func(name string, b *buffer, rows, cols int) {
		if r, c := b.dims(); r != rows || c != cols {
			panic(fmt.Sprintf("cpu: %s: %s is %v, want [%d %d] for %+v", op, name, b.shape, rows, cols, p))
		}
	}
	want("q", q, p.Batch*p.SeqQ, s.qCols)
	want("k", k, p.Batch*s.stride, s.kCols)
	want("v", v, p.Batch*s.stride, s.kCols)
	return s
}

// qRow, kRow and kvHeadRow slice one head of one row.
func (s *attnShape) qRow(x []float32, b, i, h int) []float32 {
	o := (b*s.SeqQ+i)*s.qCols + h*s.HeadDim
	return x[o : o+s.HeadDim]
}

func (s *attnShape) kRow(x []float32, b, j, kvh int) []float32 {
	o := (b*s.stride+j)*s.kCols + kvh*s.HeadDim
	return x[o : o+s.HeadDim]
}

// keys returns the key rows [lo, hi) query row i sees: those up to its
// own position, the last Window of them with a sliding window.
func (s *attnShape) keys(i int) (lo, hi int) {
	hi = s.SeqK - s.SeqQ + i + 1
	if s.Window > 0 {
		lo = max(0, hi-s.Window)
	}
	return lo, hi
}

// scores fills sc[j] = scale * q.k_{lo+j} for the keys query i may see,
// from key row lo on, and returns their maximum.
func (s *attnShape) scores(sc, q, ks []float32, b, lo, h int) float32 {
	kvh := h / s.group
	mx := float32(math.Inf(-1))
	for j := range sc {
		v := s.Scale * dot(q, s.kRow(ks, b, lo+j, kvh))
		sc[j] = v
		mx = max(mx, v)
	}
	return mx
}

// Attention computes causal softmax(q k^T * Scale) v with grouped key/value
// heads; see backend.Attention for the layout. From attnBlockMinRows query
// rows up it runs by blocks of rows as small matrix products
// (attention_block.go); below that (generation) each (batch, head, query
// row) is a unit of dot products, split over goroutines. The softmax
// subtracts the row maximum. dst must not overlap q, k or v.
func (c *Backend) Attention(dst, q, k, v backend.Buffer, p backend.Attention) {
	const op = "Attention"
	d, qb, kb, vb := c.f32(dst, op, "dst"), c.f32(q, op, "q"), c.f32(k, op, "k"), c.f32(v, op, "v")
	s := checkAttention(op, p, qb, kb, vb)
	checkSize(op, "dst", d, qb.n)
	if d.overlaps(qb) || d.overlaps(kb) || d.overlaps(vb) {
		panic("cpu: Attention: dst must not overlap q, k or v")
	}
	if hostAttention(HostOpAttention, s, d.data(), qb.data(), kb.data(), vb.data()) {
		return
	}
	if p.SeqQ >= attnBlockMinRows {
		c.attentionBlocked(s, d.data(), qb.data(), kb.data(), vb.data())
		return
	}
	units := p.Batch * p.Heads * p.SeqQ
	runTask(c, &c.tasks.attention, units, minParallelFlops/(4*p.SeqK*p.HeadDim+1)+1,
		attentionTask{s: s, out: d.data(), q: qb.data(), k: kb.data(), v: vb.data()})
}

// attentionTask is Attention over a range of (batch, head, query row)
// units.
type attentionTask struct {
	s            attnShape
	out, q, k, v []float32
}

func (t *attentionTask) run(lo, hi int) {
	s := &t.s
	sp := getScratch(s.SeqK)
	defer putScratch(sp)
	for u := lo; u < hi; u++ {
		bh, i := u/s.SeqQ, u%s.SeqQ
		b, h := bh/s.Heads, bh%s.Heads
		kvh := h / s.group
		lo, hi := s.keys(i)
		sc := (*sp)[:hi-lo]
		mx := s.scores(sc, s.qRow(t.q, b, i, h), t.k, b, lo, h)
		inv := 1 / expShift(sc, mx)
		o := s.qRow(t.out, b, i, h)
		clear(o)
		for j, w := range sc {
			axpy(o, s.kRow(t.v, b, lo+j, kvh), w*inv)
		}
	}
}

// AttentionBackward accumulates into dq, dk and dv (any may be nil) the
// gradients of Attention given dy, recomputing the probabilities.
//
// It runs in two passes, as FlashAttention-2 does, so that no two
// goroutines ever add into the same row. The first pass goes over query
// rows: it recomputes a row's probabilities P, dP = dy v^T and
// D = sum(P * dP), adds dq = Scale * (P * (dP - D)) k, and keeps the row's
// log-sum-exp and D. The second pass goes over key rows: for each query row
// (of every head sharing the key head) that sees the key it rebuilds P from
// the log-sum-exp and adds dk += Scale * P(dP - D) q and dv += P dy.
func (c *Backend) AttentionBackward(dq, dk, dv, dy, q, k, v backend.Buffer, p backend.Attention) {
	const op = "AttentionBackward"
	qb, kb, vb, dyb := c.f32(q, op, "q"), c.f32(k, op, "k"), c.f32(v, op, "v"), c.f32(dy, op, "dy")
	s := checkAttention(op, p, qb, kb, vb)
	checkSize(op, "dy", dyb, qb.n)
	dqs, dks, dvs := c.attnGrad(dq, "dq", qb), c.attnGrad(dk, "dk", kb), c.attnGrad(dv, "dv", vb)
	if hostAttention(HostOpAttentionBackward, s, dqs, dks, dvs, dyb.data(), qb.data(), kb.data(), vb.data()) {
		return
	}
	if p.SeqQ >= attnBlockMinRows {
		c.attentionBackwardBlocked(s, dqs, dks, dvs, dyb.data(), qb.data(), kb.data(), vb.data())
		return
	}
	units := p.Batch * p.Heads * p.SeqQ
	stats := getScratch64(2 * units)
	defer putScratch64(stats)
	t := attnBackTask{
		s: s, dq: dqs, dk: dks, dv: dvs, dy: dyb.data(), q: qb.data(), k: kb.data(), v: vb.data(),
		lse: (*stats)[:units], delta: (*stats)[units:],
	}
	grain := minParallelFlops/(8*p.SeqK*p.HeadDim+1) + 1
	runTask(c, &c.tasks.attnBack, units, grain, t)
	if dks == nil && dvs == nil {
		return
	}
	t.keys = true
	runTask(c, &c.tasks.attnBack, p.Batch*p.KVHeads*p.SeqK, grain, t)
}

// attnGrad returns the data of the gradient buffer x of AttentionBackward,
// checked to be the size of like, or nil for a nil x.
func (c *Backend) attnGrad(x backend.Buffer, name string, like *buffer) []float32 {
	if x == nil {
		return nil
	}
	b := c.f32(x, "AttentionBackward", name)
	checkSize("AttentionBackward", name, b, like.n)
	return b.data()
}

// attnBackTask is one of AttentionBackward's passes: over query rows
// (filling lse and delta, adding dq), then, when keys is set, over key
// rows (adding dk and dv).
type attnBackTask struct {
	s                       attnShape
	dq, dk, dv, dy, q, k, v []float32
	lse, delta              []float64 // per query unit
	keys                    bool
}

func (t *attnBackTask) run(lo, hi int) {
	if t.keys {
		t.keyRows(lo, hi)
	} else {
		t.queryRows(lo, hi)
	}
}

// queryRows runs the first pass over the units [lo, hi).
func (t *attnBackTask) queryRows(lo, hi int) {
	s := &t.s
	sp := getScratch(2*s.SeqK + s.HeadDim)
	defer putScratch(sp)
	for u := lo; u < hi; u++ {
		bh, i := u/s.SeqQ, u%s.SeqQ
		b, h := bh/s.Heads, bh%s.Heads
		kvh := h / s.group
		lo, hi := s.keys(i)
		seen := hi - lo
		sc, dp := (*sp)[:seen], (*sp)[s.SeqK:s.SeqK+seen]
		acc := (*sp)[2*s.SeqK : 2*s.SeqK+s.HeadDim]
		qi, gi := s.qRow(t.q, b, i, h), s.qRow(t.dy, b, i, h)
		mx := s.scores(sc, qi, t.k, b, lo, h)
		var sum float64
		for _, x := range sc {
			sum += math.Exp(float64(x - mx))
		}
		l := float64(mx) + math.Log(sum)
		// Probabilities P_j, dP_j = dy.v_j and D = sum_j P_j dP_j.
		var dd float64
		for j, x := range sc {
			pj := math.Exp(float64(x) - l)
			sc[j] = float32(pj)
			dp[j] = dot(gi, s.kRow(t.v, b, lo+j, kvh))
			dd += pj * float64(dp[j])
		}
		t.lse[u], t.delta[u] = l, dd
		if t.dq == nil {
			continue
		}
		clear(acc)
		for j, pj := range sc {
			axpy(acc, s.kRow(t.k, b, lo+j, kvh), pj*(dp[j]-float32(dd)))
		}
		axpy(s.qRow(t.dq, b, i, h), acc, s.Scale)
	}
}

// keyRows runs the second pass over the key units [lo, hi).
func (t *attnBackTask) keyRows(lo, hi int) {
	s := &t.s
	dks, dvs := t.dk, t.dv
	offset := s.SeqK - s.SeqQ // position of query row 0
	sp := getScratch(2 * s.HeadDim)
	defer putScratch(sp)
	dkAcc, dvAcc := (*sp)[:s.HeadDim], (*sp)[s.HeadDim:]
	for u := lo; u < hi; u++ {
		bk, j := u/s.SeqK, u%s.SeqK
		b, kvh := bk/s.KVHeads, bk%s.KVHeads
		kj, vj := s.kRow(t.k, b, j, kvh), s.kRow(t.v, b, j, kvh)
		clear(dkAcc)
		clear(dvAcc)
		for h := kvh * s.group; h < (kvh+1)*s.group; h++ {
			// Query rows from the key's own position on see it, within a
			// window only the next Window of them.
			last := s.SeqQ
			if s.Window > 0 {
				last = min(last, j-offset+s.Window)
			}
			for i := max(0, j-offset); i < last; i++ {
				qi, gi := s.qRow(t.q, b, i, h), s.qRow(t.dy, b, i, h)
				r := (b*s.Heads+h)*s.SeqQ + i
				pij := float32(math.Exp(float64(s.Scale*dot(qi, kj)) - t.lse[r]))
				if dvs != nil {
					axpy(dvAcc, gi, pij)
				}
				if dks != nil {
					ds := pij * (dot(gi, vj) - float32(t.delta[r]))
					axpy(dkAcc, qi, s.Scale*ds)
				}
			}
		}
		if dks != nil {
			axpy(s.kRow(dks, b, j, kvh), dkAcc, 1)
		}
		if dvs != nil {
			axpy(s.kRow(dvs, b, j, kvh), dvAcc, 1)
		}
	}
}
