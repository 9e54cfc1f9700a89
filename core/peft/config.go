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
//		TargetConfig: peft.TargetConfig{TargetModules: peft.TargetNames("q_proj", "v_proj")}}, rng)
//	logits, err := m.Forward(m.NewCache(0), ids, true) // base + adapter
//	err = mgr.Save("out/adapter", "default")
package peft

import (
	"encoding/json"
	"fmt"
	"math"
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
// plus modules_to_save, which every method graft implements refuses). A
// config embeds it with its peft_type: `peft:"type=LORA"`.
type BaseConfig struct {
	// PeftType is the method's peft_type ("LORA"); empty means the config
	// type's own.
	PeftType string `json:"peft_type" peft:"required"`
	// TaskType is "CAUSAL_LM"; empty means "CAUSAL_LM". Saved tensor names
	// then start with "base_model.model.", as PEFT's causal-LM model's do.
	TaskType string `json:"task_type" peft:"empty=CAUSAL_LM,oneof=CAUSAL_LM" why:"graft fine-tunes causal language models"`
	// BaseModelNameOrPath and Revision identify the base model for PEFT
	// (written as null when empty); graft does not read them.
	BaseModelNameOrPath string `json:"base_model_name_or_path" peft:"null"`
	Revision            string `json:"revision" peft:"null"`
	// InferenceMode is informational: false while training; saved files
	// say true, as PEFT's do.
	InferenceMode bool `json:"inference_mode"`
	// ModulesToSave must be empty: fully trained extra modules are not
	// supported.
	ModulesToSave []string `json:"modules_to_save" peft:"null,unset"`

	_ struct{} `key:"auto_mapping" peft:"write=null"`
	_ struct{} `key:"peft_version"` // bookkeeping of later PEFT versions
}

// LoraConfig is PEFT's LoraConfig: its JSON form is the adapter_config.json
// that PEFT's save_pretrained writes and from_pretrained reads. The zero
// value of every field is PEFT's default, except R and LoraAlpha, which
// must be set.
type LoraConfig struct {
	BaseConfig `peft:"type=LORA"`
	// R is the rank of the update B·A.
	R int `json:"r" peft:"required,positive"`
	// LoraAlpha scales the update by LoraAlpha/R (or LoraAlpha/sqrt(R)
	// with UseRSLoRA). A file without it means PEFT's default, 8.
	LoraAlpha float64 `json:"lora_alpha" peft:"number,default=8,positive"`
	// LoraDropout is the probability of zeroing an input element of the
	// adapter branch while training.
	LoraDropout float64 `json:"lora_dropout" peft:"prob"`
	TargetConfig
	PatternConfig
	// UseRSLoRA scales by LoraAlpha/sqrt(R) (rank-stabilised LoRA).
	UseRSLoRA bool `json:"use_rslora"`
	// InitLoraWeights chooses how AddAdapter initialises A and B: PEFT's
	// default (empty or "true"), "gaussian", "false", or "pissa",
	// "pissa_niter_N" and "olora", which also replace the base weights by
	// a residual (see InitPiSSA).
	InitLoraWeights LoraInit `json:"init_lora_weights"`
	// Bias is "none" (empty means "none"); LoRA bias training is not
	// supported.
	Bias string `json:"bias" peft:"empty=none,oneof=none" why:"graft trains no bias terms"`
	// FanInFanOut must be false: Llama-family projections are nn.Linear.
	FanInFanOut bool `json:"fan_in_fan_out" peft:"force=false" why:"the target layers are nn.Linear"`
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

// EncodeConfig returns the adapter_config.json bytes PEFT would write for
// a config (LoraConfig, VeraConfig, ...): its JSON indented by two spaces,
// non-ASCII characters escaped, without a trailing newline.
func EncodeConfig(c json.Marshaler) ([]byte, error) {
	return indentConfig(c.MarshalJSON())
}

// MarshalJSON writes the config as PEFT 0.13+ writes adapter_config.json:
// every field PEFT's LoraConfig serialises, the ones graft does not use at
// PEFT's defaults, with keys sorted at every level.
func (c LoraConfig) MarshalJSON() ([]byte, error) { return encodeConfig(&c) }

// UnmarshalJSON reads an adapter_config.json, ignoring unknown keys; use
// ParseConfig to learn which keys were ignored.
func (c *LoraConfig) UnmarshalJSON(data []byte) (err error) {
	*c, _, err = ParseConfig[LoraConfig](data)
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
func (c *LoraConfig) Validate() error { return validateConfig(c) }

func (c *LoraConfig) check() error {
	if !c.InitLoraWeights.known() {
		return fmt.Errorf("init_lora_weights %q is not an initialisation PEFT knows", string(c.InitLoraWeights))
	}
	return nil
}
