package peft

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// MarshalJSON writes the config as PEFT 0.13+ writes adapter_config.json:
// every field PEFT's LoraConfig serialises, the ones graft does not use at
// PEFT's defaults, with keys sorted at every level.
func (c LoraConfig) MarshalJSON() ([]byte, error) {
	nullable := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	var layersToTransform any
	if len(c.LayersToTransform) > 0 {
		layersToTransform = c.LayersToTransform
	}
	var layersPattern any
	switch len(c.LayersPattern) {
	case 0:
	case 1:
		layersPattern = c.LayersPattern[0]
	default:
		layersPattern = c.LayersPattern
	}
	var modulesToSave any
	if len(c.ModulesToSave) > 0 {
		modulesToSave = c.ModulesToSave
	}
	rankPattern, alphaPattern := c.RankPattern, c.AlphaPattern
	if rankPattern == nil {
		rankPattern = Patterns[int]{}
	}
	if alphaPattern == nil {
		alphaPattern = Patterns[float64]{}
	}
	fields := map[string]any{
		"alpha_pattern":           alphaPattern,
		"auto_mapping":            nil,
		"base_model_name_or_path": nullable(c.BaseModelNameOrPath),
		"bias":                    orDefault(c.Bias, BiasNone),
		"exclude_modules":         c.ExcludeModules,
		"fan_in_fan_out":          c.FanInFanOut,
		"inference_mode":          c.InferenceMode,
		"init_lora_weights":       c.InitLoraWeights,
		"layer_replication":       nil,
		"layers_pattern":          layersPattern,
		"layers_to_transform":     layersToTransform,
		"loftq_config":            map[string]any{},
		"lora_alpha":              json.RawMessage(pyNumber(c.LoraAlpha)),
		"lora_dropout":            json.RawMessage(pyFloat(c.LoraDropout)),
		"megatron_config":         nil,
		"megatron_core":           "megatron.core",
		"modules_to_save":         modulesToSave,
		"peft_type":               orDefault(c.PeftType, PeftTypeLoRA),
		"r":                       c.R,
		"rank_pattern":            rankPattern,
		"revision":                nullable(c.Revision),
		"target_modules":          c.TargetModules,
		"task_type":               orDefault(c.TaskType, TaskCausalLM),
		"use_dora":                c.UseDoRA,
		"use_rslora":              c.UseRSLoRA,
	}
	if math.IsNaN(c.LoraAlpha) || math.IsInf(c.LoraAlpha, 0) || math.IsNaN(c.LoraDropout) || math.IsInf(c.LoraDropout, 0) {
		return nil, fmt.Errorf("lora config: lora_alpha %g and lora_dropout %g must be finite", c.LoraAlpha, c.LoraDropout)
	}
	// encoding/json writes map keys in sorted order.
	return marshalNoHTML(fields)
}

// EncodeConfig returns the adapter_config.json bytes PEFT would write: the
// JSON of MarshalJSON indented by two spaces, without HTML escaping.
func EncodeConfig(c LoraConfig) ([]byte, error) {
	compact, err := c.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact, "", "  "); err != nil {
		return nil, fmt.Errorf("lora config: %w", err)
	}
	return out.Bytes(), nil // no trailing newline, like PEFT
}

// UnmarshalJSON reads an adapter_config.json, ignoring unknown keys; use
// ParseConfig to learn which keys were ignored.
func (c *LoraConfig) UnmarshalJSON(data []byte) error {
	cfg, _, err := ParseConfig(data)
	if err != nil {
		return err
	}
	*c = cfg
	return nil
}

// laterKeys are fields that PEFT versions after 0.13 write. Those with a
// default must hold it, because any other value changes what the adapter
// computes; the others are accepted with any value.
var laterKeys = map[string]struct {
	isDefault func(v any) bool // nil: any value is fine
	what      string
}{
	"lora_bias":               {isFalse, "a trainable bias on lora_B"},
	"use_qalora":              {isFalse, "QA-LoRA"},
	"trainable_token_indices": {isEmpty, "trainable token embeddings"},
	"target_parameters":       {isEmpty, "LoRA on parameters"},
	"alora_invocation_tokens": {isEmpty, "activated LoRA"},
	"arrow_config":            {isEmpty, "Arrow routing"},
	"layer_replication":       {isEmpty, "layer replication"},
	"use_bdlora":              {isFalse, "block-diagonal LoRA"},
	// Accepted with any value: initialisation or bookkeeping only.
	"auto_mapping":        {nil, ""},
	"corda_config":        {nil, ""},
	"ensure_weight_tying": {nil, ""},
	"eva_config":          {nil, ""},
	"loftq_config":        {nil, ""},
	"megatron_config":     {nil, ""},
	"megatron_core":       {nil, ""},
	"peft_version":        {nil, ""},
	"qalora_group_size":   {nil, ""},
	"runtime_config":      {nil, ""},
}

func isFalse(v any) bool { return v == nil || v == false }

func isEmpty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	}
	return false
}

