package model

import "github.com/graft-ml/graft/core/backend"

// ForwardReplayer is implemented by hooks whose Forward draws random
// numbers, as dropout does. With Model.Checkpointing a block's forward runs
// twice in a step: once on the way up, and again just before the block's
// backward, from the block's saved input. Before the second run the model
// calls ReplayForward on each of the block's hooks that implement it; the
// hook's next Forward must then reuse the draws of its previous Forward, so
// that the recomputed activations, and the gradients, belong to the loss
// the step reported. A random hook that does not implement it gets fresh
// draws, which makes its checkpointed gradients those of another mask.
type ForwardReplayer interface {
	ReplayForward()
}

// replayHooks asks block li's hooks to repeat their last forward's random
// draws in the recomputation that follows.
func (m *Model) replayHooks(li int) {
	l := &m.Layers[li]
	for _, lin := range [...]*Linear{l.Q, l.K, l.V, l.O, l.Gate, l.Up, l.Down} {
		for _, h := range lin.hooks {
			if r, ok := h.(ForwardReplayer); ok {
				r.ReplayForward()
			}
		}
	}
	for _, h := range [...]BlockHook{l.AttnOut, l.FFNOut} {
		if r, ok := h.(ForwardReplayer); ok {
			r.ReplayForward()
		}
	}
}

// blockForward runs decoder block li from p.xIn[li], recording its
// activations in p.acts(li), and writes its output into next; a nil next
// skips only the final residual add (a recomputation for backward, whose
// output is already known). The layer's prefix keys/values must already
// be in p.pkLayer[li], p.pvLayer[li].
func (m *Model) blockForward(p *trainPass, li int, next backend.Buffer) {
	b, c := m.Backend, m.Config
	l, a, xIn := &m.Layers[li], p.acts(li), p.xIn[li]
	rope := m.rope(li)
	keys := p.prefix + p.rows
	b.RMSNorm(a.h1, xIn, l.AttnNorm, c.NormEps)
	if c.QKNorm {
		l.Q.Forward(b, a.qRaw, a.h1)
		l.K.Forward(b, a.kRaw, a.h1)
		b.RMSNorm(a.qH, a.qRawH, l.QNorm, c.NormEps)
		b.RMSNorm(a.kH, a.kRawH, l.KNorm, c.NormEps)
	} else {
		l.Q.Forward(b, a.q, a.h1)
		l.K.Forward(b, a.k, a.h1)
	}
	l.V.Forward(b, a.v, a.h1)
	b.ApplyRoPE(a.q, p.pos, rope)
	b.ApplyRoPE(a.k, p.pos, rope)
	k, v := a.k, a.v
	if p.prefix > 0 {
		// Lay out each sequence's keys as its prefix, then its tokens.
		for s := 0; s < p.B; s++ {
			b.Copy(a.kPre[s], p.pkLayer[li])
			b.Copy(a.vPre[s], p.pvLayer[li])
			b.Copy(a.kTok[s], a.kSeq[s])
			b.Copy(a.vTok[s], a.vSeq[s])
		}
		k, v = a.kAll, a.vAll
	}
	b.Attention(a.att, a.q, k, v, m.attention(li, p.B, p.rows, keys, keys))
	l.O.Forward(b, a.o, a.att)
	b.Add(a.xMid, xIn, applyBlock(b, l.AttnOut, p.hookOut, m.postNorm(a.oN, a.o, l.PostAttnNorm)))

	b.RMSNorm(a.h2, a.xMid, l.FFNNorm, c.NormEps)
	l.Gate.Forward(b, a.gate, a.h2)
	l.Up.Forward(b, a.up, a.h2)
	m.gatedAct(a.act, a.gate, a.up)
	l.Down.Forward(b, a.down, a.act)
	out := applyBlock(b, l.FFNOut, p.hookOut, m.postNorm(a.downN, a.down, l.PostFFNNorm))
	if next != nil {
		b.Add(next, a.xMid, out)
	}
}

// postNormGrad takes dy, the gradient of a sublayer's output after its
// post-norm w (computed from x), to the gradient of x, in p.dpost; without
// a post-norm it is dy itself.
func (m *Model) postNormGrad(p *trainPass, dy, x, w backend.Buffer) backend.Buffer {
	if w == nil {
		return dy
	}
	zero(m.Backend, p.dpost)
	m.Backend.RMSNormBackward(p.dpost, nil, dy, x, w, m.Config.NormEps)
	return p.dpost
}

