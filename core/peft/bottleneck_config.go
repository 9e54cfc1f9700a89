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

// PeftTypeBottleneck is the peft_type graft writes into a bottleneck
// adapter's adapter_config.json so that LoadAdapter can dispatch on it.
// AdapterHub's own files have no peft_type; LoadBottleneck reads those.
const PeftTypeBottleneck = "BOTTLENECK"

// Bottleneck adapter kinds: where the adapters sit in each decoder block.
const (
	// BottleneckHoulsby (Houlsby et al., 2019; AdapterHub's
	// DoubleSeqBnConfig, "double_seq_bn") adapts the attention output and
	// the feed-forward output of every block.
	BottleneckHoulsby = "houlsby"
	// BottleneckPfeiffer (Pfeiffer et al., 2020; AdapterHub's SeqBnConfig,
	// "seq_bn") adapts the feed-forward output only.
	BottleneckPfeiffer = "pfeiffer"
)

// Bottleneck initialisations, AdapterHub's init_weights.
const (
	// BottleneckInitMAM draws the down-projection from PyTorch's default
	// Linear init (kaiming_uniform with a = √5) and zeroes the
	// up-projection and both biases, so a new adapter is exactly the
	// identity. graft's default.
	BottleneckInitMAM = "mam_adapter"
	// BottleneckInitBERT draws both weights from N(0, 0.02²) with zero
	// biases: AdapterHub's default, which starts slightly off the identity.
	BottleneckInitBERT = "bert"
	// BottleneckInitHoulsby draws both weights from N(0, 0.01²) truncated
	// to ±0.02, with zero biases, as Houlsby et al. did.
	BottleneckInitHoulsby = "houlsby"
)

// BottleneckConfig configures a Houlsby or Pfeiffer bottleneck adapter: at
// each adapted site, y = h + scaling · up(f(down(h))), where h is the
// sublayer's output (attention or feed-forward, before the residual add),
// down is Linear(Dim, Dim/ReductionFactor) and up is Linear(Dim/RF, Dim),
// both with biases. The zero value of every field means its default.
//
// In AdapterHub's BnConfig terms this is mh_adapter (Houlsby) and
// output_adapter, original_ln_before = false, original_ln_after = true,
// residual_before_ln = true, ln_before = ln_after = false,
// is_parallel = false, use_gating = false, phm_layer = false: see
// NewBottleneck for how that maps onto a pre-norm Llama block.
type BottleneckConfig struct {
	// Kind is BottleneckHoulsby (default) or BottleneckPfeiffer;
	// AdapterHub's names "double_seq_bn" and "seq_bn" are accepted too.
	Kind string
	// Name is the adapter's name, which AdapterHub puts in every tensor
	// name and in adapter_config.json's "name" (default "default").
	Name string
	// ReductionFactor divides the hidden size to give the bottleneck
	// width, floor(Dim/ReductionFactor) and at least 1 (default 16, as
	// in both AdapterHub presets). A factor below 1 widens instead.
	ReductionFactor float64
	// NonLinearity is the activation between the projections: "swish"
	// (= "silu"), "relu", "gelu" (exact), "gelu_new" (tanh approximation),
	// "tanh", "sigmoid" or "linear" (= "identity"). The default is the
	// preset's: "swish" for Houlsby, "relu" for Pfeiffer.
	NonLinearity string
	// InitWeights is BottleneckInitMAM (default), BottleneckInitBERT or
	// BottleneckInitHoulsby.
	InitWeights string
	// Dropout is applied to the adapter branch's output while training,
	// in [0, 1) (AdapterHub's dropout; default 0).
	Dropout float64
	// Scaling multiplies the adapter branch (AdapterHub's scaling; 0 means
	// the default 1). Its "learned" and "channel" modes are not supported.
	Scaling float64
	// LeaveOut lists decoder layers (from 0) that get no adapter.
	LeaveOut []int
	// ModelName is recorded as adapter_config.json's model_name, the
	// base model's Hub name or path (optional).
	ModelName string
}

// sites reports which block outputs the kind adapts.
func (c BottleneckConfig) sites() (attention, output bool) {
	return c.Kind == BottleneckHoulsby, true
}

