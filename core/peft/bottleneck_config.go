package peft

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/graft-ml/graft/core/model"
)

// PeftTypeBottleneck is the peft_type graft writes into a bottleneck
// adapter's adapter_config.json so that LoadAdapter can dispatch on it.
// AdapterHub's own files have no peft_type; LoadAdapter reads those too.
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
// both with biases. The zero value of every field means its default. Its
// JSON form (the registry's Defaults and options for houlsby and pfeiffer)
// is flat, under AdapterHub's key names; the saved adapter_config.json has
// AdapterHub's layout (see BottleneckWeightsFileName).
//
// In AdapterHub's BnConfig terms this is mh_adapter (Houlsby) and
// output_adapter, original_ln_before = false, original_ln_after = true,
// residual_before_ln = true, ln_before = ln_after = false,
// is_parallel = false, use_gating = false, phm_layer = false: see
// NewBottleneck for how that maps onto a pre-norm Llama block.
type BottleneckConfig struct {
	// Kind is BottleneckHoulsby (default) or BottleneckPfeiffer;
	// AdapterHub's names "double_seq_bn" and "seq_bn" are accepted too.
	Kind string `json:"-"`
	// Name is the adapter's name, which AdapterHub puts in every tensor
	// name and in adapter_config.json's "name" (default "default").
	Name string `json:"name"`
	// ReductionFactor divides the hidden size to give the bottleneck
	// width, floor(Dim/ReductionFactor) and at least 1 (default 16, as
	// in both AdapterHub presets). A factor below 1 widens instead.
	ReductionFactor float64 `json:"reduction_factor" peft:"number,positive" why:"a per-layer mapping is not supported; use one number"`
	// NonLinearity is the activation between the projections: "swish"
	// (= "silu"), "relu", "gelu" (exact), "gelu_new" (tanh approximation),
	// "tanh", "sigmoid" or "linear" (= "identity"). The default is the
	// preset's: "swish" for Houlsby, "relu" for Pfeiffer.
	NonLinearity string `json:"non_linearity"`
	// InitWeights is BottleneckInitMAM (default), BottleneckInitBERT or
	// BottleneckInitHoulsby.
	InitWeights string `json:"init_weights" peft:"empty=mam_adapter,oneof=mam_adapter|bert|houlsby"`
	// Dropout is applied to the adapter branch's output while training,
	// in [0, 1) (AdapterHub's dropout; default 0).
	Dropout float64 `json:"dropout"`
	// Scaling multiplies the adapter branch (AdapterHub's scaling; 0 means
	// the default 1). Its "learned" and "channel" modes are not supported.
	Scaling float64 `json:"scaling" peft:"default=1,finite" why:"only a constant number is supported (not \"learned\" or \"channel\")"`
	// LeaveOut lists decoder layers (from 0) that get no adapter.
	LeaveOut []int `json:"leave_out"`
	// ModelName is recorded as adapter_config.json's model_name, the
	// base model's Hub name or path (optional).
	ModelName string `json:"model_name"`
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
	c.ReductionFactor = cmp.Or(c.ReductionFactor, 16)
	c.InitWeights = cmp.Or(c.InitWeights, BottleneckInitMAM)
	c.Scaling = cmp.Or(c.Scaling, 1)
	if err := checkConfig(&c); err != nil {
		return c, err
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
	if !(c.Dropout >= 0 && c.Dropout < 1) {
		return c, fmt.Errorf("dropout %g must be in [0, 1)", c.Dropout)
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

// bnFile is adapter_config.json in AdapterHub's layout, plus graft's
// peft_type.
type bnFile struct {
	Config     *bnOptions `json:"config"`
	HiddenSize int        `json:"hidden_size"`
	ModelClass string     `json:"model_class"`
	ModelName  string     `json:"model_name" peft:"null"`
	ModelType  string     `json:"model_type"`
	Name       string     `json:"name" peft:"required"`
	PeftType   string     `json:"peft_type"`
	Version    string     `json:"version"`
}

// bnOptions is AdapterHub's BnConfig: the options graft reads, those that
// change what an adapter computes but that graft's block hook implements
// at one value only, and the rest, which change nothing graft computes for
// this configuration (initialisation details, options of unsupported
// features that are off, cross attention, which decoder-only models lack).
// Files holds every option.
type bnOptions struct {
	MHAdapter        bool `json:"mh_adapter" peft:"required"`
	OutputAdapter    bool `json:"output_adapter" peft:"required"`
	BottleneckConfig `peft:"without=name|model_name"`

	_ struct{} `key:"original_ln_before" peft:"write=false,allow=false" why:"it feeds the sublayer output plus the residual stream into the adapter, and graft's block hook sees the sublayer output only"`
	_ struct{} `key:"original_ln_after" peft:"write=true,allow=true" why:"without it the block's residual connection is dropped"`
	_ struct{} `key:"ln_before" peft:"write=false,allow=false" why:"it adds a trainable layer norm before the bottleneck, which graft does not implement"`
	_ struct{} `key:"ln_after" peft:"write=false,allow=false" why:"it adds a trainable layer norm after the bottleneck, which graft does not implement"`
	_ struct{} `key:"is_parallel" peft:"write=false,allow=false" why:"parallel adapters read the block input, which graft's block hook does not see"`
	_ struct{} `key:"use_gating" peft:"write=false,allow=false" why:"gated adapters (UniPELT) are not supported by graft"`
	_ struct{} `key:"phm_layer" peft:"write=false,allow=false" why:"PHM (Compacter) projections are not supported by graft"`
	_ struct{} `key:"inv_adapter" peft:"write=null,allow=null" why:"invertible adapters on the embeddings are not supported by graft"`
	_ struct{} `key:"residual_before_ln" peft:"write=true,allow=true|false|null" why:"only true or false is supported without original_ln_before"`
	_ struct{} `key:"stochastic_depth" peft:"write=0.0,allow=0|null" why:"graft does not drop adapter layers at random"`

	_ struct{} `key:"adapter_residual_before_ln" peft:"write=false"`
	_ struct{} `key:"architecture"`
	_ struct{} `key:"cross_adapter" peft:"write=false"`
	_ struct{} `key:"factorized_phm_W" peft:"write=true"`
	_ struct{} `key:"factorized_phm_rule" peft:"write=false"`
	_ struct{} `key:"hypercomplex_nonlinearity" peft:"write=\"glorot-uniform\""`
	_ struct{} `key:"init_weights_seed" peft:"write=null"`
	_ struct{} `key:"inv_adapter_reduction_factor" peft:"write=null"`
	_ struct{} `key:"learn_phm" peft:"write=true"`
	_ struct{} `key:"phm_bias" peft:"write=true"`
	_ struct{} `key:"phm_c_init" peft:"write=\"normal\""`
	_ struct{} `key:"phm_dim" peft:"write=4"`
	_ struct{} `key:"phm_init_range" peft:"write=0.0001"`
	_ struct{} `key:"phm_rank" peft:"write=1"`
	_ struct{} `key:"shared_W_phm" peft:"write=false"`
	_ struct{} `key:"shared_phm_rule" peft:"write=true"`
}

// encodeBottleneckConfig writes adapter_config.json as AdapterHub's
// build_full_config and json.dump(indent=2, sort_keys=True) do, with every
// BnConfig field, plus peft_type.
func encodeBottleneckConfig(c BottleneckConfig, mc model.Config) ([]byte, error) {
	mh, out := c.sites()
	opts := bnOptions{MHAdapter: mh, OutputAdapter: out, BottleneckConfig: c}
	f := bnFile{Config: &opts, HiddenSize: mc.Dim, ModelClass: hfCausalLMClass(mc.Arch), ModelName: c.ModelName,
		ModelType: mc.Arch, Name: c.Name, PeftType: PeftTypeBottleneck, Version: bnFormatVersion}
	data, err := indentConfig(encodeConfig(&f))
	if err != nil {
		return nil, fmt.Errorf("bottleneck config: %w", err)
	}
	return data, nil
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

// parseBottleneckConfig reads adapter_config.json in AdapterHub's layout.
// Unknown keys are reported in warnings; options that would change the
// computation in ways graft does not support are errors.
func parseBottleneckConfig(data []byte) (bnFileConfig, []string, error) {
	var f bnFile
	warnings, err := decodeConfig(data, &f, false)
	if err != nil {
		return bnFileConfig{}, nil, err
	}
	o := f.Config
	switch {
	case f.PeftType != "" && f.PeftType != PeftTypeBottleneck:
		err = fmt.Errorf("peft_type is %q, want %q", f.PeftType, PeftTypeBottleneck)
	case o == nil:
		err = fmt.Errorf(`"config" is missing: not an AdapterHub adapter_config.json`)
	case f.Name == "":
		err = fmt.Errorf("name is empty")
	case f.HiddenSize < 0:
		err = fmt.Errorf("hidden_size %d is not a positive integer", f.HiddenSize)
	case o.MHAdapter && !o.OutputAdapter:
		err = fmt.Errorf("mh_adapter without output_adapter is not supported (graft's kinds are Houlsby: both, and Pfeiffer: output_adapter only)")
	case !o.OutputAdapter:
		err = fmt.Errorf("mh_adapter and output_adapter are both false: the adapter adapts nothing")
	case o.ReductionFactor == 0:
		err = fmt.Errorf("reduction_factor is missing")
	case !(o.ReductionFactor > 0):
		err = fmt.Errorf("reduction_factor %g is not a positive number", o.ReductionFactor)
	case o.NonLinearity == "":
		err = fmt.Errorf("non_linearity is missing")
	case o.Scaling == 0:
		err = fmt.Errorf("scaling 0 switches the adapter off")
	}
	if err != nil {
		return bnFileConfig{}, nil, err
	}
	cfg := o.BottleneckConfig
	cfg.Kind, cfg.Name, cfg.ModelName = BottleneckPfeiffer, f.Name, f.ModelName
	if o.MHAdapter {
		cfg.Kind = BottleneckHoulsby
	}
	cfg.InitWeights = cmp.Or(cfg.InitWeights, BottleneckInitBERT) // AdapterHub's default
	if f.Version == "" {
		// Files from before AdapterHub's adapters v1 name activations the
		// old way; AdapterHub renames them on load (ACTIVATION_RENAME).
		switch strings.ToLower(cfg.NonLinearity) {
		case "gelu":
			cfg.NonLinearity = "gelu_new"
		case "gelu_orig":
			cfg.NonLinearity = "gelu"
		}
	}
	if cfg, err = cfg.resolved(); err != nil {
		return bnFileConfig{}, nil, fmt.Errorf("config: %w", err)
	}
	return bnFileConfig{cfg, f.HiddenSize, f.ModelType}, warnings, nil
}

// bnNewConfig is the flat config document that creates a bottleneck
// adapter: BottleneckConfig's fields under AdapterHub's names.
type bnNewConfig struct {
	PeftType string   `json:"peft_type"`
	_        struct{} `key:"task_type"`
	BottleneckConfig
}

// parseNewBottleneck reads the flat config document that creates a
// bottleneck adapter of kind. Unknown keys are errors.
func parseNewBottleneck(config []byte, kind string) (BottleneckConfig, error) {
	var doc bnNewConfig
	_, err := decodeConfig(config, &doc, true)
	if err == nil && doc.PeftType != "" && doc.PeftType != PeftTypeBottleneck {
		err = fmt.Errorf("peft_type %q is not %q", doc.PeftType, PeftTypeBottleneck)
	}
	if err != nil {
		return BottleneckConfig{}, fmt.Errorf("%s config: %w", kind, err)
	}
	doc.Kind = kind
	return doc.BottleneckConfig, nil
}
