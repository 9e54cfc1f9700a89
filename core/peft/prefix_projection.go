package peft

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/model"
)

// prefixMLP is prefix tuning's reparameterisation (PEFT's PrefixEncoder
// with prefix_projection): the prefix is
//
//	out = tanh(E W1ᵀ + b1) W2ᵀ + b2
//
// with E [n, tokenDim], W1 [hidden, tokenDim], W2 [2·layers·kvDim, hidden].
// Row block j = 2·layer + (0 key | 1 value) of W2 and b2 produces that
// layer's keys or values, so each layer's prefix is one small matrix
// product straight into the model's buffer. The backend has no tanh: the
// activation [n, hidden] is tiny and goes through the host.
type prefixMLP struct {
	n, tokenDim, hidden, kvDim, blocks int

	e, w1, b1, w2, b2      backend.Buffer
	de, dw1, db1, dw2, db2 backend.Buffer

	// Per pass: a = tanh(h), g = 1 - a² (tanh's derivative), da the
	// gradient of a gathered over the layers, h the pre-activation (and
	// then its gradient); ones [1, n] sums rows for the bias gradients.
	h, a, g, da, ones backend.Buffer
	host              []float32

	// Views made once, so that a pass makes none: row block j of W2, dW2
	// [kvDim, hidden], b2 and db2 [1, kvDim], and b1, db1 as rows
	// [1, hidden].
	w2Blocks, dw2Blocks, b2Rows, db2Rows []backend.Buffer
	b1Row, db1Row                        backend.Buffer
}

func newPrefixMLP(b backend.Backend, n, tokenDim, hidden, kvDim, layers int) (*prefixMLP, error) {
	p := &prefixMLP{n: n, tokenDim: tokenDim, hidden: hidden, kvDim: kvDim, blocks: 2 * layers}
	out := p.blocks * kvDim
	p.e, p.de = b.Zeros(n, tokenDim), b.Zeros(n, tokenDim)
	p.w1, p.dw1 = b.Zeros(hidden, tokenDim), b.Zeros(hidden, tokenDim)
	p.b1, p.db1 = b.Zeros(hidden), b.Zeros(hidden)
	p.w2, p.dw2 = b.Zeros(out, hidden), b.Zeros(out, hidden)
	p.b2, p.db2 = b.Zeros(out), b.Zeros(out)
	p.h, p.a, p.g, p.da = b.Zeros(n, hidden), b.Zeros(n, hidden), b.Zeros(n, hidden), b.Zeros(n, hidden)
	p.ones = b.Zeros(1, n)
	p.host = make([]float32, n*hidden)
	ones := make([]float32, n)
	for i := range ones {
		ones[i] = 1
	}
	if err := b.Write(p.ones, 0, ones); err != nil {
		p.free(b)
		return nil, err
	}
	for j := range p.blocks {
		p.w2Blocks = append(p.w2Blocks, b.View(p.w2, j*kvDim*hidden, kvDim, hidden))
		p.dw2Blocks = append(p.dw2Blocks, b.View(p.dw2, j*kvDim*hidden, kvDim, hidden))
		p.b2Rows = append(p.b2Rows, b.View(p.b2, j*kvDim, 1, kvDim))
		p.db2Rows = append(p.db2Rows, b.View(p.db2, j*kvDim, 1, kvDim))
	}
	p.b1Row, p.db1Row = b.View(p.b1, 0, 1, hidden), b.View(p.db1, 0, 1, hidden)
	return p, nil
}

// init draws the parameters as torch does: nn.Embedding from N(0, 1),
// each nn.Linear's weight and bias from U(±1/√in); zeroOut zeroes the
// second Linear (PEFT's init_weights "zero"), making the prefix all zero.
func (p *prefixMLP) init(b backend.Backend, rng *rand.Rand, zeroOut bool) error {
	normal := make([]float32, p.n*p.tokenDim)
	for i := range normal {
		normal[i] = float32(rng.NormFloat64())
	}
	uniform := func(n, in int) []float32 {
		bound := 1 / math.Sqrt(float64(in))
		v := make([]float32, n)
		for i := range v {
			v[i] = float32((2*rng.Float64() - 1) * bound)
		}
		return v
	}
	type fill struct {
		buf  backend.Buffer
		vals []float32
	}
	writes := []fill{
		{p.e, normal},
		{p.w1, uniform(p.hidden*p.tokenDim, p.tokenDim)},
		{p.b1, uniform(p.hidden, p.tokenDim)},
	}
	if !zeroOut { // else W2 and b2 stay zero
		writes = append(writes,
			fill{p.w2, uniform(p.blocks*p.kvDim*p.hidden, p.hidden)},
			fill{p.b2, uniform(p.blocks*p.kvDim, p.hidden)})
	}
	for _, w := range writes {
		if err := b.Write(w.buf, 0, w.vals); err != nil {
			return err
		}
	}
	return nil
}

// params lists the MLP's tensors under the names of PEFT's PrefixEncoder
// modules. Biases are not decayed, as transformers' Trainer does.
func (p *prefixMLP) params() []model.Param {
	return []model.Param{
		{Name: "prompt_encoder.embedding.weight", Value: p.e, Grad: p.de},
		{Name: "prompt_encoder.transform.0.weight", Value: p.w1, Grad: p.dw1},
		{Name: "prompt_encoder.transform.0.bias", Value: p.b1, Grad: p.db1, NoDecay: true},
		{Name: "prompt_encoder.transform.2.weight", Value: p.w2, Grad: p.dw2},
		{Name: "prompt_encoder.transform.2.bias", Value: p.b2, Grad: p.db2, NoDecay: true},
	}
}