// resolved fills in the defaults, canonicalises names and validates.
func (c BottleneckConfig) resolved() (BottleneckConfig, error) {
	switch strings.ToLower(c.Kind) {
	case "", BottleneckHoulsby, "double_seq_bn":
		c.Kind = BottleneckHoulsby
	case BottleneckPfeiffer, "seq_bn":
		c.Kind = BottleneckPfeiffer
	default:
		return c, fmt.Errorf("bottleneck kind %q is not %q or %q", c.Kind, BottleneckHoulsby, BottleneckPfeiffer)
	}
	if c.Name == "" {
		c.Name = "default"
	}
	if strings.ContainsAny(c.Name, ".\x00") || strings.TrimSpace(c.Name) != c.Name {
		return c, fmt.Errorf("bottleneck adapter name %q: a name may not contain dots or surrounding spaces (it becomes part of tensor names)", c.Name)
	}
	if c.ReductionFactor == 0 {
		c.ReductionFactor = 16
	}
	if !(c.ReductionFactor > 0) || math.IsInf(c.ReductionFactor, 0) {
		return c, fmt.Errorf("reduction_factor %g must be a positive number", c.ReductionFactor)
	}
	if c.NonLinearity == "" {
		c.NonLinearity = "swish"
		if c.Kind == BottleneckPfeiffer {
			c.NonLinearity = "relu"
		}
	}
	act, err := lookupActivation(c.NonLinearity)
	if err != nil {
		return c, err
	}
	c.NonLinearity = act.name
	switch c.InitWeights {
	case "":
		c.InitWeights = BottleneckInitMAM
	case BottleneckInitMAM, BottleneckInitBERT, BottleneckInitHoulsby:
	default:
		return c, fmt.Errorf("init_weights %q is not %q, %q or %q", c.InitWeights, BottleneckInitMAM, BottleneckInitBERT, BottleneckInitHoulsby)
	}
	if !(c.Dropout >= 0 && c.Dropout < 1) {
		return c, fmt.Errorf("dropout %g must be in [0, 1)", c.Dropout)
	}
	if c.Scaling == 0 {
		c.Scaling = 1
	}
	if math.IsNaN(c.Scaling) || math.IsInf(c.Scaling, 0) {
		return c, fmt.Errorf("scaling %g must be finite", c.Scaling)
	}
	c.LeaveOut = slices.Clone(c.LeaveOut)
	slices.Sort(c.LeaveOut)
	c.LeaveOut = slices.Compact(c.LeaveOut)
	for _, l := range c.LeaveOut {
		if l < 0 {
			return c, fmt.Errorf("leave_out layer %d is negative", l)
		}
	}
	return c, nil
}

// bottleneckWidth is AdapterHub's down_sample: int(hidden // factor), at
// least 1.
func bottleneckWidth(dim int, factor float64) int {
	return max(1, int(math.Floor(float64(dim)/factor)))
}

// bnFormatVersion fills adapter_config.json's "version". AdapterHub reads
// the key only to tell pre-v1 files (no version, older activation names)
// from current ones; its own value is "adapters.<release>".
const bnFormatVersion = "graft.1"

