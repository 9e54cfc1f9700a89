package model

import (
	"fmt"
	"math"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/tokenizer"
)

// LoadGGUF reads a llama.cpp GGUF file (v1-v3) of a llama, mistral, qwen2,
// qwen3 or gemma3 model and uploads its weights to b. Quantized weights stay
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
	if err := m.loadWeights(ld, has, ggufNames{postNorms: cfg.PostNorms}); err != nil {
		ld.abort()
		return nil, err
	}
	m.WeightDTypes = ld.dtypes
	m.SourceMetadata = f.KVs
	return m, nil
}

// ggufArchitectures are the general.architecture values graft loads.
var ggufArchitectures = "llama, mistral, qwen2, qwen3, gemma3"

func ggufConfig(f *gguf.File) (Config, error) {
	arch := f.Architecture()
	var c Config
	switch arch {
	case "llama", "mistral":
		c.RoPE = backend.RoPEInterleaved
	case "qwen2":
		c.RoPE = backend.RoPEHalf // llama.cpp's NEOX rope: HF row order
		c.AttnBias = true
	case "qwen3":
		c.RoPE = backend.RoPEHalf
		c.QKNorm = true
	case "gemma3":
		c.RoPE = backend.RoPEHalf
		c.QKNorm, c.PostNorms, c.Act = true, true, ActGELUTanh
	case "":
		return c, fmt.Errorf("general.architecture is missing")
	default:
		return c, fmt.Errorf("general.architecture %q is not a decoder graft supports (supported: %s)", arch, ggufArchitectures)
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
	if v, ok := f.Uint(arch + ".attention.value_length"); ok && int(v) != c.HeadDim {
		return c, fmt.Errorf("metadata %s.attention.value_length %d differs from key_length %d; graft needs equal key and value heads", arch, v, c.HeadDim)
	}
	if v, ok := f.Uint(arch + ".rope.dimension_count"); ok && int(v) != c.HeadDim {
		return c, fmt.Errorf("metadata %s.rope.dimension_count %d differs from the head size %d; graft rotates whole heads", arch, v, c.HeadDim)
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
	if arch == "gemma3" {
		if err := ggufGemma3(f, &c); err != nil {
			return c, err
		}
	}
	if c.RopeScaling, err = ggufRopeScaling(f, arch, c); err != nil {
		return c, err
	}
	_, c.OutBias = f.Tensor("blk.0.attn_output.bias")
	_, hasOutput := f.Tensor("output.weight")
	c.TiedOutput = !hasOutput
	return c, c.Validate()
}

// ggufGemma3 reads what llama.cpp's gemma3 adds to the llama keys.
func ggufGemma3(f *gguf.File, c *Config) error {
	const arch = "gemma3"
	c.EmbedScale = float32(math.Sqrt(float64(c.Dim)))
	// llama.cpp scales queries by 1/√head_dim, except for the 27B model
	// (62 layers), whose query_pre_attn_scalar is hidden/heads; GGUF
	// keeps no key for it.
	c.AttnScale = float32(1 / math.Sqrt(float64(c.HeadDim)))
	if c.Layers == 62 {
		c.AttnScale = float32(1 / math.Sqrt(float64(c.Dim/c.Heads)))
	}
	if v, ok := f.Float(arch + ".final_logit_softcapping"); ok && v != 0 {
		return fmt.Errorf("metadata %s.final_logit_softcapping = %v is not supported (Gemma 3 has none)", arch, v)
	}
	if w, ok := f.Uint(arch + ".attention.sliding_window"); ok && w > 0 {
		if w > 1<<31 {
			return fmt.Errorf("metadata %s.attention.sliding_window = %d is out of range", arch, w)
		}
		c.SlidingWindow, c.SlidingPattern, c.RopeThetaLocal = int(w), 6, 10000
		if _, present := f.Get(arch + ".attention.sliding_window_pattern"); present {
			p, ok := f.Uint(arch + ".attention.sliding_window_pattern")
			if !ok || p > 1<<31 {
				return fmt.Errorf("metadata %s.attention.sliding_window_pattern is not a layer period (graft reads one integer)", arch)
			}
			c.SlidingPattern = int(p)
		}
		if v, ok := f.Float(arch + ".rope.freq_base_swa"); ok {
			c.RopeThetaLocal = float32(v)
		}
	}
	return nil
}

// ggufRopeScaling reads RoPE scaling as llama.cpp does: the tensor
// rope_freqs.weight (Llama 3), or rope.scaling.type linear or yarn with
// its factor and YaRN's keys. Anything else is refused by name.
func ggufRopeScaling(f *gguf.File, arch string, c Config) (RopeScaling, error) {
	var s RopeScaling
	if _, ok := f.Tensor("rope_freqs.weight"); ok {
		t, err := f.ReadTensor("rope_freqs.weight")
		if err != nil {
			return s, err
		}
		vals, err := t.Float32s()
		if err != nil {
			return s, fmt.Errorf("tensor rope_freqs.weight: %w", err)
		}
		if len(vals) != c.HeadDim/2 {
			return s, fmt.Errorf("tensor rope_freqs.weight has %d values, want %d (head size / 2)", len(vals), c.HeadDim/2)
		}
		s.Type, s.FreqFactors = RopeLlama3, vals
	}
	key := arch + ".rope.scaling.type"
	kind, ok := f.String(key)
	if !ok {
		if _, present := f.Get(key); present {
			return s, fmt.Errorf("metadata %s is not a string", key)
		}
		kind = RopeLinear // llama.cpp's default: linear with no factor is none
	}
	factor, _ := f.Float(arch + ".rope.scaling.factor")
	if factor == 0 {
		factor, _ = f.Float(arch + ".rope.scale_linear") // the older key
	}
	// llama.cpp applies these two to every architecture graft loads (it
	// reads yarn_ext_factor for Grok only); graft has neither.
	if v, ok := f.Float(arch + ".rope.scaling.attn_factor"); ok && v != 1 {
		return s, fmt.Errorf("metadata %s.rope.scaling.attn_factor = %v is not supported (only 1)", arch, v)
	}
	if v, ok := f.Float(arch + ".rope.scaling.yarn_log_multiplier"); ok && v != 0 {
		return s, fmt.Errorf("metadata %s.rope.scaling.yarn_log_multiplier = %v is not supported (only 0)", arch, v)
	}
	switch kind {
	case "none":
	case RopeLinear:
		if factor != 0 && factor != 1 {
			if s.FreqFactors != nil {
				return s, fmt.Errorf("metadata %s linear with factor %v beside tensor rope_freqs.weight is not supported", key, factor)
			}
			s.Type, s.Factor = RopeLinear, factor
		}
	case RopeYaRN:
		if s.FreqFactors != nil {
			return s, fmt.Errorf("metadata %s yarn beside tensor rope_freqs.weight is not supported", key)
		}
		if !(factor > 0) {
			return s, fmt.Errorf("metadata %s is yarn but %s.rope.scaling.factor is missing or not positive", key, arch)
		}
		s.Type, s.Factor = RopeYaRN, factor
		if v, ok := f.Uint(arch + ".rope.scaling.original_context_length"); ok && v < 1<<31 {
			s.OrigContext = int(v)
		}
		s.BetaFast, _ = f.Float(arch + ".rope.scaling.yarn_beta_fast")
		s.BetaSlow, _ = f.Float(arch + ".rope.scaling.yarn_beta_slow")
		// The converter writes transformers' attention_factor here.
		s.AttnFactor, _ = f.Float(arch + ".rope.scaling.yarn_attn_factor")
	default:
		return s, fmt.Errorf("metadata %s %q is not supported (supported: none, linear, yarn; Llama 3 scaling as tensor rope_freqs.weight)", key, kind)
	}
	return s, nil
}

// ggufNames maps Hugging Face names to llama.cpp's tensor names. Gemma's
// post_attention_layernorm is a post-norm (llama.cpp's post_attention_norm)
// where Llama's is the FFN's pre-norm (ffn_norm).
type ggufNames struct{ postNorms bool }

func (ggufNames) embed() string   { return "token_embd.weight" }
func (ggufNames) outNorm() string { return "output_norm.weight" }
func (ggufNames) output() string  { return "output.weight" }
func (n ggufNames) layer(i int, part string) string {
	name := ggufLayerNames[part]
	if n.postNorms && part == "post_attention_layernorm.weight" {
		name = "post_attention_norm.weight"
	}
	return fmt.Sprintf("blk.%d.%s", i, name)
}

var ggufLayerNames = map[string]string{
	"input_layernorm.weight":            "attn_norm.weight",
	"post_attention_layernorm.weight":   "ffn_norm.weight",
	"pre_feedforward_layernorm.weight":  "ffn_norm.weight",
	"post_feedforward_layernorm.weight": "post_ffw_norm.weight",
	"q_norm.weight":                     "attn_q_norm.weight",
	"k_norm.weight":                     "attn_k_norm.weight",
	"q_proj.weight":                     "attn_q.weight",
	"k_proj.weight":                     "attn_k.weight",
	"v_proj.weight":                     "attn_v.weight",
	"o_proj.weight":                     "attn_output.weight",
	"q_proj.bias":                       "attn_q.bias",
	"k_proj.bias":                       "attn_k.bias",
	"v_proj.bias":                       "attn_v.bias",
	"o_proj.bias":                       "attn_output.bias",
	"gate_proj.weight":                  "ffn_gate.weight",
	"up_proj.weight":                    "ffn_up.weight",
	"down_proj.weight":                  "ffn_down.weight",
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