// blockBackward takes p.dx, the gradient of block li's output, to the
// gradient of its input (left in p.dx), accumulating the hooks' parameter
// gradients on the way. Below layer 0 an input gradient is needed only for
// virtual tokens, so layer 0 skips it otherwise.
func (m *Model) blockBackward(p *trainPass, li int) {
	b, c := m.Backend, m.Config
	l, a, xIn := &m.Layers[li], p.acts(li), p.xIn[li]
	rope := m.rope(li)
	keys := p.prefix + p.rows
	attn := m.attention(li, p.B, p.rows, keys, keys)

	// x_out = x_mid + ffnOut(post(down(act(gate(h2)) * up(h2)))), h2 = norm(x_mid)
	dDown := hookGrad(b, l.FFNOut, p.dhook, p.dx, postOut(a.downN, a.down))
	dDown = m.postNormGrad(p, dDown, a.down, l.PostFFNNorm)
	zero(b, p.dact)
	l.Down.Backward(b, p.dact, dDown, a.act)
	m.gatedActBackward(p.dgate, p.dup, p.dact, a.gate, a.up)
	zero(b, p.dh)
	l.Gate.Backward(b, p.dh, p.dgate, a.h2)
	l.Up.Backward(b, p.dh, p.dup, a.h2)
	b.RMSNormBackward(p.dx, nil, p.dh, a.xMid, l.FFNNorm, c.NormEps)

	// x_mid = x_in + attnOut(post(o(attention(rope(qn(q(h1))), rope(kn(k(h1))), v(h1))))), h1 = norm(x_in)
	dO := hookGrad(b, l.AttnOut, p.dhook, p.dx, postOut(a.oN, a.o))
	dO = m.postNormGrad(p, dO, a.o, l.PostAttnNorm)
	zero(b, p.datt)
	l.O.Backward(b, p.datt, dO, a.att)
	zero(b, p.dq)
	if p.prefix > 0 {
		zero(b, p.dkAll)
		zero(b, p.dvAll)
		b.AttentionBackward(p.dq, p.dkAll, p.dvAll, p.datt, a.q, a.kAll, a.vAll, attn)
		zero(b, p.dpk)
		zero(b, p.dpv)
		for s := 0; s < p.B; s++ {
			b.Add(p.dpk, p.dpk, p.dkPre[s])
			b.Add(p.dpv, p.dpv, p.dvPre[s])
			b.Copy(p.dkSeq[s], p.dkTok[s])
			b.Copy(p.dvSeq[s], p.dvTok[s])
		}
		m.Prefix.Backward(b, li, p.dpk, p.dpv)
	} else {
		zero(b, p.dk)
		zero(b, p.dv)
		b.AttentionBackward(p.dq, p.dk, p.dv, p.datt, a.q, a.k, a.v, attn)
	}
	b.ApplyRoPEBackward(p.dq, p.pos, rope)
	b.ApplyRoPEBackward(p.dk, p.pos, rope)
	dq, dk := p.dq, p.dk
	if c.QKNorm {
		zero(b, p.dqRaw)
		zero(b, p.dkRaw)
		b.RMSNormBackward(p.dqRawH, nil, p.dqH, a.qRawH, l.QNorm, c.NormEps)
		b.RMSNormBackward(p.dkRawH, nil, p.dkH, a.kRawH, l.KNorm, c.NormEps)
		dq, dk = p.dqRaw, p.dkRaw
	}
	needInput := li > 0 || p.virtual > 0
	var dh backend.Buffer
	if needInput {
		dh = p.dh
		zero(b, dh)
	}
	l.Q.Backward(b, dh, dq, a.h1)
	l.K.Backward(b, dh, dk, a.h1)
	l.V.Backward(b, dh, p.dv, a.h1)
	if needInput {
		b.RMSNormBackward(p.dx, nil, p.dh, xIn, l.AttnNorm, c.NormEps)
	}
}

// postOut is a sublayer's output as its block hook saw it: after the
// post-norm when there is one.
func postOut(normed, raw backend.Buffer) backend.Buffer {
	if normed != nil {
		return normed
	}
	return raw
}
