package peft

import (
	"errors"
	"fmt"
	"math"
)

// LycorisConfig holds the adapter_config.json fields PEFT's LoHaConfig and
// LoKrConfig share: PeftConfig's, LycorisConfig's rank_pattern and
// alpha_pattern, and the fields both dataclasses repeat.
type LycorisConfig struct {
	BaseConfig
	// R is the rank of the low-rank factors (PEFT default 8).
	R int `json:"r"`
	// Alpha scales the update by Alpha/R (PEFT default 8).
	Alpha float64 `json:"alpha" peft:"number"`
	// RankDropout drops whole output rows of the update while training,
	// each with this probability, in [0, 1) (PEFT default 0).
	RankDropout float64 `json:"rank_dropout"`
	// ModuleDropout leaves a layer's whole update out of a training
	// forward with this probability, in [0, 1) (PEFT default 0).
	ModuleDropout float64 `json:"module_dropout"`
	// UseEffectiveConv2d concerns convolutions only; Llama-family
	// projections are nn.Linear, for which PEFT ignores it.
	UseEffectiveConv2d bool `json:"use_effective_conv2d"`
	// TargetModules selects the linear layers, as for LoRA; empty means
	// PEFT's default for Llama-family models: q_proj and v_proj.
	TargetModules Modules `json:"target_modules"`
	// ExcludeModules removes layers from the selection.
	ExcludeModules Modules `json:"exclude_modules"`
	// LayersToTransform restricts list-form targets to these decoder layer
	// indices; LayersPattern names the module list the index follows and
	// needs LayersToTransform.
	LayersToTransform []int    `json:"layers_to_transform" peft:"null,scalar"`
	LayersPattern     []string `json:"layers_pattern" peft:"null,scalar,bare"`
	// RankPattern and AlphaPattern override R and Alpha for the modules
	// whose names match a key; the first matching key wins, as in PEFT's
	// get_pattern_key.
	RankPattern  Patterns[int]     `json:"rank_pattern"`
	AlphaPattern Patterns[float64] `json:"alpha_pattern"`
}

// defaultLycorisConfig returns the defaults PEFT's LoHaConfig and
// LoKrConfig share: r 8, alpha 8.
func defaultLycorisConfig() LycorisConfig { return LycorisConfig{R: 8, Alpha: 8} }

// validate checks the shared fields of a config whose peft_type is want.
func (c *LycorisConfig) validate(want string) error {
	if err := c.BaseConfig.validate(want); err != nil {
		return err
	}
	switch {
	case c.R <= 0:
		return fmt.Errorf("r = %d must be positive", c.R)
	case !(c.Alpha > 0) || math.IsInf(c.Alpha, 0):
		return fmt.Errorf("alpha = %g must be positive and finite", c.Alpha)
	case !(c.RankDropout >= 0 && c.RankDropout < 1):
		return fmt.Errorf("rank_dropout = %g must be in [0, 1)", c.RankDropout)
	case !(c.ModuleDropout >= 0 && c.ModuleDropout < 1):
		return fmt.Errorf("module_dropout = %g must be in [0, 1)", c.ModuleDropout)
	case len(c.LayersPattern) > 0 && len(c.LayersToTransform) == 0:
		return errors.New("layers_pattern needs layers_to_transform, as in PEFT")
	}
	if err := validatePatterns(c.RankPattern, c.AlphaPattern); err != nil {
		return err
	}
	return validateSelection(c.TargetModules, c.ExcludeModules, c.LayersToTransform, c.LayersPattern)
}

// rankAlpha returns the rank and alpha of module name: R and Alpha unless
// rank_pattern or alpha_pattern has a key for it.
func (c *LycorisConfig) rankAlpha(name string) (int, float64, error) {
	r, alpha := c.R, c.Alpha
	if v, ok, err := c.RankPattern.Lookup(name); err != nil {
		return 0, 0, fmt.Errorf("rank_pattern: %w", err)
	} else if ok {
		r = v
	}
	if v, ok, err := c.AlphaPattern.Lookup(name); err != nil {
		return 0, 0, fmt.Errorf("alpha_pattern: %w", err)
	} else if ok {
		alpha = v
	}
	return r, alpha, nil
}
