package peft

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/graft-ml/graft/core/model"
)

// PeftTypeVeRA is the peft_type of VeRA adapters.
const PeftTypeVeRA = "VERA"

// VeraConfig is PEFT's VeraConfig (Vector-based Random Matrix Adaptation):
// its JSON form is the adapter_config.json PEFT writes. Start from
// DefaultVeraConfig: the zero values of R, SaveProjection, DInitial and
// InitWeights are not PEFT's defaults.
type VeraConfig struct {
	BaseConfig
	// R is the rank of the shared random projections (PEFT default 256;
	// VeRA wants larger ranks than LoRA because only vectors are trained).
	R int `json:"r"`
	// TargetModules selects the linear layers, as for LoRA; empty means
	// PEFT's default for Llama-family models: q_proj and v_proj.
	TargetModules Modules `json:"target_modules"`
	// ProjectionPRNGKey seeds the frozen projections vera_A and vera_B
	// (PEFT default 0). graft cannot reproduce torch's generator, so the
	// projections always travel in the adapter file.
	ProjectionPRNGKey int64 `json:"projection_prng_key"`
	// SaveProjection must be true (PEFT's default): an adapter without its
	// projections could only be rebuilt with torch's random generator.
	SaveProjection bool `json:"save_projection"`
	// VeraDropout is the dropout probability on the adapter branch's input
	// while training, in [0, 1) (PEFT default 0).
	VeraDropout float64 `json:"vera_dropout"`
	// DInitial is the initial value of every element of vera_lambda_d
	// (PEFT default 0.1).
	DInitial float64 `json:"d_initial"`
	// FanInFanOut must be false: Llama-family projections are nn.Linear.
	FanInFanOut bool `json:"fan_in_fan_out" peft:"force=false" why:"the target layers are nn.Linear; using false, as PEFT does"`
	// Bias is "none" (empty means "none"); bias training is not supported.
	Bias string `json:"bias" peft:"empty=none"`
	// InitWeights (PEFT default true) starts with vera_lambda_b = 0 and
	// vera_lambda_d = DInitial, so the adapter is a no-op until trained;
	// false draws lambda_d from N(0, 1) and sets lambda_b = 1, as PEFT
	// does (for tests).
	InitWeights bool `json:"init_weights"`
	// LayersToTransform restricts list-form targets to these decoder layer
	// indices; LayersPattern names the module list the index follows and
	// needs LayersToTransform.
	LayersToTransform []int    `json:"layers_to_transform" peft:"null,scalar"`
	LayersPattern     []string `json:"layers_pattern" peft:"null,scalar,bare"`
}

// DefaultVeraConfig returns PEFT's defaults: r 256, projection_prng_key 0,
// save_projection true, vera_dropout 0, d_initial 0.1, init_weights true,
// and the default targets q_proj and v_proj.
func DefaultVeraConfig() VeraConfig {
	return VeraConfig{R: 256, SaveProjection: true, DInitial: 0.1, InitWeights: true}
}

// Validate checks the config for values PEFT rejects and for features
// graft does not implement.
func (c *VeraConfig) Validate() error { return withPrefix("vera config", c.validate()) }

func (c *VeraConfig) validate() error {
	if err := c.BaseConfig.validate(PeftTypeVeRA); err != nil {
		return err
	}
	switch {
	case c.R <= 0:
		return fmt.Errorf("r = %d must be positive", c.R)
	case !c.SaveProjection:
		return fmt.Errorf("save_projection must be true: projections regenerated from projection_prng_key need torch's random generator, which graft cannot reproduce")
	case !(c.VeraDropout >= 0 && c.VeraDropout < 1):
		return fmt.Errorf("vera_dropout = %g must be in [0, 1)", c.VeraDropout)
	case math.IsNaN(c.DInitial) || math.IsInf(c.DInitial, 0):
		return fmt.Errorf("d_initial = %g must be finite", c.DInitial)
	case len(c.LayersPattern) > 0 && len(c.LayersToTransform) == 0:
		return fmt.Errorf("layers_pattern needs layers_to_transform, as in PEFT")
	}
	if err := linearOnly(c.Bias, c.FanInFanOut); err != nil {
		return err
	}
	return validateSelection(c.TargetModules, Modules{}, c.LayersToTransform, c.LayersPattern)
}

// validateSelection checks the module-selection fields shared by VeRA and
// IA³.
func validateSelection(target, exclude Modules, layers []int, patterns []string) error {
	if err := target.validate("target_modules"); err != nil {
		return err
	}
	if err := exclude.validate("exclude_modules"); err != nil {
		return err
	}
	if exclude.Pattern == AllLinear {
		return fmt.Errorf("exclude_modules cannot be %q", AllLinear)
	}
	for _, n := range layers {
		if n < 0 {
			return fmt.Errorf("layers_to_transform has negative index %d", n)
		}
	}
	for _, p := range patterns {
		if _, err := layersPatternRegexp(p); err != nil {
			return err
		}
	}
	return nil
}

// MarshalJSON writes the config as PEFT writes adapter_config.json: every
// field of PEFT's VeraConfig with keys sorted.
func (c VeraConfig) MarshalJSON() ([]byte, error) {
	c.PeftType = cmp.Or(c.PeftType, PeftTypeVeRA)
	return encodeConfig(&c)
}

// UnmarshalJSON reads an adapter_config.json, ignoring unknown keys; use
// ParseVeraConfig to learn which keys were ignored.
func (c *VeraConfig) UnmarshalJSON(data []byte) (err error) {
	*c, _, err = ParseVeraConfig(data)
	return err
}

// ParseVeraConfig decodes a VeRA adapter_config.json. Missing keys take
// PEFT's defaults, as PEFT's from_pretrained does; unknown keys are
// ignored and listed in warnings, as is fan_in_fan_out true, which PEFT
// overrides for nn.Linear. The result is not validated; call Validate.
func ParseVeraConfig(data []byte) (VeraConfig, []string, error) {
	return parseConfig(data, DefaultVeraConfig())
}

// selectLinears returns the linear layers of m that a VeRA or IA³ config
// selects, in model order, with PEFT's module-matching rules, and the
// target with "all-linear" expanded into the layer names, as PEFT saves
// it. The caller fills in default targets first.
func selectLinears(m *model.Model, target, exclude Modules, layers []int, patterns []string) (Modules, []*model.Linear, error) {
	if target.Pattern == AllLinear {
		var names []string
		for _, l := range m.Linears() { // decoder blocks only, not the head
			short := l.Name[strings.LastIndexByte(l.Name, '.')+1:]
			if !slices.Contains(names, short) {
				names = append(names, short)
			}
		}
		slices.Sort(names)
		target = TargetNames(names...)
	}
	mm, err := newMatcher(&LoraConfig{TargetModules: target, ExcludeModules: exclude, LayersToTransform: layers, LayersPattern: patterns})
	if err != nil {
		return target, nil, err
	}
	cands := candidates(m)
	if len(cands) == 0 {
		return target, nil, fmt.Errorf("the model has no linear layers")
	}
	var out []*model.Linear
	for _, l := range cands {
		if mm.matches(l.Name) {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		desc, _ := target.MarshalJSON()
		return target, nil, fmt.Errorf("target_modules %s matched none of the model's linear layers (e.g. %q)", desc, cands[0].Name)
	}
	return target, out, nil
}
