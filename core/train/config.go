package train

import (
	"errors"
	"fmt"
	"math"
)

// Config holds the hyper-parameters of a training run. Start from
// DefaultConfig and set at least LR and one of Steps or Epochs.
type Config struct {
	// Steps is the number of optimizer steps. Set it or Epochs, not both.
	Steps int `json:"steps,omitempty"`
	// Epochs is the length of the run in passes over the training data;
	// New turns it into Steps using the loader's batches per epoch.
	Epochs float64 `json:"epochs,omitempty"`

	// LR is the peak learning rate, reached at the end of the warmup.
	LR float64 `json:"lr"`
	// Warmup is the number of steps over which the learning rate rises
	// linearly from 0 to LR.
	Warmup int `json:"warmup,omitempty"`
	// Schedule shapes the learning rate after the warmup: "cosine" (the
	// default when empty), "linear" or "constant"; see Multiplier.
	Schedule string `json:"schedule,omitempty"`
	// MinLRRatio is the floor of the cosine and linear decays as a fraction
	// of LR (transformers' min_lr_rate); 0 decays to zero.
	MinLRRatio float64 `json:"min_lr_ratio,omitempty"`

	// WeightDecay is AdamW's decoupled weight decay. The default is 0, as in
	// transformers' TrainingArguments and the PEFT examples: adapters start
	// at or near zero, where decay only fights the update. Parameters marked
	// NoDecay are never decayed.
	WeightDecay float64 `json:"weight_decay,omitempty"`
	Beta1       float64 `json:"beta1"`
	Beta2       float64 `json:"beta2"`
	Eps         float64 `json:"eps"`
	// MaxGradNorm clips the global gradient norm (torch's
	// clip_grad_norm_); 0 disables clipping.
	MaxGradNorm float64 `json:"max_grad_norm"`
	// GradAccum is the number of micro-batches per optimizer step; 0 means 1.
	GradAccum int `json:"grad_accum,omitempty"`

	// Seed seeds the one random generator that orders the data and drives
	// dropout.
	Seed uint64 `json:"seed"`

	// EvalEvery evaluates every so many steps (0: only at the end).
	EvalEvery int `json:"eval_every,omitempty"`
	// SaveEvery writes a checkpoint every so many steps and at the end
	// (0: never). It needs CheckpointDir.
	SaveEvery     int    `json:"save_every,omitempty"`
	CheckpointDir string `json:"checkpoint_dir,omitempty"`
	// KeepCheckpoints keeps only the newest so many checkpoints (0: all).
	KeepCheckpoints int `json:"keep_checkpoints,omitempty"`
}

// DefaultConfig returns the defaults of torch.optim.AdamW and transformers'
// Trainer: betas (0.9, 0.999), eps 1e-8, no weight decay, gradient clipping
// at norm 1, a cosine schedule and no accumulation. LR and the length of the
// run are left for the caller.
func DefaultConfig() Config {
	return Config{
		Schedule:    ScheduleCosine,
		Beta1:       0.9,
		Beta2:       0.999,
		Eps:         1e-8,
		MaxGradNorm: 1.0,
		GradAccum:   1,
	}
}

// accum returns the number of micro-batches per step.
func (c *Config) accum() int { return max(c.GradAccum, 1) }

// schedule returns the schedule name with the default filled in.
func (c *Config) schedule() string {
	if c.Schedule == "" {
		return ScheduleCosine
	}
	return c.Schedule
}

// Validate reports every out-of-range field, joined into one error. Warmup
// is checked against Steps only when Steps is set; New checks it again once
// Epochs has been turned into steps.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("train config: "+format, args...)) }
	finite := func(name string, v float64) bool {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			bad("%s is %v, want a finite number", name, v)
			return false
		}
		return true
	}

	switch {
	case c.Steps < 0:
		bad("steps is %d, want 0 or more", c.Steps)
	case !finite("epochs", c.Epochs):
	case c.Epochs < 0:
		bad("epochs is %v, want 0 or more", c.Epochs)
	case c.Steps == 0 && c.Epochs == 0:
		bad("set steps or epochs to say how long to train")
	case c.Steps > 0 && c.Epochs > 0:
		bad("steps (%d) and epochs (%v) are both set; set only one", c.Steps, c.Epochs)
	}
	if finite("lr", c.LR) && c.LR <= 0 {
		bad("lr is %v, want more than 0", c.LR)
	}
	if c.Warmup < 0 {
		bad("warmup is %d, want 0 or more", c.Warmup)
	} else if c.Steps > 0 && c.Warmup > c.Steps {
		bad("warmup (%d steps) is longer than the run (%d steps)", c.Warmup, c.Steps)
	}
	switch c.schedule() {
	case ScheduleCosine, ScheduleLinear, ScheduleConstant:
	default:
		bad("unknown schedule %q, want %q, %q or %q", c.Schedule, ScheduleCosine, ScheduleLinear, ScheduleConstant)
	}
	if finite("min_lr_ratio", c.MinLRRatio) && (c.MinLRRatio < 0 || c.MinLRRatio > 1) {
		bad("min_lr_ratio is %v, want 0 to 1", c.MinLRRatio)
	}
	if finite("weight_decay", c.WeightDecay) && c.WeightDecay < 0 {
		bad("weight_decay is %v, want 0 or more", c.WeightDecay)
	}
	if finite("beta1", c.Beta1) && (c.Beta1 < 0 || c.Beta1 >= 1) {
		bad("beta1 is %v, want 0 <= beta1 < 1", c.Beta1)
	}
	if finite("beta2", c.Beta2) && (c.Beta2 < 0 || c.Beta2 >= 1) {
		bad("beta2 is %v, want 0 <= beta2 < 1", c.Beta2)
	}
	if finite("eps", c.Eps) && c.Eps < 0 {
		bad("eps is %v, want 0 or more", c.Eps)
	}
	if finite("max_grad_norm", c.MaxGradNorm) && c.MaxGradNorm < 0 {
		bad("max_grad_norm is %v, want 0 (no clipping) or more", c.MaxGradNorm)
	}
	if c.GradAccum < 0 {
		bad("grad_accum is %d, want 1 or more (0 means 1)", c.GradAccum)
	}
	if c.EvalEvery < 0 {
		bad("eval_every is %d, want 0 or more", c.EvalEvery)
	}
	if c.SaveEvery < 0 {
		bad("save_every is %d, want 0 or more", c.SaveEvery)
	} else if c.SaveEvery > 0 && c.CheckpointDir == "" {
		bad("save_every is %d but checkpoint_dir is empty", c.SaveEvery)
	}
	if c.KeepCheckpoints < 0 {
		bad("keep_checkpoints is %d, want 0 (keep all) or more", c.KeepCheckpoints)
	}
	return errors.Join(errs...)
}
