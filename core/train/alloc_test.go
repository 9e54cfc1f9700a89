package train

import (
	"math/rand/v2"
	"testing"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
)

// stepMethod is one PEFT method whose training step must not allocate.
type stepMethod struct {
	name string
	// nf4 quantizes the base model to NF4 with double quantization first,
	// as QLoRA does.
	nf4 bool
	// checkpointing recomputes each layer before its backward.
	checkpointing bool
	// attach creates the adapter on m with draws from rng.
	attach func(m *model.Model, rng *rand.Rand) (peft.Adapter, error)
}

// attachLoRA returns an attach func for a LoRA-family config.
func attachLoRA(cfg peft.LoraConfig) func(*model.Model, *rand.Rand) (peft.Adapter, error) {
	return func(m *model.Model, rng *rand.Rand) (peft.Adapter, error) {
		mg := peft.AttachLoRA(m)
		if err := mg.AddAdapter("default", cfg, rng); err != nil {
			return nil, err
		}
		return mg.AsAdapter("default")
	}
}

// qkvo is LoRA r=16 on q,k,v,o, the reference workload; the other
// LoRA-family rows vary one setting of it.
func qkvo(edit func(*peft.LoraConfig)) peft.LoraConfig {
	cfg := peft.LoraConfig{R: 16, LoraAlpha: 32, TargetConfig: peft.TargetConfig{TargetModules: peft.TargetNames("q_proj", "k_proj", "v_proj", "o_proj")}}
	if edit != nil {
		edit(&cfg)
	}
	return cfg
}

// stepMethods covers every method graft trains, each in the settings that
// take a distinct path through the adapter code (dropout draws masks every
// step; DoRA, PiSSA's residual weight, NF4 weights, projections, host and
// backend activations) or the model's (activation checkpointing).
var stepMethods = []stepMethod{
	{name: "LoRA", attach: attachLoRA(qkvo(nil))},
	{name: "LoRA_checkpointing", checkpointing: true, attach: attachLoRA(qkvo(nil))},
	{name: "LoRA_dropout", attach: attachLoRA(qkvo(func(c *peft.LoraConfig) { c.LoraDropout = 0.1 }))},
	{name: "rsLoRA_all-linear", attach: attachLoRA(qkvo(func(c *peft.LoraConfig) {
		c.UseRSLoRA, c.TargetModules = true, peft.TargetAllLinear()
	}))},
	{name: "DoRA", attach: attachLoRA(qkvo(func(c *peft.LoraConfig) { c.UseDoRA = true }))},
	{name: "DoRA_dropout", attach: attachLoRA(qkvo(func(c *peft.LoraConfig) { c.UseDoRA, c.LoraDropout = true, 0.1 }))},
	{name: "PiSSA", attach: attachLoRA(qkvo(func(c *peft.LoraConfig) { c.InitLoraWeights = peft.InitPiSSA }))},
	{name: "OLoRA", attach: attachLoRA(qkvo(func(c *peft.LoraConfig) { c.InitLoraWeights = peft.InitOLoRA }))},
	{name: "QLoRA", nf4: true, attach: attachLoRA(qkvo(nil))},
	{name: "VeRA", attach: func(m *model.Model, rng *rand.Rand) (peft.Adapter, error) {
		return peft.NewVeRA(m, peft.DefaultConfig[peft.VeraConfig](), rng)
	}},
	{name: "VeRA_dropout", attach: func(m *model.Model, rng *rand.Rand) (peft.Adapter, error) {
		cfg := peft.DefaultConfig[peft.VeraConfig]()
		cfg.VeraDropout = 0.1
		return peft.NewVeRA(m, cfg, rng)
	}},
	{name: "IA3", attach: func(m *model.Model, _ *rand.Rand) (peft.Adapter, error) {
		return peft.NewIA3(m, peft.DefaultConfig[peft.IA3Config](), nil)
	}},
	{name: "PromptTuning", attach: func(m *model.Model, rng *rand.Rand) (peft.Adapter, error) {
		var cfg peft.PromptTuningConfig
		cfg.NumVirtualTokens = 8
		return peft.NewPromptTuning(m, cfg, rng)
	}},
	{name: "PrefixTuning", attach: func(m *model.Model, rng *rand.Rand) (peft.Adapter, error) {
		var cfg peft.PrefixTuningConfig
		cfg.NumVirtualTokens = 8
		return peft.NewPrefixTuning(m, cfg, rng)
	}},
	{name: "PrefixTuning_projection", attach: func(m *model.Model, rng *rand.Rand) (peft.Adapter, error) {
		var cfg peft.PrefixTuningConfig
		cfg.NumVirtualTokens, cfg.PrefixProjection = 8, true
		return peft.NewPrefixTuning(m, cfg, rng)
	}},
	{name: "Houlsby", attach: func(m *model.Model, rng *rand.Rand) (peft.Adapter, error) {
		return peft.NewBottleneck(m, peft.BottleneckConfig{Kind: peft.BottleneckHoulsby}, rng)
	}},
	{name: "Houlsby_dropout", attach: func(m *model.Model, rng *rand.Rand) (peft.Adapter, error) {
		return peft.NewBottleneck(m, peft.BottleneckConfig{Kind: peft.BottleneckHoulsby, Dropout: 0.1}, rng)
	}},
	{name: "Houlsby_linear", attach: func(m *model.Model, rng *rand.Rand) (peft.Adapter, error) {
		return peft.NewBottleneck(m, peft.BottleneckConfig{Kind: peft.BottleneckHoulsby, NonLinearity: "linear"}, rng)
	}},
	{name: "Pfeiffer", attach: func(m *model.Model, rng *rand.Rand) (peft.Adapter, error) {
		return peft.NewBottleneck(m, peft.BottleneckConfig{Kind: peft.BottleneckPfeiffer}, rng)
	}},
	{name: "LoHa", attach: func(m *model.Model, rng *rand.Rand) (peft.Adapter, error) {
		return peft.NewLoHa(m, peft.DefaultConfig[peft.LoHaConfig](), rng)
	}},
	{name: "LoHa_dropout", attach: func(m *model.Model, rng *rand.Rand) (peft.Adapter, error) {
		cfg := peft.DefaultConfig[peft.LoHaConfig]()
		cfg.RankDropout, cfg.ModuleDropout = 0.1, 0.1
		return peft.NewLoHa(m, cfg, rng)
	}},
	{name: "LoKr", attach: func(m *model.Model, rng *rand.Rand) (peft.Adapter, error) {
		return peft.NewLoKr(m, peft.DefaultConfig[peft.LoKrConfig](), rng)
	}},
	{name: "LoKr_decomposed_dropout", attach: func(m *model.Model, rng *rand.Rand) (peft.Adapter, error) {
		cfg := peft.DefaultConfig[peft.LoKrConfig]()
		cfg.R, cfg.DecomposeBoth, cfg.TargetModules = 2, true, peft.TargetAllLinear()
		cfg.RankDropout, cfg.ModuleDropout = 0.1, 0.1
		return peft.NewLoKr(m, cfg, rng)
	}},
}

