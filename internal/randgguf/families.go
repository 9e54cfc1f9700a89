package randgguf

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/formats/safetensors"
	"github.com/graft-ml/graft/core/tensor"
)

// Family is a decoder family as Hugging Face stores it and llama.cpp's
// converter (convert_hf_to_gguf.py) writes it.
type Family string

// The families, each with the features that set it apart.
const (
	// Llama3 is llama with Llama 3.1's "llama3" rope_scaling, which the
	// converter writes as the tensor rope_freqs.weight; interleaved RoPE
	// (q/k rows permuted in GGUF), untied head.
	Llama3 Family = "llama3"
	// SmolLM2 is llama shaped like SmolLM2: tied embeddings, no scaling.
	SmolLM2 Family = "smollm2"
	// Qwen2 has q/k/v biases, rotate-half RoPE and tied embeddings.
	Qwen2 Family = "qwen2"
	// Qwen3 has per-head q/k RMSNorms, a head size (key_length) that is
	// not hidden/heads, and here YaRN scaling.
	Qwen3 Family = "qwen3"
	// Gemma3 is gemma3_text: √hidden embedding scale, 1+w norms, q/k
	// norms, post-norms, GELU-tanh FFN, five sliding-window layers then a
	// global one (with linear RoPE scaling), query_pre_attn_scalar.
	Gemma3 Family = "gemma3"
)

// Families lists every family.
var Families = []Family{Llama3, SmolLM2, Qwen2, Qwen3, Gemma3}

// Model is one random-weight model in both forms: the GGUF llama.cpp's
// converter would write, and the Hugging Face checkpoint it would read.
// The weights are the same numbers: every value is exact in float32 in
// either form (Gemma's norms, stored as w in HF and 1+w in GGUF, are drawn
// on a grid where both are exact).
type Model struct {
	Family   Family
	KVs      []gguf.KV
	GGUF     []*tensor.Tensor
	HFConfig map[string]any
	HF       []*tensor.Tensor
}

// familyShape is a small shape per family; Gemma 3 needs six layers for
// one global layer after its five local ones.
func familyShape(f Family, vocab int) (Shape, int) {
	s := Shape{Name: "random " + string(f), Dim: 64, FFN: 128, Layers: 2, Heads: 4, KVHeads: 2, Vocab: vocab, Ctx: 256,
		NormEps: 1e-5, RopeTheta: 10000}
	headDim := s.HeadDim()
	switch f {
	case Llama3:
		s.RopeTheta = 500000
	case Qwen2:
		s.RopeTheta, s.NormEps = 1e6, 1e-6
	case Qwen3:
		s.RopeTheta, s.NormEps, headDim = 1e6, 1e-6, 24 // key_length 24 ≠ 64/4
	case Gemma3:
		s.Layers, s.Heads, s.KVHeads, s.RopeTheta, s.NormEps, headDim = 6, 2, 1, 1e6, 1e-6, 32
	}
	return s, headDim
}

// NewFamily draws a model of family f with a vocabulary of vocab tokens
// (tokenizerKVs, which may be nil, is its GGUF tokenizer metadata) from a
// generator seeded by seed. Scales keep activations near unit size and
// spread the logits over a few nats, so that the families' differences
// show in them.
func NewFamily(f Family, vocab int, seed uint64, tokenizerKVs []gguf.KV) (*Model, error) {
	return NewFamilySized(f, vocab, seed, tokenizerKVs, 0, 0)
}

