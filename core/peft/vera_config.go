package peft

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
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
	// PeftType is "VERA"; empty means "VERA".
	PeftType string
	// TaskType is "CAUSAL_LM"; empty means "CAUSAL_LM".
	TaskType string
	// R is the rank of the shared random projections (PEFT default 256;
	// VeRA wants larger ranks than LoRA because only vectors are trained).
	R int
	// TargetModules selects the linear layers, as for LoRA; empty means
	// PEFT's default for Llama-family models: q_proj and v_proj.
	TargetModules Modules
	// ProjectionPRNGKey seeds the frozen projections vera_A and vera_B
	// (PEFT default 0). graft cannot reproduce torch's generator, so the
	// projections always travel in the adapter file.
	ProjectionPRNGKey int64
	// SaveProjection must be true (PEFT's default): an adapter without its
	// projections could only be rebuilt with torch's random generator.
	SaveProjection bool
	// VeraDropout is the dropout probability on the adapter branch's input
	// while training, in [0, 1) (PEFT default 0).
	VeraDropout float64
	// DInitial is the initial value of every element of vera_lambda_d
	// (PEFT default 0.1).
	DInitial float64
	// FanInFanOut must be false: Llama-family projections are nn.Linear.
	FanInFanOut bool
	// Bias is "none" (empty means "none"); bias training is not supported.
	Bias string
	// ModulesToSave must be empty.
	ModulesToSave []string
	// InitWeights (PEFT default true) starts with vera_lambda_b = 0 and
	// vera_lambda_d = DInitial, so the adapter is a no-op until trained;
	// false draws lambda_d from N(0, 1) and sets lambda_b = 1, as PEFT
	// does (for tests).
	InitWeights bool
	// LayersToTransform restricts list-form targets to these decoder layer
	// indices; LayersPattern names the module list the index follows and
	// needs LayersToTransform.
	LayersToTransform []int
	LayersPattern     []string
	// BaseModelNameOrPath and Revision identify the base model for PEFT
	// (written as null when empty).
	BaseModelNameOrPath string
	Revision            string
	// InferenceMode is informational; Files writes true, as PEFT does.
	InferenceMode bool
}

// DefaultVeraConfig returns PEFT's defaults: r 256, projection_prng_key 0,
// save_projection true, vera_dropout 0, d_initial 0.1, init_weights true,
// and the default targets q_proj and v_proj.
func DefaultVeraConfig() VeraConfig {
	return VeraConfig{R: 256, SaveProjection: true, DInitial: 0.1, InitWeights: true}
}

// Validate checks the config for values PEFT rejects and for features
// graft does not implement.
func (c *VeraConfig) Validate() error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("vera config: %w", err)
	}
	return nil
}

