// Package backend defines the seam between the model code and the hardware:
// a Backend owns buffers and runs a small fixed set of operations on them,
// each with the backward the trainer needs.
//
// The model never touches the storage of a Buffer directly, so the same model
// code runs on the CPU backend (core/cpu, the oracle) and on WebGPU (gpu/).
//
// Conventions shared by every operation:
//   - Activations are F32 and 2-D, rows x cols, row-major. A batch of B
//     sequences of T tokens is B*T rows.
//   - Weights are stored like PyTorch's nn.Linear: [out, in], row-major, and
//     may be of any dtype the backend accepts in Load (F32, F16, BF16, Q8_0,
//     Q4_0, NF4). Only F32 buffers are ever written by an operation.
//   - dst may alias an input only where an operation says so.
//   - Integer inputs (token ids, positions, targets) are host slices.
package backend

import "github.com/graft-ml/graft/core/tensor"

// Buffer is storage owned by one Backend. Its contents are reached only
// through that Backend.
type Buffer interface {
	DType() tensor.DType
	// Shape is the logical row-major shape.
	Shape() tensor.Shape
}

// RoPEStyle selects how rotary embeddings pair the dimensions of a head.
type RoPEStyle uint8

const (
	// RoPEInterleaved rotates pairs (2i, 2i+1): Meta's original layout, used
	// by GGUF files.
	RoPEInterleaved RoPEStyle = iota
	// RoPEHalf rotates pairs (i, i+d/2): Hugging Face's rotate_half, whose
	// q_proj/k_proj rows are permuted relative to Meta's.
	RoPEHalf
)

// RoPE describes a rotary position embedding.
type RoPE struct {
	Style   RoPEStyle
	HeadDim int     // dimensions per head; the row holds cols/HeadDim heads
	Theta   float32 // base, usually 10000
	// Dims is how many leading dimensions of each head rotate (0: all).
	Dims int
	// Freqs, when set, are the angular frequencies (radians per position)
	// of the Dims/2 rotated pairs, in place of Theta^(-2i/Dims): the
	// scaled variants (linear, Llama 3, YaRN) are tables the model computes
	// once, so that forward and backward rotate by the same angles.
	Freqs []float64
}

// Attention describes a causal multi-head attention with grouped-query
// sharing of key/value heads.
//
// q is [Batch*SeqQ, Heads*HeadDim]. k and v are [Batch*KVStride,
// KVHeads*HeadDim] of which the first SeqK rows of each sequence are used;
// KVStride 0 means SeqK. Query row i of a sequence sits at position
// SeqK-SeqQ+i and attends to key rows 0..SeqK-SeqQ+i. With a KV cache, the
// new keys are written into the cache first and SeqK counts them.
// dst is [Batch*SeqQ, Heads*HeadDim]. Query head h reads key/value head
// h / (Heads/KVHeads). With Window > 0 (sliding-window attention) query
// row i attends only to the Window key rows ending at its own:
// max(0, SeqK-SeqQ+i-Window+1)..SeqK-SeqQ+i.
type Attention struct {
	Batch, SeqQ, SeqK, KVStride int
	Heads, KVHeads, HeadDim     int
	Scale                       float32 // usually 1/sqrt(HeadDim)
	Window                      int     // 0: every earlier key
}

// MatMul flags select the orientation of the operands of a matrix product.
type MatMul struct {
	TransA, TransB bool
	// Accumulate adds the product into dst instead of overwriting it.
	Accumulate bool
	// Alpha scales the product; 0 means 1.
	Alpha float32
}

// AdamW holds the hyper-parameters of one decoupled-weight-decay Adam step.
type AdamW struct {
	LR, Beta1, Beta2, Eps, WeightDecay float32
	Step                               int // 1-based, for bias correction
}