// NewFamilySized is NewFamily with a hidden size dim and an FFN width ffn
// in place of the family's small defaults (zero keeps a default), e.g.
// 256 and 512 so that every projection's rows are whole K-quant
// super-blocks. The llama families' head size follows dim.
func NewFamilySized(f Family, vocab int, seed uint64, tokenizerKVs []gguf.KV, dim, ffn int) (*Model, error) {
	switch f {
	case Llama3, SmolLM2, Qwen2, Qwen3, Gemma3:
	default:
		return nil, fmt.Errorf("randgguf: unknown family %q (known: %v)", f, Families)
	}
	s, hd := familyShape(f, vocab)
	if dim > 0 {
		if dim%s.Heads != 0 {
			return nil, fmt.Errorf("randgguf: hidden size %d does not split into %d heads", dim, s.Heads)
		}
		if hd == s.HeadDim() {
			hd = dim / s.Heads
		}
		s.Dim = dim
	}
	if ffn > 0 {
		s.FFN = ffn
	}
	r := rand.New(rand.NewPCG(seed, seed^0x2545f4914f6cdd1d))
	m := &Model{Family: f}
	q, kv := s.Heads*hd, s.KVHeads*hd
	tied := f != Llama3
	gemma := f == Gemma3

	// HF tensors first, in the checkpoint's layout.
	matrix := func(rows, cols int, scale float64) []float32 {
		v := make([]float32, rows*cols)
		for i := range v {
			v[i] = float32(r.NormFloat64() * scale)
		}
		return v
	}
	// norm returns the effective weight (what multiplies the normalized
	// input) near 1, on a 1/1024 grid so that w = eff-1 is exact too.
	norm := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = 1 + float32(math.Round(r.NormFloat64()*0.1*1024))/1024
		}
		return v
	}
	type weight struct {
		hf, gg  string
		shape   []int
		vals    []float32
		norm    bool // stored as eff-1 in Gemma's HF checkpoint
		permute int  // heads whose rows GGUF holds in Meta's order (llama)
	}
	var ws []*weight
	add := func(hf, gg string, vals []float32, dims ...int) *weight {
		ws = append(ws, &weight{hf: hf, gg: gg, shape: dims, vals: vals})
		return ws[len(ws)-1]
	}
	add("model.embed_tokens.weight", "token_embd.weight", matrix(s.Vocab, s.Dim, 0.25), s.Vocab, s.Dim)
	for i := range s.Layers {
		hf := func(part string) string { return fmt.Sprintf("model.layers.%d.%s", i, part) }
		gg := func(part string) string { return fmt.Sprintf("blk.%d.%s", i, part) }
		add(hf("input_layernorm.weight"), gg("attn_norm.weight"), norm(s.Dim), s.Dim).norm = true
		wq := add(hf("self_attn.q_proj.weight"), gg("attn_q.weight"), matrix(q, s.Dim, 1/math.Sqrt(float64(s.Dim))), q, s.Dim)
		wk := add(hf("self_attn.k_proj.weight"), gg("attn_k.weight"), matrix(kv, s.Dim, 1/math.Sqrt(float64(s.Dim))), kv, s.Dim)
		if f == Llama3 || f == SmolLM2 {
			wq.permute, wk.permute = s.Heads, s.KVHeads
		}
		add(hf("self_attn.v_proj.weight"), gg("attn_v.weight"), matrix(kv, s.Dim, 1/math.Sqrt(float64(s.Dim))), kv, s.Dim)
		if f == Qwen2 {
			add(hf("self_attn.q_proj.bias"), gg("attn_q.bias"), matrix(1, q, 0.3), q)
			add(hf("self_attn.k_proj.bias"), gg("attn_k.bias"), matrix(1, kv, 0.3), kv)
			add(hf("self_attn.v_proj.bias"), gg("attn_v.bias"), matrix(1, kv, 0.3), kv)
		}
		if f == Qwen3 || gemma {
			add(hf("self_attn.q_norm.weight"), gg("attn_q_norm.weight"), norm(hd), hd).norm = true
			add(hf("self_attn.k_norm.weight"), gg("attn_k_norm.weight"), norm(hd), hd).norm = true
		}
		add(hf("self_attn.o_proj.weight"), gg("attn_output.weight"), matrix(s.Dim, q, 1/math.Sqrt(float64(q))), s.Dim, q)
		if gemma {
			add(hf("post_attention_layernorm.weight"), gg("post_attention_norm.weight"), norm(s.Dim), s.Dim).norm = true
			add(hf("pre_feedforward_layernorm.weight"), gg("ffn_norm.weight"), norm(s.Dim), s.Dim).norm = true
			add(hf("post_feedforward_layernorm.weight"), gg("post_ffw_norm.weight"), norm(s.Dim), s.Dim).norm = true
		} else {
			add(hf("post_attention_layernorm.weight"), gg("ffn_norm.weight"), norm(s.Dim), s.Dim).norm = true
		}
		add(hf("mlp.gate_proj.weight"), gg("ffn_gate.weight"), matrix(s.FFN, s.Dim, 1/math.Sqrt(float64(s.Dim))), s.FFN, s.Dim)
		add(hf("mlp.up_proj.weight"), gg("ffn_up.weight"), matrix(s.FFN, s.Dim, 1/math.Sqrt(float64(s.Dim))), s.FFN, s.Dim)
		add(hf("mlp.down_proj.weight"), gg("ffn_down.weight"), matrix(s.Dim, s.FFN, 1/math.Sqrt(float64(s.FFN))), s.Dim, s.FFN)
	}
	add("model.norm.weight", "output_norm.weight", norm(s.Dim), s.Dim).norm = true
	if !tied {
		add("lm_head.weight", "output.weight", matrix(s.Vocab, s.Dim, 2/math.Sqrt(float64(s.Dim))), s.Vocab, s.Dim)
	}

	for _, w := range ws {
		hfVals, ggVals := w.vals, w.vals
		if gemma && w.norm {
			hfVals = make([]float32, len(w.vals))
			for i, v := range w.vals {
				hfVals[i] = v - 1 // Gemma3RMSNorm multiplies by 1 + weight
			}
		}
		if w.permute > 0 {
			ggVals = metaOrder(w.vals, w.shape[0], w.shape[1], w.permute)
		}
		ht, err := tensor.FromFloat32(w.hf, tensor.Shape(w.shape), hfVals)
		if err != nil {
			return nil, err
		}
		gt, err := tensor.FromFloat32(w.gg, tensor.Shape(w.shape), ggVals)
		if err != nil {
			return nil, err
		}
		m.HF, m.GGUF = append(m.HF, ht), append(m.GGUF, gt)
	}
	m.HFConfig, m.KVs = familyConfig(f, s, hd, tied)
	if f == Llama3 {
		// The converter's generate_extra_tensors for rope_type llama3.
		sc := m.HFConfig["rope_scaling"].(map[string]any)
		ff := llama3Factors(float64(s.RopeTheta), hd, sc["factor"].(float64), sc["low_freq_factor"].(float64),
			sc["high_freq_factor"].(float64), float64(sc["original_max_position_embeddings"].(int)))
		t, err := tensor.FromFloat32("rope_freqs.weight", tensor.Shape{len(ff)}, ff)
		if err != nil {
			return nil, err
		}
		m.GGUF = append(m.GGUF, t)
	}
	m.KVs = append(m.KVs, tokenizerKVs...)
	return m, nil
}

