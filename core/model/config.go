// Package model is the Llama-family decoder: configuration, weights resident
// on a backend, forward pass with a KV cache, and sampling.
//
// Weights load from GGUF files (llama.cpp's layout, q/k rows in Meta's
// interleaved RoPE order) or from Hugging Face directories (config.json,
// safetensors, tokenizer.json; rotate-half RoPE). Whatever the source, every
// linear layer carries its Hugging Face module name, so adapters address
// layers the way PEFT does.
package model

import (
	"fmt"

	"github.com/graft-ml/graft/core/backend"
)

// Gated FFN activations (Config.Act), named as config.json's hidden_act.
const (
	ActSiLU     = "silu"
	ActGELUTanh = "gelu_pytorch_tanh"
)

// Config holds the architecture hyper-parameters of a decoder.
type Config struct {
	Arch       string // "llama", "mistral", "qwen2", "qwen3", "gemma3"
	Dim        int    // hidden size
	FFN        int    // intermediate size
	Layers     int
	Heads      int
	KVHeads    int
	HeadDim    int
	Vocab      int
	Context    int // maximum positions
	NormEps    float32
	RopeTheta  float32
	RoPE       backend.RoPEStyle
	TiedOutput bool // the output head reuses the token embedding
	AttnBias   bool // q/k/v projections have biases (Qwen2)
	OutBias    bool // o_proj has a bias (Llama with attention_bias)

	// RopeScaling stretches RoPE beyond the pretraining context (of the
	// global layers, where some are local).
	RopeScaling RopeScaling `json:",omitzero"`

	// What Qwen3 and Gemma 3 add to the Llama block. The zero values are
	// Llama's.
	QKNorm     bool    `json:",omitempty"` // per-head RMSNorm of q and k before RoPE (q_norm, k_norm)
	PostNorms  bool    `json:",omitempty"` // RMSNorm of each sublayer's output before the residual add (Gemma)
	EmbedScale float32 `json:",omitempty"` // token embeddings are multiplied by it (Gemma: √Dim); 0 means 1
	Act        string  `json:",omitempty"` // gated FFN activation: ActSiLU ("" too) or ActGELUTanh
	AttnScale  float32 `json:",omitempty"` // attention logit scale; 0 means 1/√HeadDim
	// SlidingWindow > 0 makes every layer but each SlidingPattern-th a
	// local one, attending to the last SlidingWindow positions only, with
	// plain RoPE of base RopeThetaLocal (Gemma 3: 5 local, then 1 global).
	SlidingWindow  int     `json:",omitempty"`
	SlidingPattern int     `json:",omitempty"`
	RopeThetaLocal float32 `json:",omitempty"`
}

// IsLocal reports whether layer li is a sliding-window layer.
func (c Config) IsLocal(li int) bool {
	if c.SlidingWindow <= 0 {
		return false
	}
	if c.SlidingPattern <= 0 {
		return true
	}
	return li%c.SlidingPattern < c.SlidingPattern-1
}

// QDim is the width of the query projection's output.
func (c Config) QDim() int { return c.Heads * c.HeadDim }

// KVDim is the width of the key and value projections' outputs.
func (c Config) KVDim() int { return c.KVHeads * c.HeadDim }

// Validate checks that the dimensions are consistent.
func (c Config) Validate() error {
	switch {
	case c.Dim <= 0 || c.FFN <= 0 || c.Layers <= 0 || c.Vocab <= 0:
		return fmt.Errorf("model config: dim %d, ffn %d, layers %d, vocab %d must be positive", c.Dim, c.FFN, c.Layers, c.Vocab)
	case c.Heads <= 0 || c.KVHeads <= 0 || c.HeadDim <= 0:
		return fmt.Errorf("model config: heads %d, kv heads %d, head dim %d must be positive", c.Heads, c.KVHeads, c.HeadDim)
	case c.Heads%c.KVHeads != 0:
		return fmt.Errorf("model config: %d heads is not a multiple of %d kv heads", c.Heads, c.KVHeads)
	case c.HeadDim%2 != 0:
		return fmt.Errorf("model config: head dim %d is odd; RoPE rotates pairs", c.HeadDim)
	case c.Context <= 0:
		return fmt.Errorf("model config: context length %d must be positive", c.Context)
	case !(c.NormEps > 0):
		return fmt.Errorf("model config: rms norm eps %g must be positive", c.NormEps)
	case !(c.RopeTheta > 0):
		return fmt.Errorf("model config: rope theta %g must be positive", c.RopeTheta)
	case c.Act != "" && c.Act != ActSiLU && c.Act != ActGELUTanh:
		return fmt.Errorf("model config: activation %q is not supported (supported: %s, %s)", c.Act, ActSiLU, ActGELUTanh)
	case c.SlidingWindow < 0 || c.SlidingPattern < 0:
		return fmt.Errorf("model config: sliding window %d and pattern %d must not be negative", c.SlidingWindow, c.SlidingPattern)
	case c.SlidingWindow > 0 && !(c.RopeThetaLocal > 0):
		return fmt.Errorf("model config: local rope theta %g must be positive", c.RopeThetaLocal)
	case c.EmbedScale < 0 || c.AttnScale < 0:
		return fmt.Errorf("model config: embedding scale %g and attention scale %g must not be negative", c.EmbedScale, c.AttnScale)
	}
	if err := c.RopeScaling.check(c.HeadDim); err != nil {
		return fmt.Errorf("model config: %w", err)
	}
	return nil
}

// NumParams counts the parameters of the base model.
func (c Config) NumParams() int64 {
	d, f, v := int64(c.Dim), int64(c.FFN), int64(c.Vocab)
	q, kv := int64(c.QDim()), int64(c.KVDim())
	perLayer := 2*d + d*q + 2*d*kv + q*d + 3*d*f
	if c.QKNorm {
		perLayer += 2 * int64(c.HeadDim)
	}
	if c.PostNorms {
		perLayer += 2 * d
	}
	if c.AttnBias {
		perLayer += q + 2*kv
	}
	if c.OutBias {
		perLayer += d
	}
	n := v*d + int64(c.Layers)*perLayer + d
	if !c.TiedOutput {
		n += v * d
	}
	return n
}
