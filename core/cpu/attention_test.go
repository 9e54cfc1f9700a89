package cpu

import (
	"fmt"
	"math"
	"testing"

	"github.com/graft-ml/graft/core/backend"
)

// refAttention is causal grouped-query attention written plainly in
// float64, following the layout described by backend.Attention.
func refAttention(q, k, v []float64, p backend.Attention) []float64 {
	stride := p.KVStride
	if stride == 0 {
		stride = p.SeqK
	}
	qc, kc, hd := p.Heads*p.HeadDim, p.KVHeads*p.HeadDim, p.HeadDim
	out := make([]float64, len(q))
	for b := range p.Batch {
		for h := range p.Heads {
			kvh := h / (p.Heads / p.KVHeads)
			for i := range p.SeqQ {
				qi := q[(b*p.SeqQ+i)*qc+h*hd:][:hd]
				last := p.SeqK - p.SeqQ + i
				first := 0
				if p.Window > 0 {
					first = max(0, last-p.Window+1)
				}
				sc := make([]float64, last+1-first)
				mx := math.Inf(-1)
				for j := range sc {
					kj := k[(b*stride+first+j)*kc+kvh*hd:][:hd]
					for d := range hd {
						sc[j] += qi[d] * kj[d]
					}
					sc[j] *= float64(p.Scale)
					mx = max(mx, sc[j])
				}
				var sum float64
				for j := range sc {
					sc[j] = math.Exp(sc[j] - mx)
					sum += sc[j]
				}
				o := out[(b*p.SeqQ+i)*qc+h*hd:][:hd]
				for j := range sc {
					vj := v[(b*stride+first+j)*kc+kvh*hd:][:hd]
					for d := range hd {
						o[d] += sc[j] / sum * vj[d]
					}
				}
			}
		}
	}
	return out
}

// windowed returns p with a sliding window of w keys.
func windowed(p backend.Attention, w int) backend.Attention {
	p.Window = w
	return p
}

func attnCase(batch, seqQ, seqK, stride, heads, kvHeads, hd int) backend.Attention {
	return backend.Attention{Batch: batch, SeqQ: seqQ, SeqK: seqK, KVStride: stride,
		Heads: heads, KVHeads: kvHeads, HeadDim: hd, Scale: float32(1 / math.Sqrt(float64(hd)))}
}

var attnCases = []backend.Attention{
	attnCase(1, 1, 1, 0, 1, 1, 1),
	attnCase(1, 5, 5, 0, 2, 2, 4),
	attnCase(2, 7, 7, 0, 8, 4, 8),   // GQA: 8 query heads over 4 key/value heads
	attnCase(1, 1, 9, 12, 8, 4, 8),  // generation with a KV cache: one new row, stride beyond SeqK
	attnCase(2, 3, 10, 16, 4, 1, 5), // a chunk of new rows after a cached prefix, multi-query, odd head size
	attnCase(3, 4, 6, 0, 3, 3, 7),
	// Sliding windows: narrower than the sequence, over a KV cache, one
	// key wide, and wider than every row's reach (no effect).
	windowed(attnCase(2, 7, 7, 0, 4, 2, 8), 3),
	windowed(attnCase(2, 3, 10, 16, 4, 1, 5), 4),
	windowed(attnCase(1, 5, 5, 0, 2, 1, 4), 1),
	windowed(attnCase(1, 5, 5, 0, 2, 2, 4), 9),
	// Blocked kernels (16 rows up), whose blocks see a band of keys.
	windowed(attnCase(1, 70, 70, 0, 2, 1, 8), 20),
	windowed(attnCase(2, 33, 40, 48, 4, 2, 8), 5),
	attnCase(1, 20, 24, 0, 2, 1, 8),
}

func attnName(p backend.Attention) string {
	return fmt.Sprintf("B%d/Q%d/K%d/S%d/H%d/KV%d/D%d/W%d", p.Batch, p.SeqQ, p.SeqK, p.KVStride, p.Heads, p.KVHeads, p.HeadDim, p.Window)
}

// attnInputs returns random q, k, v for p (k and v with KVStride rows per
// sequence, the rows past SeqK included so they can be seen to be ignored).
func attnInputs(p backend.Attention, seed uint64) (q, k, v []float32) {
	stride := max(p.KVStride, p.SeqK)
	r := newRand(seed)
	return randn(r, p.Batch*p.SeqQ*p.Heads*p.HeadDim, 1),
		randn(r, p.Batch*stride*p.KVHeads*p.HeadDim, 1),
		randn(r, p.Batch*stride*p.KVHeads*p.HeadDim, 1)
}

