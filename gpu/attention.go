package gpu

import (
	"fmt"

	"github.com/graft-ml/graft/core/backend"
)

// maxHeadDim is the largest head the attention kernels handle: the row
// kernel's 64 threads keep four dimensions of the output row each, and the
// block kernel keeps its query row and output row in private arrays.
const maxHeadDim = 256

// The block kernel (attention_block) gives each of its 64 threads one row
// of a block of attnBlock query rows, and streams the keys and values
// through workgroup memory in tiles of attnTileFloats floats each: 14 KiB
// for the two, under the 16 KiB of workgroup memory WebGPU guarantees.
const (
	attnBlock      = 64
	attnTileFloats = 1792
)

// attnTileRows is how many rows of a head of size d one tile holds.
func attnTileRows(d int) int { return min(attnBlock, attnTileFloats/d) }

// blocksOf is how many blocks of attnBlock rows cover n rows.
func blocksOf(n int) int { return (n + attnBlock - 1) / attnBlock }

func checkAttention(op string, p backend.Attention, q, k, v *buffer) (stride int) {
	stride = p.KVStride
	if stride == 0 {
		stride = p.SeqK
	}
	if p.Batch < 0 || p.SeqQ < 0 || p.SeqK < p.SeqQ || stride < p.SeqK || p.Window < 0 ||
		p.Heads <= 0 || p.KVHeads <= 0 || p.Heads%p.KVHeads != 0 || p.HeadDim <= 0 {
		panic(fmt.Sprintf("gpu: %s: invalid parameters %+v (want 0 <= SeqQ <= SeqK <= KVStride, KVHeads dividing Heads, Window >= 0)", op, p))
	}
	if p.HeadDim > maxHeadDim {
		panic(fmt.Sprintf("gpu: %s: HeadDim %d is over the kernel's %d", op, p.HeadDim, maxHeadDim))
	}
	want := func(name string, b *buffer, rows, cols int) {
		if r, c := b.dims(); r != rows || c != cols {
			panic(fmt.Sprintf("gpu: %s: %s is %v, want [%d %d] for %+v", op, name, b.shape, rows, cols, p))
		}
	}
	want("q", q, p.Batch*p.SeqQ, p.Heads*p.HeadDim)
	want("k", k, p.Batch*stride, p.KVHeads*p.HeadDim)
	want("v", v, p.Batch*stride, p.KVHeads*p.HeadDim)
	return stride
}

// attnArgs are the words every attention kernel starts with, for batch
// sequences of p: the kernels run on runs of whole sequences, each run's
// q, k and v in one part of their storage.
func attnArgs(batch int, p backend.Attention, stride int) args {
	return args{}.u(batch, p.SeqQ, p.SeqK, stride, p.Heads, p.KVHeads, p.HeadDim).f(p.Scale)
}

// Attention computes causal softmax(q k^T * Scale) v, over the last
// p.Window keys of each row when it is set, with an online softmax that
// never stores a score matrix. A single query row (token-by-token
// generation) gets a workgroup per head whose threads share the keys;
// longer runs go by blocks of 64 query rows per workgroup, a thread per
// row, the tiles of k and v loaded once for the whole block.
// dst must not overlap q, k or v.
func (g *Backend) Attention(dst, q, k, v backend.Buffer, p backend.Attention) {
	const op = "Attention"
	d, qb, kb, vb := g.f32(dst, op, "dst"), g.f32(q, op, "q"), g.f32(k, op, "k"), g.f32(v, op, "v")
	stride := checkAttention(op, p, qb, kb, vb)
	checkSize(op, "dst", d, qb.n)
	if overlaps(d, qb) || overlaps(d, kb) || overlaps(d, vb) {
		panic("gpu: Attention: dst must not overlap q, k or v")
	}
	qu, ku := p.SeqQ*p.Heads*p.HeadDim, stride*p.KVHeads*p.HeadDim
	for _, s := range spans(op, p.Batch, operand{"dst", d, qu}, operand{"q", qb, qu}, operand{"k", kb, ku}, operand{"v", vb, ku}) {
		a := attnArgs(s.n, p, stride).u(s.offs...).u(p.Window)
		if p.SeqQ == 1 {
			g.run(kAttention, s.n*p.Heads, a, s.bufs...)
			continue
		}
		g.run(kAttnBlock, s.n*p.Heads*blocksOf(p.SeqQ), a.u(attnTileRows(p.HeadDim)), s.bufs...)
	}
}

