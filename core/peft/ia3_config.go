package peft

import (
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
// PEFT writes. Start from DefaultConfig[IA3Config]: the zero value of
// InitIA3Weights is not PEFT's default.
type IA3Config struct {
	BaseConfig `peft:"type=IA3"`
	// TargetConfig selects the linear layers, as for LoRA; PEFT's
	// IA3Config has no layers_to_transform or layers_pattern.
	TargetConfig `peft:"without=layers_to_transform|layers_pattern"`
	// FeedforwardModules are the targets whose input, rather than output,
	// is scaled. A list must be a subset of a list TargetModules; a list
	// entry matches module names that end with it (plain string suffix, as
	// PEFT tests it), a pattern must match the whole name. Empty means
	// PEFT's default: down_proj.
	FeedforwardModules Modules `json:"feedforward_modules"`
	// FanInFanOut must be false: Llama-family projections are nn.Linear.
	FanInFanOut bool `json:"fan_in_fan_out" peft:"force=false" why:"the target layers are nn.Linear"`
	// InitIA3Weights (PEFT default true) starts every ia3_l at 1, so the
	// adapter is a no-op until trained; false draws them from N(0, 1), as
	// PEFT does (for tests).
	InitIA3Weights bool `json:"init_ia3_weights" peft:"default=true"`
}

// Validate checks the config for values PEFT rejects and for features
// graft does not implement.
func (c *IA3Config) Validate() error { return validateConfig(c) }

func (c *IA3Config) check() error {
	if err := c.FeedforwardModules.validate("feedforward_modules"); err != nil {
		return err
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
func (c IA3Config) MarshalJSON() ([]byte, error) { return encodeConfig(&c) }

// UnmarshalJSON reads an adapter_config.json, ignoring unknown keys; use
// ParseConfig to learn which keys were ignored.
func (c *IA3Config) UnmarshalJSON(data []byte) (err error) {
	*c, _, err = ParseConfig[IA3Config](data)
	return err
}