// metaOrder permutes the rows of a q/k projection from Hugging Face's
// rotate-half order to Meta's interleaved one, as the converter's
// LlamaModel.permute does: within each head of d rows, row s·d/2+p
// becomes row 2p+s.
func metaOrder(vals []float32, rows, cols, heads int) []float32 {
	out := make([]float32, len(vals))
	d := rows / heads
	for h := range heads {
		for s := range 2 {
			for p := range d / 2 {
				copy(out[(h*d+2*p+s)*cols:][:cols], vals[(h*d+s*(d/2)+p)*cols:][:cols])
			}
		}
	}
	return out
}

// llama3Factors is the converter's rope_freqs.weight: per pair, 1 for
// wavelengths under old/high, factor over old/low, and the smooth blend's
// divisor between.
func llama3Factors(theta float64, d int, factor, low, high, old float64) []float32 {
	out := make([]float32, d/2)
	for i := range out {
		freq := math.Pow(theta, -2*float64(i)/float64(d))
		wave := 2 * math.Pi / freq
		switch {
		case wave < old/high:
			out[i] = 1
		case wave > old/low:
			out[i] = float32(factor)
		default:
			smooth := (old/wave - low) / (high - low)
			out[i] = float32(1 / ((1-smooth)/factor + smooth))
		}
	}
	return out
}