// Backend is the fixed operation set graft's models are written against.
type Backend interface {
	// Name identifies the backend and device, e.g. "cpu (2 threads, avx512)".
	Name() string

	// Zeros allocates an F32 buffer of the given shape, filled with zeros.
	Zeros(shape ...int) Buffer
	// Load uploads a host tensor of any supported dtype. The result is
	// read-only for the model (weights); the backend keeps its own copy.
	Load(t *tensor.Tensor) (Buffer, error)
	// Write copies host values into an F32 buffer starting at element off.
	Write(dst Buffer, off int, src []float32) error
	// Read copies elements starting at off out of a buffer, dequantizing
	// if it is not F32.
	Read(src Buffer, off int, dst []float32) error
	// View returns an F32 buffer sharing storage with b: the elements
	// b[off : off+numel(shape)] seen with the given shape.
	View(b Buffer, off int, shape ...int) Buffer
	// Free releases a buffer; using it afterwards is an error.
	Free(b Buffer)

	// MatMul computes dst (+)= alpha * op(a) * op(b), where op transposes
	// when the flag says so. dst is [M, N], op(a) [M, K], op(b) [K, N].
	// a must be F32; b may be any dtype Load accepts (weights).
	MatMul(dst, a, b Buffer, f MatMul)
	// Copy copies src into dst (same number of elements, both F32).
	Copy(dst, src Buffer)
	// Add sets dst = a + b elementwise; dst may alias a or b. b is
	// broadcast as in Mul when it has fewer elements than a (a bias row).
	Add(dst, a, b Buffer)
	// Scale sets dst = s * x; dst may alias x.
	Scale(dst, x Buffer, s float32)
	// AddScaled sets dst += s * x.
	AddScaled(dst, x Buffer, s float32)
	// Mul sets dst = a * b elementwise; dst may alias a or b. When b has
	// fewer elements than a it is broadcast: a row vector of length cols
	// or a column of length rows. A b shaped [rows, 1] is a column; any
	// other b of cols elements is a row vector, even when rows == cols.
	Mul(dst, a, b Buffer)

	// Embedding gathers rows of table (any dtype) into dst [len(ids), dim].
	Embedding(dst, table Buffer, ids []int32)
	// EmbeddingBackward scatter-adds rows of dy [len(ids), dim] into dtable.
	EmbeddingBackward(dtable, dy Buffer, ids []int32)

	// RMSNorm sets dst = x / sqrt(mean(x^2) + eps) * w, row by row; w is
	// [cols] of any dtype, or nil for no weight.
	RMSNorm(dst, x, w Buffer, eps float32)
	// RMSNormBackward accumulates the input gradient into dx (dx += ...),
	// and the weight gradient into dw when dw is non-nil.
	RMSNormBackward(dx, dw, dy, x, w Buffer, eps float32)

	// ApplyRoPE rotates x in place; pos[r] is the position of row r.
	ApplyRoPE(x Buffer, pos []int32, r RoPE)
	// ApplyRoPEBackward applies the inverse rotation to a gradient in place.
	ApplyRoPEBackward(dx Buffer, pos []int32, r RoPE)

	// Attention computes causal softmax(q k^T * scale) v; see Attention.
	Attention(dst, q, k, v Buffer, p Attention)
	// AttentionBackward accumulates gradients into dq, dk and dv (+=), any
	// of which may be nil, recomputing the probabilities from q and k.
	AttentionBackward(dq, dk, dv, dy, q, k, v Buffer, p Attention)

	// SiLUMul sets dst = silu(gate) * up.
	SiLUMul(dst, gate, up Buffer)
	// SiLUMulBackward sets dgate and dup (overwriting) from dy.
	SiLUMulBackward(dgate, dup, dy, gate, up Buffer)
	// GELUTanhMul sets dst = gelu(gate) * up with GELU's tanh form,
	// 0.5 g (1 + tanh(√(2/π) (g + 0.044715 g³))) (PyTorch's
	// approximate="tanh", Gemma's gated FFN); dst may be gate or up.
	GELUTanhMul(dst, gate, up Buffer)
	// GELUTanhMulBackward sets dgate and dup (overwriting) from dy; either
	// may be nil.
	GELUTanhMulBackward(dgate, dup, dy, gate, up Buffer)

	// Softmax sets each row of dst to softmax of that row of x, scaled by
	// 1/temperature first (temperature 0 means 1).
	Softmax(dst, x Buffer, temperature float32)

	// CrossEntropy returns sum_r weight[r] * -log softmax(logits[r])[targets[r]],
	// skipping rows whose weight is 0 (weights nil means all 1). When
	// dlogits is non-nil it is set to gradScale * weight[r] *
	// (softmax(logits[r]) - onehot(targets[r])).
	CrossEntropy(dlogits, logits Buffer, targets []int32, weights []float32, gradScale float32) float64

	// SumSquares returns the sum of squares of the elements of each buffer
	// added together (for gradient clipping by global norm).
	SumSquares(bufs ...Buffer) float64
	// AdamWStep updates param in place from grad and the moment buffers m
	// and v (same shape as param).
	AdamWStep(param, grad, m, v Buffer, h AdamW)

	// Sync waits until all queued work has finished (a no-op on the CPU).
	Sync() error
}
