package peft

// PeftTypeVeRA is the peft_type of VeRA adapters.
const PeftTypeVeRA = "VERA"

// VeraConfig is PEFT's VeraConfig (Vector-based Random Matrix Adaptation):
// its JSON form is the adapter_config.json PEFT writes. Start from
// DefaultConfig[VeraConfig]: the zero values of R, SaveProjection,
// DInitial and InitWeights are not PEFT's defaults.
type VeraConfig struct {
	BaseConfig `peft:"type=VERA"`
	// R is the rank of the shared random projections (PEFT default 256;
	// VeRA wants larger ranks than LoRA because only vectors are trained).
	R int `json:"r" peft:"default=256,positive"`
	// TargetConfig selects the linear layers, as for LoRA; PEFT's
	// VeraConfig has no exclude_modules.
	TargetConfig `peft:"without=exclude_modules"`
	// ProjectionPRNGKey seeds the frozen projections vera_A and vera_B
	// (PEFT default 0). graft cannot reproduce torch's generator, so the
	// projections always travel in the adapter file.
	ProjectionPRNGKey int64 `json:"projection_prng_key"`
	// SaveProjection must be true (PEFT's default): an adapter without its
	// projections could only be rebuilt with torch's random generator.
	SaveProjection bool `json:"save_projection" peft:"default=true,must=true" why:"projections regenerated from projection_prng_key need torch's random generator, which graft cannot reproduce"`
	// VeraDropout is the dropout probability on the adapter branch's input
	// while training (PEFT default 0).
	VeraDropout float64 `json:"vera_dropout" peft:"prob"`
	// DInitial is the initial value of every element of vera_lambda_d
	// (PEFT default 0.1).
	DInitial float64 `json:"d_initial" peft:"default=0.1,finite"`
	// FanInFanOut must be false: Llama-family projections are nn.Linear.
	FanInFanOut bool `json:"fan_in_fan_out" peft:"force=false" why:"the target layers are nn.Linear"`
	// Bias is "none" (empty means "none"); bias training is not supported.
	Bias string `json:"bias" peft:"empty=none,oneof=none" why:"graft trains no bias terms"`
	// InitWeights (PEFT default true) starts with vera_lambda_b = 0 and
	// vera_lambda_d = DInitial, so the adapter is a no-op until trained;
	// false draws lambda_d from N(0, 1) and sets lambda_b = 1, as PEFT
	// does (for tests).
	InitWeights bool `json:"init_weights" peft:"default=true"`
}

// Validate checks the config for values PEFT rejects and for features
// graft does not implement.
func (c *VeraConfig) Validate() error { return validateConfig(c) }

// MarshalJSON writes the config as PEFT writes adapter_config.json: every
// field of PEFT's VeraConfig with keys sorted.
func (c VeraConfig) MarshalJSON() ([]byte, error) { return encodeConfig(&c) }

// UnmarshalJSON reads an adapter_config.json, ignoring unknown keys; use
// ParseConfig to learn which keys were ignored.
func (c *VeraConfig) UnmarshalJSON(data []byte) (err error) {
	*c, _, err = ParseConfig[VeraConfig](data)
	return err
}