// encodeBottleneckConfig writes adapter_config.json as AdapterHub's
// build_full_config and json.dump(indent=2, sort_keys=True) do, with every
// BnConfig field, plus peft_type.
func encodeBottleneckConfig(c BottleneckConfig, mc model.Config) ([]byte, error) {
	mh, out := c.sites()
	leaveOut := c.LeaveOut
	if leaveOut == nil {
		leaveOut = []int{}
	}
	for _, v := range []float64{c.ReductionFactor, c.Dropout, c.Scaling} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("bottleneck config: %g is not a finite number", v)
		}
	}
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	inner := map[string]any{
		"adapter_residual_before_ln":   false,
		"cross_adapter":                false,
		"dropout":                      raw(pyFloat(c.Dropout)),
		"factorized_phm_W":             true,
		"factorized_phm_rule":          false,
		"hypercomplex_nonlinearity":    "glorot-uniform",
		"init_weights":                 c.InitWeights,
		"init_weights_seed":            nil,
		"inv_adapter":                  nil,
		"inv_adapter_reduction_factor": nil,
		"is_parallel":                  false,
		"learn_phm":                    true,
		"leave_out":                    leaveOut,
		"ln_after":                     false,
		"ln_before":                    false,
		"mh_adapter":                   mh,
		"non_linearity":                c.NonLinearity,
		"original_ln_after":            true,
		"original_ln_before":           false,
		"output_adapter":               out,
		"phm_bias":                     true,
		"phm_c_init":                   "normal",
		"phm_dim":                      4,
		"phm_init_range":               raw(pyFloat(0.0001)),
		"phm_layer":                    false,
		"phm_rank":                     1,
		"reduction_factor":             raw(pyNumber(c.ReductionFactor)),
		"residual_before_ln":           true,
		"scaling":                      raw(pyFloat(c.Scaling)),
		"shared_W_phm":                 false,
		"shared_phm_rule":              true,
		"stochastic_depth":             raw(pyFloat(0)),
		"use_gating":                   false,
	}
	var modelName any
	if c.ModelName != "" {
		modelName = c.ModelName
	}
	top := map[string]any{
		"config":      inner,
		"hidden_size": mc.Dim,
		"model_class": hfCausalLMClass(mc.Arch),
		"model_name":  modelName,
		"model_type":  mc.Arch,
		"name":        c.Name,
		"peft_type":   PeftTypeBottleneck,
		"version":     bnFormatVersion,
	}
	compact, err := marshalNoHTML(top)
	if err != nil {
		return nil, fmt.Errorf("bottleneck config: %w", err)
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, compact, "", "  "); err != nil {
		return nil, fmt.Errorf("bottleneck config: %w", err)
	}
	return indented.Bytes(), nil // no trailing newline, like json.dump
}

// hfCausalLMClass names transformers' causal-LM class for an architecture,
// which AdapterHub records as model_class.
func hfCausalLMClass(arch string) string {
	switch arch {
	case "llama", "":
		return "LlamaForCausalLM"
	case "qwen2":
		return "Qwen2ForCausalLM"
	case "mistral":
		return "MistralForCausalLM"
	}
	return strings.ToUpper(arch[:1]) + arch[1:] + "ForCausalLM"
}

// bnFileConfig is what adapter_config.json says beyond BottleneckConfig:
// the model it was made for, when recorded.
type bnFileConfig struct {
	cfg        BottleneckConfig
	hiddenSize int    // 0 when absent
	modelType  string // "" when absent
}

// bnRequiredValue is a BnConfig option graft can only honour at one value:
// the value, and what any other value would mean.
type bnRequiredValue struct {
	want any // false, true or nil (JSON null)
	why  string
}

// bnFixedOptions are the BnConfig options that change what an adapter
// computes but that graft's block hook cannot express.
var bnFixedOptions = map[string]bnRequiredValue{
	"original_ln_before": {false, "it feeds the sublayer output plus the residual stream into the adapter, and graft's block hook sees the sublayer output only"},
	"original_ln_after":  {true, "without it the block's residual connection is dropped"},
	"ln_before":          {false, "it adds a trainable layer norm before the bottleneck, which graft does not implement"},
	"ln_after":           {false, "it adds a trainable layer norm after the bottleneck, which graft does not implement"},
	"is_parallel":        {false, "parallel adapters read the block input, which graft's block hook does not see"},
	"use_gating":         {false, "gated adapters (UniPELT) are not supported by graft"},
	"phm_layer":          {false, "PHM (Compacter) projections are not supported by graft"},
	"inv_adapter":        {nil, "invertible adapters on the embeddings are not supported by graft"},
}

// bnIgnoredOptions change nothing graft computes for this configuration:
// initialisation details, options of unsupported features that are off,
// and cross attention, which decoder-only models lack.
var bnIgnoredOptions = []string{
	"init_weights_seed", "cross_adapter", "adapter_residual_before_ln", "inv_adapter_reduction_factor",
	"phm_dim", "factorized_phm_W", "shared_W_phm", "shared_phm_rule", "factorized_phm_rule",
	"phm_c_init", "phm_init_range", "learn_phm", "hypercomplex_nonlinearity", "phm_rank", "phm_bias",
	"architecture",
}

