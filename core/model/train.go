package model

import (
	"fmt"
	"math"

	"github.com/graft-ml/graft/core/backend"
)

// layerActs holds what one decoder block's backward needs from its forward.
type layerActs struct {
	xIn, h1, q, k, v, att, o, xMid, h2, gate, up, act, down backend.Buffer
	// kAll, vAll hold each sequence's prefix keys/values followed by its
	// tokens' when a PrefixHook is set; nil otherwise.
	kAll, vAll backend.Buffer
}

// trainPass is the workspace of a training forward/backward over B
// sequences. It is kept between steps of the same shape so steady-state
// training does not allocate backend memory.
type trainPass struct {
	B, T    int // batch and real tokens per sequence
	virtual int // prompt-tuning tokens before each sequence
	prefix  int // prefix-tuning positions before each sequence
	rows    int // rows per sequence: virtual + T
	pos     []int32
	targets []int32   // per row, virtual rows included
	weights []float32 // per row; 0 on virtual rows
	layers  []layerActs
	xOut    backend.Buffer // final residual stream
	hF      backend.Buffer // after the final norm
	logits  backend.Buffer
	// gradient scratch
	dlogits, dx, dh, dq, dk, dv, datt, dact, dgate, dup, dhook backend.Buffer
	dkAll, dvAll, pk, pv, dpk, dpv, dEmb, hookOut              backend.Buffer
}

func (m *Model) newTrainPass(B, T, virtual, prefix int) *trainPass {
	b, c := m.Backend, m.Config
	rows := virtual + T
	R := B * rows
	p := &trainPass{B: B, T: T, virtual: virtual, prefix: prefix, rows: rows, pos: make([]int32, R),
		targets: make([]int32, R), weights: make([]float32, R)}
	for r := range p.pos {
		p.pos[r] = int32(prefix + r%rows)
	}
	z := func(n, cols int) backend.Buffer { return b.Zeros(n, cols) }
	keys := B * (prefix + rows)
	p.layers = make([]layerActs, c.Layers)
	for i := range p.layers {
		a := layerActs{
			xIn: z(R, c.Dim), h1: z(R, c.Dim), q: z(R, c.QDim()), k: z(R, c.KVDim()), v: z(R, c.KVDim()),
			att: z(R, c.QDim()), o: z(R, c.Dim), xMid: z(R, c.Dim), h2: z(R, c.Dim),
			gate: z(R, c.FFN), up: z(R, c.FFN), act: z(R, c.FFN), down: z(R, c.Dim),
		}
		if prefix > 0 {
			a.kAll, a.vAll = z(keys, c.KVDim()), z(keys, c.KVDim())
		}
		p.layers[i] = a
	}
	p.xOut, p.hF, p.logits = z(R, c.Dim), z(R, c.Dim), z(R, c.Vocab)
	p.dlogits, p.dx, p.dh, p.dhook, p.hookOut = z(R, c.Vocab), z(R, c.Dim), z(R, c.Dim), z(R, c.Dim), z(R, c.Dim)
	p.dq, p.dk, p.dv, p.datt = z(R, c.QDim()), z(R, c.KVDim()), z(R, c.KVDim()), z(R, c.QDim())
	p.dact, p.dgate, p.dup = z(R, c.FFN), z(R, c.FFN), z(R, c.FFN)
	if prefix > 0 {
		p.dkAll, p.dvAll = z(keys, c.KVDim()), z(keys, c.KVDim())
		p.pk, p.pv, p.dpk, p.dpv = z(prefix, c.KVDim()), z(prefix, c.KVDim()), z(prefix, c.KVDim()), z(prefix, c.KVDim())
	}
	if virtual > 0 {
		p.dEmb = z(virtual, c.Dim)
	}
	return p
}

func (p *trainPass) buffers() []backend.Buffer {
	out := []backend.Buffer{p.xOut, p.hF, p.logits, p.dlogits, p.dx, p.dh, p.dq, p.dk, p.dv, p.datt, p.dact, p.dgate, p.dup, p.dhook, p.hookOut,
		p.dkAll, p.dvAll, p.pk, p.pv, p.dpk, p.dpv, p.dEmb}
	for _, l := range p.layers {
		out = append(out, l.xIn, l.h1, l.q, l.k, l.v, l.att, l.o, l.xMid, l.h2, l.gate, l.up, l.act, l.down, l.kAll, l.vAll)
	}
	return out
}

