package peft

import (
	"errors"
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
	// PeftType is "IA3"; empty means "IA3".
	PeftType string
	// TaskType is "CAUSAL_LM"; empty means "CAUSAL_LM".
	TaskType string
	// TargetModules selects the linear layers, as for LoRA; empty means
	// PEFT's default for the architecture: k_proj, v_proj and down_proj
	// for llama and mistral (q_proj, v_proj, down_proj for qwen2).
	TargetModules Modules
	// ExcludeModules removes layers from the selection.
	ExcludeModules Modules
	// FeedforwardModules are the targets whose input, rather than output,
	// is scaled. A list must be a subset of a list TargetModules; a list
	// entry matches module names that end with it (plain string suffix, as
	// PEFT tests it), a pattern must match the whole name. Empty means
	// PEFT's default: down_proj.
	FeedforwardModules Modules
	// FanInFanOut must be false: Llama-family projections are nn.Linear.
	FanInFanOut bool
	// ModulesToSave must be empty.
	ModulesToSave []string
	// InitIA3Weights (PEFT default true) starts every ia3_l at 1, so the
	// adapter is a no-op until trained. NewIA3 needs it true; adapters
	// saved from PEFT with false load like any other.
	InitIA3Weights bool
	// BaseModelNameOrPath and Revision identify the base model for PEFT
	// (written as null when empty).
	BaseModelNameOrPath string
	Revision            string
	// InferenceMode is informational; Files writes true, as PEFT does.
	InferenceMode bool
}

// DefaultIA3Config returns PEFT's defaults: the default targets and
// feedforward modules, init_ia3_weights true.
func DefaultIA3Config() IA3Config { return IA3Config{InitIA3Weights: true} }

// Validate checks the config for values PEFT rejects and for features
// graft does not implement.
func (c *IA3Config) Validate() error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("ia3 config: %w", err)
	}
	return nil
}

func (c *IA3Config) validate() error {
	switch {
	case c.PeftType != "" && c.PeftType != PeftTypeIA3:
		return fmt.Errorf("peft_type %q is not %q", c.PeftType, PeftTypeIA3)
	case c.TaskType != "" && c.TaskType != TaskCausalLM:
		return fmt.Errorf("task_type %q is not supported (supported: %q)", c.TaskType, TaskCausalLM)
	case c.FanInFanOut:
		return errors.New("fan_in_fan_out must be false: Llama-family projections store weights [out, in]")
	case len(c.ModulesToSave) > 0:
		return fmt.Errorf("modules_to_save %q is not supported", c.ModulesToSave)
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
	fields := map[string]any{
		"auto_mapping":            nil,
		"base_model_name_or_path": nullableString(c.BaseModelNameOrPath),
		"exclude_modules":         c.ExcludeModules,
		"fan_in_fan_out":          c.FanInFanOut,
		"feedforward_modules":     c.FeedforwardModules,
		"inference_mode":          c.InferenceMode,
		"init_ia3_weights":        c.InitIA3Weights,
		"modules_to_save":         nullableStrings(c.ModulesToSave),
		"peft_type":               orDefault(c.PeftType, PeftTypeIA3),
		"revision":                nullableString(c.Revision),
		"target_modules":          c.TargetModules,
		"task_type":               orDefault(c.TaskType, TaskCausalLM),
	}
	return marshalNoHTML(fields) // map keys come out sorted
}

// EncodeIA3Config returns the adapter_config.json bytes PEFT would write:
// MarshalJSON indented by two spaces, without a trailing newline.
func EncodeIA3Config(c IA3Config) ([]byte, error) {
	return indentConfig(c.MarshalJSON())
}

// UnmarshalJSON reads an adapter_config.json, ignoring unknown keys; use
// ParseIA3Config to learn which keys were ignored.
func (c *IA3Config) UnmarshalJSON(data []byte) error {
	cfg, _, err := ParseIA3Config(data)
	if err != nil {
		return err
	}
	*c = cfg
	return nil
}

// ParseIA3Config decodes an IA³ adapter_config.json. Missing keys take
// PEFT's defaults; unknown keys are ignored and listed in warnings, as is
// fan_in_fan_out true, which PEFT overrides for nn.Linear. The result is
// not validated; call Validate.
func ParseIA3Config(data []byte) (IA3Config, []string, error) {
	cfg := DefaultIA3Config()
	cr, err := newConfigReader(data)
	if err != nil {
		return IA3Config{}, nil, err
	}
	var fanInOut bool
	err = cr.read(
		configKey{"peft_type", &cfg.PeftType},
		configKey{"task_type", &cfg.TaskType},
		configKey{"target_modules", &cfg.TargetModules},
		configKey{"exclude_modules", &cfg.ExcludeModules},
		configKey{"feedforward_modules", &cfg.FeedforwardModules},
		configKey{"fan_in_fan_out", &fanInOut},
		configKey{"modules_to_save", &cfg.ModulesToSave},
		configKey{"init_ia3_weights", &cfg.InitIA3Weights},
		configKey{"base_model_name_or_path", &cfg.BaseModelNameOrPath},
		configKey{"revision", &cfg.Revision},
		configKey{"inference_mode", &cfg.InferenceMode},
	)
	if err != nil {
		return IA3Config{}, nil, err
	}
	var warnings []string
	if fanInOut {
		warnings = append(warnings, "fan_in_fan_out is true but the target layers are nn.Linear; using false, as PEFT does")
	}
	return cfg, append(warnings, cr.unknown()...), nil
}