// parseBottleneckConfig reads adapter_config.json in AdapterHub's layout.
// Unknown keys are reported in warnings; options that would change the
// computation in ways graft does not support are errors.
func parseBottleneckConfig(data []byte) (bnFileConfig, []string, error) {
	var fc bnFileConfig
	top, err := bnObject(data)
	if err != nil {
		return fc, nil, err
	}
	var warnings []string
	if v, ok := top["peft_type"]; ok {
		var pt string
		if err := json.Unmarshal(v, &pt); err != nil || pt != PeftTypeBottleneck {
			return fc, nil, fmt.Errorf("peft_type is %s, want %q", compactJSON(v), PeftTypeBottleneck)
		}
	}
	rawInner, ok := top["config"]
	if !ok || string(rawInner) == "null" {
		return fc, nil, fmt.Errorf(`"config" is missing: not an AdapterHub adapter_config.json`)
	}
	inner, err := bnObject(rawInner)
	if err != nil {
		return fc, nil, fmt.Errorf("config: %w", err)
	}
	if err := bnField(top, "name", &fc.cfg.Name, true); err != nil {
		return fc, nil, err
	}
	if fc.cfg.Name == "" {
		return fc, nil, fmt.Errorf("name is empty")
	}
	if err := bnField(top, "model_name", &fc.cfg.ModelName, false); err != nil {
		return fc, nil, err
	}
	if err := bnField(top, "model_type", &fc.modelType, false); err != nil {
		return fc, nil, err
	}
	var hidden json.Number
	if err := bnField(top, "hidden_size", &hidden, false); err != nil {
		return fc, nil, err
	}
	if hidden != "" {
		n, err := hidden.Int64()
		if err != nil || n <= 0 || n > math.MaxInt32 {
			return fc, nil, fmt.Errorf("hidden_size %s is not a positive integer", hidden)
		}
		fc.hiddenSize = int(n)
	}
	for key := range top {
		switch key {
		case "peft_type", "config", "name", "model_name", "model_type", "hidden_size", "model_class", "version":
		default:
			warnings = append(warnings, fmt.Sprintf("unknown key %q ignored", key))
		}
	}

	if err := parseBnInner(inner, &fc.cfg); err != nil {
		return fc, nil, fmt.Errorf("config: %w", err)
	}
	if _, ok := top["version"]; !ok {
		// Files from before AdapterHub's adapters v1 name activations the
		// old way; AdapterHub renames them on load (ACTIVATION_RENAME).
		switch strings.ToLower(fc.cfg.NonLinearity) {
		case "gelu":
			fc.cfg.NonLinearity = "gelu_new"
		case "gelu_orig":
			fc.cfg.NonLinearity = "gelu"
		}
	}
	known := map[string]bool{}
	for _, k := range bnInnerKeys {
		known[k] = true
	}
	for k := range bnFixedOptions {
		known[k] = true
	}
	for _, k := range bnIgnoredOptions {
		known[k] = true
	}
	var unknown []string
	for key := range inner {
		if !known[key] {
			unknown = append(unknown, key)
		}
	}
	sort.Strings(unknown)
	for _, key := range unknown {
		warnings = append(warnings, fmt.Sprintf("unknown key \"config.%s\" ignored", key))
	}
	sort.Strings(warnings)
	cfg, err := fc.cfg.resolved()
	if err != nil {
		return fc, nil, fmt.Errorf("config: %w", err)
	}
	fc.cfg = cfg
	return fc, warnings, nil
}

// bnInnerKeys are the BnConfig options graft reads into BottleneckConfig.
var bnInnerKeys = []string{"mh_adapter", "output_adapter", "reduction_factor", "non_linearity",
	"init_weights", "dropout", "scaling", "leave_out", "residual_before_ln", "stochastic_depth"}

