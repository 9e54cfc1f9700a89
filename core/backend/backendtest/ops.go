package backendtest

import (
	"fmt"
	"math"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/tensor"
)

var elementwiseCases = []testCase{
	{"Copy", func(h *harness) {
		src, dst := h.rand(1, 3, 7), h.zeros(21)
		h.do(func(be backend.Backend, x side) float64 { be.Copy(x(dst), x(src)); return 0 })
		h.close("dst", dst, 0)
	}},
	{"Add", func(h *harness) {
		a, b, dst := h.rand(1, 5, 9), h.rand(1, 5, 9), h.zeros(5, 9)
		h.do(func(be backend.Backend, x side) float64 {
			be.Add(x(dst), x(a), x(b))
			be.Add(x(a), x(a), x(b)) // dst aliasing a
			be.Add(x(b), x(dst), x(b))
			return 0
		})
		h.close("dst", dst, defaultTol)
		h.close("a in place", a, defaultTol)
		h.close("b in place", b, defaultTol)
	}},
	{"Scale", func(h *harness) {
		a, dst := h.rand(1, 4, 11), h.zeros(4, 11)
		h.do(func(be backend.Backend, x side) float64 {
			be.Scale(x(dst), x(a), -0.75)
			be.Scale(x(a), x(a), 3)
			return 0
		})
		h.close("dst", dst, defaultTol)
		h.close("in place", a, defaultTol)
	}},
	{"Scale/then used", func(h *harness) {
		// An in-place Scale followed by what reads or writes the buffer
		// next (a backend may defer it and fold it into that operation):
		// a zeroing and a scaling before accumulating products, a product
		// that overwrites, the trainer's clipping before AdamW, two Scales
		// in a row before an Add, a Scale of a view before the whole
		// buffer is read, and one of a buffer freed unread.
		a, w := h.rand(1, 6, 10), h.rand(1, 7, 10)
		zeroed, scaled, over := h.rand(1, 6, 7), h.rand(1, 6, 7), h.rand(1, 6, 7)
		param, grad, m, v := h.rand(1, 5, 9), h.rand(1, 5, 9), h.zeros(5, 9), h.zeros(5, 9)
		twice, sum := h.rand(1, 3, 8), h.rand(1, 3, 8)
		whole := h.rand(1, 4, 8)
		part := h.view(whole, 8, 2, 8)
		gone := h.rand(1, 4, 4)
		// Copies of zeros (the trainer's clearing of gradients), before an
		// accumulating product and before a read.
		zeros, cleared, copied := h.zeros(6, 7), h.rand(1, 6, 7), h.rand(1, 6, 7)
		// A masked gradient added into another (LoRA's dropout backward),
		// one whose mask is overwritten before the Add, and one left alone.
		masked, mask, into := h.rand(1, 5, 6), h.rand(1, 5, 6), h.rand(1, 5, 6)
		masked2, mask2, into2, other := h.rand(1, 5, 6), h.rand(1, 5, 6), h.rand(1, 5, 6), h.rand(1, 5, 6)
		alone := h.rand(1, 5, 6)
		hp := backend.AdamW{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Step: 1}
		h.do(func(be backend.Backend, x side) float64 {
			be.Scale(x(zeroed), x(zeroed), 0)
			be.MatMul(x(zeroed), x(a), x(w), backend.MatMul{TransB: true, Accumulate: true})
			be.Scale(x(scaled), x(scaled), 0.5)
			be.MatMul(x(scaled), x(a), x(w), backend.MatMul{TransB: true, Accumulate: true})
			be.Scale(x(over), x(over), 2)
			be.MatMul(x(over), x(a), x(w), backend.MatMul{TransB: true})
			be.Scale(x(grad), x(grad), 0.3)
			be.AdamWStep(x(param), x(grad), x(m), x(v), hp)
			be.Scale(x(twice), x(twice), 2)
			be.Scale(x(twice), x(twice), -1.5)
			be.Add(x(sum), x(sum), x(twice))
			be.Scale(x(part), x(part), 3)
			be.Scale(x(gone), x(gone), 4)
			be.Free(x(gone))
			be.Copy(x(cleared), x(zeros))
			be.MatMul(x(cleared), x(a), x(w), backend.MatMul{TransB: true, Accumulate: true})
			be.Copy(x(copied), x(zeros))
			be.Mul(x(masked), x(masked), x(mask))
			be.Add(x(into), x(into), x(masked))
			be.Mul(x(masked2), x(masked2), x(mask2))
			be.Copy(x(mask2), x(other))
			be.Add(x(into2), x(into2), x(masked2))
			be.Mul(x(alone), x(alone), x(mask))
			return 0
		})
		for _, c := range []struct {
			what string
			p    pair
		}{{"zeroed", zeroed}, {"scaled", scaled}, {"overwritten", over}, {"param", param}, {"grad", grad},
			{"m", m}, {"v", v}, {"twice", twice}, {"sum", sum}, {"whole", whole},
			{"cleared", cleared}, {"copied", copied}, {"zeros", zeros}, {"masked", masked}, {"into", into},
			{"masked2", masked2}, {"into2", into2}, {"alone", alone}} {
			h.close(c.what, c.p, defaultTol)
		}
	}},
	{"AddScaled", func(h *harness) {
		a, dst := h.rand(1, 4, 11), h.rand(1, 4, 11)
		h.do(func(be backend.Backend, x side) float64 { be.AddScaled(x(dst), x(a), 0.3); return 0 })
		h.close("dst", dst, defaultTol)
	}},
	{"Mul", func(h *harness) {
		a, b, dst := h.rand(1, 6, 10), h.rand(1, 6, 10), h.zeros(6, 10)
		row, col := h.rand(1, 10), h.rand(1, 6, 1)
		dRow, dCol := h.zeros(6, 10), h.zeros(6, 10)
		h.do(func(be backend.Backend, x side) float64 {
			be.Mul(x(dst), x(a), x(b))
			be.Mul(x(dRow), x(a), x(row))
			be.Mul(x(dCol), x(a), x(col))
			be.Mul(x(b), x(a), x(b)) // dst aliasing b
			return 0
		})
		h.close("elementwise", dst, defaultTol)
		h.close("row vector", dRow, defaultTol)
		h.close("column vector", dCol, defaultTol)
		h.close("in place", b, defaultTol)
	}},
	{"SiLUMul", func(h *harness) {
		g, u, dst := h.rand(2, 7, 13), h.rand(1, 7, 13), h.zeros(7, 13)
		h.do(func(be backend.Backend, x side) float64 { be.SiLUMul(x(dst), x(g), x(u)); return 0 })
		h.close("dst", dst, defaultTol)
	}},
	{"GELUTanhMul", func(h *harness) {
		g, u, dst := h.rand(3, 7, 13), h.rand(1, 7, 13), h.zeros(7, 13)
		h.do(func(be backend.Backend, x side) float64 { be.GELUTanhMul(x(dst), x(g), x(u)); return 0 })
		h.close("dst", dst, defaultTol)
	}},
	{"GELUTanhMulBackward", func(h *harness) {
		g, u, dy := h.rand(3, 7, 13), h.rand(1, 7, 13), h.rand(1, 7, 13)
		dg, du := h.rand(1, 7, 13), h.rand(1, 7, 13) // overwritten
		dg2 := h.rand(1, 7, 13)
		h.do(func(be backend.Backend, x side) float64 {
			be.GELUTanhMulBackward(x(dg), x(du), x(dy), x(g), x(u))
			be.GELUTanhMulBackward(x(dg2), nil, x(dy), x(g), x(u))
			return 0
		})
		h.close("dgate", dg, defaultTol)
		h.close("dup", du, defaultTol)
		h.close("dgate alone", dg2, defaultTol)
	}},
	{"SiLUMulBackward", func(h *harness) {
		g, u, dy := h.rand(2, 7, 13), h.rand(1, 7, 13), h.rand(1, 7, 13)
		dg, du := h.rand(1, 7, 13), h.rand(1, 7, 13) // overwritten
		h.do(func(be backend.Backend, x side) float64 {
			be.SiLUMulBackward(x(dg), x(du), x(dy), x(g), x(u))
			return 0
		})
		h.close("dgate", dg, defaultTol)
		h.close("dup", du, defaultTol)
	}},
}