// ParseConfig decodes adapter_config.json. Keys graft does not know are
// ignored and listed in warnings, as are settings PEFT itself overrides for
// Llama-family models (fan_in_fan_out). The result is not validated; call
// Validate.
func ParseConfig(data []byte) (cfg LoraConfig, warnings []string, err error) {
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v) // says where the syntax breaks
		return cfg, nil, fmt.Errorf("invalid JSON: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return cfg, nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if raw == nil {
		return cfg, nil, fmt.Errorf("not a JSON object: null")
	}
	field := func(key string, dst any) error {
		v, ok := raw[key]
		if !ok || string(v) == "null" {
			return nil
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		return nil
	}
	var (
		r        json.Number
		alpha    *float64
		fanInOut bool
		ltt      layerIndices
		lp       stringOrList
	)
	steps := []struct {
		key string
		dst any
	}{
		{"peft_type", &cfg.PeftType},
		{"task_type", &cfg.TaskType},
		{"r", &r},
		{"lora_alpha", &alpha},
		{"lora_dropout", &cfg.LoraDropout},
		{"target_modules", &cfg.TargetModules},
		{"exclude_modules", &cfg.ExcludeModules},
		{"layers_to_transform", &ltt},
		{"layers_pattern", &lp},
		{"rank_pattern", &cfg.RankPattern},
		{"alpha_pattern", &cfg.AlphaPattern},
		{"use_rslora", &cfg.UseRSLoRA},
		{"init_lora_weights", &cfg.InitLoraWeights},
		{"bias", &cfg.Bias},
		{"fan_in_fan_out", &fanInOut},
		{"modules_to_save", &cfg.ModulesToSave},
		{"base_model_name_or_path", &cfg.BaseModelNameOrPath},
		{"revision", &cfg.Revision},
		{"inference_mode", &cfg.InferenceMode},
		{"use_dora", &cfg.UseDoRA},
	}
	known := map[string]bool{}
	for _, s := range steps {
		known[s.key] = true
		if err := field(s.key, s.dst); err != nil {
			return LoraConfig{}, nil, err
		}
	}
	if _, ok := raw["peft_type"]; !ok {
		return LoraConfig{}, nil, fmt.Errorf("peft_type is missing")
	}
	if _, ok := raw["r"]; !ok {
		return LoraConfig{}, nil, fmt.Errorf("r is missing")
	}
	rv, err := r.Float64()
	if err != nil || rv != math.Trunc(rv) || math.Abs(rv) > 1<<31 {
		return LoraConfig{}, nil, fmt.Errorf("r: %q is not an integer", r.String())
	}
	cfg.R = int(rv)
	cfg.LoraAlpha = 8 // PEFT's default
	if alpha != nil {
		cfg.LoraAlpha = *alpha
	}
	cfg.LayersToTransform = ltt
	cfg.LayersPattern = lp
	if fanInOut {
		warnings = append(warnings, "fan_in_fan_out is true but the target layers are nn.Linear; using false, as PEFT does")
	}
	var unknown []string
	for key, v := range raw {
		if known[key] {
			continue
		}
		later, ok := laterKeys[key]
		if !ok {
			unknown = append(unknown, key)
			continue
		}
		if later.isDefault == nil {
			continue
		}
		var val any
		if err := json.Unmarshal(v, &val); err != nil {
			return LoraConfig{}, nil, fmt.Errorf("%s: %w", key, err)
		}
		if !later.isDefault(val) {
			return LoraConfig{}, nil, fmt.Errorf("%s = %s: %s is not supported", key, compactJSON(v), later.what)
		}
	}
	sort.Strings(unknown)
	for _, key := range unknown {
		warnings = append(warnings, fmt.Sprintf("unknown key %q ignored", key))
	}
	return cfg, warnings, nil
}

// layerIndices reads layers_to_transform: an integer or a list of them.
type layerIndices []int

func (l *layerIndices) UnmarshalJSON(data []byte) error {
	var one int
	if err := json.Unmarshal(data, &one); err == nil {
		*l = layerIndices{one}
		return nil
	}
	var many []int
	if err := json.Unmarshal(data, &many); err != nil {
		return fmt.Errorf("want an integer or a list of integers, got %s", compactJSON(data))
	}
	*l = many
	return nil
}

// stringOrList reads layers_pattern: a string or a list of strings.
type stringOrList []string

func (s *stringOrList) UnmarshalJSON(data []byte) error {
	var one string
	if err := json.Unmarshal(data, &one); err == nil {
		*s = stringOrList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(data, &many); err != nil {
		return fmt.Errorf("want a string or a list of strings, got %s", compactJSON(data))
	}
	*s = slices.Clip(many)
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// compactJSON shortens a raw value for an error message.
func compactJSON(v []byte) string {
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		b.Reset()
		b.Write(v)
	}
	s := b.String()
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

// pyNumber formats v as Python's json module does for a number that may be
// an int: integers without a fraction, other floats as repr does.
func pyNumber(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%d", int64(v))
	}
	return pyFloat(v)
}

// pyFloat formats v as Python's repr of a float: shortest round-trip
// digits, "1.0" for integral values, exponent form below 1e-4 and from 1e16.
func pyFloat(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "null" // not representable in JSON; Validate rejects these
	}
	a := math.Abs(v)
	if a != 0 && (a < 1e-4 || a >= 1e16) {
		return strconv.FormatFloat(v, 'e', -1, 64) // "1e-05", like Python
	}
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64, json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// marshalNoHTML encodes v like json.Marshal but leaves <, > and & alone, as
// Python's json module does.
func marshalNoHTML(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
