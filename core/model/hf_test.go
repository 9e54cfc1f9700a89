package model

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/formats/hfconfig"
	"github.com/graft-ml/graft/core/formats/safetensors"
	"github.com/graft-ml/graft/core/tensor"
	"github.com/graft-ml/graft/core/tokenizer"
)

const gpt2Dir = "../../testdata/gpt2/"

// hfPermute reorders the rows of a q/k projection from Meta's interleaved
// RoPE layout to Hugging Face's rotate-half layout, as transformers'
// convert_llama_weights_to_hf.py does.
func hfPermute(w []float32, heads, rowLen int) []float32 {
	out := make([]float32, len(w))
	rows := len(w) / rowLen
	d := rows / heads
	for h := 0; h < heads; h++ {
		for s := 0; s < 2; s++ {
			for p := 0; p < d/2; p++ {
				hf := h*d + s*(d/2) + p
				meta := h*d + 2*p + s
				copy(out[hf*rowLen:(hf+1)*rowLen], w[meta*rowLen:(meta+1)*rowLen])
			}
		}
	}
	return out
}

// TestHFLayoutMatchesGGUF builds one random model twice, in Hugging Face
// layout (config.json, BF16 safetensors with permuted q/k, tokenizer.json
// from GPT-2's files) and in GGUF layout, and checks the logits agree.
func TestHFLayoutMatchesGGUF(t *testing.T) {
	enc, err := os.ReadFile(gpt2Dir + "encoder.json")
	if err != nil {
		t.Fatal(err)
	}
	merges, err := os.ReadFile(gpt2Dir + "vocab.bpe")
	if err != nil {
		t.Fatal(err)
	}
	tokJSON, err := tokenizer.BuildGPT2TokenizerJSON(enc, merges)
	if err != nil {
		t.Fatal(err)
	}
	const (
		dim, ffn, layers, heads, kvHeads, vocab, ctx = 32, 48, 2, 4, 2, 50257, 64
	)
	hd := dim / heads
	rng := rand.New(rand.NewPCG(1, 2))
	// Values are rounded to BF16 so both layouts hold identical numbers.
	random := func(n int, scale float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = tensor.BF16ToF32(tensor.F32ToBF16(float32(rng.NormFloat64() * scale)))
		}
		return v
	}
	type weight struct {
		hf, gg string
		shape  tensor.Shape
		values []float32
		perm   int // heads to permute for the HF copy
	}
	var ws []weight
	add := func(hf, gg string, perm int, scale float64, shape ...int) {
		ws = append(ws, weight{hf, gg, shape, random(int(tensor.Shape(shape).Numel()), scale), perm})
	}
	add("model.embed_tokens.weight", "token_embd.weight", 0, 1, vocab, dim)
	add("lm_head.weight", "output.weight", 0, 0.2, vocab, dim)
	add("model.norm.weight", "output_norm.weight", 0, 0.1, dim)
	for i := 0; i < layers; i++ {
		p := func(s string) string { return "model.layers." + string(rune('0'+i)) + "." + s }
		g := func(s string) string { return "blk." + string(rune('0'+i)) + "." + s }
		add(p("input_layernorm.weight"), g("attn_norm.weight"), 0, 0.1, dim)
		add(p("post_attention_layernorm.weight"), g("ffn_norm.weight"), 0, 0.1, dim)
		add(p("self_attn.q_proj.weight"), g("attn_q.weight"), heads, 0.3, heads*hd, dim)
		add(p("self_attn.k_proj.weight"), g("attn_k.weight"), kvHeads, 0.3, kvHeads*hd, dim)
		add(p("self_attn.v_proj.weight"), g("attn_v.weight"), 0, 0.3, kvHeads*hd, dim)
		add(p("self_attn.o_proj.weight"), g("attn_output.weight"), 0, 0.3, dim, heads*hd)
		add(p("mlp.gate_proj.weight"), g("ffn_gate.weight"), 0, 0.3, ffn, dim)
		add(p("mlp.up_proj.weight"), g("ffn_up.weight"), 0, 0.3, ffn, dim)
		add(p("mlp.down_proj.weight"), g("ffn_down.weight"), 0, 0.3, dim, ffn)
	}
	for i := range ws { // the norms should sit near 1
		if len(ws[i].shape) == 1 {
			for j := range ws[i].values {
				ws[i].values[j] = tensor.BF16ToF32(tensor.F32ToBF16(1 + ws[i].values[j]))
			}
		}
	}

	dir := t.TempDir()
	hfDir := filepath.Join(dir, "hf")
	if err := os.Mkdir(hfDir, 0o755); err != nil {
		t.Fatal(err)
	}
	bos, eos := 50256, 50256
	hc := &hfconfig.Config{
		Architectures: []string{"LlamaForCausalLM"}, ModelType: "llama",
		HiddenSize: dim, IntermediateSize: ffn, NumHiddenLayers: layers,
		NumAttentionHeads: heads, NumKeyValueHeads: kvHeads, HeadDim: hd,
		RMSNormEps: 1e-5, RopeTheta: 10000, MaxPositionEmbeddings: ctx, VocabSize: vocab,
		HiddenAct: "silu", BOSTokenID: &bos, EOSTokenID: []int{eos}, TorchDType: "bfloat16",
	}
	cfgJSON, err := hc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(filepath.Join(hfDir, "config.json"), cfgJSON, 0o644))
	must(t, os.WriteFile(filepath.Join(hfDir, "tokenizer.json"), tokJSON, 0o644))
	var hfTensors, ggTensors []*tensor.Tensor
	for _, w := range ws {
		hv := w.values
		if w.perm > 0 {
			hv = hfPermute(hv, w.perm, dim)
		}
		data := make([]byte, 2*len(hv))
		must(t, tensor.Encode(tensor.BF16, hv, data))
		hfTensors = append(hfTensors, &tensor.Tensor{Name: w.hf, DType: tensor.BF16, Shape: w.shape, Data: data})
		gt, err := tensor.FromFloat32(w.gg, w.shape, w.values)
		must(t, err)
		ggTensors = append(ggTensors, gt)
	}
	must(t, safetensors.WriteFile(filepath.Join(hfDir, "model.safetensors"), hfTensors, map[string]string{"format": "pt"}))
	ggPath := filepath.Join(dir, "model.gguf")
	kvs := []gguf.KV{
		{Key: "general.architecture", Value: "llama"},
		{Key: "llama.embedding_length", Value: uint32(dim)},
		{Key: "llama.feed_forward_length", Value: uint32(ffn)},
		{Key: "llama.block_count", Value: uint32(layers)},
		{Key: "llama.attention.head_count", Value: uint32(heads)},
		{Key: "llama.attention.head_count_kv", Value: uint32(kvHeads)},
		{Key: "llama.context_length", Value: uint32(ctx)},
		{Key: "llama.attention.layer_norm_rms_epsilon", Value: float32(1e-5)},
		{Key: "llama.rope.freq_base", Value: float32(10000)},
	}
	must(t, gguf.WriteFile(ggPath, kvs, ggTensors))

	hf := loadModel(t, hfDir)
	gg := loadModel(t, ggPath)
	if hf.WeightDTypes["BF16"] == 0 || hf.Config.RoPE != 1 || gg.Config.RoPE != 0 {
		t.Fatalf("hf dtypes %v rope %v, gguf rope %v", hf.WeightDTypes, hf.Config.RoPE, gg.Config.RoPE)
	}
	// GPT-2's tokenizer adds no BOS (as in transformers): the sequence
	// starts with config.json's BOS by hand.
	text := hf.Tokenizer.Encode("Hello world, this is graft.", true)
	if text[0] != 15496 || text[1] != 995 {
		t.Fatalf("gpt2 tokenization = %v, want 15496 (Hello), 995 ( world), ...", text)
	}
	ids := append([]int32{int32(bos)}, text...)
	a, err := hf.Forward(hf.NewCache(0), ids, true)
	must(t, err)
	b, err := gg.Forward(gg.NewCache(0), ids, true)
	must(t, err)
	var worst float64
	for i := range a {
		worst = math.Max(worst, math.Abs(float64(a[i]-b[i])))
	}
	if worst > 1e-4 {
		t.Fatalf("max |hf - gguf| logit = %g, want <= 1e-4", worst)
	}
	t.Logf("max |hf - gguf| logit = %.3g over %d positions", worst, len(ids))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestRopeScalingFromHF(t *testing.T) {
	for _, tt := range []struct {
		scaling *hfconfig.RopeScaling
		want    string // Type, or "error"
	}{
		{nil, ""},
		{&hfconfig.RopeScaling{RopeType: "default"}, ""},
		{&hfconfig.RopeScaling{RopeType: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8192}, RopeLlama3},
		{&hfconfig.RopeScaling{Type: "linear", Factor: 2}, RopeLinear},
		{&hfconfig.RopeScaling{Type: "yarn", Factor: 4, OriginalMaxPositionEmbeddings: 32768}, RopeYaRN},
		{&hfconfig.RopeScaling{RopeType: "dynamic", Factor: 2}, "error"},
		{&hfconfig.RopeScaling{RopeType: "longrope"}, "error"},
	} {
		s, err := ropeScalingFromHF(tt.scaling)
		switch {
		case tt.want == "error":
			if err == nil || !strings.Contains(err.Error(), tt.scaling.Kind()) || !strings.Contains(err.Error(), "yarn") {
				t.Errorf("rope_scaling %+v: error %v, want one naming it and the supported types", tt.scaling, err)
			}
		case err != nil || s.Type != tt.want:
			t.Errorf("rope_scaling %+v: %+v, %v; want type %q", tt.scaling, s, err, tt.want)
		}
	}
}