var layerCases = []testCase{
	{"Embedding", func(h *harness) {
		ids := []int32{5, 0, 17, 5, 3, 16}
		for _, dt := range weightDTypes {
			table, dst := h.load(dt, 1, 18, 64), h.zeros(len(ids), 64)
			h.do(func(be backend.Backend, x side) float64 { be.Embedding(x(dst), x(table), ids); return 0 })
			h.close("dst "+dt.String(), dst, 1e-6)
		}
	}},
	{"EmbeddingBackward", func(h *harness) {
		ids := []int32{2, 9, 2, 0, 2}
		dtable, dy := h.rand(1, 10, 12), h.rand(1, len(ids), 12)
		h.do(func(be backend.Backend, x side) float64 { be.EmbeddingBackward(x(dtable), x(dy), ids); return 0 })
		h.close("dtable", dtable, defaultTol)
	}},
	{"RMSNorm", func(h *harness) {
		for _, dt := range []tensor.DType{tensor.F32, tensor.F16, tensor.BF16} {
			xs, w, dst := h.rand(3, 5, 48), h.load(dt, 1, 48), h.zeros(5, 48)
			h.do(func(be backend.Backend, x side) float64 { be.RMSNorm(x(dst), x(xs), x(w), 1e-5); return 0 })
			h.close("dst "+dt.String(), dst, defaultTol)
		}
		xs, dst := h.rand(3, 3, 31), h.zeros(3, 31)
		h.do(func(be backend.Backend, x side) float64 { be.RMSNorm(x(dst), x(xs), nil, 1e-6); return 0 })
		h.close("dst without weight", dst, defaultTol)
	}},
	{"RMSNormBackward", func(h *harness) {
		xs, w, dy := h.rand(1, 6, 40), h.rand(1, 40), h.rand(1, 6, 40)
		dx, dw, dx2 := h.rand(1, 6, 40), h.rand(1, 40), h.rand(1, 6, 40)
		h.do(func(be backend.Backend, x side) float64 {
			be.RMSNormBackward(x(dx), x(dw), x(dy), x(xs), x(w), 1e-5)
			be.RMSNormBackward(x(dx2), nil, x(dy), x(xs), nil, 1e-5)
			return 0
		})
		h.close("dx", dx, defaultTol)
		h.close("dw", dw, defaultTol)
		h.close("dx without weight", dx2, defaultTol)
	}},
	{"RoPE", func(h *harness) {
		// Positions stay below 512: a backend that computes angles in
		// float32 is then off by at most ~512 * 6e-8 rad, well inside the
		// tolerance; the oracle computes them in float64.
		pos := []int32{0, 1, 7, 100, 511, 3}
		for _, r := range ropeVariants {
			xs, dx := h.rand(1, len(pos), 32), h.rand(1, len(pos), 32)
			h.do(func(be backend.Backend, x side) float64 {
				be.ApplyRoPE(x(xs), pos, r)
				be.ApplyRoPEBackward(x(dx), pos, r)
				return 0
			})
			h.close(fmt.Sprintf("x %+v", r), xs, 5e-4)
			h.close(fmt.Sprintf("dx %+v", r), dx, 5e-4)
		}
	}},
	{"RoPE/q and k", func(h *harness) {
		// A layer's q and k rotated one after the other at the same
		// positions (a backend may do both at once), views at an offset,
		// then a third at other positions and a fourth with another sign.
		pos, other := []int32{0, 1, 7, 100, 511, 3}, []int32{5, 4, 3, 2, 1, 0}
		for _, r := range ropeVariants {
			q, kbuf := h.rand(1, 2*len(pos), 64), h.rand(1, len(pos), 32)
			qv := h.view(q, 64*len(pos), len(pos), 64)
			z, dz := h.rand(1, len(pos), 32), h.rand(1, len(pos), 32)
			h.do(func(be backend.Backend, x side) float64 {
				be.ApplyRoPE(x(qv), pos, r)
				be.ApplyRoPE(x(kbuf), pos, r)
				be.ApplyRoPE(x(z), other, r)
				be.ApplyRoPEBackward(x(dz), other, r)
				return 0
			})
			h.close(fmt.Sprintf("q %+v", r), q, 5e-4)
			h.close(fmt.Sprintf("k %+v", r), kbuf, 5e-4)
			h.close(fmt.Sprintf("z %+v", r), z, 5e-4)
			h.close(fmt.Sprintf("dz %+v", r), dz, 5e-4)
		}
	}},
}