func (c *VeraConfig) validate() error {
	switch {
	case c.PeftType != "" && c.PeftType != PeftTypeVeRA:
		return fmt.Errorf("peft_type %q is not %q", c.PeftType, PeftTypeVeRA)
	case c.TaskType != "" && c.TaskType != TaskCausalLM:
		return fmt.Errorf("task_type %q is not supported (supported: %q)", c.TaskType, TaskCausalLM)
	case c.R <= 0:
		return fmt.Errorf("r = %d must be positive", c.R)
	case !c.SaveProjection:
		return fmt.Errorf("save_projection must be true: projections regenerated from projection_prng_key need torch's random generator, which graft cannot reproduce")
	case !(c.VeraDropout >= 0 && c.VeraDropout < 1):
		return fmt.Errorf("vera_dropout = %g must be in [0, 1)", c.VeraDropout)
	case math.IsNaN(c.DInitial) || math.IsInf(c.DInitial, 0):
		return fmt.Errorf("d_initial = %g must be finite", c.DInitial)
	case c.Bias != "" && c.Bias != BiasNone:
		return fmt.Errorf("bias %q is not supported: graft trains no bias terms (use %q)", c.Bias, BiasNone)
	case c.FanInFanOut:
		return fmt.Errorf("fan_in_fan_out must be false: Llama-family projections store weights [out, in]")
	case len(c.ModulesToSave) > 0:
		return fmt.Errorf("modules_to_save %q is not supported", c.ModulesToSave)
	case len(c.LayersPattern) > 0 && len(c.LayersToTransform) == 0:
		return fmt.Errorf("layers_pattern needs layers_to_transform, as in PEFT")
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
	if math.IsNaN(c.DInitial) || math.IsInf(c.DInitial, 0) || math.IsNaN(c.VeraDropout) || math.IsInf(c.VeraDropout, 0) {
		return nil, fmt.Errorf("vera config: d_initial %g and vera_dropout %g must be finite", c.DInitial, c.VeraDropout)
	}
	fields := map[string]any{
		"auto_mapping":            nil,
		"base_model_name_or_path": nullableString(c.BaseModelNameOrPath),
		"bias":                    orDefault(c.Bias, BiasNone),
		"d_initial":               json.RawMessage(pyFloat(c.DInitial)),
		"fan_in_fan_out":          c.FanInFanOut,
		"inference_mode":          c.InferenceMode,
		"init_weights":            c.InitWeights,
		"layers_pattern":          layersPatternJSON(c.LayersPattern),
		"layers_to_transform":     nullableInts(c.LayersToTransform),
		"modules_to_save":         nullableStrings(c.ModulesToSave),
		"peft_type":               orDefault(c.PeftType, PeftTypeVeRA),
		"projection_prng_key":     c.ProjectionPRNGKey,
		"r":                       c.R,
		"revision":                nullableString(c.Revision),
		"save_projection":         c.SaveProjection,
		"target_modules":          c.TargetModules,
		"task_type":               orDefault(c.TaskType, TaskCausalLM),
		"vera_dropout":            json.RawMessage(pyFloat(c.VeraDropout)),
	}
	return marshalNoHTML(fields) // map keys come out sorted
}

// EncodeVeraConfig returns the adapter_config.json bytes PEFT would write:
// MarshalJSON indented by two spaces, without a trailing newline.
func EncodeVeraConfig(c VeraConfig) ([]byte, error) {
	return indentConfig(c.MarshalJSON())
}

// UnmarshalJSON reads an adapter_config.json, ignoring unknown keys; use
// ParseVeraConfig to learn which keys were ignored.
func (c *VeraConfig) UnmarshalJSON(data []byte) error {
	cfg, _, err := ParseVeraConfig(data)
	if err != nil {
		return err
	}
	*c = cfg
	return nil
}

// ParseVeraConfig decodes a VeRA adapter_config.json. Missing keys take
// PEFT's defaults, as PEFT's from_pretrained does; unknown keys are
// ignored and listed in warnings, as is fan_in_fan_out true, which PEFT
// overrides for nn.Linear. The result is not validated; call Validate.
func ParseVeraConfig(data []byte) (VeraConfig, []string, error) {
	cfg := DefaultVeraConfig()
	cr, err := newConfigReader(data)
	if err != nil {
		return VeraConfig{}, nil, err
	}
	var (
		ltt      layerIndices
		lp       stringOrList
		fanInOut bool
	)
	err = cr.read(
		configKey{"peft_type", &cfg.PeftType},
		configKey{"task_type", &cfg.TaskType},
		configKey{"r", &intValue{&cfg.R}},
		configKey{"target_modules", &cfg.TargetModules},
		configKey{"projection_prng_key", &int64Value{&cfg.ProjectionPRNGKey}},
		configKey{"save_projection", &cfg.SaveProjection},
		configKey{"vera_dropout", &cfg.VeraDropout},
		configKey{"d_initial", &cfg.DInitial},
		configKey{"fan_in_fan_out", &fanInOut},
		configKey{"bias", &cfg.Bias},
		configKey{"modules_to_save", &cfg.ModulesToSave},
		configKey{"init_weights", &cfg.InitWeights},
		configKey{"layers_to_transform", &ltt},
		configKey{"layers_pattern", &lp},
		configKey{"base_model_name_or_path", &cfg.BaseModelNameOrPath},
		configKey{"revision", &cfg.Revision},
		configKey{"inference_mode", &cfg.InferenceMode},
	)
	if err != nil {
		return VeraConfig{}, nil, err
	}
	cfg.LayersToTransform, cfg.LayersPattern = ltt, lp
	var warnings []string
	if fanInOut {
		warnings = append(warnings, "fan_in_fan_out is true but the target layers are nn.Linear; using false, as PEFT does")
	}
	return cfg, append(warnings, cr.unknown()...), nil
}

// configKey pairs a JSON key with where its value goes.
type configKey struct {
	key string
	dst any
}

// configReader decodes the keys of an adapter_config.json object one by
// one and remembers which it has seen, so the rest can be reported.
type configReader struct {
	raw   map[string]json.RawMessage
	known map[string]bool
}

func newConfigReader(data []byte) (*configReader, error) {
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v) // says where the syntax breaks
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil || raw == nil {
		return nil, fmt.Errorf("not a JSON object: %s", compactJSON(data))
	}
	if _, ok := raw["peft_type"]; !ok {
		return nil, fmt.Errorf("peft_type is missing")
	}
	// Keys every PEFT config carries that change nothing graft computes.
	known := map[string]bool{"auto_mapping": true, "peft_version": true}
	return &configReader{raw: raw, known: known}, nil
}