// AttentionBackward accumulates into dq, dk and dv (any may be nil) the
// gradients of Attention, recomputing the probabilities as FlashAttention
// does, with no score matrix stored. It runs in two passes so no two
// threads add into one element, each by blocks of 64 rows like the
// forward: a workgroup per block of query rows, a thread per row, finds
// each row's log-sum-exp and D = sum(P * dP), saves them, and adds dq;
// then a workgroup per block of key rows, a thread per key, adds dk and dv
// from the query rows that see it, with P rebuilt from the saved
// log-sum-exp. The threads of a block walk the same keys (query rows) in
// step and read them straight from storage: see attention_back_kv.wgsl
// for why they are not staged in workgroup memory.
func (g *Backend) AttentionBackward(dq, dk, dv, dy, q, k, v backend.Buffer, p backend.Attention) {
	const op = "AttentionBackward"
	qb, kb, vb, dyb := g.f32(q, op, "q"), g.f32(k, op, "k"), g.f32(v, op, "v"), g.f32(dy, op, "dy")
	stride := checkAttention(op, p, qb, kb, vb)
	checkSize(op, "dy", dyb, qb.n)
	dqb, dkb, dvb := g.opt(dq, op, "dq"), g.opt(dk, op, "dk"), g.opt(dv, op, "dv")
	units := p.Batch * p.Heads * p.SeqQ
	if units == 0 || (dqb == nil && dkb == nil && dvb == nil) {
		return
	}
	checkOpt(op, "dq", dqb, qb.n)
	checkOpt(op, "dk", dkb, kb.n)
	checkOpt(op, "dv", dvb, vb.n)
	// A pending zeroing of a gradient (pending.go) makes the kernel write
	// it rather than add into it: mode 2, against 1 for adding. dk and dv
	// are written only where stride == SeqK, since the kernel leaves their
	// rows past SeqK alone.
	mode := func(b *buffer, foldable bool) int {
		if b == nil {
			return 0
		}
		if foldable {
			if _, ok := g.takePending(b, func(p pendingScale) bool { return p.mul == nil && p.rope == nil && p.c == 0 }); ok {
				return 2
			}
		}
		return 1
	}
	mq, mk, mv := mode(dqb, true), mode(dkb, stride == p.SeqK), mode(dvb, stride == p.SeqK)
	qu, ku := p.SeqQ*p.Heads*p.HeadDim, stride*p.KVHeads*p.HeadDim
	ops := []operand{{"q", qb, qu}, {"k", kb, ku}, {"v", vb, ku}, {"dy", dyb, qu}, {"dq", dqb, qu}, {"dk", dkb, ku}, {"dv", dvb, ku}}
	for _, s := range spans(op, p.Batch, ops...) {
		units := s.n * p.Heads * p.SeqQ
		stats, err := g.temp("attention-stats", 8*int64(units))
		if err != nil {
			panic(fmt.Sprintf("gpu: %s: %v", op, err))
		}
		sb := stats.parts[0].buf
		base := attnArgs(s.n, p, stride).u(s.offs[:4]...)
		aq := base.u(mq, s.offs[4], p.Window)
		g.run(kAttnBackQ, s.n*p.Heads*blocksOf(p.SeqQ), aq, s.bufs[4], s.bufs[3], s.bufs[0], s.bufs[1], s.bufs[2], sb)
		if dkb != nil || dvb != nil {
			akv := base.u(mk, s.offs[5], mv, s.offs[6], p.Window)
			g.run(kAttnBackKV, s.n*p.KVHeads*blocksOf(p.SeqK), akv, s.bufs[5], s.bufs[6], s.bufs[3], s.bufs[0], s.bufs[1], s.bufs[2], sb)
		}
		g.release(stats)
	}
}
