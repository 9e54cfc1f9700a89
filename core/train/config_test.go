package train

import (
	"math"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	ok := func() Config { c := DefaultConfig(); c.Steps, c.LR = 100, 1e-3; return c }
	if c := ok(); c.Validate() != nil {
		t.Fatalf("valid config rejected: %v", c.Validate())
	}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no length", func(c *Config) { c.Steps = 0 }, "set steps or epochs"},
		{"negative steps", func(c *Config) { c.Steps = -1 }, "steps is -1"},
		{"steps and epochs", func(c *Config) { c.Epochs = 2 }, "set only one"},
		{"negative epochs", func(c *Config) { c.Steps, c.Epochs = 0, -1 }, "epochs is -1"},
		{"NaN epochs", func(c *Config) { c.Steps, c.Epochs = 0, math.NaN() }, "epochs is NaN"},
		{"negative lr", func(c *Config) { c.LR = -1e-3 }, "lr is -0.001, want more than 0"},
		{"zero lr", func(c *Config) { c.LR = 0 }, "lr is 0"},
		{"infinite lr", func(c *Config) { c.LR = math.Inf(1) }, "lr is +Inf, want a finite number"},
		{"negative warmup", func(c *Config) { c.Warmup = -3 }, "warmup is -3"},
		{"warmup past the end", func(c *Config) { c.Warmup = 101 }, "warmup (101 steps) is longer than the run (100 steps)"},
		{"unknown schedule", func(c *Config) { c.Schedule = "cosine_with_restarts" }, `unknown schedule "cosine_with_restarts"`},
		{"min ratio above 1", func(c *Config) { c.MinLRRatio = 1.5 }, "min_lr_ratio is 1.5"},
		{"negative decay", func(c *Config) { c.WeightDecay = -0.1 }, "weight_decay is -0.1"},
		{"beta1 of 1", func(c *Config) { c.Beta1 = 1 }, "beta1 is 1"},
		{"negative beta2", func(c *Config) { c.Beta2 = -0.5 }, "beta2 is -0.5"},
		{"negative eps", func(c *Config) { c.Eps = -1 }, "eps is -1"},
		{"negative clip", func(c *Config) { c.MaxGradNorm = -1 }, "max_grad_norm is -1"},
		{"negative accumulation", func(c *Config) { c.GradAccum = -2 }, "grad_accum is -2"},
		{"negative eval interval", func(c *Config) { c.EvalEvery = -1 }, "eval_every is -1"},
		{"saving without a dir", func(c *Config) { c.SaveEvery = 10 }, "checkpoint_dir is empty"},
		{"negative save interval", func(c *Config) { c.SaveEvery = -1 }, "save_every is -1"},
		{"negative keep", func(c *Config) { c.KeepCheckpoints = -1 }, "keep_checkpoints is -1"},
	}
	for _, tt := range tests {
		c := ok()
		tt.edit(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate() = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Config{Steps: 10, LR: -1, Schedule: "nope", Beta1: 2}
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"lr is -1", `unknown schedule "nope"`, "beta1 is 2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestEpochsBecomeSteps(t *testing.T) {
	// 10 examples in batches of 2: 5 batches an epoch; with accumulation 2,
	// transformers counts floor(5/2) = 2 steps an epoch.
	be := newBackend()
	c := testConfig(0)
	c.Epochs, c.GradAccum = 2.5, 2
	tr, err := New(newRegression(t, be, 3, 0), be, LoaderSource(newLoader(t, 10, 2, false)), nil, c)
	if err != nil {
		t.Fatal(err)
	}
	if got := tr.TotalSteps(); got != 5 {
		t.Errorf("TotalSteps = %d, want ceil(2.5*2) = 5", got)
	}
	c.Warmup = 6
	if _, err := New(newRegression(t, be, 3, 0), be, LoaderSource(newLoader(t, 10, 2, false)), nil, c); err == nil ||
		!strings.Contains(err.Error(), "warmup (6 steps) is longer than the run (5 steps)") {
		t.Errorf("warmup past an epoch-based run: %v", err)
	}
}
