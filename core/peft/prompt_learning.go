package peft

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"

	"github.com/graft-ml/graft/core/formats/safetensors"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/tensor"
)

// PEFT's peft_type values of the prompt-learning methods.
const (
	PeftTypePromptTuning = "PROMPT_TUNING"
	PeftTypePrefixTuning = "PREFIX_TUNING"
)

// promptEmbeddingsKey is the one tensor a PEFT prompt-learning adapter
// file holds, whatever the method (PEFT's _get_adapter_state_dict for
// prompt encoders).
const promptEmbeddingsKey = "prompt_embeddings"

// PromptLearningConfig holds the fields PEFT's PromptLearningConfig shares
// between prompt tuning and prefix tuning. Zero values of the model-derived
// fields (TokenDim, NumAttentionHeads, NumLayers) are filled from the model,
// as PEFT's get_peft_model does; when set they must match it.
type PromptLearningConfig struct {
	BaseConfig
	// NumVirtualTokens is the number of virtual tokens (prompt tuning) or
	// prefix positions (prefix tuning). PEFT has no default; it must be
	// set.
	NumVirtualTokens int `json:"num_virtual_tokens"`
	// TokenDim is the model's hidden size for prompt tuning, and the
	// key/value width (num_key_value_heads · head_dim) for prefix tuning,
	// as PEFT records it for grouped-query models.
	TokenDim int `json:"token_dim"`
	// NumTransformerSubmodules is 1 for decoder-only models (0 means 1).
	NumTransformerSubmodules int `json:"num_transformer_submodules"`
	// NumAttentionHeads is the model's attention heads for prompt tuning,
	// its key/value heads for prefix tuning.
	NumAttentionHeads int `json:"num_attention_heads"`
	// NumLayers is the model's number of decoder layers.
	NumLayers int `json:"num_layers"`
}

// resolve fills the model-derived fields of c and checks them against the
// model: tokenDim and heads are what the method expects there.
func (c *PromptLearningConfig) resolve(m *model.Model, tokenDim, heads int) error {
	mc := m.Config
	c.NumTransformerSubmodules = cmp.Or(c.NumTransformerSubmodules, 1)
	c.TokenDim = cmp.Or(c.TokenDim, tokenDim)
	c.NumAttentionHeads = cmp.Or(c.NumAttentionHeads, heads)
	c.NumLayers = cmp.Or(c.NumLayers, mc.Layers)
	switch {
	case c.NumVirtualTokens <= 0:
		return fmt.Errorf("num_virtual_tokens is %d; it must be at least 1", c.NumVirtualTokens)
	case c.NumVirtualTokens >= mc.Context:
		return fmt.Errorf("num_virtual_tokens %d leaves no room for real tokens in the context of %d", c.NumVirtualTokens, mc.Context)
	case c.NumTransformerSubmodules != 1:
		return fmt.Errorf("num_transformer_submodules is %d; a decoder-only model has 1 (2 is for encoder-decoder models)", c.NumTransformerSubmodules)
	case c.TokenDim != tokenDim:
		return fmt.Errorf("token_dim is %d but the model needs %d: the adapter was made for another model", c.TokenDim, tokenDim)
	case c.NumAttentionHeads != heads:
		return fmt.Errorf("num_attention_heads is %d but the model needs %d: the adapter was made for another model", c.NumAttentionHeads, heads)
	case c.NumLayers != mc.Layers:
		return fmt.Errorf("num_layers is %d but the model has %d layers: the adapter was made for another model", c.NumLayers, mc.Layers)
	}
	return nil
}

// readPromptEmbeddings reads the prompt_embeddings tensor of src's
// adapter_model.safetensors, which must be the file's only tensor, of a
// float dtype, the given shape and finite.
func readPromptEmbeddings(src Source, shape tensor.Shape, what string) ([]float32, error) {
	vals, err := readTensorsIn(src, WeightsFileName, map[string]tensor.Shape{promptEmbeddingsKey: shape},
		func(string) string {
			return fmt.Sprintf("a prompt-learning adapter holds only %q", promptEmbeddingsKey)
		},
		func(string) string { return what })
	return vals[promptEmbeddingsKey], err
}

// promptFiles encodes a prompt-learning adapter: its config JSON and the
// prompt_embeddings tensor.
func promptFiles(cfgJSON []byte, vals []float32, shape tensor.Shape) (Files, error) {
	if i := firstNonFinite(vals); i >= 0 {
		return nil, fmt.Errorf("refusing to save tensor %q: element %d is %g", promptEmbeddingsKey, i, vals[i])
	}
	t, err := tensor.FromFloat32(promptEmbeddingsKey, shape, vals)
	if err != nil {
		return nil, err
	}
	var weights bytes.Buffer
	if err := safetensors.Write(&weights, []*tensor.Tensor{t}, map[string]string{"format": "pt"}); err != nil {
		return nil, err
	}
	return Files{ConfigFileName: cfgJSON, WeightsFileName: weights.Bytes()}, nil
}

// errUnloaded is returned by an adapter's methods after Unload.
var errUnloaded = errors.New("the adapter has been unloaded")