var ropeVariants = []backend.RoPE{
	{Style: backend.RoPEInterleaved, HeadDim: 8, Theta: 10000},
	{Style: backend.RoPEHalf, HeadDim: 8, Theta: 10000},
	{Style: backend.RoPEInterleaved, HeadDim: 16, Theta: 500000, Dims: 8},
	{Style: backend.RoPEHalf, HeadDim: 16, Theta: 10000, Dims: 4},
	{Style: backend.RoPEInterleaved, HeadDim: 8, Freqs: []float64{1, 0.3, 0.01, 1e-4}}, // a scaled RoPE's table
	{Style: backend.RoPEHalf, HeadDim: 16, Dims: 8, Freqs: []float64{0.9, 0.05, 1e-3, 2e-5}},
}

var attentionShapes = []backend.Attention{
	{Batch: 2, SeqQ: 5, SeqK: 5, Heads: 2, KVHeads: 2, HeadDim: 8},
	{Batch: 2, SeqQ: 7, SeqK: 7, Heads: 8, KVHeads: 4, HeadDim: 16},              // GQA
	{Batch: 1, SeqQ: 1, SeqK: 9, KVStride: 12, Heads: 8, KVHeads: 4, HeadDim: 8}, // generation from a KV cache
	{Batch: 2, SeqQ: 3, SeqK: 10, KVStride: 16, Heads: 4, KVHeads: 1, HeadDim: 5},
	{Batch: 2, SeqQ: 7, SeqK: 7, Heads: 4, KVHeads: 2, HeadDim: 8, Window: 3},                // sliding window
	{Batch: 1, SeqQ: 2, SeqK: 11, KVStride: 12, Heads: 2, KVHeads: 1, HeadDim: 8, Window: 4}, // sliding window over a KV cache
	{Batch: 1, SeqQ: 20, SeqK: 20, Heads: 2, KVHeads: 2, HeadDim: 8, Window: 6},              // the CPU's blocked kernels
	// Blocks of 64 query rows (the GPU's) and tiles of keys that end
	// part-way: 70 rows, a head of 64 (tiles of 28 keys), GQA.
	{Batch: 1, SeqQ: 70, SeqK: 70, Heads: 4, KVHeads: 2, HeadDim: 64},
	// A prefix of 9 extra keys (prefix tuning) before 66 rows, two sequences.
	{Batch: 2, SeqQ: 66, SeqK: 75, KVStride: 80, Heads: 2, KVHeads: 1, HeadDim: 32},
	// A window that spans two blocks.
	{Batch: 1, SeqQ: 130, SeqK: 130, Heads: 2, KVHeads: 1, HeadDim: 16, Window: 70},
	// All at once, over blocks of query and key rows that end part-way: a
	// prefix of 9 keys, GQA, a window across blocks, two sequences.
	{Batch: 2, SeqQ: 100, SeqK: 109, KVStride: 112, Heads: 4, KVHeads: 2, HeadDim: 24, Window: 50},
}

