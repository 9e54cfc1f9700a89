package model

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/formats/hfconfig"
	"github.com/graft-ml/graft/core/formats/safetensors"
)

// LoadHF reads a Hugging Face model directory: config.json, model weights
// in safetensors (single file or sharded with an index) and, when present,
// tokenizer.json.
func LoadHF(dir string, b backend.Backend) (*Model, error) {
	hc, err := hfconfig.Load(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	cfg, err := ConfigFromHF(hc)
	if err != nil {
		return nil, fmt.Errorf("hf %s: %w", dir, err)
	}
	set, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	defer set.Close()
	m := &Model{Config: cfg, Backend: b, Source: "hf", SourcePath: dir}
	if _, err := os.Stat(filepath.Join(dir, "tokenizer.json")); err == nil {
		if m.Tokenizer, err = LoadTokenizer(dir); err != nil {
			return nil, err
		}
	}
	has := func(name string) bool { _, ok := set.Tensor(name); return ok }
	if !cfg.TiedOutput && !has("lm_head.weight") {
		return nil, fmt.Errorf("hf %s: lm_head.weight is missing and tie_word_embeddings is false", dir)
	}
	ld := &loader{src: set, b: b, where: "hf " + dir}
	if hc.ModelType == hfconfig.Gemma3Text {
		ld.normShift = 1 // Gemma3RMSNorm multiplies by 1 + weight
	}
	if err := m.loadWeights(ld, has, hfNames{}); err != nil {
		ld.abort()
		return nil, err
	}
	m.WeightDTypes = ld.dtypes
	return m, nil
}

// ConfigFromHF converts a Hugging Face config to graft's, refusing what
// graft cannot compute (RoPE scaling types, layer patterns) by name.
func ConfigFromHF(hc *hfconfig.Config) (Config, error) {
	c := Config{
		Arch:       hc.ModelType,
		Dim:        hc.HiddenSize,
		FFN:        hc.IntermediateSize,
		Layers:     hc.NumHiddenLayers,
		Heads:      hc.NumAttentionHeads,
		KVHeads:    hc.NumKeyValueHeads,
		HeadDim:    hc.HeadDim,
		Vocab:      hc.VocabSize,
		Context:    hc.MaxPositionEmbeddings,
		NormEps:    float32(hc.RMSNormEps),
		RopeTheta:  float32(hc.RopeTheta),
		RoPE:       backend.RoPEHalf,
		TiedOutput: hc.TieWordEmbeddings,
		AttnBias:   hc.AttentionBias,
		OutBias:    hc.OutputProjBias(),
	}
	switch hc.ModelType {
	case hfconfig.Qwen3:
		c.QKNorm = true
	case hfconfig.Gemma3Text:
		c.Arch = "gemma3"
		c.QKNorm, c.PostNorms, c.Act = true, true, ActGELUTanh
		// Gemma3TextScaledWordEmbedding multiplies by √hidden_size.
		c.EmbedScale = float32(math.Sqrt(float64(c.Dim)))
		c.AttnScale = float32(1 / math.Sqrt(hc.QueryPreAttnScalar))
		if hc.SlidingWindow != nil {
			c.SlidingWindow, c.RopeThetaLocal = *hc.SlidingWindow, float32(hc.RopeLocalTheta)
			pattern, err := slidingPattern(hc)
			if err != nil {
				return c, err
			}
			c.SlidingPattern = pattern
		}
	}
	var err error
	if c.RopeScaling, err = ropeScalingFromHF(hc.RopeScaling); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// slidingPattern returns the period P of Gemma's layer pattern (P-1 local
// layers, then a global one), which is how graft, like llama.cpp, holds
// it.
func slidingPattern(hc *hfconfig.Config) (int, error) {
	p := hc.SlidingWindowPattern
	if hc.LayerTypes != nil {
		p = 0
		for i, t := range hc.LayerTypes {
			if t == "full_attention" {
				p = i + 1
				break
			}
		}
		if p == 0 {
			p = hc.NumHiddenLayers + 1 // all local: no layer reaches the period
		}
	}
	for i := range hc.NumHiddenLayers {
		cfg := Config{SlidingWindow: 1, SlidingPattern: p}
		if cfg.IsLocal(i) != hc.IsSliding(i) {
			return 0, fmt.Errorf("layer_types %v is not a repeating pattern of local layers then one global layer, which graft (like llama.cpp) needs", hc.LayerTypes)
		}
	}
	return p, nil
}

// ropeScalingFromHF converts config.json's rope_scaling.
func ropeScalingFromHF(r *hfconfig.RopeScaling) (RopeScaling, error) {
	var s RopeScaling
	if r == nil {
		return s, nil
	}
	switch kind := r.Kind(); kind {
	case "", "default":
	case RopeLinear:
		s = RopeScaling{Type: RopeLinear, Factor: r.Factor}
	case RopeLlama3:
		s = RopeScaling{Type: RopeLlama3, Factor: r.Factor, LowFreqFactor: r.LowFreqFactor, HighFreqFactor: r.HighFreqFactor,
			OrigContext: r.OriginalMaxPositionEmbeddings}
	case RopeYaRN:
		s = RopeScaling{Type: RopeYaRN, Factor: r.Factor, OrigContext: r.OriginalMaxPositionEmbeddings,
			BetaFast: r.BetaFast, BetaSlow: r.BetaSlow, AttnFactor: r.AttentionFactor, Mscale: r.Mscale, MscaleAllDim: r.MscaleAllDim,
			NoTruncate: r.Truncate != nil && !*r.Truncate}
	default:
		return s, fmt.Errorf("rope_scaling %q is not supported (supported: %s)", kind, strings.Join(supportedRopeScaling, ", "))
	}
	return s, nil
}

// hfNames is the Hugging Face transformers layout.
type hfNames struct{}

func (hfNames) embed() string   { return "model.embed_tokens.weight" }
func (hfNames) outNorm() string { return "model.norm.weight" }
func (hfNames) output() string  { return "lm_head.weight" }
func (hfNames) layer(i int, part string) string {
	switch part {
	case "input_layernorm.weight", "post_attention_layernorm.weight", "pre_feedforward_layernorm.weight", "post_feedforward_layernorm.weight":
		return fmt.Sprintf("model.layers.%d.%s", i, part)
	}
	return hfName(i, part[:len(part)-len(filepath.Ext(part))]) + filepath.Ext(part)
}
