package model

import "github.com/graft-ml/graft/core/backend"

// PromptHook prepends learned virtual-token embeddings to every sequence,
// as prompt tuning does: the virtual tokens take positions 0..n-1 and the
// real tokens follow them.
type PromptHook interface {
	// Virtual is the number of virtual tokens n.
	Virtual() int
	// Forward writes the virtual embeddings [n, Dim] into dst.
	Forward(b backend.Backend, dst backend.Buffer)
	// Backward receives the gradient of the virtual embeddings [n, Dim],
	// summed over the batch, and accumulates it into the parameters.
	Backward(b backend.Backend, dEmb backend.Buffer)
}

// PrefixHook supplies learned key/value prefixes for every layer, as
// prefix tuning does. The prefixes are used as stored (not rotated), and
// the real tokens take positions P..P+T-1, as transformers does with a
// cache of length P.
type PrefixHook interface {
	// Len is the number of prefix positions P.
	Len() int
	// Forward writes layer's prefix keys and values [P, KVDim] into k, v.
	Forward(b backend.Backend, layer int, k, v backend.Buffer)
	// Backward receives the gradients of layer's prefix keys and values
	// [P, KVDim], summed over the batch. Layers arrive last to first.
	Backward(b backend.Backend, layer int, dk, dv backend.Buffer)
}

// BlockHook transforms a sublayer's output [rows, Dim] before it joins
// the residual stream, as bottleneck adapters (Houlsby, Pfeiffer) do. Like
// LinearHook, one pass is in flight at a time.
type BlockHook interface {
	// Forward writes the transformed output into dst (dst != x).
	Forward(b backend.Backend, dst, x backend.Buffer)
	// Backward accumulates parameter gradients and adds the input
	// gradient into dx (dx += ...) from dy, for the x of the last Forward.
	Backward(b backend.Backend, dx, dy, x backend.Buffer)
}

// reserved is the number of positions hooks add before the real tokens.
func (m *Model) reserved() int {
	n := 0
	if m.Prompt != nil {
		n += m.Prompt.Virtual()
	}
	if m.Prefix != nil {
		n += m.Prefix.Len()
	}
	return n
}
