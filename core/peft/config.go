// Package peft implements parameter-efficient fine-tuning methods on top of
// core/model with Hugging Face PEFT's semantics: LoRA adapters selected by
// PEFT's target-matching rules, several adapters on one model, merging into
// the base weights, and adapters saved and loaded in PEFT's directory format
// (adapter_config.json + adapter_model.safetensors).
//
// A Manager owns the adapters of one model:
//
//	mgr := peft.Attach(m)
//	err := mgr.AddAdapter("default", peft.LoraConfig{R: 8, LoraAlpha: 16,
//		TargetModules: peft.TargetNames("q_proj", "v_proj")}, rng)
//	logits, err := m.Forward(m.NewCache(0), ids, true) // base + adapter
//	err = mgr.Save("out/adapter", "default")
package peft

import (
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

// LoraConfig is PEFT's LoraConfig: its JSON form is the adapter_config.json
// that PEFT's save_pretrained writes and from_pretrained reads. The zero
// value of every field is PEFT's default, except R and LoraAlpha, which
// must be set.
type LoraConfig struct {
	// PeftType is "LORA"; empty means "LORA".
	PeftType string
	// TaskType is "CAUSAL_LM"; empty means "CAUSAL_LM". Saved tensor names
	// then start with "base_model.model.", as PEFT's causal-LM model's do.
	TaskType string
	// R is the rank of the update B·A.
	R int
	// LoraAlpha scales the update by LoraAlpha/R (or LoraAlpha/sqrt(R)
	// with UseRSLoRA).
	LoraAlpha float64
	// LoraDropout is the probability of zeroing an input element of the
	// adapter branch while training, in [0, 1).
	LoraDropout float64
	// TargetModules selects the linear layers that get the adapter. When
	// neither a pattern nor names are given, PEFT's default for Llama-family
	// models applies: q_proj and v_proj.
	TargetModules Modules
	// ExcludeModules removes layers from the selection; it wins over
	// TargetModules.
	ExcludeModules Modules
	// LayersToTransform restricts list-form targets to these decoder layer
	// indices (nil or empty: every layer).
	LayersToTransform []int
	// LayersPattern names the module list the layer index follows, such as
	// "layers" (nil: any).
	LayersPattern []string
	// RankPattern and AlphaPattern override R and LoraAlpha for modules
	// whose name ends with a key (a regular expression); the first key in
	// order that matches wins, as in PEFT's get_pattern_key.
	RankPattern  Patterns[int]
	AlphaPattern Patterns[float64]
	// UseRSLoRA scales by LoraAlpha/sqrt(R) (rank-stabilised LoRA).
	UseRSLoRA bool
	// InitLoraWeights chooses how AddAdapter initialises A and B: PEFT's
	// default (empty or "true"), "gaussian", "false", or "pissa",
	// "pissa_niter_N" and "olora", which also replace the base weights by
	// a residual (see InitPiSSA).
	InitLoraWeights LoraInit
	// Bias is "none" (empty means "none"); LoRA bias training is not
	// supported.
	Bias string
	// FanInFanOut must be false: Llama-family projections are nn.Linear.
	FanInFanOut bool
	// ModulesToSave must be empty: fully trained extra modules are not
	// supported.
	ModulesToSave []string
	// BaseModelNameOrPath and Revision identify the base model for PEFT
	// (written as null when empty).
	BaseModelNameOrPath string
	Revision            string
	// InferenceMode is informational; Save writes true, as PEFT does.
	InferenceMode bool
	// UseDoRA makes the adapter DoRA: a trainable magnitude per output
	// row rescales the adapted weight (see dora.go); PEFT's default is
	// false.
	UseDoRA bool
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
func (c *LoraConfig) Validate() error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("lora config: %w", err)
	}
	return nil
}

func (c *LoraConfig) validate() error {
	switch {
	case c.PeftType != "" && c.PeftType != PeftTypeLoRA:
		return fmt.Errorf("peft_type %q is not %q", c.PeftType, PeftTypeLoRA)
	case c.TaskType != "" && c.TaskType != TaskCausalLM:
		return fmt.Errorf("task_type %q is not supported (supported: %q)", c.TaskType, TaskCausalLM)
	case c.R <= 0:
		return fmt.Errorf("r = %d must be positive", c.R)
	case !(c.LoraAlpha > 0) || math.IsInf(c.LoraAlpha, 0):
		return fmt.Errorf("lora_alpha = %g must be positive and finite", c.LoraAlpha)
	case !(c.LoraDropout >= 0 && c.LoraDropout < 1):
		return fmt.Errorf("lora_dropout = %g must be in [0, 1)", c.LoraDropout)
	case c.Bias != "" && c.Bias != BiasNone:
		return fmt.Errorf("bias %q is not supported: graft trains no bias terms (use %q)", c.Bias, BiasNone)
	case c.FanInFanOut:
		return fmt.Errorf("fan_in_fan_out must be false: Llama-family projections store weights [out, in]")
	case len(c.ModulesToSave) > 0:
		return fmt.Errorf("modules_to_save %q is not supported", c.ModulesToSave)
	}
	if !c.InitLoraWeights.known() {
		return fmt.Errorf("init_lora_weights %q is not an initialisation PEFT knows", string(c.InitLoraWeights))
	}
	if err := c.TargetModules.validate("target_modules"); err != nil {
		return err
	}
	if err := c.ExcludeModules.validate("exclude_modules"); err != nil {
		return err
	}
	if c.ExcludeModules.Pattern == AllLinear {
		return fmt.Errorf("exclude_modules cannot be %q", AllLinear)
	}
	if c.TargetModules.Pattern != "" && c.TargetModules.Pattern != AllLinear {
		if len(c.LayersToTransform) > 0 {
			return fmt.Errorf("layers_to_transform cannot be used when target_modules is a regular expression")
		}
		if len(c.LayersPattern) > 0 {
			return fmt.Errorf("layers_pattern cannot be used when target_modules is a regular expression")
		}
	}
	for _, n := range c.LayersToTransform {
		if n < 0 {
			return fmt.Errorf("layers_to_transform has negative index %d", n)
		}
	}
	for _, p := range c.LayersPattern {
		if _, err := layersPatternRegexp(p); err != nil {
			return err
		}
	}
	for _, e := range c.RankPattern {
		if _, err := patternKeyRegexp(e.Key); err != nil {
			return fmt.Errorf("rank_pattern: %w", err)
		}
		if e.Value <= 0 {
			return fmt.Errorf("rank_pattern %q: rank %d must be positive", e.Key, e.Value)
		}
	}
	for _, e := range c.AlphaPattern {
		if _, err := patternKeyRegexp(e.Key); err != nil {
			return fmt.Errorf("alpha_pattern: %w", err)
		}
		if !(e.Value > 0) || math.IsInf(e.Value, 0) {
			return fmt.Errorf("alpha_pattern %q: alpha %g must be positive and finite", e.Key, e.Value)
		}
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
