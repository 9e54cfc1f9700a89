// Package hfconfig reads and writes the config.json of Hugging Face
// Llama-style decoder checkpoints: LlamaForCausalLM (which also covers
// TinyLlama, SmolLM and Llama 3.x), MistralForCausalLM, Qwen2ForCausalLM,
// Qwen3ForCausalLM and Gemma3ForCausalLM (model_type gemma3_text, the
// text-only Gemma 3).
//
// Defaults follow transformers' per-model config classes (LlamaConfig,
// MistralConfig, Qwen2Config, Qwen3Config, Gemma3TextConfig) rather than
// PretrainedConfig. In particular tie_word_embeddings defaults to false for
// all but Gemma 3, even though PretrainedConfig's own default is true,
// because each of these classes passes its own default to it.
//
// The architecture-defining sizes (hidden_size, intermediate_size,
// num_hidden_layers, num_attention_heads, vocab_size) are required:
// transformers always writes them, so a config.json without them is broken,
// and silently substituting a 7B model's sizes would only move the failure
// to a confusing weight-shape mismatch.
package hfconfig

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// Model types graft supports, as written in config.json's model_type.
const (
	Llama      = "llama"
	Mistral    = "mistral"
	Qwen2      = "qwen2"
	Qwen3      = "qwen3"
	Gemma3Text = "gemma3_text"
)

// architectureOf maps each supported model_type to its causal-LM class.
var architectureOf = map[string]string{
	Llama:      "LlamaForCausalLM",
	Mistral:    "MistralForCausalLM",
	Qwen2:      "Qwen2ForCausalLM",
	Qwen3:      "Qwen3ForCausalLM",
	Gemma3Text: "Gemma3ForCausalLM",
}

// maxConfigSize bounds what Load reads; real config.json files are a few
// kilobytes.
const maxConfigSize = 16 << 20

// Config holds the fields of a config.json that define a Llama-family
// decoder. Parse fills in transformers' defaults for absent fields, so
// every field is meaningful after a successful Parse.
type Config struct {
	Architectures []string // e.g. ["LlamaForCausalLM"]
	ModelType     string   // "llama", "mistral", "qwen2", "qwen3" or "gemma3_text"

	HiddenSize        int
	IntermediateSize  int
	NumHiddenLayers   int
	NumAttentionHeads int
	NumKeyValueHeads  int // defaults to NumAttentionHeads (no GQA)
	HeadDim           int // defaults to HiddenSize / NumAttentionHeads

	RMSNormEps  float64
	RopeTheta   float64      // defaults to 10000
	RopeScaling *RopeScaling // nil when rope_scaling is null or absent

	TieWordEmbeddings     bool
	MaxPositionEmbeddings int
	VocabSize             int
	BOSTokenID            *int  // nil when null
	EOSTokenID            []int // eos_token_id as a list, whether the file holds an int or a list

	// HiddenAct is hidden_act ("silu" or its alias "swish"), or Gemma's
	// hidden_activation ("gelu_pytorch_tanh").
	HiddenAct string

	// Gemma 3's attention: logits are scaled by QueryPreAttnScalar^-1/2;
	// LayerTypes (or, in older files, every SlidingWindowPattern-th layer
	// being global) says which layers attend over the last SlidingWindow
	// positions only, with RoPE of base RopeLocalTheta (rope_local_base_freq).
	QueryPreAttnScalar   float64
	RopeLocalTheta       float64
	SlidingWindowPattern int
	LayerTypes           []string // "sliding_attention" or "full_attention" per layer; nil when absent
	// FinalLogitSoftcapping and AttnLogitSoftcapping are Gemma 2's tanh
	// caps; Gemma 3 has none and graft applies none, so Validate refuses
	// them when set.
	FinalLogitSoftcapping *float64
	AttnLogitSoftcapping  *float64

	// AttentionBias reports biases on the q, k and v projections: always
	// true for qwen2, always false for mistral, attention_bias for llama,
	// where it also adds a bias to o_proj (see OutputProjBias).
	AttentionBias bool
	// MLPBias is llama's mlp_bias. graft's decoder has no MLP biases, so
	// Validate rejects true.
	MLPBias bool

	TorchDType string // torch_dtype, e.g. "bfloat16"; informational

	// SlidingWindow is Gemma 3's local attention span. For mistral, qwen2
	// and qwen3 it is parsed and kept for Marshal but graft attends over
	// the whole context, as llama.cpp does. transformers defaults it to
	// 4096 (qwen2 and qwen3 also need use_sliding_window).
	SlidingWindow *int

	// Extra holds every other top-level key verbatim (initializer_range,
	// transformers_version, pretraining_tp, ...), so that Marshal writes
	// back a config that differs from the original only where graft
	// changed something.
	Extra map[string]json.RawMessage

	name       string // file name for error messages
	patternKey string // the key SlidingWindowPattern was read from, written back
}

// RopeScaling is config.json's rope_scaling object. graft parses it so the
// model can apply or refuse it; which fields matter depends on the type.
type RopeScaling struct {
	// Type is the older "type" key and RopeType the newer "rope_type";
	// transformers writes both after upgrading an old config. Use Kind.
	Type                          string
	RopeType                      string
	Factor                        float64
	LowFreqFactor                 float64 // llama3
	HighFreqFactor                float64 // llama3
	OriginalMaxPositionEmbeddings int     // llama3, yarn
	// YaRN's optional parameters; 0 (or nil) when absent.
	AttentionFactor float64
	BetaFast        float64
	BetaSlow        float64
	Mscale          float64
	MscaleAllDim    float64
	Truncate        *bool
	// Extra holds any other keys verbatim.
	Extra map[string]json.RawMessage
}

// Kind returns the scaling type: rope_type, or type for older configs.
func (r *RopeScaling) Kind() string {
	if r.RopeType != "" {
		return r.RopeType
	}
	return r.Type
}

// QueryDim is the output width of q_proj (heads × head_dim), which differs
// from HiddenSize when head_dim is set explicitly.
func (c *Config) QueryDim() int { return c.NumAttentionHeads * c.HeadDim }

// KVDim is the output width of k_proj and v_proj.
func (c *Config) KVDim() int { return c.NumKeyValueHeads * c.HeadDim }

// OutputProjBias reports whether o_proj has a bias: llama's and qwen3's
// attention_bias adds one; Qwen2's q/k/v biases do not extend to o_proj.
func (c *Config) OutputProjBias() bool {
	return (c.ModelType == Llama || c.ModelType == Qwen3) && c.AttentionBias
}

// IsSliding reports whether layer i attends over the sliding window only
// (Gemma 3's local layers).
func (c *Config) IsSliding(i int) bool {
	if c.ModelType != Gemma3Text || c.SlidingWindow == nil {
		return false
	}
	if c.LayerTypes != nil {
		return i < len(c.LayerTypes) && c.LayerTypes[i] == "sliding_attention"
	}
	return c.SlidingWindowPattern <= 0 || (i+1)%c.SlidingWindowPattern != 0
}

// Load reads and parses the config.json at path.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("hfconfig: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("hfconfig %s: %w", path, err)
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("hfconfig %s: file is over the %d-byte limit", path, maxConfigSize)
	}
	return Parse(data, path)
}

// Parse decodes a config.json, fills in the defaults of its model type and
// validates the result. name is used in error messages.
func Parse(data []byte, name string) (*Config, error) {
	c, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("hfconfig %s: %w", name, err)
	}
	c.name = name
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("hfconfig %s: %w", name, err)
	}
	return c, nil
}