// activate computes a = tanh(E W1ᵀ + b1) into a and, when g is non-nil,
// tanh's derivative 1 - a² into g. h is scratch [n, hidden].
func (p *prefixMLP) activate(b backend.Backend, h, a, g backend.Buffer) error {
	b.MatMul(h, p.e, p.w1, backend.MatMul{TransB: true})
	b.MatMul(h, p.ones, p.b1Row, backend.MatMul{TransA: true, Accumulate: true})
	if err := b.Read(h, 0, p.host); err != nil {
		return err
	}
	for i, x := range p.host {
		p.host[i] = float32(math.Tanh(float64(x)))
	}
	if err := b.Write(a, 0, p.host); err != nil {
		return err
	}
	if g == nil {
		return nil
	}
	for i, t := range p.host {
		p.host[i] = 1 - t*t
	}
	return b.Write(g, 0, p.host)
}

// startPass recomputes the activation for a new forward pass and clears
// the gradient gathered from the layers.
func (p *prefixMLP) startPass(b backend.Backend) {
	if err := p.activate(b, p.h, p.a, p.g); err != nil {
		// Only our own F32 buffers are read and written: a backend bug.
		panic(fmt.Sprintf("peft: prefix projection: %v", err))
	}
	b.Scale(p.da, p.da, 0)
}

// block writes rows of block j of the output, a W2ⱼᵀ + b2ⱼ, into dst
// [rows, kvDim] (rows <= n: an output row depends on its own token only).
// The bias is added as the outer product onesᵀ·b2ⱼ, which needs no
// broadcasting Add.
func (p *prefixMLP) block(b backend.Backend, dst, a backend.Buffer, j int) {
	rows := rowsOf(dst, p.kvDim)
	if rows == p.n {
		b.MatMul(dst, a, p.w2Blocks[j], backend.MatMul{TransB: true})
		b.MatMul(dst, p.ones, p.b2Rows[j], backend.MatMul{TransA: true, Accumulate: true})
		return
	}
	// A prefix cut short by a shorter context (generation only).
	aRows, onesRows := b.View(a, 0, rows, p.hidden), b.View(p.ones, 0, 1, rows)
	b.MatMul(dst, aRows, p.w2Blocks[j], backend.MatMul{TransB: true})
	b.MatMul(dst, onesRows, p.b2Rows[j], backend.MatMul{TransA: true, Accumulate: true})
	b.Free(aRows)
	b.Free(onesRows)
}

// blockBackward takes the gradient dy [n, kvDim] of block j: it
// accumulates dW2ⱼ += dyᵀ a and db2ⱼ += Σ rows dy, and gathers da += dy W2ⱼ.
func (p *prefixMLP) blockBackward(b backend.Backend, dy backend.Buffer, j int) {
	b.MatMul(p.dw2Blocks[j], dy, p.a, backend.MatMul{TransA: true, Accumulate: true})
	b.MatMul(p.db2Rows[j], p.ones, dy, backend.MatMul{Accumulate: true})
	b.MatMul(p.da, dy, p.w2Blocks[j], backend.MatMul{Accumulate: true})
}

// finishBackward runs the gathered da through tanh and the first layer:
// dh = da ⊙ g, dW1 += dhᵀ E, db1 += Σ rows dh, dE += dh W1.
func (p *prefixMLP) finishBackward(b backend.Backend) {
	b.Mul(p.h, p.da, p.g)
	b.MatMul(p.dw1, p.h, p.e, backend.MatMul{TransA: true, Accumulate: true})
	b.MatMul(p.db1Row, p.ones, p.h, backend.MatMul{Accumulate: true})
	b.MatMul(p.de, p.h, p.w1, backend.MatMul{Accumulate: true})
}

// outputs computes the whole prefix in block layout [blocks·n, kvDim] on
// the host, with the same operations as the forward pass (so the values
// are the ones the model sees) but in buffers of its own, leaving a pass
// in flight undisturbed.
func (p *prefixMLP) outputs(b backend.Backend) ([]float32, error) {
	h, a := b.Zeros(p.n, p.hidden), b.Zeros(p.n, p.hidden)
	blk := b.Zeros(p.n, p.kvDim)
	defer func() {
		b.Free(h)
		b.Free(a)
		b.Free(blk)
	}()
	if err := p.activate(b, h, a, nil); err != nil {
		return nil, err
	}
	size := p.n * p.kvDim
	out := make([]float32, p.blocks*size)
	for j := range p.blocks {
		p.block(b, blk, a, j)
		if err := b.Read(blk, 0, out[j*size:(j+1)*size]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (p *prefixMLP) free(b backend.Backend) {
	for _, views := range [][]backend.Buffer{p.w2Blocks, p.dw2Blocks, p.b2Rows, p.db2Rows, {p.b1Row, p.db1Row}} {
		for _, v := range views {
			if v != nil {
				b.Free(v)
			}
		}
	}
	p.w2Blocks, p.dw2Blocks, p.b2Rows, p.db2Rows, p.b1Row, p.db1Row = nil, nil, nil, nil, nil, nil
	for _, buf := range []backend.Buffer{p.e, p.w1, p.b1, p.w2, p.b2, p.de, p.dw1, p.db1, p.dw2, p.db2, p.h, p.a, p.g, p.da, p.ones} {
		b.Free(buf)
	}
}