func attentionName(p backend.Attention) string {
	return fmt.Sprintf("B%d/Q%d/K%d/S%d/H%d/KV%d/D%d/W%d", p.Batch, p.SeqQ, p.SeqK, p.KVStride, p.Heads, p.KVHeads, p.HeadDim, p.Window)
}

// attentionInputs returns q, k and v pairs for p.
func attentionInputs(h *harness, p backend.Attention) (q, k, v pair) {
	p.Scale = float32(1 / math.Sqrt(float64(p.HeadDim)))
	stride := max(p.KVStride, p.SeqK)
	return h.rand(1, p.Batch*p.SeqQ, p.Heads*p.HeadDim),
		h.rand(1, p.Batch*stride, p.KVHeads*p.HeadDim),
		h.rand(1, p.Batch*stride, p.KVHeads*p.HeadDim)
}

var attentionCases = func() []testCase {
	var out []testCase
	for _, p := range attentionShapes {
		p.Scale = float32(1 / math.Sqrt(float64(p.HeadDim)))
		out = append(out, testCase{"Attention/" + attentionName(p), func(h *harness) {
			q, k, v := attentionInputs(h, p)
			dst := h.zeros(q.shape...)
			h.do(func(be backend.Backend, x side) float64 { be.Attention(x(dst), x(q), x(k), x(v), p); return 0 })
			h.close("dst", dst, defaultTol)
		}}, testCase{"AttentionBackward/" + attentionName(p), func(h *harness) {
			q, k, v := attentionInputs(h, p)
			dy := h.rand(1, q.shape...)
			dq, dk, dv := h.rand(1, q.shape...), h.rand(1, k.shape...), h.rand(1, v.shape...)
			dk2 := h.rand(1, k.shape...)
			// Gradients zeroed in place just before, as the model does (a
			// backend may fold the zeroing into the backward).
			dq3, dk3, dv3 := h.rand(1, q.shape...), h.rand(1, k.shape...), h.rand(1, v.shape...)
			h.do(func(be backend.Backend, x side) float64 {
				be.AttentionBackward(x(dq), x(dk), x(dv), x(dy), x(q), x(k), x(v), p)
				be.AttentionBackward(nil, x(dk2), nil, x(dy), x(q), x(k), x(v), p)
				for _, z := range []pair{dq3, dk3, dv3} {
					be.Scale(x(z), x(z), 0)
				}
				be.AttentionBackward(x(dq3), x(dk3), x(dv3), x(dy), x(q), x(k), x(v), p)
				return 0
			})
			h.close("dq", dq, defaultTol)
			h.close("dk", dk, defaultTol)
			h.close("dv", dv, defaultTol)
			h.close("dk alone", dk2, defaultTol)
			h.close("dq zeroed", dq3, defaultTol)
			h.close("dk zeroed", dk3, defaultTol)
			h.close("dv zeroed", dv3, defaultTol)
		}})
	}
	return out
}()

