package hfconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// fields is the undecoded top-level object. Each getter removes the key it
// reads, so whatever remains is Extra.
type fields map[string]json.RawMessage

// take reports whether key is present (even as null) and removes it.
func (f fields) take(key string) (json.RawMessage, bool) {
	raw, ok := f[key]
	delete(f, key)
	return raw, ok
}

// compacted returns the remaining fields with insignificant whitespace
// removed, so that equal configs hold equal Extra values however they were
// indented; nil when none remain.
func (f fields) compacted() map[string]json.RawMessage {
	if len(f) == 0 {
		return nil
	}
	out := make(map[string]json.RawMessage, len(f))
	for k, v := range f {
		var buf bytes.Buffer
		if err := json.Compact(&buf, v); err != nil {
			out[k] = v // unreachable: v was checked by the decoder
			continue
		}
		out[k] = buf.Bytes()
	}
	return out
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// get decodes key into dst when present and not null, reporting whether it
// did. Type errors name the key.
func (f fields) get(key string, dst any) (bool, error) {
	raw, ok := f.take(key)
	if !ok || isNull(raw) {
		return false, nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return false, fmt.Errorf("%s: %w", key, err)
	}
	return true, nil
}

// require is get for a field that must be present.
func (f fields) require(key string, dst any) error {
	ok, err := f.get(key, dst)
	if err == nil && !ok {
		err = fmt.Errorf("%s is missing", key)
	}
	return err
}

// defaults are the transformers constructor defaults that differ between
// the supported model types.
type defaults struct {
	bos, eos      *int
	maxPositions  int
	slidingWindow *int
	headDim       int     // 0: hidden_size / num_attention_heads
	kvHeads       int     // 0: num_attention_heads
	tie           bool    // tie_word_embeddings
	ropeTheta     float64 // 0: 10000
	act           string  // "" : silu
}

func intPtr(v int) *int { return &v }

var modelDefaults = map[string]defaults{
	Llama:   {bos: intPtr(1), eos: intPtr(2), maxPositions: 2048},
	Mistral: {bos: intPtr(1), eos: intPtr(2), maxPositions: 4096 * 32, slidingWindow: intPtr(4096)},
	Qwen2:   {maxPositions: 32768, slidingWindow: intPtr(4096)},
	Qwen3:   {maxPositions: 32768, slidingWindow: intPtr(4096), headDim: 128},
	Gemma3Text: {bos: intPtr(2), eos: intPtr(1), maxPositions: 131072, slidingWindow: intPtr(4096), headDim: 256, kvHeads: 4,
		tie: true, ropeTheta: 1e6, act: "gelu_pytorch_tanh"},
}

func decode(data []byte) (*Config, error) {
	var f fields
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	if f == nil {
		return nil, errors.New("config is null, want an object")
	}
	c := &Config{}
	if err := c.decodeIdentity(f); err != nil {
		return nil, err
	}
	def := modelDefaults[c.ModelType]

	for _, req := range []struct {
		key string
		dst *int
	}{
		{"hidden_size", &c.HiddenSize},
		{"intermediate_size", &c.IntermediateSize},
		{"num_hidden_layers", &c.NumHiddenLayers},
		{"num_attention_heads", &c.NumAttentionHeads},
		{"vocab_size", &c.VocabSize},
	} {
		if err := f.require(req.key, req.dst); err != nil {
			return nil, err
		}
	}

	c.NumKeyValueHeads = c.NumAttentionHeads
	if def.kvHeads > 0 {
		c.NumKeyValueHeads = def.kvHeads
	}
	c.MaxPositionEmbeddings = def.maxPositions
	c.RMSNormEps = 1e-6
	c.RopeTheta = 10000
	if def.ropeTheta > 0 {
		c.RopeTheta = def.ropeTheta
	}
	c.HiddenAct = "silu"
	if def.act != "" {
		c.HiddenAct = def.act
	}
	c.TieWordEmbeddings = def.tie
	var headDimGiven bool
	var err error
	for _, opt := range []struct {
		key   string
		dst   any
		given *bool
	}{
		{"num_key_value_heads", &c.NumKeyValueHeads, nil},
		{"head_dim", &c.HeadDim, &headDimGiven},
		{"max_position_embeddings", &c.MaxPositionEmbeddings, nil},
		{"rms_norm_eps", &c.RMSNormEps, nil},
		{"tie_word_embeddings", &c.TieWordEmbeddings, nil},
		{"hidden_act", &c.HiddenAct, nil},
		{"attention_bias", &c.AttentionBias, nil},
		{"mlp_bias", &c.MLPBias, nil},
		{"torch_dtype", &c.TorchDType, nil},
	} {
		ok, err := f.get(opt.key, opt.dst)
		if err != nil {
			return nil, err
		}
		if opt.given != nil {
			*opt.given = ok
		}
	}
	// transformers 4.56+ writes "dtype" instead of "torch_dtype".
	var dtype string
	if _, err := f.get("dtype", &dtype); err != nil {
		return nil, err
	}
	if c.TorchDType == "" {
		c.TorchDType = dtype
	}
	if c.ModelType == Gemma3Text {
		if err := c.decodeGemma3(f); err != nil {
			return nil, err
		}
	}
	if !headDimGiven && def.headDim > 0 {
		c.HeadDim, headDimGiven = def.headDim, true
	}
	if !headDimGiven {
		if c.NumAttentionHeads <= 0 {
			return nil, fmt.Errorf("num_attention_heads is %d, want a positive number", c.NumAttentionHeads)
		}
		if c.HiddenSize%c.NumAttentionHeads != 0 {
			return nil, fmt.Errorf("hidden_size %d is not divisible by num_attention_heads %d and head_dim is not given", c.HiddenSize, c.NumAttentionHeads)
		}
		c.HeadDim = c.HiddenSize / c.NumAttentionHeads
	}
	switch c.ModelType {
	case Qwen2:
		c.AttentionBias = true // Qwen2Attention hard-codes q/k/v biases
	case Mistral:
		c.AttentionBias = false // MistralAttention has none, whatever the file says
	}

	if c.BOSTokenID, err = decodeOptionalID(f, "bos_token_id", def.bos); err != nil {
		return nil, err
	}
	if c.EOSTokenID, err = decodeEOS(f, def.eos); err != nil {
		return nil, err
	}
	c.SlidingWindow = def.slidingWindow
	if raw, ok := f.take("sliding_window"); ok {
		c.SlidingWindow = nil
		if !isNull(raw) {
			c.SlidingWindow = new(int)
			if err := json.Unmarshal(raw, c.SlidingWindow); err != nil {
				return nil, fmt.Errorf("sliding_window: %w", err)
			}
		}
	}
	if err := c.decodeRope(f); err != nil {
		return nil, err
	}
	c.Extra = f.compacted()
	return c, nil
}

// decodeGemma3 reads what Gemma3TextConfig adds: hidden_activation, the
// attention scale, the local layers and the logit caps.
func (c *Config) decodeGemma3(f fields) error {
	var act string
	if _, err := f.get("hidden_activation", &act); err != nil {
		return err
	}
	if act != "" {
		c.HiddenAct = act
	}
	c.QueryPreAttnScalar, c.RopeLocalTheta, c.SlidingWindowPattern = 256, 10000, 6
	for _, opt := range []struct {
		key string
		dst any
	}{
		{"query_pre_attn_scalar", &c.QueryPreAttnScalar},
		{"rope_local_base_freq", &c.RopeLocalTheta},
		{"layer_types", &c.LayerTypes},
		{"final_logit_softcapping", &c.FinalLogitSoftcapping},
		{"attn_logit_softcapping", &c.AttnLogitSoftcapping},
	} {
		if _, err := f.get(opt.key, opt.dst); err != nil {
			return err
		}
	}
	// transformers 4.5x keeps the pattern as _sliding_window_pattern
	// beside layer_types; older files name it sliding_window_pattern.
	c.patternKey = "sliding_window_pattern"
	for _, key := range []string{"sliding_window_pattern", "_sliding_window_pattern"} {
		if ok, err := f.get(key, &c.SlidingWindowPattern); err != nil {
			return err
		} else if ok {
			c.patternKey = key
		}
	}
	return nil
}

// decodeIdentity reads model_type and architectures, inferring either from
// the other when absent.
func (c *Config) decodeIdentity(f fields) error {
	if _, err := f.get("model_type", &c.ModelType); err != nil {
		return err
	}
	if _, err := f.get("architectures", &c.Architectures); err != nil {
		return err
	}
	if c.ModelType == "" && len(c.Architectures) > 0 {
		for mt, arch := range architectureOf {
			if arch == c.Architectures[0] {
				c.ModelType = mt
			}
		}
	}
	if len(c.Architectures) == 0 && architectureOf[c.ModelType] != "" {
		c.Architectures = []string{architectureOf[c.ModelType]}
	}
	return c.checkIdentity()
}

// decodeOptionalID reads a token id that may be absent (take the default)
// or null (no such token).
func decodeOptionalID(f fields, key string, def *int) (*int, error) {
	raw, ok := f.take(key)
	if !ok {
		if def == nil {
			return nil, nil
		}
		return intPtr(*def), nil
	}
	if isNull(raw) {
		return nil, nil
	}
	var id int
	if err := json.Unmarshal(raw, &id); err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return &id, nil
}

// decodeEOS reads eos_token_id, which is an int, a list of ints (Llama 3
// instruct models stop on several tokens) or null.
func decodeEOS(f fields, def *int) ([]int, error) {
	raw, ok := f.take("eos_token_id")
	if !ok {
		if def == nil {
			return nil, nil
		}
		return []int{*def}, nil
	}
	if isNull(raw) {
		return nil, nil
	}
	var one int
	if err := json.Unmarshal(raw, &one); err == nil {
		return []int{one}, nil
	}
	var list []int
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("eos_token_id: want an int or a list of ints, have %s", raw)
	}
	if len(list) == 0 {
		return nil, nil // an empty list means no EOS token, as null does
	}
	return list, nil
}

