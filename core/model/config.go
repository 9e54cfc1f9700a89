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

// Config holds the architecture hyper-parameters of a decoder.
type Config struct {
	Arch       string // "llama", "qwen2", "mistral"
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
	}
	return nil
}

// NumParams counts the parameters of the base model.
func (c Config) NumParams() int64 {
	d, f, v := int64(c.Dim), int64(c.FFN), int64(c.Vocab)
	q, kv := int64(c.QDim()), int64(c.KVDim())
	perLayer := 2*d + d*q + 2*d*kv + q*d + 3*d*f
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