// parseBnInner reads the "config" object into cfg.
func parseBnInner(inner map[string]json.RawMessage, cfg *BottleneckConfig) error {
	var mh, out bool
	if err := bnField(inner, "mh_adapter", &mh, true); err != nil {
		return err
	}
	if err := bnField(inner, "output_adapter", &out, true); err != nil {
		return err
	}
	switch {
	case mh && out:
		cfg.Kind = BottleneckHoulsby
	case out:
		cfg.Kind = BottleneckPfeiffer
	case mh:
		return fmt.Errorf("mh_adapter without output_adapter is not supported (graft's kinds are Houlsby: both, and Pfeiffer: output_adapter only)")
	default:
		return fmt.Errorf("mh_adapter and output_adapter are both false: the adapter adapts nothing")
	}
	rf, ok := inner["reduction_factor"]
	if !ok {
		return fmt.Errorf("reduction_factor is missing")
	}
	if len(bytes.TrimSpace(rf)) > 0 && bytes.TrimSpace(rf)[0] == '{' {
		return fmt.Errorf("reduction_factor %s: a per-layer mapping is not supported; use one number", compactJSON(rf))
	}
	if err := json.Unmarshal(rf, &cfg.ReductionFactor); err != nil || !(cfg.ReductionFactor > 0) {
		return fmt.Errorf("reduction_factor %s is not a positive number", compactJSON(rf))
	}
	if err := bnField(inner, "non_linearity", &cfg.NonLinearity, true); err != nil {
		return err
	}
	if cfg.NonLinearity == "" {
		return fmt.Errorf("non_linearity is empty")
	}
	if err := bnField(inner, "init_weights", &cfg.InitWeights, false); err != nil {
		return err
	}
	if cfg.InitWeights == "" {
		cfg.InitWeights = BottleneckInitBERT // AdapterHub's default when absent
	}
	if err := bnField(inner, "dropout", &cfg.Dropout, false); err != nil {
		return err
	}
	if v, ok := inner["scaling"]; ok && string(v) != "null" {
		if err := json.Unmarshal(v, &cfg.Scaling); err != nil {
			return fmt.Errorf("scaling %s: only a constant number is supported (not \"learned\" or \"channel\")", compactJSON(v))
		}
		if cfg.Scaling == 0 {
			return fmt.Errorf("scaling 0 switches the adapter off")
		}
	}
	if err := bnField(inner, "leave_out", &cfg.LeaveOut, false); err != nil {
		return err
	}
	// residual_before_ln only matters with original_ln_before, which must
	// be false; its "post_add" form needs original_ln_before.
	if v, ok := inner["residual_before_ln"]; ok {
		var b bool
		if err := json.Unmarshal(v, &b); err != nil {
			return fmt.Errorf("residual_before_ln %s: only true or false is supported without original_ln_before", compactJSON(v))
		}
	}
	var depth float64
	if err := bnField(inner, "stochastic_depth", &depth, false); err != nil {
		return err
	}
	if depth != 0 {
		return fmt.Errorf("stochastic_depth %g is not supported", depth)
	}
	keys := make([]string, 0, len(bnFixedOptions))
	for k := range bnFixedOptions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		req := bnFixedOptions[key]
		v, ok := inner[key]
		if !ok {
			continue // AdapterHub's default, which is the supported value
		}
		var got any
		if err := json.Unmarshal(v, &got); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		if got != req.want {
			return fmt.Errorf("%s = %s is not supported: %s", key, compactJSON(v), req.why)
		}
	}
	return nil
}

// bnObject decodes a JSON object into its raw members.
func bnObject(data []byte) (map[string]json.RawMessage, error) {
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v) // says where the syntax breaks
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		return nil, fmt.Errorf("not a JSON object: %s", compactJSON(data))
	}
	return obj, nil
}

// bnField decodes obj[key] into dst; a missing or null key is an error
// when required and leaves dst alone otherwise.
func bnField(obj map[string]json.RawMessage, key string, dst any, required bool) error {
	v, ok := obj[key]
	if !ok || string(v) == "null" {
		if required {
			return fmt.Errorf("%s is missing", key)
		}
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("%s: %s is not %s", key, compactJSON(v), bnKindOf(dst))
	}
	return nil
}

func bnKindOf(dst any) string {
	switch dst.(type) {
	case *bool:
		return "a boolean"
	case *string:
		return "a string"
	case *float64, *json.Number:
		return "a number"
	case *[]int:
		return "a list of integers"
	}
	return fmt.Sprintf("a %T", dst)
}