// read decodes each present, non-null key into its destination.
func (cr *configReader) read(keys ...configKey) error {
	for _, k := range keys {
		cr.known[k.key] = true
		v, ok := cr.raw[k.key]
		if !ok || string(v) == "null" {
			continue
		}
		if err := json.Unmarshal(v, k.dst); err != nil {
			return fmt.Errorf("%s: %w", k.key, err)
		}
	}
	return nil
}

// unknown lists warnings for the keys read did not consume, sorted.
func (cr *configReader) unknown() []string {
	var keys []string
	for k := range cr.raw {
		if !cr.known[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = fmt.Sprintf("unknown key %q ignored", k)
	}
	return out
}

// intValue reads a JSON number that must be an integer (Python writes
// ints without a fraction, but 8.0 is accepted).
type intValue struct{ p *int }

func (v intValue) UnmarshalJSON(data []byte) error {
	var n int64
	if err := (int64Value{&n}).UnmarshalJSON(data); err != nil {
		return err
	}
	if n > math.MaxInt32 || n < math.MinInt32 {
		return fmt.Errorf("%d is out of range", n)
	}
	*v.p = int(n)
	return nil
}

type int64Value struct{ p *int64 }

func (v int64Value) UnmarshalJSON(data []byte) error {
	var f json.Number
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("want an integer, got %s", compactJSON(data))
	}
	if n, err := f.Int64(); err == nil {
		*v.p = n
		return nil
	}
	x, err := f.Float64()
	if err != nil || x != math.Trunc(x) || math.Abs(x) > 1<<53 {
		return fmt.Errorf("%s is not an integer", f)
	}
	*v.p = int64(x)
	return nil
}

func nullableString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullableInts(v []int) any {
	if len(v) == 0 {
		return nil
	}
	return v
}

func nullableStrings(v []string) any {
	if len(v) == 0 {
		return nil
	}
	return v
}

// layersPatternJSON writes one pattern as a string, several as a list.
func layersPatternJSON(p []string) any {
	switch len(p) {
	case 0:
		return nil
	case 1:
		return p[0]
	}
	return p
}

// indentConfig indents compact JSON by two spaces, as PEFT's
// save_pretrained does.
func indentConfig(compact []byte, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact, "", "  "); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
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
	for _, l := range out {
		if l.Hook != nil {
			return target, nil, fmt.Errorf("module %s already has a %T hook; unload that adapter first", l.Name, l.Hook)
		}
	}
	return target, out, nil
}