var lossCases = []testCase{
	{"Softmax", func(h *harness) {
		for _, temp := range []float32{0, 0.7, 1.5} {
			xs, dst := h.rand(4, 5, 33), h.zeros(5, 33)
			h.do(func(be backend.Backend, x side) float64 { be.Softmax(x(dst), x(xs), temp); return 0 })
			h.close(fmt.Sprintf("dst T=%v", temp), dst, defaultTol)
		}
	}},
	{"CrossEntropy", func(h *harness) {
		const rows, vocab = 6, 50
		targets := []int32{3, 49, -100, 0, 7, 7}
		weights := []float32{1, 0.5, 0, 2, 1, 1}
		logits, dl := h.rand(3, rows, vocab), h.rand(1, rows, vocab)
		got, want := h.do(func(be backend.Backend, x side) float64 {
			return be.CrossEntropy(x(dl), x(logits), targets, weights, 1.0/3)
		})
		h.closeScalar("weighted loss", got, want, 1e-5)
		h.close("dlogits", dl, defaultTol)
		got, want = h.do(func(be backend.Backend, x side) float64 {
			return be.CrossEntropy(nil, x(logits), []int32{1, 2, 3, 4, 5, 6}, nil, 1)
		})
		h.closeScalar("unweighted loss", got, want, 1e-5)
	}},
	{"SumSquares", func(h *harness) {
		a, b := h.rand(1, 7, 9), h.rand(2, 1000)
		got, want := h.do(func(be backend.Backend, x side) float64 { return be.SumSquares(x(a), x(b)) })
		h.closeScalar("sum", got, want, 1e-5)
	}},
	{"SumSquares/many", func(h *harness) {
		// More buffers than a backend may read in one dispatch (the
		// gradients of a training step), one over several chunks.
		var bufs []pair
		for i, n := range []int{5, 9000, 1, 64, 300, 17, 4096, 4097, 33} {
			bufs = append(bufs, h.rand(float64(1+i%3), n))
		}
		got, want := h.do(func(be backend.Backend, x side) float64 {
			xs := make([]backend.Buffer, len(bufs))
			for i, b := range bufs {
				xs[i] = x(b)
			}
			return be.SumSquares(xs...)
		})
		h.closeScalar("sum", got, want, 1e-5)
	}},
	{"SumSquares/repeated", func(h *harness) {
		// One buffer passed twice among others: a backend that reads
		// several per dispatch must not bind it twice.
		a, b, c := h.rand(1, 3, 50), h.rand(1, 70), h.rand(1, 5000)
		got, want := h.do(func(be backend.Backend, x side) float64 { return be.SumSquares(x(a), x(b), x(a), x(c), x(a)) })
		h.closeScalar("sum", got, want, 1e-5)
	}},
	{"AdamWStep/many", func(h *harness) {
		// A trainer's step: more tensors than a backend may step in one
		// dispatch, one over several workgroups, one without weight decay,
		// gradients clipped just before, the same factors for all; then a
		// second step, and a tensor stepped twice in a row.
		sizes := []int{5, 300, 1, 64, 17, 1000, 33, 8, 2}
		type tensor struct{ p, g, m, v pair }
		ts := make([]tensor, len(sizes))
		for i, n := range sizes {
			ts[i] = tensor{h.rand(1, n), h.rand(0.1, n), h.zeros(n), h.zeros(n)}
		}
		for step := 1; step <= 2; step++ {
			h.do(func(be backend.Backend, x side) float64 {
				for i, t := range ts {
					hp := backend.AdamW{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Step: step}
					if i == 3 {
						hp.WeightDecay = 0
					}
					be.Scale(x(t.g), x(t.g), 0.5)
					be.AdamWStep(x(t.p), x(t.g), x(t.m), x(t.v), hp)
				}
				hp := backend.AdamW{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Step: step + 1}
				be.AdamWStep(x(ts[0].p), x(ts[0].g), x(ts[0].m), x(ts[0].v), hp)
				return 0
			})
		}
		for i, t := range ts {
			for _, c := range []struct {
				what string
				p    pair
			}{{"param", t.p}, {"grad", t.g}, {"m", t.m}, {"v", t.v}} {
				h.close(fmt.Sprintf("tensor %d %s", i, c.what), c.p, defaultTol)
			}
		}
	}},
	{"AdamWStep", func(h *harness) {
		param, m, v := h.rand(1, 9, 17), h.zeros(9, 17), h.zeros(9, 17)
		for step := 1; step <= 3; step++ {
			g := h.rand(0.1, 9, 17)
			hp := backend.AdamW{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Step: step}
			h.do(func(be backend.Backend, x side) float64 { be.AdamWStep(x(param), x(g), x(m), x(v), hp); return 0 })
		}
		h.close("param", param, defaultTol)
		h.close("m", m, defaultTol)
		h.close("v", v, defaultTol)
	}},
}