func TestAttention(t *testing.T) {
	for ci, p := range attnCases {
		for _, threads := range threadCounts {
			t.Run(attnName(p)+fmt.Sprintf("/%dthreads", threads), func(t *testing.T) {
				c := newTestBackend(threads)
				qv, kv, vv := attnInputs(p, uint64(ci))
				stride := max(p.KVStride, p.SeqK)
				qc, kc := p.Heads*p.HeadDim, p.KVHeads*p.HeadDim
				q, k, v := upload(t, c, qv, p.Batch*p.SeqQ, qc), upload(t, c, kv, p.Batch*stride, kc), upload(t, c, vv, p.Batch*stride, kc)
				dst := c.Zeros(p.Batch*p.SeqQ, qc)
				c.Attention(dst, q, k, v, p)
				assertClose(t, "dst", download(t, c, dst), refAttention(to64(qv), to64(kv), to64(vv), p), 1e-5, 1e-6)
			})
		}
	}
}

func TestAttentionBackward(t *testing.T) {
	for ci, p := range attnCases {
		t.Run(attnName(p), func(t *testing.T) {
			qv, kv, vv := attnInputs(p, uint64(ci))
			stride := max(p.KVStride, p.SeqK)
			qc, kc := p.Heads*p.HeadDim, p.KVHeads*p.HeadDim
			r := newRand(99)
			dyv := randn(r, len(qv), 1)
			start := [3][]float32{randn(r, len(qv), 1), randn(r, len(kv), 1), randn(r, len(vv), 1)}
			q64, k64, v64 := to64(qv), to64(kv), to64(vv)
			loss := func([]float64) float64 { return weighted(dyv, refAttention(q64, k64, v64, p)) }
			want := [3][]float64{numGrad(loss, q64), numGrad(loss, k64), numGrad(loss, v64)}
			for g := range want {
				for i := range want[g] {
					want[g][i] += float64(start[g][i]) // gradients accumulate
				}
			}
			for _, threads := range threadCounts {
				c := newTestBackend(threads)
				q, k, v := upload(t, c, qv, p.Batch*p.SeqQ, qc), upload(t, c, kv, p.Batch*stride, kc), upload(t, c, vv, p.Batch*stride, kc)
				dy := upload(t, c, dyv, p.Batch*p.SeqQ, qc)
				dq, dk, dv := upload(t, c, start[0], p.Batch*p.SeqQ, qc), upload(t, c, start[1], p.Batch*stride, kc), upload(t, c, start[2], p.Batch*stride, kc)
				c.AttentionBackward(dq, dk, dv, dy, q, k, v, p)
				assertClose(t, "dq", download(t, c, dq), want[0], 1e-4, 1e-5)
				assertClose(t, "dk", download(t, c, dk), want[1], 1e-4, 1e-5)
				assertClose(t, "dv", download(t, c, dv), want[2], 1e-4, 1e-5)
				// Each gradient alone, the others nil.
				for g, name := range []string{"dq", "dk", "dv"} {
					bufs := [3]backend.Buffer{}
					bufs[g] = upload(t, c, start[g], []int{p.Batch * p.SeqQ, p.Batch * stride, p.Batch * stride}[g], []int{qc, kc, kc}[g])
					c.AttentionBackward(bufs[0], bufs[1], bufs[2], dy, q, k, v, p)
					assertClose(t, name+" alone", download(t, c, bufs[g]), want[g], 1e-4, 1e-5)
				}
			}
		})
	}
}

func TestAttentionRejectsBadParameters(t *testing.T) {
	c := New()
	p := attnCase(1, 2, 2, 0, 4, 2, 4)
	q, kv := c.Zeros(2, 16), c.Zeros(2, 8)
	c.Attention(c.Zeros(2, 16), q, kv, kv, p)
	bad := p
	bad.KVHeads = 3
	mustPanic(t, "invalid parameters", func() { c.Attention(c.Zeros(2, 16), q, kv, kv, bad) })
	bad = p
	bad.SeqQ = 3
	mustPanic(t, "invalid parameters", func() { c.Attention(c.Zeros(2, 16), q, kv, kv, bad) })
	mustPanic(t, "k is [2 8], want [4 8]", func() { c.Attention(c.Zeros(2, 16), q, kv, kv, attnCase(1, 2, 4, 0, 4, 2, 4)) })
	mustPanic(t, "must not overlap", func() { c.Attention(q, q, kv, kv, p) })
}
