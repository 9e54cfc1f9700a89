package peft

// LycorisConfig holds the adapter_config.json fields PEFT's LoHaConfig and
// LoKrConfig share: PeftConfig's, LycorisConfig's rank_pattern and
// alpha_pattern, and the fields both dataclasses repeat. The embedding
// config names its peft_type.
type LycorisConfig struct {
	BaseConfig
	// R is the rank of the low-rank factors (PEFT default 8).
	R int `json:"r" peft:"default=8,positive"`
	// Alpha scales the update by Alpha/R (PEFT default 8).
	Alpha float64 `json:"alpha" peft:"number,default=8,positive"`
	// RankDropout drops whole output rows of the update while training,
	// each with this probability (PEFT default 0).
	RankDropout float64 `json:"rank_dropout" peft:"prob"`
	// ModuleDropout leaves a layer's whole update out of a training
	// forward with this probability (PEFT default 0).
	ModuleDropout float64 `json:"module_dropout" peft:"prob"`
	// UseEffectiveConv2d concerns convolutions only; Llama-family
	// projections are nn.Linear, for which PEFT ignores it.
	UseEffectiveConv2d bool `json:"use_effective_conv2d"`
	TargetConfig
	PatternConfig
}