// decodeRope reads rope_theta and rope_scaling. transformers 5 nests both
// in rope_parameters, per attention type for Gemma 3 (full_attention,
// sliding_attention); when that is all a file has, it is used instead.
func (c *Config) decodeRope(f fields) error {
	thetaGiven, err := f.get("rope_theta", &c.RopeTheta)
	if err != nil {
		return err
	}
	raw, ok := f.take("rope_scaling")
	if ok && !isNull(raw) {
		if c.RopeScaling, err = decodeRopeScaling(raw); err != nil {
			return fmt.Errorf("rope_scaling: %w", err)
		}
	}
	params, ok := f.take("rope_parameters")
	if !ok || isNull(params) {
		return nil
	}
	var byType map[string]json.RawMessage
	if err := json.Unmarshal(params, &byType); err != nil {
		return fmt.Errorf("rope_parameters: %w", err)
	}
	full, nested := byType["full_attention"]
	if !nested {
		full = params
	}
	if sliding, ok := byType["sliding_attention"]; ok {
		local, err := decodeRopeScaling(sliding)
		if err != nil {
			return fmt.Errorf("rope_parameters: sliding_attention: %w", err)
		}
		if theta, ok := local.Extra["rope_theta"]; ok {
			if err := json.Unmarshal(theta, &c.RopeLocalTheta); err != nil {
				return fmt.Errorf("rope_parameters: sliding_attention: rope_theta: %w", err)
			}
		}
	}
	rs, err := decodeRopeScaling(full)
	if err != nil {
		return fmt.Errorf("rope_parameters: %w", err)
	}
	if theta, ok := rs.Extra["rope_theta"]; ok {
		delete(rs.Extra, "rope_theta")
		if !thetaGiven {
			if err := json.Unmarshal(theta, &c.RopeTheta); err != nil {
				return fmt.Errorf("rope_parameters: rope_theta: %w", err)
			}
		}
	}
	if nested {
		delete(rs.Extra, "sliding_attention")
	}
	if len(rs.Extra) == 0 {
		rs.Extra = nil
	}
	if c.RopeScaling == nil && rs.Kind() != "" && rs.Kind() != "default" {
		c.RopeScaling = rs
	}
	return nil
}

func decodeRopeScaling(raw json.RawMessage) (*RopeScaling, error) {
	var f fields
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, err
	}
	r := &RopeScaling{}
	for _, fld := range []struct {
		key string
		dst any
	}{
		{"type", &r.Type},
		{"rope_type", &r.RopeType},
		{"factor", &r.Factor},
		{"low_freq_factor", &r.LowFreqFactor},
		{"high_freq_factor", &r.HighFreqFactor},
		{"original_max_position_embeddings", &r.OriginalMaxPositionEmbeddings},
		{"attention_factor", &r.AttentionFactor},
		{"beta_fast", &r.BetaFast},
		{"beta_slow", &r.BetaSlow},
		{"mscale", &r.Mscale},
		{"mscale_all_dim", &r.MscaleAllDim},
		{"truncate", &r.Truncate},
	} {
		if _, err := f.get(fld.key, fld.dst); err != nil {
			return nil, err
		}
	}
	r.Extra = f.compacted()
	return r, nil
}