// stepTrainer returns a trainer in training mode for method on
// stories260K, fed by a loader over a fixed set of examples (batch 4, 64
// tokens).
func stepTrainer(tb testing.TB, method stepMethod) *Trainer {
	tb.Helper()
	m, err := model.Load("../../models/stories260K/stories260K.gguf", cpu.New())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(m.Free)
	if method.nf4 {
		if err := model.QuantizeNF4(m, true); err != nil {
			tb.Fatal(err)
		}
	}
	m.Checkpointing = method.checkpointing
	a, err := method.attach(m, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		tb.Fatalf("%s: %v", method.name, err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	examples := make([]data.Example, 32)
	for i := range examples {
		ids := make([]int32, 65)
		for j := range ids {
			ids[j] = int32(r.IntN(m.Config.Vocab))
		}
		loss := make([]bool, len(ids))
		for j := range loss {
			loss[j] = j > 0
		}
		examples[i] = data.Example{IDs: ids, Loss: loss}
	}
	loader, err := data.NewLoader(examples, data.LoaderOptions{Batch: 4, SeqLen: 64, Shuffle: true})
	if err != nil {
		tb.Fatal(err)
	}
	tc := DefaultConfig()
	tc.Steps, tc.LR = 1<<30, 1e-3
	obj := &LM{Model: m, Trainable: a.Params(), Mode: a.SetTraining}
	tr, err := New(obj, m.Backend, LoaderSource(loader), nil, tc)
	if err != nil {
		tb.Fatal(err)
	}
	// As Fit does: dropout and the like are on for every step.
	obj.SetTraining(true)
	return tr
}

// warmupSteps are the steps run before counting allocations. The first
// step sizes the activation buffers, adapter scratch, batch copies and the
// CPU backend's scratch lists and starts its workers; the next ones let the
// Go runtime's own caches (the goroutine wait records of the workers'
// channel and wait group) settle across Ps.
const warmupSteps = 3

// BenchmarkStep is one optimizer step of each PEFT method on stories260K
// (batch 4, 64 tokens). allocs/op is what a steady-state step allocates on
// the Go heap, which TestStepAllocations requires to be none.
func BenchmarkStep(b *testing.B) {
	for _, method := range stepMethods {
		b.Run(method.name, func(b *testing.B) {
			tr := stepTrainer(b, method)
			for range warmupSteps {
				if _, err := tr.runStep(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tr.runStep(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(4*64*b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// TestStepAllocations checks that a steady-state step of every PEFT method
// allocates nothing on the Go heap: activations, batches and adapter
// workspaces (views and dropout masks included) are reused, and the CPU
// backend hands its operations to persistent workers in reused task
// structs.
func TestStepAllocations(t *testing.T) {
	for _, method := range stepMethods {
		t.Run(method.name, func(t *testing.T) {
			if raceEnabled {
				// The race detector's bookkeeping allocates now and then
				// (it made a LoRA checkpointing step count 1); make
				// test-native counts without it.
				t.Skip("allocation counts are not meaningful under -race")
			}
			tr := stepTrainer(t, method)
			step := func() {
				if _, err := tr.runStep(); err != nil {
					t.Fatal(err)
				}
			}
			// The wasm runs of the tests (-short) warm up and count fewer
			// steps: the portable kernels make each step slow there, and
			// with one thread there are no workers to settle.
			warmup, runs := warmupSteps, 5
			if testing.Short() {
				warmup, runs = 1, 1
			}
			for range warmup {
				step()
			}
			if allocs := testing.AllocsPerRun(runs, step); allocs != 0 {
				t.Errorf("a steady-state %s step allocates %.0f times, want 0", method.name, allocs)
			}
		})
	}
}
