package model_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
)

// adapterCase attaches one PEFT method to a model and returns its
// trainable parameters.
type adapterCase struct {
	name   string
	attach func(t *testing.T, m *model.Model, rng *rand.Rand) []model.Param
}

func loraCase(name string, targets ...string) adapterCase {
	return adapterCase{name, func(t *testing.T, m *model.Model, rng *rand.Rand) []model.Param {
		mg := peft.AttachLoRA(m)
		cfg := peft.LoraConfig{R: 4, LoraAlpha: 8, InitLoraWeights: peft.InitRandom, TargetConfig: peft.TargetConfig{TargetModules: peft.TargetNames(targets...)}}
		if err := mg.AddAdapter("default", cfg, rng); err != nil {
			t.Fatal(err)
		}
		params, err := mg.Params("default")
		if err != nil {
			t.Fatal(err)
		}
		return params
	}}
}

func adapterOf(name string, make func(m *model.Model, rng *rand.Rand) (peft.Adapter, error)) adapterCase {
	return adapterCase{name, func(t *testing.T, m *model.Model, rng *rand.Rand) []model.Param {
		a, err := make(m, rng)
		if err != nil {
			t.Fatal(err)
		}
		return a.Params()
	}}
}

var (
	allLinear    = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
	adapterCases = []adapterCase{
		loraCase("lora", allLinear...),
		loraCase("lora+lm_head", append([]string{"lm_head"}, allLinear...)...),
		adapterOf("prompt-tuning", func(m *model.Model, rng *rand.Rand) (peft.Adapter, error) {
			cfg := peft.PromptTuningConfig{PromptLearningConfig: peft.PromptLearningConfig{NumVirtualTokens: 3}}
			return peft.NewPromptTuning(m, cfg, rng)
		}),
		adapterOf("prefix-tuning", func(m *model.Model, rng *rand.Rand) (peft.Adapter, error) {
			cfg := peft.PrefixTuningConfig{PromptLearningConfig: peft.PromptLearningConfig{NumVirtualTokens: 3}}
			return peft.NewPrefixTuning(m, cfg, rng)
		}),
		adapterOf("prefix-projection", func(m *model.Model, rng *rand.Rand) (peft.Adapter, error) {
			cfg := peft.PrefixTuningConfig{PromptLearningConfig: peft.PromptLearningConfig{NumVirtualTokens: 3}, PrefixProjection: true}
			return peft.NewPrefixTuning(m, cfg, rng)
		}),
		adapterOf("houlsby", func(m *model.Model, rng *rand.Rand) (peft.Adapter, error) {
			// BERT's init gives the up projection non-zero weights, so the
			// down projection gets a gradient too.
			return peft.NewBottleneck(m, peft.BottleneckConfig{InitWeights: peft.BottleneckInitBERT}, rng)
		}),
	}
)

// trainedModel loads stories260K with one adapter attached.
func trainedModel(t *testing.T, ac adapterCase) (*model.Model, []model.Param, model.TokenBatch) {
	t.Helper()
	m, err := model.Load(gradCheckModel, cpu.New())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Free)
	rng := rand.New(rand.NewPCG(21, 22))
	params := ac.attach(t, m, rng)
	if len(params) == 0 {
		t.Fatalf("%s has no trainable parameters", ac.name)
	}
	return m, params, gradCheckBatch(m.Config.Vocab, rng)
}

