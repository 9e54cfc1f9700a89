package model

import (
	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/tensor"
)

// planBuffer is a planBackend buffer: a shape and no storage.
type planBuffer struct {
	shape tensor.Shape
	view  bool
}

func (p *planBuffer) DType() tensor.DType { return tensor.F32 }
func (p *planBuffer) Shape() tensor.Shape { return p.shape }

// planBackend runs no arithmetic: its buffers have a shape and no storage.
// A training pass of any size can be laid out and walked on it in no
// time, to count the backend memory the model asks for (live and peak
// bytes of Zeros not yet freed) and the Go allocations the model's own
// code makes, apart from any real backend's.
type planBackend struct {
	live, peak int64
	zeros      int // Zeros calls so far
}

var _ backend.Backend = (*planBackend)(nil)

func (p *planBackend) Name() string { return "plan" }

func (p *planBackend) Zeros(shape ...int) backend.Buffer {
	buf := &planBuffer{shape: tensor.Shape(shape).Clone()}
	p.live += 4 * buf.shape.Numel()
	p.peak = max(p.peak, p.live)
	p.zeros++
	return buf
}

func (p *planBackend) Load(t *tensor.Tensor) (backend.Buffer, error) {
	return p.Zeros(t.Shape...), nil
}

func (p *planBackend) View(b backend.Buffer, off int, shape ...int) backend.Buffer {
	if n := tensor.Shape(shape).Numel(); off < 0 || int64(off)+n > b.Shape().Numel() {
		panic("plan: View outside its buffer")
	}
	return &planBuffer{shape: tensor.Shape(shape).Clone(), view: true}
}

func (p *planBackend) Free(b backend.Buffer) {
	if pb, ok := b.(*planBuffer); ok && !pb.view && pb.shape != nil {
		p.live -= 4 * pb.shape.Numel()
		pb.shape = nil
	}
}

func (p *planBackend) Write(backend.Buffer, int, []float32) error               { return nil }
func (p *planBackend) Read(backend.Buffer, int, []float32) error                { return nil }
func (p *planBackend) MatMul(_, _, _ backend.Buffer, _ backend.MatMul)          {}
func (p *planBackend) Copy(_, _ backend.Buffer)                                 {}
func (p *planBackend) Add(_, _, _ backend.Buffer)                               {}
func (p *planBackend) Scale(_, _ backend.Buffer, _ float32)                     {}
func (p *planBackend) AddScaled(_, _ backend.Buffer, _ float32)                 {}
func (p *planBackend) Mul(_, _, _ backend.Buffer)                               {}
func (p *planBackend) Embedding(_, _ backend.Buffer, _ []int32)                 {}
func (p *planBackend) EmbeddingBackward(_, _ backend.Buffer, _ []int32)         {}
func (p *planBackend) RMSNorm(_, _, _ backend.Buffer, _ float32)                {}
func (p *planBackend) RMSNormBackward(_, _, _, _, _ backend.Buffer, _ float32)  {}
func (p *planBackend) ApplyRoPE(backend.Buffer, []int32, backend.RoPE)          {}
func (p *planBackend) ApplyRoPEBackward(backend.Buffer, []int32, backend.RoPE)  {}
func (p *planBackend) Attention(_, _, _, _ backend.Buffer, _ backend.Attention) {}
func (p *planBackend) AttentionBackward(_, _, _, _, _, _, _ backend.Buffer, _ backend.Attention) {
}
func (p *planBackend) SiLUMul(_, _, _ backend.Buffer)                       {}
func (p *planBackend) SiLUMulBackward(_, _, _, _, _ backend.Buffer)         {}
func (p *planBackend) GELUTanhMul(_, _, _ backend.Buffer)                   {}
func (p *planBackend) GELUTanhMulBackward(_, _, _, _, _ backend.Buffer)     {}
func (p *planBackend) Softmax(_, _ backend.Buffer, _ float32)               {}
func (p *planBackend) SumSquares(...backend.Buffer) float64                 { return 0 }
func (p *planBackend) AdamWStep(_, _, _, _ backend.Buffer, _ backend.AdamW) {}
func (p *planBackend) Sync() error                                          { return nil }

func (p *planBackend) CrossEntropy(_, _ backend.Buffer, _ []int32, _ []float32, _ float32) float64 {
	return 1
}

// planModel builds a model of config c with zero weights on b.
func planModel(c Config, b backend.Backend) *Model {
	lin := func(name string, in, out int) *Linear {
		return &Linear{Name: name, In: in, Out: out, Weight: b.Zeros(out, in)}
	}
	m := &Model{Config: c, Backend: b, Embed: b.Zeros(c.Vocab, c.Dim), OutNorm: b.Zeros(c.Dim)}
	m.Output = lin("lm_head", c.Dim, c.Vocab)
	for range c.Layers {
		l := Layer{
			Q: lin("q_proj", c.Dim, c.QDim()), K: lin("k_proj", c.Dim, c.KVDim()), V: lin("v_proj", c.Dim, c.KVDim()),
			O:    lin("o_proj", c.QDim(), c.Dim),
			Gate: lin("gate_proj", c.Dim, c.FFN), Up: lin("up_proj", c.Dim, c.FFN), Down: lin("down_proj", c.FFN, c.Dim),
		}
		for _, n := range m.layerNorms(&l) {
			*n.dst = b.Zeros(n.size)
		}
		m.Layers = append(m.Layers, l)
	}
	return m
}

// planBatch is a B x T batch of token 1 predicting token 2.
func planBatch(B, T int) TokenBatch {
	tb := TokenBatch{B: B, T: T, IDs: make([]int32, B*T), Targets: make([]int32, B*T)}
	for i := range tb.IDs {
		tb.IDs[i], tb.Targets[i] = 1, 2
	}
	return tb
}

// Hooks that do their layer's work without state, to walk every hook
// path of the training pass.
type (
	planLinearHook struct{}
	planBlockHook  struct{}
	planPrompt     struct{ n int }
	planPrefix     struct{ n int }
)

func (planLinearHook) Forward(b backend.Backend, l *Linear, dst, x backend.Buffer) { l.Base(b, dst, x) }
func (planLinearHook) Backward(b backend.Backend, l *Linear, dx, dy, x backend.Buffer) {
	l.BaseBackward(b, dx, dy)
}
func (planBlockHook) Forward(b backend.Backend, dst, x backend.Buffer)       { b.Copy(dst, x) }
func (planBlockHook) Backward(b backend.Backend, dx, dy, x backend.Buffer)   { b.Add(dx, dx, dy) }
func (p planPrompt) Virtual() int                                            { return p.n }
func (planPrompt) Forward(b backend.Backend, dst backend.Buffer)             {}
func (planPrompt) Backward(b backend.Backend, dEmb backend.Buffer)           {}
func (p planPrefix) Len() int                                                { return p.n }
func (planPrefix) Forward(b backend.Backend, layer int, k, v backend.Buffer) {}
func (planPrefix) Backward(b backend.Backend, layer int, dk, dv backend.Buffer) {
}

// hookAll installs a hook of every kind on m.
func hookAll(m *Model) {
	m.Output.AddHook(planLinearHook{})
	for i := range m.Layers {
		l := &m.Layers[i]
		for _, lin := range l.Linears() {
			lin.AddHook(planLinearHook{})
		}
		l.AttnOut, l.FFNOut = planBlockHook{}, planBlockHook{}
	}
	m.Prompt, m.Prefix = planPrompt{3}, planPrefix{2}
}
