package model

import (
	"fmt"
	"math"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/tokenizer"
)

// LoadGGUF reads a llama.cpp GGUF file (v1-v3) of a llama, mistral or
// qwen2 model and uploads its weights to b. Quantized weights stay
// quantized.
func LoadGGUF(path string, b backend.Backend) (*Model, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return loadGGUF(f, path, b)
}

// loadGGUF builds the model from a parsed GGUF file named name.
func loadGGUF(f *gguf.File, name string, b backend.Backend) (*Model, error) {
	cfg, err := ggufConfig(f)
	if err != nil {
		return nil, fmt.Errorf("gguf %s: %w", name, err)
	}
	m := &Model{Config: cfg, Backend: b, Source: "gguf", SourcePath: name}
	if m.Tokenizer, err = ggufTokenizer(f); err != nil {
		return nil, fmt.Errorf("gguf %s: tokenizer: %w", name, err)
	}
	has := func(name string) bool { _, ok := f.Tensor(name); return ok }
	ld := &loader{src: f, b: b, where: "gguf " + name}
	if err := m.loadWeights(ld, has, ggufNames{}); err != nil {
		ld.abort()
		return nil, err
	}
	m.WeightDTypes = ld.dtypes
	m.SourceMetadata = f.KVs
	return m, nil
}

func ggufConfig(f *gguf.File) (Config, error) {
	arch := f.Architecture()
	var c Config
	switch arch {
	case "llama", "mistral":
		c.RoPE = backend.RoPEInterleaved
	case "qwen2":
		c.RoPE = backend.RoPEHalf // llama.cpp's NEOX rope: HF row order
		c.AttnBias = true
	case "":
		return c, fmt.Errorf("general.architecture is missing")
	default:
		return c, fmt.Errorf("architecture %q is not a Llama-family decoder graft supports (llama, mistral, qwen2)", arch)
	}
	c.Arch = arch
	need := func(key string) (int, error) {
		v, ok := f.Uint(arch + "." + key)
		if !ok {
			return 0, fmt.Errorf("metadata %s.%s is missing or not an integer", arch, key)
		}
		if v > 1<<31 {
			return 0, fmt.Errorf("metadata %s.%s = %d is out of range", arch, key, v)
		}
		return int(v), nil
	}
	var err error
	for _, p := range []struct {
		key string
		dst *int
	}{
		{"embedding_length", &c.Dim}, {"feed_forward_length", &c.FFN}, {"block_count", &c.Layers},
		{"attention.head_count", &c.Heads}, {"context_length", &c.Context},
	} {
		if *p.dst, err = need(p.key); err != nil {
			return c, err
		}
	}
	c.KVHeads = c.Heads
	if v, ok := f.Uint(arch + ".attention.head_count_kv"); ok {
		c.KVHeads = int(v)
	}
	if c.Heads > 0 {
		c.HeadDim = c.Dim / c.Heads
	}
	if v, ok := f.Uint(arch + ".attention.key_length"); ok {
		c.HeadDim = int(v)
	}
	eps, ok := f.Float(arch + ".attention.layer_norm_rms_epsilon")
	if !ok {
		return c, fmt.Errorf("metadata %s.attention.layer_norm_rms_epsilon is missing", arch)
	}
	c.NormEps = float32(eps)
	c.RopeTheta = 10000
	if v, ok := f.Float(arch + ".rope.freq_base"); ok {
		c.RopeTheta = float32(v)
	}
	emb, ok := f.Tensor("token_embd.weight")
	if !ok {
		return c, fmt.Errorf("tensor token_embd.weight is missing")
	}
	if len(emb.Shape) != 2 {
		return c, fmt.Errorf("tensor token_embd.weight has shape %v, want 2-D", emb.Shape)
	}
	c.Vocab = emb.Shape[0]
	if v, ok := f.Uint(arch + ".vocab_size"); ok && int(v) != c.Vocab {
		return c, fmt.Errorf("metadata %s.vocab_size %d disagrees with token_embd.weight rows %d", arch, v, c.Vocab)
	}
	// llama.cpp stores Llama 3.x frequency scaling as rope_freqs.weight and
	// linear/YaRN scaling as metadata; graft applies neither, so it refuses
	// such files instead of computing wrong positions.
	if _, ok := f.Tensor("rope_freqs.weight"); ok {
		return c, fmt.Errorf("tensor rope_freqs.weight (Llama 3 RoPE frequency scaling) is not supported by graft yet")
	}
	if kind, ok := f.String(arch + ".rope.scaling.type"); ok && kind != "none" {
		return c, fmt.Errorf("metadata %s.rope.scaling.type %q is not supported by graft yet (only unscaled RoPE)", arch, kind)
	}
	_, c.OutBias = f.Tensor("blk.0.attn_output.bias")
	_, hasOutput := f.Tensor("output.weight")
	c.TiedOutput = !hasOutput
	return c, c.Validate()
}