// familyConfig returns config.json and the GGUF metadata the converter
// derives from it.
func familyConfig(f Family, s Shape, hd int, tied bool) (map[string]any, []gguf.KV) {
	arch := string(f)
	hf := map[string]any{
		"hidden_size": s.Dim, "intermediate_size": s.FFN, "num_hidden_layers": s.Layers,
		"num_attention_heads": s.Heads, "num_key_value_heads": s.KVHeads, "head_dim": hd,
		"max_position_embeddings": s.Ctx, "rms_norm_eps": float64(s.NormEps), "rope_theta": float64(s.RopeTheta),
		"vocab_size": s.Vocab, "tie_word_embeddings": tied, "torch_dtype": "float32",
		"bos_token_id": nil, "eos_token_id": nil,
	}
	var extra []gguf.KV
	switch f {
	case Llama3, SmolLM2:
		arch = "llama"
		hf["model_type"], hf["architectures"], hf["hidden_act"] = "llama", []string{"LlamaForCausalLM"}, "silu"
		if f == Llama3 {
			// A short original context, so that the scaling reaches the
			// frequencies 32 positions turn.
			hf["rope_scaling"] = map[string]any{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
				"high_freq_factor": 4.0, "original_max_position_embeddings": 32}
		}
	case Qwen2:
		hf["model_type"], hf["architectures"], hf["hidden_act"] = "qwen2", []string{"Qwen2ForCausalLM"}, "silu"
	case Qwen3:
		hf["model_type"], hf["architectures"], hf["hidden_act"] = "qwen3", []string{"Qwen3ForCausalLM"}, "silu"
		hf["rope_scaling"] = map[string]any{"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16}
		extra = append(extra, gguf.KV{Key: arch + ".rope.scaling.type", Value: "yarn"},
			gguf.KV{Key: arch + ".rope.scaling.factor", Value: float32(4)},
			gguf.KV{Key: arch + ".rope.scaling.original_context_length", Value: uint32(16)})
	case Gemma3:
		hf["model_type"], hf["architectures"] = "gemma3_text", []string{"Gemma3ForCausalLM"}
		hf["hidden_activation"] = "gelu_pytorch_tanh"
		hf["query_pre_attn_scalar"] = hd
		hf["sliding_window"] = 8
		hf["rope_local_base_freq"] = 10000.0
		hf["sliding_window_pattern"] = 6
		hf["final_logit_softcapping"], hf["attn_logit_softcapping"] = nil, nil
		hf["rope_scaling"] = map[string]any{"rope_type": "linear", "factor": 8.0}
		extra = append(extra, gguf.KV{Key: arch + ".rope.scaling.type", Value: "linear"},
			gguf.KV{Key: arch + ".rope.scaling.factor", Value: float32(8)},
			gguf.KV{Key: arch + ".attention.sliding_window", Value: uint32(8)},
			gguf.KV{Key: arch + ".rope.freq_base_swa", Value: float32(10000)})
	}
	kvs := []gguf.KV{
		{Key: "general.architecture", Value: arch},
		{Key: "general.name", Value: s.Name},
		{Key: "general.file_type", Value: uint32(0)}, // all F32
		{Key: arch + ".block_count", Value: uint32(s.Layers)},
		{Key: arch + ".context_length", Value: uint32(s.Ctx)},
		{Key: arch + ".embedding_length", Value: uint32(s.Dim)},
		{Key: arch + ".feed_forward_length", Value: uint32(s.FFN)},
		{Key: arch + ".attention.head_count", Value: uint32(s.Heads)},
		{Key: arch + ".attention.head_count_kv", Value: uint32(s.KVHeads)},
		{Key: arch + ".rope.freq_base", Value: s.RopeTheta},
		{Key: arch + ".attention.layer_norm_rms_epsilon", Value: s.NormEps},
		{Key: arch + ".attention.key_length", Value: uint32(hd)},
		{Key: arch + ".attention.value_length", Value: uint32(hd)},
	}
	if arch == "llama" { // LlamaModel adds these
		kvs = append(kvs, gguf.KV{Key: arch + ".vocab_size", Value: uint32(s.Vocab)},
			gguf.KV{Key: arch + ".rope.dimension_count", Value: uint32(hd)})
	}
	return hf, append(kvs, extra...)
}

// WriteGGUF writes the GGUF form to path.
func (m *Model) WriteGGUF(path string) error {
	return gguf.WriteFile(path, m.KVs, m.GGUF)
}

// WriteHF writes the Hugging Face form into dir: config.json and
// model.safetensors.
func (m *Model) WriteHF(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cfg, err := json.MarshalIndent(m.HFConfig, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), append(cfg, '\n'), 0o644); err != nil {
		return err
	}
	return safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), m.HF, map[string]string{"format": "pt"})
}
