// Package peft implements parameter-efficient fine-tuning methods on top of
// core/model with Hugging Face PEFT's semantics: LoRA adapters selected by
// PEFT's target-matching rules, several adapters on one model, merging into
// the base weights, and adapters saved and loaded in PEFT's directory format
// (adapter_config.json + adapter_model.safetensors).
//
// A Manager owns the adapters of one model:
//
//	mgr := peft.AttachLoRA(m)
//	err := mgr.AddAdapter("default", peft.LoraConfig{R: 8, LoraAlpha: 16,
//		TargetModules: peft.TargetNames("q_proj", "v_proj")}, rng)
//	logits, err := m.Forward(m.NewCache(0), ids, true) // base + adapter
//	err = mgr.Save("out/adapter", "default")
package peft

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
)

// PEFT's names for the config fields graft gives meaning to.
const (
	PeftTypeLoRA   = "LORA"
	TaskCausalLM   = "CAUSAL_LM"
	AllLinear      = "all-linear"
	BiasNone       = "none"
	configFileName = "adapter_config.json"
)

// BaseConfig holds the fields every PEFT config has (PEFT's PeftConfig,
// plus modules_to_save, which every method graft implements refuses).
type BaseConfig struct {
	// PeftType is the method's peft_type ("LORA"); empty means the config
	// type's own.
	PeftType string `json:"peft_type" peft:"required"`
	// TaskType is "CAUSAL_LM"; empty means "CAUSAL_LM". Saved tensor names
	// then start with "base_model.model.", as PEFT's causal-LM model's do.
	TaskType string `json:"task_type" peft:"empty=CAUSAL_LM"`
	// BaseModelNameOrPath and Revision identify the base model for PEFT
	// (written as null when empty); graft does not read them.
	BaseModelNameOrPath string `json:"base_model_name_or_path" peft:"null"`
	Revision            string `json:"revision" peft:"null"`
	// InferenceMode is informational: false while training; saved files
	// say true, as PEFT's do.
	InferenceMode bool `json:"inference_mode"`
	// ModulesToSave must be empty: fully trained extra modules are not
	// supported.
	ModulesToSave []string `json:"modules_to_save" peft:"null"`

	_ struct{} `key:"auto_mapping" peft:"write=null"`
	_ struct{} `key:"peft_version"` // bookkeeping of later PEFT versions
}

// validate checks the fields against the method's peft_type.
func (b *BaseConfig) validate(peftType string) error {
	switch {
	case b.PeftType != "" && b.PeftType != peftType:
		return fmt.Errorf("peft_type is %q, want %q", b.PeftType, peftType)
	case b.TaskType != "" && b.TaskType != TaskCausalLM:
		return fmt.Errorf("task_type %q is not supported (graft fine-tunes causal language models: %q)", b.TaskType, TaskCausalLM)
	case len(b.ModulesToSave) > 0:
		return fmt.Errorf("modules_to_save %q is not supported", b.ModulesToSave)
	}
	return nil
}

// LoraConfig is PEFT's LoraConfig: its JSON form is the adapter_config.json
// that PEFT's save_pretrained writes and from_pretrained reads. The zero
// value of every field is PEFT's default, except R and LoraAlpha, which
// must be set.
type LoraConfig struct {
	BaseConfig
	// R is the rank of the update B·A.
	R int `json:"r" peft:"required"`
	// LoraAlpha scales the update by LoraAlpha/R (or LoraAlpha/sqrt(R)
	// with UseRSLoRA). A file without it means PEFT's default, 8.
	LoraAlpha float64 `json:"lora_alpha" peft:"number,default=8"`
	// LoraDropout is the probability of zeroing an input element of the
	// adapter branch while training, in [0, 1).
	LoraDropout float64 `json:"lora_dropout"`
	// TargetModules selects the linear layers that get the adapter. When
	// neither a pattern nor names are given, PEFT's default for Llama-family
	// models applies: q_proj and v_proj.
	TargetModules Modules `json:"target_modules"`
	// ExcludeModules removes layers from the selection; it wins over
	// TargetModules.
	ExcludeModules Modules `json:"exclude_modules"`
	// LayersToTransform restricts list-form targets to these decoder layer
	// indices (nil or empty: every layer).
	LayersToTransform []int `json:"layers_to_transform" peft:"null,scalar"`
	// LayersPattern names the module list the layer index follows, such as
	// "layers" (nil: any).
	LayersPattern []string `json:"layers_pattern" peft:"null,scalar,bare"`
	// RankPattern and AlphaPattern override R and LoraAlpha for modules
	// whose name ends with a key (a regular expression); the first key in
	// order that matches wins, as in PEFT's get_pattern_key.
	RankPattern  Patterns[int]     `json:"rank_pattern"`
	AlphaPattern Patterns[float64] `json:"alpha_pattern"`
	// UseRSLoRA scales by LoraAlpha/sqrt(R) (rank-stabilised LoRA).
	UseRSLoRA bool `json:"use_rslora"`
	// InitLoraWeights chooses how AddAdapter initialises A and B: PEFT's
	// default (empty or "true"), "gaussian", "false", or "pissa",
	// "pissa_niter_N" and "olora", which also replace the base weights by
	// a residual (see InitPiSSA).
	InitLoraWeights LoraInit `json:"init_lora_weights"`
	// Bias is "none" (empty means "none"); LoRA bias training is not
	// supported.
	Bias string `json:"bias" peft:"empty=none"`
	// FanInFanOut must be false: Llama-family projections are nn.Linear.
	FanInFanOut bool `json:"fan_in_fan_out" peft:"force=false" why:"the target layers are nn.Linear; using false, as PEFT does"`
	// UseDoRA makes the adapter DoRA: a trainable magnitude per output
	// row rescales the adapted weight (see dora.go); PEFT's default is
	// false.
	UseDoRA bool `json:"use_dora"`
	loraKeys
}

