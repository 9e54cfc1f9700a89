package model

import (
	"fmt"

	"github.com/graft-ml/graft/core/backend"
)

// Cache is a key/value cache for one sequence: what generation appends to
// token by token.
type Cache struct {
	K, V []backend.Buffer // per layer, [Capacity, KVDim]
	// Len is the number of positions already in the cache.
	Len      int
	Capacity int
}

// NewCache allocates a cache for up to capacity positions (at most the
// model's context; 0 means the whole context).
func (m *Model) NewCache(capacity int) *Cache {
	if capacity <= 0 || capacity > m.Config.Context {
		capacity = m.Config.Context
	}
	c := &Cache{Capacity: capacity}
	for range m.Layers {
		c.K = append(c.K, m.Backend.Zeros(capacity, m.Config.KVDim()))
		c.V = append(c.V, m.Backend.Zeros(capacity, m.Config.KVDim()))
	}
	return c
}

// Free releases the cache's buffers.
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
}

func (m *Model) newScratch(rows, logitRows int) *scratch {
	b, c := m.Backend, m.Config
	return &scratch{
		rows: rows,
		x:    b.Zeros(rows, c.Dim), h: b.Zeros(rows, c.Dim),
		q: b.Zeros(rows, c.QDim()), k: b.Zeros(rows, c.KVDim()), v: b.Zeros(rows, c.KVDim()),
		att: b.Zeros(rows, c.QDim()), o: b.Zeros(rows, c.Dim),
		gate: b.Zeros(rows, c.FFN), up: b.Zeros(rows, c.FFN), act: b.Zeros(rows, c.FFN),
		down:   b.Zeros(rows, c.Dim),
		logits: b.Zeros(logitRows, c.Vocab), logitRows: logitRows,
	}
}

func (s *scratch) free(b backend.Backend) {
	for _, buf := range []backend.Buffer{s.x, s.h, s.q, s.k, s.v, s.att, s.o, s.gate, s.up, s.act, s.down, s.logits} {
		b.Free(buf)
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
// the result; the caller frees it.
func (m *Model) forward(c *Cache, ids []int32, allLogits bool) (*scratch, error) {
	if len(ids) == 0 {
		return nil, fmt.Errorf("forward: no tokens")
	}
	if err := m.checkIDs(ids); err != nil {
		return nil, fmt.Errorf("forward: %w", err)
	}
	if c.Len+len(ids) > c.Capacity {
		return nil, fmt.Errorf("forward: %d cached + %d new tokens exceed the cache capacity of %d", c.Len, len(ids), c.Capacity)
	}
	b, cfg := m.Backend, m.Config
	T := len(ids)
	logitRows := 1
	if allLogits {
		logitRows = T
	}
	s := m.newScratch(T, logitRows)

	pos := make([]int32, T)
	for i := range pos {
		pos[i] = int32(c.Len + i)
	}
	b.Embedding(s.x, m.Embed, ids)
	rope := m.rope()
	seqK := c.Len + T
	attn := m.attention(1, T, seqK, c.Capacity)
	kvDim := cfg.KVDim()
	for li := range m.Layers {
		l := &m.Layers[li]
		b.RMSNorm(s.h, s.x, l.AttnNorm, cfg.NormEps)
		l.Q.Forward(b, s.q, s.h)
		l.K.Forward(b, s.k, s.h)
		l.V.Forward(b, s.v, s.h)
		b.ApplyRoPE(s.q, pos, rope)
		b.ApplyRoPE(s.k, pos, rope)
		b.Copy(b.View(c.K[li], c.Len*kvDim, T, kvDim), s.k)
		b.Copy(b.View(c.V[li], c.Len*kvDim, T, kvDim), s.v)
		b.Attention(s.att, s.q, c.K[li], c.V[li], attn)
		l.O.Forward(b, s.o, s.att)
		b.Add(s.x, s.x, s.o)

		b.RMSNorm(s.h, s.x, l.FFNNorm, cfg.NormEps)
		l.Gate.Forward(b, s.gate, s.h)
		l.Up.Forward(b, s.up, s.h)
		b.SiLUMul(s.act, s.gate, s.up)
		l.Down.Forward(b, s.down, s.act)
		b.Add(s.x, s.x, s.down)
	}
	last := s.x
	if !allLogits {
		last = b.View(s.x, (T-1)*cfg.Dim, 1, cfg.Dim)
	}
	normed := b.View(s.h, 0, logitRows, cfg.Dim)
	b.RMSNorm(normed, last, m.OutNorm, cfg.NormEps)
	m.Output.Forward(b, s.logits, normed)
	c.Len += T
	return s, nil
}