// ggufNames maps Hugging Face names to llama.cpp's tensor names.
type ggufNames struct{}

func (ggufNames) embed() string   { return "token_embd.weight" }
func (ggufNames) outNorm() string { return "output_norm.weight" }
func (ggufNames) output() string  { return "output.weight" }
func (ggufNames) layer(i int, part string) string {
	return fmt.Sprintf("blk.%d.%s", i, map[string]string{
		"input_layernorm.weight":          "attn_norm.weight",
		"post_attention_layernorm.weight": "ffn_norm.weight",
		"q_proj.weight":                   "attn_q.weight",
		"k_proj.weight":                   "attn_k.weight",
		"v_proj.weight":                   "attn_v.weight",
		"o_proj.weight":                   "attn_output.weight",
		"q_proj.bias":                     "attn_q.bias",
		"k_proj.bias":                     "attn_k.bias",
		"v_proj.bias":                     "attn_v.bias",
		"gate_proj.weight":                "ffn_gate.weight",
		"up_proj.weight":                  "ffn_up.weight",
		"down_proj.weight":                "ffn_down.weight",
	}[part])
}

// ggufTokenizer builds the tokenizer described by tokenizer.ggml.* metadata,
// or returns nil when the file has none.
func ggufTokenizer(f *gguf.File) (tokenizer.Tokenizer, error) {
	kind, ok := f.String("tokenizer.ggml.model")
	if !ok {
		return nil, nil
	}
	tokens, ok := f.Strings("tokenizer.ggml.tokens")
	if !ok {
		return nil, fmt.Errorf("tokenizer.ggml.tokens is missing or not an array of strings")
	}
	var types []int32
	if _, present := f.Get("tokenizer.ggml.token_type"); present {
		if types, ok = f.Int32s("tokenizer.ggml.token_type"); !ok {
			return nil, fmt.Errorf("tokenizer.ggml.token_type is not an array of int32")
		}
	}
	var addBOS *bool
	if v, ok := f.Bool("tokenizer.ggml.add_bos_token"); ok {
		addBOS = &v
	}
	switch kind {
	case "llama":
		id := func(key string) int32 {
			if v, ok := f.Int("tokenizer.ggml." + key); ok && v >= 0 && v < int64(len(tokens)) {
				return int32(v)
			}
			return -1
		}
		scores, _ := f.Float32s("tokenizer.ggml.scores")
		addSpace := true
		if v, ok := f.Bool("tokenizer.ggml.add_space_prefix"); ok {
			addSpace = v
		}
		return tokenizer.NewSentencePiece(tokenizer.SentencePieceConfig{
			Tokens: tokens, Scores: scores, Types: types,
			BOS: id("bos_token_id"), EOS: id("eos_token_id"), UNK: id("unknown_token_id"),
			AddSpacePrefix: addSpace,
			OmitBOS:        addBOS != nil && !*addBOS,
		})
	case "gpt2":
		merges, ok := f.Strings("tokenizer.ggml.merges")
		if !ok {
			return nil, fmt.Errorf("tokenizer.ggml.merges is missing or not an array of strings (a \"gpt2\" vocabulary needs its BPE merges)")
		}
		pre, _ := f.String("tokenizer.ggml.pre")
		ids := map[string]uint32{}
		for _, name := range ggufTokenIDNames {
			if v, ok := f.Uint("tokenizer.ggml." + name + "_token_id"); ok && v <= math.MaxUint32 {
				ids[name] = uint32(v)
			}
		}
		return tokenizer.NewGGUFBPE(tokenizer.GGUFBPEConfig{
			Tokens: tokens, Types: types, Merges: merges, Pre: pre, IDs: ids, AddBOS: addBOS,
		})
	default:
		return nil, fmt.Errorf("tokenizer.ggml.model %q is not supported (supported: llama, gpt2)", kind)
	}
}

// ggufTokenIDNames are the tokenizer.ggml.<name>_token_id keys a "gpt2"
// vocabulary reads (see tokenizer.GGUFBPEConfig).
var ggufTokenIDNames = []string{"bos", "eos", "unknown", "eot", "eom", "fim_pre", "fim_suf", "fim_mid", "fim_pad", "fim_rep", "fim_sep"}
