package model

import "github.com/graft-ml/graft/core/backend"

// Logits for a whole batch are the largest activation of a small model
// with a large vocabulary (1024 rows of 49152 columns are 200 MB, and their
// gradient as much again), so training computes them a chunk of rows at a
// time. When Model.LogitChunkRows is 0 a chunk is logitChunkBytes of
// logits, but at least minLogitChunkRows rows: every chunk's product
// streams the whole lm_head weight from memory, and with fewer rows that
// traffic, not arithmetic, sets the speed (measured at SmolLM-135M's
// shape: chunks of 16 or 32 rows ran at a third to half the speed of 128).
const (
	logitChunkBytes   = 16 << 20
	minLogitChunkRows = 128
)

// logitChunkRows is the number of rows of logits computed at a time for
// a pass of R rows.
func (m *Model) logitChunkRows(R int) int {
	n := m.LogitChunkRows
	if n <= 0 {
		n = max(minLogitChunkRows, logitChunkBytes/(4*max(m.Config.Vocab, 1)))
		n -= n % 16 // whole tiles for the product's kernels
	}
	return max(1, min(n, R))
}

// headChunk is one run of rows of the output head: views of the final
// hidden state's rows, of their gradient, and of the logits buffers.
type headChunk struct {
	r0, r1          int
	h, dh           backend.Buffer
	logits, dlogits backend.Buffer
}

// headChunks cuts the pass's rows into chunks of p.chunkRows (the last may
// be shorter), making every view once.
func (m *Model) headChunks(p *trainPass) []headChunk {
	b, c := m.Backend, m.Config
	R := p.B * p.rows
	out := make([]headChunk, 0, (R+p.chunkRows-1)/p.chunkRows)
	for r0 := 0; r0 < R; r0 += p.chunkRows {
		n := min(p.chunkRows, R-r0)
		ch := headChunk{r0: r0, r1: r0 + n,
			h: b.View(p.hF, r0*c.Dim, n, c.Dim), dh: b.View(p.dh, r0*c.Dim, n, c.Dim),
			logits: p.logits, dlogits: p.dlogits}
		if n < p.chunkRows {
			ch.logits, ch.dlogits = b.View(p.logits, 0, n, c.Vocab), b.View(p.dlogits, 0, n, c.Vocab)
		}
		out = append(out, ch)
	}
	return out
}

// headLoss runs lm_head and the cross-entropy over p.hF chunk by chunk
// and returns the weighted loss, without gradients.
func (m *Model) headLoss(p *trainPass) float64 {
	b := m.Backend
	var loss float64
	for i := range p.chunks {
		ch := &p.chunks[i]
		m.Output.Forward(b, ch.logits, ch.h)
		loss += b.CrossEntropy(nil, ch.logits, p.targets[ch.r0:ch.r1], p.weights[ch.r0:ch.r1], 0)
	}
	return loss
}

// headGrad runs lm_head and the cross-entropy over p.hF chunk by chunk,
// each chunk's backward right after its forward (a hook on lm_head sees
// Forward and Backward of the same rows in turn), leaving gradScale times
// the loss's gradient with respect to p.hF in p.dh. It returns the loss,
// stopping at the first chunk that makes it NaN or Inf.
func (m *Model) headGrad(p *trainPass, gradScale float32) float64 {
	b := m.Backend
	var loss float64
	for i := range p.chunks {
		ch := &p.chunks[i]
		m.Output.Forward(b, ch.logits, ch.h)
		loss += b.CrossEntropy(ch.dlogits, ch.logits, p.targets[ch.r0:ch.r1], p.weights[ch.r0:ch.r1], gradScale)
		if !finite(loss) {
			return loss
		}
		zero(b, ch.dh)
		m.Output.Backward(b, ch.dh, ch.dlogits, ch.h)
	}
	return loss
}