// loraKeys are the keys of PEFT's LoraConfig graft keeps no value for:
// written at PEFT 0.13's defaults, and keys of later versions, which must
// hold their default when another value would change what the adapter
// computes.
type loraKeys struct {
	_ struct{} `key:"layer_replication" peft:"write=null,allow=null|[]|{}" why:"graft does not replicate layers"`
	_ struct{} `key:"loftq_config" peft:"write={}"`
	_ struct{} `key:"megatron_config" peft:"write=null"`
	_ struct{} `key:"megatron_core" peft:"write=\"megatron.core\""`
	_ struct{} `key:"lora_bias" peft:"allow=false|null" why:"graft has no trainable bias on lora_B"`
	_ struct{} `key:"use_qalora" peft:"allow=false|null" why:"graft does not implement QA-LoRA"`
	_ struct{} `key:"trainable_token_indices" peft:"allow=null|[]|{}" why:"graft does not train token embeddings"`
	_ struct{} `key:"target_parameters" peft:"allow=null|[]|{}" why:"graft does not put LoRA on parameters"`
	_ struct{} `key:"alora_invocation_tokens" peft:"allow=null|[]|{}" why:"graft does not implement activated LoRA"`
	_ struct{} `key:"arrow_config" peft:"allow=null|[]|{}" why:"graft does not implement Arrow routing"`
	_ struct{} `key:"use_bdlora" peft:"allow=false|null" why:"graft does not implement block-diagonal LoRA"`
	// Initialisation or bookkeeping only: any value.
	_ struct{} `key:"corda_config"`
	_ struct{} `key:"ensure_weight_tying"`
	_ struct{} `key:"eva_config"`
	_ struct{} `key:"qalora_group_size"`
	_ struct{} `key:"runtime_config"`
}

// parseConfig decodes data over cfg, which holds the method's defaults.
func parseConfig[T any](data []byte, cfg T) (T, []string, error) {
	warnings, err := decodeConfig(data, &cfg, false)
	if err != nil {
		var zero T
		return zero, nil, err
	}
	return cfg, warnings, nil
}

// withPrefix says what failed before a non-nil error.
func withPrefix(prefix string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", prefix, err)
}

// EncodeConfig returns the adapter_config.json bytes PEFT would write for
// a config (LoraConfig, VeraConfig, ...): its JSON indented by two spaces,
// non-ASCII characters escaped, without a trailing newline.
func EncodeConfig(c json.Marshaler) ([]byte, error) {
	return indentConfig(c.MarshalJSON())
}

// ParseLoraConfig decodes adapter_config.json. Keys graft does not know
// are ignored and listed in warnings, as are settings PEFT itself
// overrides for Llama-family models (fan_in_fan_out, then false). The
// result is not validated; call Validate.
func ParseLoraConfig(data []byte) (LoraConfig, []string, error) {
	return parseConfig(data, LoraConfig{})
}

// MarshalJSON writes the config as PEFT 0.13+ writes adapter_config.json:
// every field PEFT's LoraConfig serialises, the ones graft does not use at
// PEFT's defaults, with keys sorted at every level.
func (c LoraConfig) MarshalJSON() ([]byte, error) {
	c.PeftType = cmp.Or(c.PeftType, PeftTypeLoRA)
	return encodeConfig(&c)
}

