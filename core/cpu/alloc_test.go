package cpu

import (
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/tensor"
)

// TestOperationsDoNotAllocate checks that, once warm, every operation a
// training step uses runs without a Go heap allocation, both on one thread
// and split over the worker pool, with F32 and quantized weights.
func TestOperationsDoNotAllocate(t *testing.T) {
	const rows, cols, hidden, vocab = 12, 16, 24, 40
	for _, threads := range threadCounts {
		c := newTestBackend(threads)
		r := newRand(uint64(threads))
		buf := func(shape ...int) backend.Buffer {
			n := 1
			for _, d := range shape {
				n *= d
			}
			return upload(t, c, randn(r, n, 1), shape...)
		}
		x, y, dx, dy := buf(rows, cols), buf(rows, cols), buf(rows, cols), buf(rows, cols)
		w, wq := buf(hidden, cols), func() backend.Buffer {
			b, _ := uploadAs(t, c, tensor.Q8_0, randn(r, hidden*32, 1), hidden, 32)
			return b
		}()
		xq, hq := buf(rows, 32), buf(rows, hidden)
		h, dh := buf(rows, hidden), buf(rows, hidden)
		norm, dnorm := buf(cols), buf(cols)
		normF16, _ := uploadAs(t, c, tensor.F16, randn(r, cols, 1), cols)
		col := buf(rows, 1)
		table, dtable := buf(vocab, cols), buf(vocab, cols)
		logits, dlogits := buf(rows, vocab), buf(rows, vocab)
		m, v := buf(rows, cols), buf(rows, cols)
		ids := make([]int32, rows)
		pos := make([]int32, rows)
		weights := make([]float32, rows)
		for i := range ids {
			ids[i], pos[i], weights[i] = int32(i*7%vocab), int32(i%6), float32(i%3)
		}
		att := backend.Attention{Batch: 2, SeqQ: 6, SeqK: 6, Heads: 4, KVHeads: 2, HeadDim: 4, Scale: 0.5}
		q, k, vv := buf(rows, 16), buf(rows, 8), buf(rows, 8)
		dq, dk, dv, ao := buf(rows, 16), buf(rows, 8), buf(rows, 8), buf(rows, 16)
		rope := backend.RoPE{HeadDim: 4, Theta: 10000}
		ops := []struct {
			name string
			run  func()
		}{
			{"MatMulNT", func() { c.MatMul(h, x, w, backend.MatMul{TransB: true}) }},
			{"MatMulNTQ8", func() { c.MatMul(hq, xq, wq, backend.MatMul{TransB: true}) }},
			{"MatMulNN", func() { c.MatMul(dx, dh, w, backend.MatMul{Accumulate: true}) }},
			{"MatMulTN", func() { c.MatMul(w, dh, x, backend.MatMul{TransA: true, Accumulate: true}) }},
			{"Copy", func() { c.Copy(dx, x) }},
			{"Add", func() { c.Add(dx, dx, y) }},
			{"MulRow", func() { c.Mul(dx, x, norm) }},
			{"MulColumn", func() { c.Mul(dx, x, col) }},
			{"Scale", func() { c.Scale(dx, x, 0.5) }},
			{"AddScaled", func() { c.AddScaled(dx, x, 0.5) }},
			{"SiLUMul", func() { c.SiLUMul(dx, x, y) }},
			{"SiLUMulBackward", func() { c.SiLUMulBackward(dx, dy, y, x, y) }},
			{"Embedding", func() { c.Embedding(x, table, ids) }},
			{"EmbeddingBackward", func() { c.EmbeddingBackward(dtable, dy, ids) }},
			{"RMSNorm", func() { c.RMSNorm(y, x, norm, 1e-5) }},
			{"RMSNormF16", func() { c.RMSNorm(y, x, normF16, 1e-5) }},
			{"RMSNormBackward", func() { c.RMSNormBackward(dx, dnorm, dy, x, norm, 1e-5) }},
			{"ApplyRoPE", func() { c.ApplyRoPE(x, pos, rope) }},
			{"ApplyRoPEBackward", func() { c.ApplyRoPEBackward(dx, pos, rope) }},
			{"Attention", func() { c.Attention(ao, q, k, vv, att) }},
			{"AttentionBackward", func() { c.AttentionBackward(dq, dk, dv, ao, q, k, vv, att) }},
			{"Softmax", func() { c.Softmax(dlogits, logits, 1) }},
			{"CrossEntropy", func() { c.CrossEntropy(dlogits, logits, ids, weights, 0.1) }},
			{"SumSquares", func() { c.SumSquares(dx, dy, dtable) }},
			{"AdamWStep", func() {
				c.AdamWStep(y, dy, m, v, backend.AdamW{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Step: 3})
			}},
		}
		for _, op := range ops {
			for range 10 {
				op.run()
			}
			if a := testing.AllocsPerRun(50, op.run); a != 0 {
				t.Errorf("threads %d: %s allocates %.0f times per call, want 0", threads, op.name, a)
			}
		}
	}
}