// gradients runs one LossAndGrad from zeroed gradients and returns the loss
// and a copy of every parameter's gradient; it checks that BatchLoss
// agrees with the loss.
func gradients(t *testing.T, m *model.Model, params []model.Param, tb model.TokenBatch) (float64, [][]float32) {
	t.Helper()
	for _, p := range params {
		m.Backend.Scale(p.Grad, p.Grad, 0)
	}
	loss, err := m.LossAndGrad(tb, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := m.BatchLoss(tb); err != nil || plain != loss {
		t.Errorf("BatchLoss = %.9g (%v), LossAndGrad's loss = %.9g", plain, err, loss)
	}
	out := make([][]float32, len(params))
	for i, p := range params {
		out[i] = readAll(t, m.Backend, p.Grad)
	}
	return loss, out
}

// TestCheckpointingGradientsIdentical checks that activation checkpointing
// changes nothing but memory: for every kind of hook (linear, block,
// prefix, prompt, on lm_head too), the loss and every gradient entry are
// bit for bit those of a pass that kept all activations, over two steps
// (so hooks' state from one step cannot leak into the next).
func TestCheckpointingGradientsIdentical(t *testing.T) {
	for _, ac := range adapterCases {
		t.Run(ac.name, func(t *testing.T) {
			m, params, tb := trainedModel(t, ac)
			for step := range 2 {
				m.Checkpointing = false
				wantLoss, want := gradients(t, m, params, tb)
				m.Checkpointing = true
				gotLoss, got := gradients(t, m, params, tb)
				if math.Float64bits(gotLoss) != math.Float64bits(wantLoss) {
					t.Errorf("step %d: loss %.17g with checkpointing, %.17g without", step, gotLoss, wantLoss)
				}
				nonzero := 0
				for i, p := range params {
					for j := range want[i] {
						if want[i][j] != 0 {
							nonzero++
						}
						if math.Float32bits(got[i][j]) != math.Float32bits(want[i][j]) {
							t.Errorf("step %d: %s[%d] = %v with checkpointing, %v without", step, p.Name, j, got[i][j], want[i][j])
							break
						}
					}
				}
				if nonzero == 0 {
					t.Fatalf("every gradient is zero: the comparison would prove nothing")
				}
			}
		})
	}
}

// TestLogitChunksMatchWholeBatch checks the chunked head against the head
// over all rows at once: chunks of one row, of sizes that do not divide
// the batch, and of the whole batch give the same loss and gradients up to
// float rounding, with and without hooks on lm_head and virtual rows.
func TestLogitChunksMatchWholeBatch(t *testing.T) {
	for _, ac := range adapterCases {
		t.Run(ac.name, func(t *testing.T) {
			m, params, tb := trainedModel(t, ac)
			m.LogitChunkRows = 1 << 20 // the whole batch in one chunk
			wantLoss, want := gradients(t, m, params, tb)
			for _, rows := range []int{1, 5, 16, tb.B * tb.T} {
				m.LogitChunkRows = rows
				loss, got := gradients(t, m, params, tb)
				// A chunk of one row takes the matrix-vector path, a larger
				// one the packed kernels: the logits agree to float32
				// rounding, summed in another order.
				if d := math.Abs(loss - wantLoss); d > 1e-7*math.Abs(wantLoss) {
					t.Errorf("chunks of %d rows: loss %.12g, whole batch %.12g", rows, loss, wantLoss)
				}
				for i, p := range params {
					var largest float64
					for _, g := range want[i] {
						largest = max(largest, math.Abs(float64(g)))
					}
					for j := range want[i] {
						if d := math.Abs(float64(got[i][j] - want[i][j])); d > 1e-5*largest {
							t.Errorf("chunks of %d rows: %s[%d] = %v, whole batch %v", rows, p.Name, j, got[i][j], want[i][j])
							break
						}
					}
				}
			}
		})
	}
}

// BenchmarkLoRALossAndGrad is one forward and backward of LoRA r=16 on
// q,k,v,o of stories260K (batch 4 x 256), with and without checkpointing,
// reporting tokens/s and the training workspace in MiB.
func BenchmarkLoRALossAndGrad(b *testing.B) {
	for _, checkpointing := range []bool{false, true} {
		name := "plain"
		if checkpointing {
			name = "checkpointing"
		}
		b.Run(name, func(b *testing.B) {
			m, err := model.Load(gradCheckModel, cpu.New())
			if err != nil {
				b.Fatal(err)
			}
			defer m.Free()
			m.Checkpointing = checkpointing
			rng := rand.New(rand.NewPCG(1, 2))
			cfg := peft.LoraConfig{R: 16, LoraAlpha: 32, TargetConfig: peft.TargetConfig{TargetModules: peft.TargetNames("q_proj", "k_proj", "v_proj", "o_proj")}}
			if err := peft.AttachLoRA(m).AddAdapter("default", cfg, rng); err != nil {
				b.Fatal(err)
			}
			const B, T = 4, 256
			tb := model.TokenBatch{B: B, T: T, IDs: make([]int32, B*T), Targets: make([]int32, B*T)}
			for i := range tb.IDs {
				tb.IDs[i], tb.Targets[i] = int32(rng.IntN(m.Config.Vocab)), int32(rng.IntN(m.Config.Vocab))
			}
			if _, err := m.LossAndGrad(tb, 1); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.LossAndGrad(tb, 1); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(B*T*b.N)/b.Elapsed().Seconds(), "tokens/s")
			b.ReportMetric(float64(m.TrainingStateBytes())/(1<<20), "MiB")
		})
	}
}
