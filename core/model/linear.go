package model

import (
	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/tensor"
)

// Linear is a projection y = x W^T (+ b) with W stored [Out, In].
type Linear struct {
	// Name is the Hugging Face module name, e.g.
	// "model.layers.0.self_attn.q_proj", whatever file the weights came from.
	Name    string
	In, Out int
	Weight  backend.Buffer
	Bias    backend.Buffer // [Out] or nil
	// RoPEPermuted is the number of heads whose rows are stored in Meta's
	// interleaved order (GGUF q/k projections); 0 means Hugging Face order.
	// Adapters saved for Hugging Face tools must undo this permutation.
	RoPEPermuted int
	// SourceDType is the weight's type in the file it was loaded from,
	// which saving keeps by default (the buffer may since have been
	// replaced by a merged F32 copy).
	SourceDType tensor.DType
	// Hook, when set, adds to or replaces the plain projection; PEFT methods
	// install one here.
	Hook LinearHook
}

// LinearHook lets an adapter take part in a Linear layer's forward and
// backward passes. A hook serves one layer, and one pass is in flight at a
// time: Forward may keep what Backward will need until the next Forward.
type LinearHook interface {
	// Forward writes the layer's output for input x [rows, In] into dst
	// [rows, Out], typically l.Base(b, dst, x) plus the adapter's term.
	Forward(b backend.Backend, l *Linear, dst, x backend.Buffer)
	// Backward receives dy [rows, Out] and the x of the matching Forward.
	// It accumulates the adapter's parameter gradients and, when dx is
	// non-nil, adds the input gradient into dx [rows, In] (dx += ...),
	// including the frozen base's term l.BaseBackward(b, dx, dy).
	Backward(b backend.Backend, l *Linear, dx, dy, x backend.Buffer)
}

// Param is a trainable tensor with its gradient, both on the backend.
type Param struct {
	Name        string // PEFT tensor name, e.g. base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight
	Value, Grad backend.Buffer
	// NoDecay excludes the parameter from AdamW's weight decay.
	NoDecay bool
}

// Forward computes dst = x W^T + bias, or defers to the hook.
func (l *Linear) Forward(b backend.Backend, dst, x backend.Buffer) {
	if l.Hook != nil {
		l.Hook.Forward(b, l, dst, x)
		return
	}
	l.Base(b, dst, x)
}

// Base computes the frozen projection dst = x W^T + bias.
func (l *Linear) Base(b backend.Backend, dst, x backend.Buffer) {
	b.MatMul(dst, x, l.Weight, backend.MatMul{TransB: true})
	if l.Bias != nil {
		b.Add(dst, dst, l.Bias)
	}
}

// Backward adds the input gradient of dst = x W^T + b into dx and
// defers to the hook when there is one. The frozen weight gets no gradient.
func (l *Linear) Backward(b backend.Backend, dx, dy, x backend.Buffer) {
	if l.Hook != nil {
		l.Hook.Backward(b, l, dx, dy, x)
		return
	}
	l.BaseBackward(b, dx, dy)
}

// BaseBackward adds dy W into dx: the input gradient of the frozen
// projection.
func (l *Linear) BaseBackward(b backend.Backend, dx, dy backend.Buffer) {
	if dx != nil {
		b.MatMul(dx, dy, l.Weight, backend.MatMul{Accumulate: true})
	}
}

// Layer holds one decoder block's weights.
type Layer struct {
	AttnNorm, FFNNorm backend.Buffer // [Dim]
	Q, K, V, O        *Linear
	Gate, Up, Down    *Linear
	// AttnOut and FFNOut, when set, transform the attention and
	// feed-forward outputs before the residual add (bottleneck adapters).
	AttnOut, FFNOut BlockHook
}

// Linears returns the block's projections in Hugging Face order.
func (l *Layer) Linears() []*Linear {
	return []*Linear{l.Q, l.K, l.V, l.O, l.Gate, l.Up, l.Down}
}