// pass returns the cached workspace for a B x T batch.
func (m *Model) pass(B, T int) *trainPass {
	virtual, prefix := 0, 0
	if m.Prompt != nil {
		virtual = m.Prompt.Virtual()
	}
	if m.Prefix != nil {
		prefix = m.Prefix.Len()
	}
	if p := m.train; p != nil && p.B == B && p.T == T && p.virtual == virtual && p.prefix == prefix {
		return p
	}
	m.FreeTrainingState()
	m.train = m.newTrainPass(B, T, virtual, prefix)
	return m.train
}

// FreeTrainingState releases the activation workspace kept between
// training steps.
func (m *Model) FreeTrainingState() {
	if m.train == nil {
		return
	}
	for _, buf := range m.train.buffers() {
		if buf != nil {
			m.Backend.Free(buf)
		}
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
	case tb.T+m.reserved() > m.Config.Context:
		return fmt.Errorf("sequence length %d (+%d virtual/prefix positions) exceeds the context of %d", tb.T, m.reserved(), m.Config.Context)
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
// backward needs; the logits are left in p.logits, one row per position
// (virtual positions included, with weight 0 in p.weights).
func (m *Model) trainForward(tb TokenBatch) *trainPass {
	b, c := m.Backend, m.Config
	p := m.pass(tb.B, tb.T)
	dim, kvDim := c.Dim, c.KVDim()
	for s := 0; s < tb.B; s++ {
		row := s * p.rows
		for t := 0; t < p.rows; t++ {
			r := row + t
			if t < p.virtual {
				p.targets[r], p.weights[r] = 0, 0
				continue
			}
			i := s*tb.T + t - p.virtual
			p.targets[r], p.weights[r] = tb.Targets[i], 1
			if tb.Weights != nil {
				p.weights[r] = tb.Weights[i]
			}
		}
	}
	x0 := p.layers[0].xIn
	if p.virtual == 0 {
		b.Embedding(x0, m.Embed, tb.IDs)
	} else {
		for s := 0; s < tb.B; s++ {
			m.Prompt.Forward(b, b.View(x0, s*p.rows*dim, p.virtual, dim))
			b.Embedding(b.View(x0, (s*p.rows+p.virtual)*dim, tb.T, dim), m.Embed, tb.IDs[s*tb.T:(s+1)*tb.T])
		}
	}
	rope := m.rope()
	keys := p.prefix + p.rows
	attn := m.attention(tb.B, p.rows, keys, keys)
	for li := range m.Layers {
		l, a := &m.Layers[li], &p.layers[li]
		b.RMSNorm(a.h1, a.xIn, l.AttnNorm, c.NormEps)
		l.Q.Forward(b, a.q, a.h1)
		l.K.Forward(b, a.k, a.h1)
		l.V.Forward(b, a.v, a.h1)
		b.ApplyRoPE(a.q, p.pos, rope)
		b.ApplyRoPE(a.k, p.pos, rope)
		k, v := a.k, a.v
		if p.prefix > 0 {
			// Lay out each sequence's keys as its prefix, then its tokens.
			m.Prefix.Forward(b, li, p.pk, p.pv)
			for s := 0; s < tb.B; s++ {
				b.Copy(b.View(a.kAll, s*keys*kvDim, p.prefix, kvDim), p.pk)
				b.Copy(b.View(a.vAll, s*keys*kvDim, p.prefix, kvDim), p.pv)
				b.Copy(b.View(a.kAll, (s*keys+p.prefix)*kvDim, p.rows, kvDim), b.View(a.k, s*p.rows*kvDim, p.rows, kvDim))
				b.Copy(b.View(a.vAll, (s*keys+p.prefix)*kvDim, p.rows, kvDim), b.View(a.v, s*p.rows*kvDim, p.rows, kvDim))
			}
			k, v = a.kAll, a.vAll
		}
		b.Attention(a.att, a.q, k, v, attn)
		l.O.Forward(b, a.o, a.att)
		b.Add(a.xMid, a.xIn, applyBlock(b, l.AttnOut, p.hookOut, a.o))

		b.RMSNorm(a.h2, a.xMid, l.FFNNorm, c.NormEps)
		l.Gate.Forward(b, a.gate, a.h2)
		l.Up.Forward(b, a.up, a.h2)
		b.SiLUMul(a.act, a.gate, a.up)
		l.Down.Forward(b, a.down, a.act)
		next := p.xOut
		if li+1 < len(m.Layers) {
			next = p.layers[li+1].xIn
		}
		b.Add(next, a.xMid, applyBlock(b, l.FFNOut, p.hookOut, a.down))
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
	return m.Backend.CrossEntropy(nil, p.logits, p.targets, p.weights, 0), nil
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
	loss := b.CrossEntropy(p.dlogits, p.logits, p.targets, p.weights, gradScale)
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		// Backward would only spread the NaN; the caller sees the loss and
		// stops (the trainer keeps its last good checkpoint).
		return loss, nil
	}
	zero := func(buf backend.Buffer) { b.Scale(buf, buf, 0) }
	dim, kvDim := c.Dim, c.KVDim()

	// Head: logits = lm_head(norm(xOut)).
	zero(p.dh)
	m.Output.Backward(b, p.dh, p.dlogits, p.hF)
	zero(p.dx)
	b.RMSNormBackward(p.dx, nil, p.dh, p.xOut, m.OutNorm, c.NormEps)

	rope := m.rope()
	keys := p.prefix + p.rows
	attn := m.attention(tb.B, p.rows, keys, keys)
	// Below layer 0 an input gradient is needed only for virtual tokens.
	needInput := func(li int) bool { return li > 0 || p.virtual > 0 }
	for li := len(m.Layers) - 1; li >= 0; li-- {
		l, a := &m.Layers[li], &p.layers[li]
		// x_out = x_mid + ffnOut(down(silu(gate(h2)) * up(h2))), h2 = norm(x_mid)
		dDown := blockBackward(b, l.FFNOut, p.dhook, p.dx, a.down)
		zero(p.dact)
		l.Down.Backward(b, p.dact, dDown, a.act)
		b.SiLUMulBackward(p.dgate, p.dup, p.dact, a.gate, a.up)
		zero(p.dh)
		l.Gate.Backward(b, p.dh, p.dgate, a.h2)
		l.Up.Backward(b, p.dh, p.dup, a.h2)
		b.RMSNormBackward(p.dx, nil, p.dh, a.xMid, l.FFNNorm, c.NormEps)

		// x_mid = x_in + attnOut(o(attention(rope(q(h1)), rope(k(h1)), v(h1)))), h1 = norm(x_in)
		dO := blockBackward(b, l.AttnOut, p.dhook, p.dx, a.o)
		zero(p.datt)
		l.O.Backward(b, p.datt, dO, a.att)
		zero(p.dq)
		if p.prefix > 0 {
			zero(p.dkAll)
			zero(p.dvAll)
			b.AttentionBackward(p.dq, p.dkAll, p.dvAll, p.datt, a.q, a.kAll, a.vAll, attn)
			zero(p.dpk)
			zero(p.dpv)
			for s := 0; s < tb.B; s++ {
				b.Add(p.dpk, p.dpk, b.View(p.dkAll, s*keys*kvDim, p.prefix, kvDim))
				b.Add(p.dpv, p.dpv, b.View(p.dvAll, s*keys*kvDim, p.prefix, kvDim))
				b.Copy(b.View(p.dk, s*p.rows*kvDim, p.rows, kvDim), b.View(p.dkAll, (s*keys+p.prefix)*kvDim, p.rows, kvDim))
				b.Copy(b.View(p.dv, s*p.rows*kvDim, p.rows, kvDim), b.View(p.dvAll, (s*keys+p.prefix)*kvDim, p.rows, kvDim))
			}
			m.Prefix.Backward(b, li, p.dpk, p.dpv)
		} else {
			zero(p.dk)
			zero(p.dv)
			b.AttentionBackward(p.dq, p.dk, p.dv, p.datt, a.q, a.k, a.v, attn)
		}
		b.ApplyRoPEBackward(p.dq, p.pos, rope)
		b.ApplyRoPEBackward(p.dk, p.pos, rope)
		var dh backend.Buffer
		if needInput(li) {
			dh = p.dh
			zero(dh)
		}
		l.Q.Backward(b, dh, p.dq, a.h1)
		l.K.Backward(b, dh, p.dk, a.h1)
		l.V.Backward(b, dh, p.dv, a.h1)
		if needInput(li) {
			b.RMSNormBackward(p.dx, nil, p.dh, a.xIn, l.AttnNorm, c.NormEps)
		}
	}
	if p.virtual > 0 {
		// p.dx is the gradient of the embeddings; the virtual rows of every
		// sequence share the prompt's parameters.
		zero(p.dEmb)
		for s := 0; s < tb.B; s++ {
			b.Add(p.dEmb, p.dEmb, b.View(p.dx, s*p.rows*dim, p.virtual, dim))
		}
		m.Prompt.Backward(b, p.dEmb)
	}
	return loss, nil
}

// blockBackward returns the gradient of a sublayer's output given dy, the
// gradient after its block hook: dy itself without a hook, else the hook's
// input gradient, computed into scratch.
func blockBackward(b backend.Backend, hook BlockHook, scratch, dy, x backend.Buffer) backend.Buffer {
	if hook == nil {
		return dy
	}
	b.Scale(scratch, scratch, 0)
	hook.Backward(b, scratch, dy, x)
	return scratch
}
