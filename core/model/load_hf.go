package model

import (
	"fmt"
	"os"
	"path/filepath"

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
	cfg := ConfigFromHF(hc)
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("hf %s: %w", dir, err)
	}
	if err := checkRopeScaling(hc); err != nil {
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
	if err := m.loadWeights(ld, has, hfNames{}); err != nil {
		ld.abort()
		return nil, err
	}
	m.WeightDTypes = ld.dtypes
	return m, nil
}

// checkRopeScaling refuses RoPE scaling schemes graft does not apply, so
// that such a model fails to load rather than computing wrong positions.
func checkRopeScaling(hc *hfconfig.Config) error {
	if hc.RopeScaling == nil {
		return nil
	}
	switch kind := hc.RopeScaling.Kind(); kind {
	case "", "default":
		return nil
	default:
		return fmt.Errorf("rope_scaling %q is not supported by graft yet (only unscaled RoPE)", kind)
	}
}

// ConfigFromHF converts a Hugging Face config to graft's.
func ConfigFromHF(hc *hfconfig.Config) Config {
	return Config{
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
}

// hfNames is the Hugging Face transformers layout.
type hfNames struct{}

func (hfNames) embed() string   { return "model.embed_tokens.weight" }
func (hfNames) outNorm() string { return "model.norm.weight" }
func (hfNames) output() string  { return "lm_head.weight" }
func (hfNames) layer(i int, part string) string {
	switch part {
	case "input_layernorm.weight", "post_attention_layernorm.weight":
		return fmt.Sprintf("model.layers.%d.%s", i, part)
	}
	return hfName(i, part[:len(part)-len(filepath.Ext(part))]) + filepath.Ext(part)
}
