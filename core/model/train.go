package model

import (
	"fmt"
	"math"

	"github.com/graft-ml/graft/core/backend"
)

// layerActs holds what one decoder block's backward needs from its forward.
type layerActs struct {
	xIn, h1, q, k, v, att, xMid, h2, gate, up, act backend.Buffer
}

// trainPass is the workspace of a training forward/backward over B*T rows.
// It is kept between steps of the same shape so steady-state training does
// not allocate backend memory.
type trainPass struct {
	B, T   int
	pos    []int32
	layers []layerActs
	xOut   backend.Buffer // final residual stream
	hF     backend.Buffer // after the final norm
	logits backend.Buffer
	// gradient scratch
	dlogits, dx, dh, dq, dk, dv, datt, dact, dgate, dup backend.Buffer
	o, down                                             backend.Buffer
}

func (m *Model) newTrainPass(B, T int) *trainPass {
	b, c := m.Backend, m.Config
	R := B * T
	p := &trainPass{B: B, T: T, pos: make([]int32, R)}
	for r := range p.pos {
		p.pos[r] = int32(r % T)
	}
	z := func(cols int) backend.Buffer { return b.Zeros(R, cols) }
	p.layers = make([]layerActs, c.Layers)
	for i := range p.layers {
		p.layers[i] = layerActs{
			xIn: z(c.Dim), h1: z(c.Dim), q: z(c.QDim()), k: z(c.KVDim()), v: z(c.KVDim()),
			att: z(c.QDim()), xMid: z(c.Dim), h2: z(c.Dim), gate: z(c.FFN), up: z(c.FFN), act: z(c.FFN),
		}
	}
	p.xOut, p.hF, p.logits = z(c.Dim), z(c.Dim), z(c.Vocab)
	p.dlogits, p.dx, p.dh = z(c.Vocab), z(c.Dim), z(c.Dim)
	p.dq, p.dk, p.dv, p.datt = z(c.QDim()), z(c.KVDim()), z(c.KVDim()), z(c.QDim())
	p.dact, p.dgate, p.dup = z(c.FFN), z(c.FFN), z(c.FFN)
	p.o, p.down = z(c.Dim), z(c.Dim)
	return p
}

func (p *trainPass) buffers() []backend.Buffer {
	out := []backend.Buffer{p.xOut, p.hF, p.logits, p.dlogits, p.dx, p.dh, p.dq, p.dk, p.dv, p.datt, p.dact, p.dgate, p.dup, p.o, p.down}
	for _, l := range p.layers {
		out = append(out, l.xIn, l.h1, l.q, l.k, l.v, l.att, l.xMid, l.h2, l.gate, l.up, l.act)
	}
	return out
}

// pass returns the cached workspace for a B x T batch.
func (m *Model) pass(B, T int) *trainPass {
	if p := m.train; p != nil && p.B == B && p.T == T {
		return p
	}
	m.FreeTrainingState()
	m.train = m.newTrainPass(B, T)
	return m.train
}

// FreeTrainingState releases the activation workspace kept between
// training steps.
func (m *Model) FreeTrainingState() {
	if m.train == nil {
		return
	}
	for _, buf := range m.train.buffers() {
		m.Backend.Free(buf)
	}
	m.train = nil
}

// TokenBatch is a batch of B rows of T tokens with next-token targets and
// per-position loss weights (0 excludes a position).
type TokenBatch struct {
	B, T    int
	IDs     []int32
	Targets []int32
	Weights []float32
}

func (m *Model) checkBatch(tb TokenBatch) error {
	R := tb.B * tb.T
	switch {
	case tb.B <= 0 || tb.T <= 0:
		return fmt.Errorf("batch %dx%d is empty", tb.B, tb.T)
	case tb.T > m.Config.Context:
		return fmt.Errorf("sequence length %d exceeds the context of %d", tb.T, m.Config.Context)
	case len(tb.IDs) != R || len(tb.Targets) != R || (tb.Weights != nil && len(tb.Weights) != R):
		return fmt.Errorf("batch %dx%d has %d ids, %d targets, %d weights", tb.B, tb.T, len(tb.IDs), len(tb.Targets), len(tb.Weights))
	}
	if err := m.checkIDs(tb.IDs); err != nil {
		return err
	}
	for i, t := range tb.Targets {
		if (tb.Weights == nil || tb.Weights[i] != 0) && (t < 0 || int(t) >= m.Config.Vocab) {
			return fmt.Errorf("target %d at row %d is outside the vocabulary of %d", t, i, m.Config.Vocab)
		}
	}
	return nil
}

