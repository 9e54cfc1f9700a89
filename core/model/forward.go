package model

import (
	"fmt"

	"github.com/graft-ml/graft/core/backend"
)

// Cache is a key/value cache for one sequence: what generation appends to
// token by token.
type Cache struct {
	K, V []backend.Buffer // per layer, [Capacity, KVDim]
	// Len is the number of positions already in the cache, including a
	// prefix-tuning prefix and prompt-tuning virtual tokens.
	Len      int
	Capacity int
	// promptPending is set until the first pass has prepended the virtual
	// tokens of a PromptHook.
	promptPending bool
}

// NewCache allocates a cache for up to capacity real tokens (0 means the
// whole context) plus the positions hooks reserve, at most the model's
// context in all. A prefix-tuning prefix is written into it at once.
func (m *Model) NewCache(capacity int) *Cache {
	total := capacity + m.reserved()
	if capacity <= 0 || total > m.Config.Context {
		total = m.Config.Context
	}
	c := &Cache{Capacity: total, promptPending: m.Prompt != nil}
	kvDim := m.Config.KVDim()
	for range m.Layers {
		c.K = append(c.K, m.Backend.Zeros(total, kvDim))
		c.V = append(c.V, m.Backend.Zeros(total, kvDim))
	}
	if m.Prefix != nil {
		P := min(m.Prefix.Len(), total)
		for li := range m.Layers {
			m.Prefix.Forward(m.Backend, li, m.Backend.View(c.K[li], 0, P, kvDim), m.Backend.View(c.V[li], 0, P, kvDim))
		}
		c.Len = P
	}
	return c
}

// fits reports whether n more tokens (plus pending virtual tokens) fit.
func (c *Cache) fits(n int, m *Model) bool {
	if c.promptPending {
		n += m.Prompt.Virtual()
	}
	return c.Len+n <= c.Capacity
}

// FreeCache releases a cache's buffers.
func (m *Model) FreeCache(c *Cache) {
	for i := range c.K {
		m.Backend.Free(c.K[i])
		m.Backend.Free(c.V[i])
	}
	c.K, c.V = nil, nil
}

// scratch holds the activations of one pass over rows tokens.
type scratch struct {
	rows                  int
	x, h, q, k, v, att, o backend.Buffer
	gate, up, act, down   backend.Buffer
	logits                backend.Buffer
	logitRows             int
	// qn, kn hold q and k after their per-head norms (QKNorm) and post a
	// sublayer's output after its post-norm (PostNorms); nil otherwise.
	qn, kn, post backend.Buffer
}

func (m *Model) newScratch(rows, logitRows int) *scratch {
	b, c := m.Backend, m.Config
	s := &scratch{
		rows: rows,
		x:    b.Zeros(rows, c.Dim), h: b.Zeros(rows, c.Dim),
		q: b.Zeros(rows, c.QDim()), k: b.Zeros(rows, c.KVDim()), v: b.Zeros(rows, c.KVDim()),
		att: b.Zeros(rows, c.QDim()), o: b.Zeros(rows, c.Dim),
		gate: b.Zeros(rows, c.FFN), up: b.Zeros(rows, c.FFN), act: b.Zeros(rows, c.FFN),
		down:   b.Zeros(rows, c.Dim),
		logits: b.Zeros(logitRows, c.Vocab), logitRows: logitRows,
	}
	if c.QKNorm {
		s.qn, s.kn = b.Zeros(rows, c.QDim()), b.Zeros(rows, c.KVDim())
	}
	if c.PostNorms {
		s.post = b.Zeros(rows, c.Dim)
	}
	return s
}

func (s *scratch) free(b backend.Backend) {
	for _, buf := range []backend.Buffer{s.x, s.h, s.q, s.k, s.v, s.att, s.o, s.gate, s.up, s.act, s.down, s.logits, s.qn, s.kn, s.post} {
		if buf != nil {
			b.Free(buf)
		}
	}
}

// Forward runs ids through the model, appending them to the cache, and
// returns the logits. With allLogits the result is [len(ids), Vocab];
// otherwise [1, Vocab] for the last token only (what sampling needs).
// The logits are copied to the host.
func (m *Model) Forward(c *Cache, ids []int32, allLogits bool) ([]float32, error) {
	s, err := m.forward(c, ids, allLogits)
	if err != nil {
		return nil, err
	}
	defer s.free(m.Backend)
	out := make([]float32, s.logitRows*m.Config.Vocab)
	if err := m.Backend.Read(s.logits, 0, out); err != nil {
		return nil, fmt.Errorf("forward: reading logits: %w", err)
	}
	return out, nil
}