// UnmarshalJSON reads an adapter_config.json, ignoring unknown keys; use
// ParseLoraConfig to learn which keys were ignored.
func (c *LoraConfig) UnmarshalJSON(data []byte) (err error) {
	*c, _, err = ParseLoraConfig(data)
	return err
}

// Scaling returns the factor of the update for a module of rank r and
// alpha alpha: alpha/r, or alpha/sqrt(r) with rsLoRA.
func (c *LoraConfig) Scaling(r int, alpha float64) float64 {
	if c.UseRSLoRA {
		return alpha / math.Sqrt(float64(r))
	}
	return alpha / float64(r)
}

// Validate checks the config for values PEFT rejects and for features
// graft does not implement, so that an adapter never silently computes
// something other than what PEFT would.
func (c *LoraConfig) Validate() error { return withPrefix("lora config", c.validate()) }

func (c *LoraConfig) validate() error {
	if err := c.BaseConfig.validate(PeftTypeLoRA); err != nil {
		return err
	}
	switch {
	case c.R <= 0:
		return fmt.Errorf("r = %d must be positive", c.R)
	case !(c.LoraAlpha > 0) || math.IsInf(c.LoraAlpha, 0):
		return fmt.Errorf("lora_alpha = %g must be positive and finite", c.LoraAlpha)
	case !(c.LoraDropout >= 0 && c.LoraDropout < 1):
		return fmt.Errorf("lora_dropout = %g must be in [0, 1)", c.LoraDropout)
	}
	if err := linearOnly(c.Bias, c.FanInFanOut); err != nil {
		return err
	}
	if !c.InitLoraWeights.known() {
		return fmt.Errorf("init_lora_weights %q is not an initialisation PEFT knows", string(c.InitLoraWeights))
	}
	if c.TargetModules.Pattern != "" && c.TargetModules.Pattern != AllLinear {
		if len(c.LayersToTransform) > 0 {
			return fmt.Errorf("layers_to_transform cannot be used when target_modules is a regular expression")
		}
		if len(c.LayersPattern) > 0 {
			return fmt.Errorf("layers_pattern cannot be used when target_modules is a regular expression")
		}
	}
	if err := validatePatterns(c.RankPattern, c.AlphaPattern); err != nil {
		return err
	}
	return validateSelection(c.TargetModules, c.ExcludeModules, c.LayersToTransform, c.LayersPattern)
}

// validatePatterns checks rank_pattern and alpha_pattern: keys that
// compile and ranks and alphas that are positive.
func validatePatterns(rank Patterns[int], alpha Patterns[float64]) error {
	for _, e := range rank {
		if _, err := patternKeyRegexp(e.Key); err != nil {
			return fmt.Errorf("rank_pattern: %w", err)
		}
		if e.Value <= 0 {
			return fmt.Errorf("rank_pattern %q: rank %d must be positive", e.Key, e.Value)
		}
	}
	for _, e := range alpha {
		if _, err := patternKeyRegexp(e.Key); err != nil {
			return fmt.Errorf("alpha_pattern: %w", err)
		}
		if !(e.Value > 0) || math.IsInf(e.Value, 0) {
			return fmt.Errorf("alpha_pattern %q: alpha %g must be positive and finite", e.Key, e.Value)
		}
	}
	return nil
}

// linearOnly checks the settings of methods on Llama-family linear layers
// that graft supports at one value only.
func linearOnly(bias string, fanInFanOut bool) error {
	switch {
	case bias != "" && bias != BiasNone:
		return fmt.Errorf("bias %q is not supported: graft trains no bias terms (use %q)", bias, BiasNone)
	case fanInFanOut:
		return fmt.Errorf("fan_in_fan_out must be false: Llama-family projections store weights [out, in]")
	}
	return nil
}

func (m Modules) validate(field string) error {
	if m.Pattern != "" && m.Names != nil {
		return fmt.Errorf("%s has both a pattern and names", field)
	}
	if m.Pattern != "" && m.Pattern != AllLinear {
		if _, err := fullMatchRegexp(m.Pattern); err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
	}
	for _, n := range m.Names {
		if n == "" {
			return fmt.Errorf("%s has an empty name", field)
		}
	}
	return nil
}

// fullMatchRegexp compiles expr to match whole strings, like Python's
// re.fullmatch. Go's RE2 syntax lacks look-around and back-references; such
// patterns are rejected here rather than matched differently.
func fullMatchRegexp(expr string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(`^(?:` + expr + `)$`)
	if err != nil {
		return nil, fmt.Errorf("regular expression %q: %w", expr, err)
	}
	return re, nil
}