// trainForward runs the batch through the model keeping every activation
// backward needs; the logits are left in p.logits.
func (m *Model) trainForward(tb TokenBatch) *trainPass {
	b, c := m.Backend, m.Config
	p := m.pass(tb.B, tb.T)
	rope := m.rope()
	attn := m.attention(tb.B, tb.T, tb.T, tb.T)
	b.Embedding(p.layers[0].xIn, m.Embed, tb.IDs)
	for li := range m.Layers {
		l, a := &m.Layers[li], &p.layers[li]
		b.RMSNorm(a.h1, a.xIn, l.AttnNorm, c.NormEps)
		l.Q.Forward(b, a.q, a.h1)
		l.K.Forward(b, a.k, a.h1)
		l.V.Forward(b, a.v, a.h1)
		b.ApplyRoPE(a.q, p.pos, rope)
		b.ApplyRoPE(a.k, p.pos, rope)
		b.Attention(a.att, a.q, a.k, a.v, attn)
		l.O.Forward(b, p.o, a.att)
		b.Add(a.xMid, a.xIn, p.o)

		b.RMSNorm(a.h2, a.xMid, l.FFNNorm, c.NormEps)
		l.Gate.Forward(b, a.gate, a.h2)
		l.Up.Forward(b, a.up, a.h2)
		b.SiLUMul(a.act, a.gate, a.up)
		l.Down.Forward(b, p.down, a.act)
		next := p.xOut
		if li+1 < len(m.Layers) {
			next = p.layers[li+1].xIn
		}
		b.Add(next, a.xMid, p.down)
	}
	b.RMSNorm(p.hF, p.xOut, m.OutNorm, c.NormEps)
	m.Output.Forward(b, p.logits, p.hF)
	return p
}

// BatchLoss returns the weighted sum of next-token negative log-likelihoods
// of the batch, without gradients. A diverged model gives NaN or Inf, not an
// error: errors are for invalid batches.
func (m *Model) BatchLoss(tb TokenBatch) (float64, error) {
	if err := m.checkBatch(tb); err != nil {
		return 0, fmt.Errorf("loss: %w", err)
	}
	p := m.trainForward(tb)
	return m.Backend.CrossEntropy(nil, p.logits, tb.Targets, tb.Weights, 0), nil
}

// LossAndGrad runs forward and backward on one batch. It returns the
// weighted sum of next-token negative log-likelihoods and accumulates
// gradScale times its gradient into the gradient buffers of the trainable
// parameters that hooks (adapters) own. Frozen weights get no gradient.
// A NaN or Inf loss is returned as it is, with no gradient accumulated.
func (m *Model) LossAndGrad(tb TokenBatch, gradScale float32) (float64, error) {
	if err := m.checkBatch(tb); err != nil {
		return 0, fmt.Errorf("train: %w", err)
	}
	b, c := m.Backend, m.Config
	p := m.trainForward(tb)
	loss := b.CrossEntropy(p.dlogits, p.logits, tb.Targets, tb.Weights, gradScale)
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		// Backward would only spread the NaN; the caller sees the loss and
		// stops (the trainer keeps its last good checkpoint).
		return loss, nil
	}
	zero := func(buf backend.Buffer) { b.Scale(buf, buf, 0) }

	// Head: logits = lm_head(norm(xOut)).
	zero(p.dh)
	m.Output.Backward(b, p.dh, p.dlogits, p.hF)
	zero(p.dx)
	b.RMSNormBackward(p.dx, nil, p.dh, p.xOut, m.OutNorm, c.NormEps)

	rope := m.rope()
	attn := m.attention(tb.B, tb.T, tb.T, tb.T)
	for li := len(m.Layers) - 1; li >= 0; li-- {
		l, a := &m.Layers[li], &p.layers[li]
		// x_out = x_mid + down(silu(gate(h2)) * up(h2)), h2 = norm(x_mid)
		zero(p.dact)
		l.Down.Backward(b, p.dact, p.dx, a.act)
		b.SiLUMulBackward(p.dgate, p.dup, p.dact, a.gate, a.up)
		zero(p.dh)
		l.Gate.Backward(b, p.dh, p.dgate, a.h2)
		l.Up.Backward(b, p.dh, p.dup, a.h2)
		b.RMSNormBackward(p.dx, nil, p.dh, a.xMid, l.FFNNorm, c.NormEps)

		// x_mid = x_in + o(attention(rope(q(h1)), rope(k(h1)), v(h1))), h1 = norm(x_in)
		zero(p.datt)
		l.O.Backward(b, p.datt, p.dx, a.att)
		zero(p.dq)
		zero(p.dk)
		zero(p.dv)
		b.AttentionBackward(p.dq, p.dk, p.dv, p.datt, a.q, a.k, a.v, attn)
		b.ApplyRoPEBackward(p.dq, p.pos, rope)
		b.ApplyRoPEBackward(p.dk, p.pos, rope)
		// The embeddings are frozen: below layer 0 no input gradient is needed.
		var dh backend.Buffer
		if li > 0 {
			dh = p.dh
			zero(dh)
		}
		l.Q.Backward(b, dh, p.dq, a.h1)
		l.K.Backward(b, dh, p.dk, a.h1)
		l.V.Backward(b, dh, p.dv, a.h1)
		if li > 0 {
			b.RMSNormBackward(p.dx, nil, p.dh, a.xIn, l.AttnNorm, c.NormEps)
		}
	}
	return loss, nil
}
