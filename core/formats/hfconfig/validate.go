package hfconfig

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Validate checks that c describes a decoder graft can build: a supported
// architecture and activation, positive sizes, head counts that divide
// evenly, and token ids inside the vocabulary. Parse calls it; call it
// again after changing a Config by hand.
func (c *Config) Validate() error {
	if err := c.validate(); err != nil {
		if c.name != "" {
			return fmt.Errorf("hfconfig %s: %w", c.name, err)
		}
		return fmt.Errorf("hfconfig: %w", err)
	}
	return nil
}

func supportedArchitectures() string {
	var names []string
	for _, a := range architectureOf {
		names = append(names, a)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// checkIdentity checks model_type and architectures agree and are
// supported.
func (c *Config) checkIdentity() error {
	want, ok := architectureOf[c.ModelType]
	if !ok {
		if c.ModelType == "" && len(c.Architectures) > 0 {
			return fmt.Errorf("unsupported architecture %q (graft loads %s)", c.Architectures[0], supportedArchitectures())
		}
		return fmt.Errorf("unsupported model_type %q (graft loads %s)", c.ModelType, supportedArchitectures())
	}
	if len(c.Architectures) == 0 {
		return fmt.Errorf("architectures is empty")
	}
	for _, a := range c.Architectures {
		if a != want {
			return fmt.Errorf("unsupported architecture %q for model_type %q (want %s)", a, c.ModelType, want)
		}
	}
	return nil
}

func (c *Config) validate() error {
	if err := c.checkIdentity(); err != nil {
		return err
	}
	for _, dim := range []struct {
		key string
		v   int
	}{
		{"hidden_size", c.HiddenSize},
		{"intermediate_size", c.IntermediateSize},
		{"num_hidden_layers", c.NumHiddenLayers},
		{"num_attention_heads", c.NumAttentionHeads},
		{"num_key_value_heads", c.NumKeyValueHeads},
		{"head_dim", c.HeadDim},
		{"vocab_size", c.VocabSize},
		{"max_position_embeddings", c.MaxPositionEmbeddings},
	} {
		if dim.v <= 0 {
			return fmt.Errorf("%s is %d, want a positive number", dim.key, dim.v)
		}
	}
	if c.NumAttentionHeads%c.NumKeyValueHeads != 0 {
		return fmt.Errorf("num_key_value_heads %d does not divide num_attention_heads %d", c.NumKeyValueHeads, c.NumAttentionHeads)
	}
	if c.HeadDim%2 != 0 {
		return fmt.Errorf("head_dim %d is odd; rotary embeddings rotate pairs of dimensions", c.HeadDim)
	}
	if !(c.RMSNormEps > 0) || math.IsInf(c.RMSNormEps, 0) {
		return fmt.Errorf("rms_norm_eps is %v, want a positive number", c.RMSNormEps)
	}
	if !(c.RopeTheta > 0) || math.IsInf(c.RopeTheta, 0) {
		return fmt.Errorf("rope_theta is %v, want a positive number", c.RopeTheta)
	}
	if c.ModelType == Gemma3Text {
		if err := c.validateGemma3(); err != nil {
			return err
		}
	} else if c.HiddenAct != "silu" && c.HiddenAct != "swish" {
		// transformers maps both names to torch.nn.SiLU.
		return fmt.Errorf("unsupported hidden_act %q (graft's %s MLP uses silu)", c.HiddenAct, c.ModelType)
	}
	switch {
	case c.ModelType == Qwen2 && !c.AttentionBias:
		return fmt.Errorf("qwen2 always has q/k/v biases; AttentionBias must be true")
	case c.ModelType == Mistral && c.AttentionBias:
		return fmt.Errorf("mistral has no attention biases; AttentionBias must be false")
	}
	if c.MLPBias {
		return fmt.Errorf("mlp_bias true is not supported")
	}
	if c.BOSTokenID != nil {
		if err := c.checkTokenID("bos_token_id", *c.BOSTokenID); err != nil {
			return err
		}
	}
	for _, id := range c.EOSTokenID {
		if err := c.checkTokenID("eos_token_id", id); err != nil {
			return err
		}
	}
	return nil
}

func (c *Config) checkTokenID(key string, id int) error {
	if id < 0 || id >= c.VocabSize {
		return fmt.Errorf("%s %d is outside the vocabulary of %d", key, id, c.VocabSize)
	}
	return nil
}

// validateGemma3 checks what Gemma3TextConfig adds.
func (c *Config) validateGemma3() error {
	switch {
	case c.HiddenAct != "gelu_pytorch_tanh":
		return fmt.Errorf("unsupported hidden_activation %q (graft's gemma3_text MLP uses gelu_pytorch_tanh)", c.HiddenAct)
	case c.AttentionBias:
		return fmt.Errorf("attention_bias true is not supported for gemma3_text")
	case c.FinalLogitSoftcapping != nil:
		return fmt.Errorf("final_logit_softcapping %v is not supported (Gemma 3 has none)", *c.FinalLogitSoftcapping)
	case c.AttnLogitSoftcapping != nil:
		return fmt.Errorf("attn_logit_softcapping %v is not supported (Gemma 3 has none)", *c.AttnLogitSoftcapping)
	case !(c.QueryPreAttnScalar > 0) || math.IsInf(c.QueryPreAttnScalar, 0):
		return fmt.Errorf("query_pre_attn_scalar is %v, want a positive number", c.QueryPreAttnScalar)
	case !(c.RopeLocalTheta > 0) || math.IsInf(c.RopeLocalTheta, 0):
		return fmt.Errorf("rope_local_base_freq is %v, want a positive number", c.RopeLocalTheta)
	case c.SlidingWindow != nil && *c.SlidingWindow <= 0:
		return fmt.Errorf("sliding_window is %d, want a positive number", *c.SlidingWindow)
	case c.LayerTypes != nil && len(c.LayerTypes) != c.NumHiddenLayers:
		return fmt.Errorf("layer_types has %d entries for %d layers", len(c.LayerTypes), c.NumHiddenLayers)
	}
	for i, lt := range c.LayerTypes {
		if lt != "sliding_attention" && lt != "full_attention" {
			return fmt.Errorf("layer_types[%d] is %q (supported: sliding_attention, full_attention)", i, lt)
		}
	}
	return nil
}
