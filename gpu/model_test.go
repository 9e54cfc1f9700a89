package gpu

import (
	"context"
	"maps"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
	"github.com/graft-ml/graft/core/quantmix"
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
	losses, _ := loraFit(t, m, be, loader, peft.TargetNames("q_proj", "k_proj", "v_proj", "o_proj"), steps, afterStep)
	return losses
}

// loraFit trains a rank-8 LoRA adapter on m's targets for steps steps of
// loader's batches (AdamW at 5e-3 after two warm-up steps) and returns
// the loss and the gradient norm of every step.
func loraFit(t *testing.T, m *model.Model, be backend.Backend, loader *data.Loader, targets peft.Modules, steps int, afterStep func(step int)) (losses, norms []float64) {
	t.Helper()
	mg := peft.AttachLoRA(m)
	cfg := peft.LoraConfig{R: 8, LoraAlpha: 16, LoraDropout: 0.05, TargetConfig: peft.TargetConfig{TargetModules: targets}}
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
	_, err = tr.Fit(context.Background(), func(e train.Event) {
		if e.Kind == "step" {
			losses, norms = append(losses, e.Loss), append(norms, e.GradNorm)
			if afterStep != nil {
				afterStep(e.Step)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return losses, norms
}

// compareSteps checks that two runs' per-step figures (losses, gradient
// norms: what) agree step by step to 1e-3 relative, and logs the largest
// relative difference.
func compareSteps(t *testing.T, what string, got, want []float64, steps int) {
	t.Helper()
	if len(got) != steps || len(want) != steps {
		t.Fatalf("%d gpu and %d cpu step events, want %d", len(got), len(want), steps)
	}
	var worst float64
	for i := range got {
		d := math.Abs(got[i]-want[i]) / math.Abs(want[i])
		worst = max(worst, d)
		if !(d <= 1e-3) {
			t.Errorf("step %d: gpu %s %.6f, cpu %.6f", i+1, what, got[i], want[i])
		}
	}
	t.Logf("%s: first %.4f last %.4f (cpu %.4f %.4f), largest relative difference %.3g", what, got[0], got[steps-1], want[0], want[steps-1], worst)
}

// TestLoRATrainingMatchesCPU runs 20 LoRA steps on both backends: every
// step's loss agrees to 1e-3 relative.
func TestLoRATrainingMatchesCPU(t *testing.T) {
	g := testBackend(t)
	const steps = 20
	want := loraRun(t, cpu.New(), steps, nil)
	got := loraRun(t, g, steps, nil)
	compareSteps(t, "loss", got, want, steps)
}

// TestLoRAOnQ4KMMatchesCPU runs 20 LoRA steps on both backends over a
// Q4_K_M base as graft quantize writes it (Q4_K matrices, Q6_K on the
// output head and on attn_v and ffn_down of layers 2 and 3 of 4): the
// frozen K-quant weights are decoded inside the GPU's matmuls, forward
// and in the input gradient, and every step's loss and gradient norm
// agree with the CPU's to 1e-3 relative. The data is arithmetic runs of
// token ids, which a LoRA can begin to learn.
func TestLoRAOnQ4KMMatchesCPU(t *testing.T) {
	g := testBackend(t)
	path := q4kmModel(t)
	const steps, vocab = 20, 512
	r := rand.New(rand.NewPCG(5, 6))
	examples := make([]data.Example, 24)
	for i := range examples {
		ids, loss := make([]int32, 33), make([]bool, 33)
		start := r.IntN(vocab)
		for j := range ids {
			ids[j], loss[j] = int32((start+3*j)%vocab), j > 0
		}
		examples[i] = data.Example{IDs: ids, Loss: loss}
	}
	run := func(be backend.Backend) (losses, norms []float64) {
		m, err := model.Load(path, be)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Free()
		loader, err := data.NewLoader(examples, data.LoaderOptions{Batch: 2, SeqLen: 32, Pack: true, Shuffle: true})
		if err != nil {
			t.Fatal(err)
		}
		targets := peft.TargetNames("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
		return loraFit(t, m, be, loader, targets, steps, nil)
	}
	want, wantNorms := run(cpu.New())
	got, gotNorms := run(g)
	compareSteps(t, "loss", got, want, steps)
	compareSteps(t, "gradient norm", gotNorms, wantNorms, steps)
}

// q4kmModel writes a random llama whose matrices are whole K-quant
// super-blocks (hidden 256, FFN 512), quantized to Q4_K_M by
// model.SaveOptions.Quantize, and checks that both K-quant types are in
// it.
func q4kmModel(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src, out := filepath.Join(dir, "f32.gguf"), filepath.Join(dir, "q4_k_m.gguf")
	s := randgguf.Shape{Name: "random q4_k_m", Dim: 256, FFN: 512, Layers: 4, Heads: 4, KVHeads: 2, Vocab: 512, Ctx: 64, NormEps: 1e-5, RopeTheta: 10000}
	if err := randgguf.WriteLlama(src, s, 9, nil); err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(src, cpu.New())
	if err != nil {
		t.Fatal(err)
	}
	err = m.SaveGGUF(out, model.SaveOptions{Quantize: quantmix.Q4KM})
	m.Free()
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	types := map[string]int{}
	for _, ti := range f.Tensors {
		types[gguf.GGMLTypeName(ti.GGMLType)]++
	}
	if types["Q4_K"] == 0 || types["Q6_K"] == 0 {
		t.Fatalf("the Q4_K_M file has tensors of types %v, want both Q4_K and Q6_K", types)
	}
	t.Logf("Q4_K_M base: tensors per type %v", types)
	return out
}

// maxStepDispatches is the most compute dispatches one LoRA step of
// TestTrainingStepReadBacks may record (stories260K, 5 layers, rank 8 on
// q, k, v and o: 40 adapter tensors, batch 4 of 64 tokens). Each dispatch
// costs a few microseconds of driver time on a real GPU however little it
// does, so the count is pinned: lower it when a change fuses more. An
// adapter without the storage bindings of adamw_group (29) steps the 40
// tensors a dispatch each rather than 7 a dispatch: 34 more.
const (
	maxStepDispatches = 305
	ungroupedAdamW    = 34
)

// TestTrainingStepReadBacks checks that a training step reads back only
// what the trainer asks for: the loss of its micro-batch and the gradient
// norm, two transfers, however many operations the step runs, and that it
// records no more than maxStepDispatches dispatches.
func TestTrainingStepReadBacks(t *testing.T) {
	g := testBackend(t)
	var reads, dispatches []int64
	var before, after map[string]int64
	loraRun(t, g, 4, func(step int) {
		reads = append(reads, g.ReadBacks())
		dispatches = append(dispatches, g.Dispatches())
		switch step {
		case 3:
			before = g.DispatchesByKernel()
		case 4:
			after = g.DispatchesByKernel()
		}
	})
	for _, k := range slices.Sorted(maps.Keys(after)) {
		if n := after[k] - before[k]; n > 0 {
			t.Logf("last step: %4d dispatches of %s", n, k)
		}
	}
	limit := int64(maxStepDispatches)
	if !g.groupsAdamW() {
		limit += ungroupedAdamW
	}
	for i := 1; i < len(reads); i++ {
		r, d := reads[i]-reads[i-1], dispatches[i]-dispatches[i-1]
		if r != 2 {
			t.Errorf("step %d read back %d times, want 2 (loss and gradient norm)", i+1, r)
		}
		if d < 100 {
			t.Errorf("step %d ran only %d dispatches: is it running on the gpu?", i+1, d)
		}
		if d > limit {
			t.Errorf("step %d ran %d dispatches, over the %d this step took when it was last counted: "+
				"a fused kernel was split again or an operation went per tensor (the log lists them by kernel)", i+1, d, limit)
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
