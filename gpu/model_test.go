package gpu

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
	"github.com/graft-ml/graft/core/train"
	"github.com/graft-ml/graft/internal/randgguf"
)

// Paths relative to this package.
const (
	storiesModel = "../models/stories260K/stories260K.gguf"
	loraData     = "../examples/lora/data/train.jsonl"
)

func loadModel(t *testing.T, be backend.Backend) *model.Model {
	t.Helper()
	m, err := model.Load(storiesModel, be)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Free)
	return m
}

// TestGenerateMatchesCPU checks that greedy generation on the GPU gives the
// CPU's tokens.
func TestGenerateMatchesCPU(t *testing.T) {
	g := testBackend(t)
	gen := func(be backend.Backend) []int32 {
		m := loadModel(t, be)
		prompt := m.Tokenizer.Encode("Once upon a time, there was a little blue owl", true)
		out, err := m.Generate(prompt, model.GenerateOptions{MaxTokens: 60})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	want, got := gen(cpu.New()), gen(g)
	if !slices.Equal(got, want) {
		t.Errorf("gpu generated %v\ncpu generated %v", got, want)
	}
}

// loraRun trains a LoRA adapter on stories260K for steps steps and returns
// the loss of every step and the backend's read-backs of the last step.
func loraRun(t *testing.T, be backend.Backend, steps int, afterStep func(step int)) []float64 {
	t.Helper()
	m := loadModel(t, be)
	opt := data.DefaultOptions()
	opt.TextSeqLen = 65
	ex, err := data.Load(loraData, m.Tokenizer, opt)
	if err != nil {
		t.Fatal(err)
	}
	loader, err := data.NewLoader(ex, data.LoaderOptions{Batch: 4, SeqLen: 64, Pack: true, Shuffle: true})
	if err != nil {
		t.Fatal(err)
	}
	mg := peft.AttachLoRA(m)
	cfg := peft.LoraConfig{R: 8, LoraAlpha: 16, LoraDropout: 0.05, TargetConfig: peft.TargetConfig{TargetModules: peft.TargetNames("q_proj", "k_proj", "v_proj", "o_proj")}}
	if err := mg.AddAdapter("default", cfg, rand.New(rand.NewPCG(1, 2))); err != nil {
		t.Fatal(err)
	}
	params, err := mg.Params("default")
	if err != nil {
		t.Fatal(err)
	}
	tc := train.DefaultConfig()
	tc.Steps, tc.LR, tc.Warmup, tc.Seed = steps, 5e-3, 2, 1
	tc.CheckpointDir = t.TempDir()
	tr, err := train.New(&train.LM{Model: m, Trainable: params, Mode: mg.SetTraining}, be, train.LoaderSource(loader), nil, tc)
	if err != nil {
		t.Fatal(err)
	}
	var losses []float64
	_, err = tr.Fit(context.Background(), func(e train.Event) {
		if e.Kind == "step" {
			losses = append(losses, e.Loss)
			if afterStep != nil {
				afterStep(e.Step)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return losses
}

// TestLoRATrainingMatchesCPU runs 20 LoRA steps on both backends: every
// step's loss agrees to 1e-3 relative.
func TestLoRATrainingMatchesCPU(t *testing.T) {
	g := testBackend(t)
	const steps = 20
	want := loraRun(t, cpu.New(), steps, nil)
	got := loraRun(t, g, steps, nil)
	if len(got) != steps || len(want) != steps {
		t.Fatalf("%d gpu and %d cpu step events, want %d", len(got), len(want), steps)
	}
	for i := range got {
		if d := math.Abs(got[i] - want[i]); !(d <= 1e-3*math.Abs(want[i])) {
			t.Errorf("step %d: gpu loss %.6f, cpu %.6f", i+1, got[i], want[i])
		}
	}
	t.Logf("losses: first %.4f last %.4f (cpu %.4f %.4f)", got[0], got[steps-1], want[0], want[steps-1])
}

// TestTrainingStepReadBacks checks that a training step reads back only
// what the trainer asks for: the loss of its micro-batch and the gradient
// norm, two transfers, however many operations the step runs.
func TestTrainingStepReadBacks(t *testing.T) {
	g := testBackend(t)
	var reads, dispatches []int64
	loraRun(t, g, 4, func(int) {
		reads = append(reads, g.ReadBacks())
		dispatches = append(dispatches, g.Dispatches())
	})
	for i := 1; i < len(reads); i++ {
		r, d := reads[i]-reads[i-1], dispatches[i]-dispatches[i-1]
		if r != 2 {
			t.Errorf("step %d read back %d times, want 2 (loss and gradient norm)", i+1, r)
		}
		if d < 100 {
			t.Errorf("step %d ran only %d dispatches: is it running on the gpu?", i+1, d)
		}
		t.Logf("step %d: %d dispatches, %d read-backs", i+1, d, r)
	}
}

// TestFamiliesMatchCPU runs each model family (internal/randgguf: Llama 3
// RoPE scaling, Qwen2 biases, Qwen3 q/k norms and YaRN, Gemma 3's norms,
// GELU and sliding windows) on the GPU and the CPU: the logits of a
// 32-token pass agree to 1e-3 of the largest, and one LoRA step's loss
// and gradient norm to 1e-3 relative.
func TestFamiliesMatchCPU(t *testing.T) {
	g := testBackend(t)
	const vocab = 300
	ids := make([]int32, 32)
	for i := range ids {
		ids[i] = int32((i*37 + 11) % vocab)
	}
	for _, f := range randgguf.Families {
		t.Run(string(f), func(t *testing.T) {
			rm, err := randgguf.NewFamily(f, vocab, 3, nil)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "m.gguf")
			if err := rm.WriteGGUF(path); err != nil {
				t.Fatal(err)
			}
			run := func(be backend.Backend) ([]float32, float64, float64) {
				m, err := model.Load(path, be)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Free()
				cache := m.NewCache(len(ids))
				defer m.FreeCache(cache)
				logits, err := m.Forward(cache, ids, true)
				if err != nil {
					t.Fatal(err)
				}
				mg := peft.AttachLoRA(m)
				cfg := peft.LoraConfig{R: 4, LoraAlpha: 8, InitLoraWeights: peft.InitRandom,
					TargetConfig: peft.TargetConfig{TargetModules: peft.TargetNames("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")}}
				if err := mg.AddAdapter("default", cfg, rand.New(rand.NewPCG(1, 2))); err != nil {
					t.Fatal(err)
				}
				tb := model.TokenBatch{B: 1, T: len(ids) - 1, IDs: ids[:len(ids)-1], Targets: ids[1:]}
				loss, err := m.LossAndGrad(tb, 1)
				if err != nil {
					t.Fatal(err)
				}
				params, err := mg.Params("default")
				if err != nil {
					t.Fatal(err)
				}
				var grads []backend.Buffer
				for _, p := range params {
					grads = append(grads, p.Grad)
				}
				return logits, loss, math.Sqrt(be.SumSquares(grads...))
			}
			want, wantLoss, wantNorm := run(cpu.New())
			got, gotLoss, gotNorm := run(g)
			var worst, scale float64
			for i := range want {
				worst = max(worst, math.Abs(float64(got[i]-want[i])))
				scale = max(scale, math.Abs(float64(want[i])))
			}
			t.Logf("max |gpu - cpu| logit %.3g of %.3g; loss %.6g vs %.6g; gradient norm %.6g vs %.6g", worst, scale, gotLoss, wantLoss, gotNorm, wantNorm)
			if worst > 1e-3*scale {
				t.Errorf("logits differ by %.3g, over 1e-3 of %.3g", worst, scale)
			}
			if math.Abs(gotLoss-wantLoss) > 1e-3*math.Abs(wantLoss) {
				t.Errorf("training loss %.6g on the GPU, %.6g on the CPU", gotLoss, wantLoss)
			}
			if math.Abs(gotNorm-wantNorm) > 1e-3*wantNorm {
				t.Errorf("LoRA gradient norm %.6g on the GPU, %.6g on the CPU", gotNorm, wantNorm)
			}
		})
	}
}
