package peft

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// PeftTypeIA3 is the peft_type of (IA)³ adapters.
const PeftTypeIA3 = "IA3"

// PEFT's IA³ defaults for llama and mistral
// (TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING and
// TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING); qwen2 targets
// q_proj instead of k_proj.
var (
	ia3DefaultTargets      = []string{"k_proj", "v_proj", "down_proj"}
	ia3DefaultTargetsQwen2 = []string{"q_proj", "v_proj", "down_proj"}
	ia3DefaultFeedforward  = []string{"down_proj"}
)

// IA3Config is PEFT's IA3Config: its JSON form is the adapter_config.json
// PEFT writes. Start from DefaultIA3Config: the zero value of
// InitIA3Weights is not PEFT's default.
type IA3Config struct {
	BaseConfig
	// TargetModules selects the linear layers, as for LoRA; empty means
	// PEFT's default for the architecture: k_proj, v_proj and down_proj
	// for llama and mistral (q_proj, v_proj, down_proj for qwen2).
	TargetModules Modules `json:"target_modules"`
	// ExcludeModules removes layers from the selection.
	ExcludeModules Modules `json:"exclude_modules"`
	// FeedforwardModules are the targets whose input, rather than output,
	// is scaled. A list must be a subset of a list TargetModules; a list
	// entry matches module names that end with it (plain string suffix, as
	// PEFT tests it), a pattern must match the whole name. Empty means
	// PEFT's default: down_proj.
	FeedforwardModules Modules `json:"feedforward_modules"`
	// FanInFanOut must be false: Llama-family projections are nn.Linear.
	FanInFanOut bool `json:"fan_in_fan_out" peft:"force=false" why:"the target layers are nn.Linear; using false, as PEFT does"`
	// InitIA3Weights (PEFT default true) starts every ia3_l at 1, so the
	// adapter is a no-op until trained; false draws them from N(0, 1), as
	// PEFT does (for tests).
	InitIA3Weights bool `json:"init_ia3_weights"`
}

// DefaultIA3Config returns PEFT's defaults: the default targets and
// feedforward modules, init_ia3_weights true.
func DefaultIA3Config() IA3Config { return IA3Config{InitIA3Weights: true} }

// Validate checks the config for values PEFT rejects and for features
// graft does not implement.
func (c *IA3Config) Validate() error { return withPrefix("ia3 config", c.validate()) }

func (c *IA3Config) validate() error {
	if err := c.BaseConfig.validate(PeftTypeIA3); err != nil {
		return err
	}
	if err := linearOnly("", c.FanInFanOut); err != nil {
		return err
	}
	if err := validateSelection(c.TargetModules, c.ExcludeModules, nil, nil); err != nil {
		return err
	}
	if err := c.FeedforwardModules.validate("feedforward_modules"); err != nil {
		return err
	}
	if c.FeedforwardModules.Pattern == AllLinear {
		return fmt.Errorf("feedforward_modules cannot be %q", AllLinear)
	}
	// PEFT checks the subset only when both are lists.
	if c.FeedforwardModules.Names != nil && c.TargetModules.Names != nil {
		for _, n := range c.FeedforwardModules.Names {
			if !slices.Contains(c.TargetModules.Names, n) {
				return fmt.Errorf("feedforward_modules must be a subset of target_modules: %q is not in %q", n, c.TargetModules.Names)
			}
		}
	}
	return nil
}

// isFeedforward reports whether a targeted module scales its input: PEFT's
// _check_target_module_feedforward (re.fullmatch for a pattern,
// str.endswith for list entries).
func (c *IA3Config) isFeedforward(name string) (bool, error) {
	if p := c.FeedforwardModules.Pattern; p != "" {
		re, err := fullMatchRegexp(p)
		if err != nil {
			return false, fmt.Errorf("feedforward_modules: %w", err)
		}
		return re.MatchString(name), nil
	}
	return slices.ContainsFunc(c.FeedforwardModules.Names, func(n string) bool { return strings.HasSuffix(name, n) }), nil
}

// MarshalJSON writes the config as PEFT writes adapter_config.json: every
// field of PEFT's IA3Config with keys sorted.
func (c IA3Config) MarshalJSON() ([]byte, error) {
	c.PeftType = cmp.Or(c.PeftType, PeftTypeIA3)
	return encodeConfig(&c)
}

// UnmarshalJSON reads an adapter_config.json, ignoring unknown keys; use
// ParseIA3Config to learn which keys were ignored.
func (c *IA3Config) UnmarshalJSON(data []byte) (err error) {
	*c, _, err = ParseIA3Config(data)
	return err
}

// ParseIA3Config decodes an IA³ adapter_config.json. Missing keys take
// PEFT's defaults; unknown keys are ignored and listed in warnings, as is
// fan_in_fan_out true, which PEFT overrides for nn.Linear. The result is
// not validated; call Validate.
func ParseIA3Config(data []byte) (IA3Config, []string, error) {
	return parseConfig(data, DefaultIA3Config())
}
