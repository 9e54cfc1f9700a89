package hfconfig

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// Marshal encodes c as a config.json that transformers loads into the same
// model: model_type, architectures and every field above, plus Extra
// verbatim. Like transformers' to_json_string it indents by two spaces,
// sorts keys and ends with a newline. eos_token_id is written as an int
// when there is exactly one. Marshal refuses a Config that fails Validate.
func (c *Config) Marshal() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	out := make(map[string]any, len(c.Extra)+24)
	for k, v := range c.Extra {
		out[k] = v
	}
	out["architectures"] = c.Architectures
	out["model_type"] = c.ModelType
	out["hidden_size"] = c.HiddenSize
	out["intermediate_size"] = c.IntermediateSize
	out["num_hidden_layers"] = c.NumHiddenLayers
	out["num_attention_heads"] = c.NumAttentionHeads
	out["num_key_value_heads"] = c.NumKeyValueHeads
	out["head_dim"] = c.HeadDim
	out["rms_norm_eps"] = pyFloat(c.RMSNormEps)
	out["rope_theta"] = pyFloat(c.RopeTheta)
	out["rope_scaling"] = c.RopeScaling.toJSON()
	out["tie_word_embeddings"] = c.TieWordEmbeddings
	out["max_position_embeddings"] = c.MaxPositionEmbeddings
	out["vocab_size"] = c.VocabSize
	out["bos_token_id"] = c.BOSTokenID
	switch len(c.EOSTokenID) {
	case 0:
		out["eos_token_id"] = nil
	case 1:
		out["eos_token_id"] = c.EOSTokenID[0]
	default:
		out["eos_token_id"] = c.EOSTokenID
	}
	if c.ModelType == Gemma3Text {
		out["hidden_activation"] = c.HiddenAct
		out["query_pre_attn_scalar"] = pyNumber(c.QueryPreAttnScalar)
		out["rope_local_base_freq"] = pyFloat(c.RopeLocalTheta)
		key := c.patternKey
		if key == "" {
			key = "sliding_window_pattern"
		}
		out[key] = c.SlidingWindowPattern
		if c.LayerTypes != nil {
			out["layer_types"] = c.LayerTypes
		}
		out["final_logit_softcapping"] = c.FinalLogitSoftcapping
		out["attn_logit_softcapping"] = c.AttnLogitSoftcapping
		out["attention_bias"] = c.AttentionBias
	} else {
		out["hidden_act"] = c.HiddenAct
	}
	if c.ModelType == Qwen3 {
		out["attention_bias"] = c.AttentionBias
	}
	if c.ModelType == Llama {
		// Only LlamaConfig has these; Qwen2 and Mistral fix their biases.
		out["attention_bias"] = c.AttentionBias
		out["mlp_bias"] = c.MLPBias
	}
	if c.TorchDType != "" {
		out["torch_dtype"] = c.TorchDType
	}
	// Mistral and Qwen2 default sliding_window to 4096, so "no window" must
	// be written as an explicit null there.
	if c.SlidingWindow != nil || c.ModelType != Llama {
		out["sliding_window"] = c.SlidingWindow
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil // Encode ends with the newline transformers writes
}

func (r *RopeScaling) toJSON() map[string]any {
	if r == nil {
		return nil
	}
	out := make(map[string]any, len(r.Extra)+6)
	for k, v := range r.Extra {
		out[k] = v
	}
	if r.Type != "" {
		out["type"] = r.Type
	}
	if r.RopeType != "" {
		out["rope_type"] = r.RopeType
	}
	if r.Factor != 0 {
		out["factor"] = pyFloat(r.Factor)
	}
	if r.LowFreqFactor != 0 {
		out["low_freq_factor"] = pyFloat(r.LowFreqFactor)
	}
	if r.HighFreqFactor != 0 {
		out["high_freq_factor"] = pyFloat(r.HighFreqFactor)
	}
	if r.OriginalMaxPositionEmbeddings != 0 {
		out["original_max_position_embeddings"] = r.OriginalMaxPositionEmbeddings
	}
	for key, v := range map[string]float64{"attention_factor": r.AttentionFactor, "beta_fast": r.BetaFast, "beta_slow": r.BetaSlow,
		"mscale": r.Mscale, "mscale_all_dim": r.MscaleAllDim} {
		if v != 0 {
			out[key] = pyFloat(v)
		}
	}
	if r.Truncate != nil {
		out["truncate"] = *r.Truncate
	}
	return out
}

// pyFloat encodes a float the way Python's json module does (repr), so
// that 10000 is written 10000.0 and 1e-5 as 1e-05. transformers type-checks
// some rope parameters as floats and warns about ints.
type pyFloat float64

func (f pyFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil, &json.UnsupportedValueError{Str: strconv.FormatFloat(v, 'g', -1, 64)}
	}
	// Python's repr uses exponent notation below 1e-4 and from 1e16 up.
	e := strconv.FormatFloat(v, 'e', -1, 64)
	exp, _ := strconv.Atoi(e[strings.IndexByte(e, 'e')+1:])
	if v != 0 && (exp < -4 || exp >= 16) {
		return []byte(e), nil // Go's 'e' form (1e-05, 1.5e+16) matches repr
	}
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.ContainsRune(s, '.') {
		s += ".0"
	}
	return []byte(s), nil
}

// pyNumber is a float that configs usually hold as an int (Gemma's
// query_pre_attn_scalar): written as an int when it is whole.
func pyNumber(v float64) any {
	if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
		return int64(v)
	}
	return pyFloat(v)
}
