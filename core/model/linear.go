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

	// hooks are the adapter hooks on the layer, innermost first: each one
	// wraps those before it, and the last one is what Forward runs (see
	// AddHook). inX[k] is the input hooks[k] received in the pass in
	// flight, which its Backward needs; depth is the number of hooks
	// beneath the one running now (0 when none runs), so that Base and
	// BaseBackward know what they stand for.
	hooks []LinearHook
	inX   []backend.Buffer
	depth int
}

// LinearHook lets an adapter take part in a Linear layer's forward and
// backward passes. A hook serves one layer, and one pass is in flight at a
// time: Forward may keep what Backward will need until the next Forward.
//
// A hook computes the layer through l.Base and l.BaseBackward, never from
// l.Weight directly (unless l.Wraps() is false), because with several
// adapters on one layer (see AddHook) Base is the hook beneath it.
type LinearHook interface {
	// Forward writes the layer's output for input x [rows, In] into dst
	// [rows, Out], typically l.Base(b, dst, x) plus the adapter's term.
	Forward(b backend.Backend, l *Linear, dst, x backend.Buffer)
	// Backward receives dy [rows, Out] and the x of the matching Forward.
	// It accumulates the adapter's parameter gradients and, when dx is
	// non-nil, adds the input gradient into dx [rows, In] (dx += ...).
	// It calls l.BaseBackward exactly once per Base call of the Forward,
	// with the gradient of that Base output, even when dx is nil: the
	// frozen base needs no gradient, but a hook beneath this one does.
	Backward(b backend.Backend, l *Linear, dx, dy, x backend.Buffer)
}

// AddHook installs h on the layer around whatever is there: with no hook
// it adds to or replaces the plain projection; over another hook, h's Base
// and BaseBackward run that hook, so h sees the output of the layer as
// adapted so far. This is how PEFT's mixed models nest tuner layers: the
// adapter added later wraps the earlier one, so an (IA)³ vector added after
// LoRA scales the LoRA term as well.
func (l *Linear) AddHook(h LinearHook) {
	l.hooks = append(l.hooks, h)
	l.inX = append(l.inX, nil)
}

// RemoveHook uninstalls h wherever it sits; the hook that wrapped it now
// wraps the one beneath. It reports whether h was installed. Whether
// removing it leaves consistent weights (an adapter merged on top of it)
// is the caller's concern.
func (l *Linear) RemoveHook(h LinearHook) bool {
	for i, x := range l.hooks {
		if x == h {
			l.hooks = append(l.hooks[:i], l.hooks[i+1:]...)
			l.inX = l.inX[:len(l.hooks)]
			clear(l.inX)
			return true
		}
	}
	return false
}

// Hooks returns the installed hooks, innermost first. The slice is the
// layer's own: read it, do not change it (use AddHook and RemoveHook).
func (l *Linear) Hooks() []LinearHook { return l.hooks }

// Wraps reports, from inside a hook's Forward or Backward, whether that
// hook wraps another one, so that Base is not the plain projection.
func (l *Linear) Wraps() bool { return l.depth > 0 }

// Param is a trainable tensor with its gradient, both on the backend.
type Param struct {
	Name        string // PEFT tensor name, e.g. base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight
	Value, Grad backend.Buffer
	// NoDecay excludes the parameter from AdamW's weight decay.
	NoDecay bool
}

// Forward computes dst = x W^T + bias, or defers to the outermost hook.
func (l *Linear) Forward(b backend.Backend, dst, x backend.Buffer) {
	l.forwardFrom(len(l.hooks), b, dst, x)
}

// forwardFrom computes the output of the layer with only its n innermost
// hooks: hooks[n-1] runs, and its Base is the n-1 beneath it.
func (l *Linear) forwardFrom(n int, b backend.Backend, dst, x backend.Buffer) {
	if n == 0 {
		l.project(b, dst, x)
		return
	}
	saved := l.depth
	l.depth, l.inX[n-1] = n-1, x
	l.hooks[n-1].Forward(b, l, dst, x)
	l.depth = saved
}

// Base computes what the running hook wraps: the frozen projection
// dst = x W^T + bias, or the hook beneath it. Called from outside any hook
// it is the frozen projection.
func (l *Linear) Base(b backend.Backend, dst, x backend.Buffer) {
	l.forwardFrom(l.depth, b, dst, x)
}

// project is the frozen projection.
func (l *Linear) project(b backend.Backend, dst, x backend.Buffer) {
	b.MatMul(dst, x, l.Weight, backend.MatMul{TransB: true})
	if l.Bias != nil {
		b.Add(dst, dst, l.Bias)
	}
}

// Backward adds the input gradient of dst = x W^T + b into dx and
// defers to the outermost hook when there is one. The frozen weight gets
// no gradient.
func (l *Linear) Backward(b backend.Backend, dx, dy, x backend.Buffer) {
	l.backwardFrom(len(l.hooks), b, dx, dy, x)
}

// backwardFrom is the backward of forwardFrom(n) for input x.
func (l *Linear) backwardFrom(n int, b backend.Backend, dx, dy, x backend.Buffer) {
	if n == 0 {
		if dx != nil {
			b.MatMul(dx, dy, l.Weight, backend.MatMul{Accumulate: true})
		}
		return
	}
	saved := l.depth
	l.depth = n - 1
	l.hooks[n-1].Backward(b, l, dx, dy, x)
	l.depth = saved
}

// BaseBackward is the backward of the running hook's Base: it adds the
// input gradient into dx (when non-nil), dy W for the frozen projection,
// and gives the hooks beneath their parameter gradients, for the input
// their Forward received.
func (l *Linear) BaseBackward(b backend.Backend, dx, dy backend.Buffer) {
	if l.depth == 0 {
		l.backwardFrom(0, b, dx, dy, nil)
		return
	}
	l.backwardFrom(l.depth, b, dx, dy, l.inX[l.depth-1])
}

// BaseInputGrad is BaseBackward writing the input gradient into dst
// rather than adding it, for a hook that needs that gradient on its own
// (an input-scaling (IA)³ vector).
func (l *Linear) BaseInputGrad(b backend.Backend, dst, dy backend.Buffer) {
	if l.depth == 0 {
		b.MatMul(dst, dy, l.Weight, backend.MatMul{})
		return
	}
	b.Scale(dst, dst, 0)
	l.BaseBackward(b, dst, dy)
}

// Layer holds one decoder block's weights.
type Layer struct {
	AttnNorm, FFNNorm backend.Buffer // [Dim]
	// QNorm and KNorm [HeadDim] normalize each head of q and k before RoPE
	// (Qwen3, Gemma 3); PostAttnNorm and PostFFNNorm [Dim] normalize the
	// sublayers' outputs (Gemma 3). nil where the architecture has none.
	QNorm, KNorm              backend.Buffer
	PostAttnNorm, PostFFNNorm backend.Buffer
	Q, K, V, O                *Linear
	Gate, Up, Down            *Linear
	// AttnOut and FFNOut, when set, transform the attention and
	// feed-forward outputs before the residual add (bottleneck adapters).
	AttnOut, FFNOut BlockHook
}

// Linears returns the block's projections in Hugging Face order.
func (l *Layer) Linears() []*Linear {
	return []*Linear{l.Q, l.K, l.V, l.O, l.Gate, l.Up, l.Down}
}