// forward runs the pass and returns its scratch, whose logits buffer holds
// the result (one row per id with allLogits, else the last); the caller
// frees it.
func (m *Model) forward(c *Cache, ids []int32, allLogits bool) (*scratch, error) {
	if len(ids) == 0 {
		return nil, fmt.Errorf("forward: no tokens")
	}
	if err := m.checkIDs(ids); err != nil {
		return nil, fmt.Errorf("forward: %w", err)
	}
	virtual := 0
	if c.promptPending {
		virtual = m.Prompt.Virtual()
	}
	T := virtual + len(ids)
	if c.Len+T > c.Capacity {
		return nil, fmt.Errorf("forward: %d cached + %d new positions exceed the cache capacity of %d", c.Len, T, c.Capacity)
	}
	b, cfg := m.Backend, m.Config
	logitRows := 1
	if allLogits {
		logitRows = len(ids)
	}
	s := m.newScratch(T, logitRows)

	pos := make([]int32, T)
	for i := range pos {
		pos[i] = int32(c.Len + i)
	}
	if virtual > 0 {
		m.Prompt.Forward(b, b.View(s.x, 0, virtual, cfg.Dim))
	}
	tokens := b.View(s.x, virtual*cfg.Dim, len(ids), cfg.Dim)
	b.Embedding(tokens, m.Embed, ids)
	m.scaleEmbedding(tokens)
	kvDim := cfg.KVDim()
	for li := range m.Layers {
		l := &m.Layers[li]
		rope := m.rope(li)
		b.RMSNorm(s.h, s.x, l.AttnNorm, cfg.NormEps)
		l.Q.Forward(b, s.q, s.h)
		l.K.Forward(b, s.k, s.h)
		l.V.Forward(b, s.v, s.h)
		q, k := s.q, s.k
		if cfg.QKNorm {
			m.headNorm(s.qn, q, l.QNorm)
			m.headNorm(s.kn, k, l.KNorm)
			q, k = s.qn, s.kn
		}
		b.ApplyRoPE(q, pos, rope)
		b.ApplyRoPE(k, pos, rope)
		b.Copy(b.View(c.K[li], c.Len*kvDim, T, kvDim), k)
		b.Copy(b.View(c.V[li], c.Len*kvDim, T, kvDim), s.v)
		b.Attention(s.att, q, c.K[li], c.V[li], m.attention(li, 1, T, c.Len+T, c.Capacity))
		l.O.Forward(b, s.o, s.att)
		// s.h is free until the next norm: it holds a hook's output.
		b.Add(s.x, s.x, applyBlock(b, l.AttnOut, s.h, m.postNorm(s.post, s.o, l.PostAttnNorm)))

		b.RMSNorm(s.h, s.x, l.FFNNorm, cfg.NormEps)
		l.Gate.Forward(b, s.gate, s.h)
		l.Up.Forward(b, s.up, s.h)
		m.gatedAct(s.act, s.gate, s.up)
		l.Down.Forward(b, s.down, s.act)
		b.Add(s.x, s.x, applyBlock(b, l.FFNOut, s.h, m.postNorm(s.post, s.down, l.PostFFNNorm)))
	}
	first := T - logitRows
	last := b.View(s.x, first*cfg.Dim, logitRows, cfg.Dim)
	normed := b.View(s.h, 0, logitRows, cfg.Dim)
	b.RMSNorm(normed, last, m.OutNorm, cfg.NormEps)
	m.Output.Forward(b, s.logits, normed)
	c.Len += T
	c.promptPending = false
	return s, nil
}

// applyBlock runs a sublayer output x through hook into dst, or returns x
// unchanged when there is no hook.
func applyBlock(b backend.Backend, hook BlockHook, dst, x backend.Buffer) backend.Buffer {
	if hook == nil {
		return x
	}
	hook.Forward(b, dst, x)
	return dst
}

// scaleEmbedding multiplies token embeddings by the model's EmbedScale
// (Gemma's √Dim), in place.
func (m *Model) scaleEmbedding(x backend.Buffer) {
	if s := m.Config.EmbedScale; s != 0 && s != 1 {
		m.Backend.Scale(x, x, s)
	}
}

// headNorm sets dst to x with each head RMS-normalized by w [HeadDim]: the
// q_norm and k_norm of Qwen3 and Gemma 3. A row of heads is viewed as
// that many rows of one head.
func (m *Model) headNorm(dst, x, w backend.Buffer) {
	b, c := m.Backend, m.Config
	heads := int(x.Shape().Numel()) / c.HeadDim
	b.RMSNorm(b.View(dst, 0, heads, c.HeadDim), b.View(x, 0, heads, c.HeadDim), w, c.NormEps)
}

// postNorm returns a sublayer's output x after the post-norm w, computed
// into dst, or x itself when the model has no post-norms.
func (m *Model) postNorm(dst, x, w backend.Buffer) backend.Buffer {
	if w == nil {
		return x
	}
	m.Backend.RMSNorm(dst, x, w, m.Config.NormEps)
	return dst
}

// gatedAct sets dst = act(gate) * up with the model's FFN activation.
func (m *Model) gatedAct(dst, gate, up backend.Buffer) {
	if m.Config.Act == ActGELUTanh {
		m.Backend.GELUTanhMul(dst, gate, up)
		return
	}
	m.Backend.SiLUMul(dst, gate, up)
}

// gatedActBackward is gatedAct's backward.
func (m *Model) gatedActBackward(dgate, dup, dy, gate, up backend.Buffer) {
	if m.Config.Act == ActGELUTanh {
		m.Backend.GELUTanhMulBackward(dgate, dup, dy, gate, up)
		return
	}
	m.Backend.SiLUMulBackward(dgate, dup, dy, gate, up)
}
