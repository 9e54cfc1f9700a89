package train

import (
	"math/rand/v2"
	"testing"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
)

// loraTrainer returns a trainer for LoRA r=16 on q,k,v,o of stories260K,
// fed by a loader over a fixed set of examples.
func loraTrainer(tb testing.TB, steps int) *Trainer {
	tb.Helper()
	m, err := model.Load("../../../shared/models/stories260K/stories260K.gguf", cpu.New())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(m.Free)
	mg := peft.Attach(m)
	cfg := peft.LoraConfig{R: 16, LoraAlpha: 32, TargetModules: peft.TargetNames("q_proj", "k_proj", "v_proj", "o_proj")}
	if err := mg.AddAdapter("default", cfg, rand.New(rand.NewPCG(1, 2))); err != nil {
		tb.Fatal(err)
	}
	a, err := mg.AsAdapter("default")
	if err != nil {
		tb.Fatal(err)
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
	tc.Steps, tc.LR = steps, 1e-3
	obj := &LM{Model: m, Trainable: a.Params(), Mode: a.SetTraining}
	tr, err := New(obj, m.Backend, LoaderSource(loader), nil, tc)
	if err != nil {
		tb.Fatal(err)
	}
	return tr
}

// BenchmarkLoRAStep is one optimizer step of LoRA on stories260K (batch 4,
// 64 tokens). allocs/op is what a steady-state step allocates on the Go
// heap, which TestLoRAStepAllocations requires to be none.
func BenchmarkLoRAStep(b *testing.B) {
	tr := loraTrainer(b, 1<<30)
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
}

// warmupSteps are the steps run before counting allocations. The first
// step sizes the activation buffers, adapter scratch, batch copies and the
// CPU backend's scratch lists and starts its workers; the next ones let the
// Go runtime's own caches (the goroutine wait records of the workers'
// channel and wait group) settle across Ps.
const warmupSteps = 3

// TestLoRAStepAllocations checks that a steady-state step allocates nothing
// on the Go heap: buffers, batches and workspaces are reused, and the CPU
// backend hands its operations to persistent workers in reused task
// structs.
func TestLoRAStepAllocations(t *testing.T) {
	tr := loraTrainer(t, 1<<30)
	step := func() {
		if _, err := tr.runStep(); err != nil {
			t.Fatal(err)
		}
	}
	for range warmupSteps {
		step()
	}
	if allocs := testing.AllocsPerRun(10, step); allocs != 0 {
		t.Errorf("a steady-state LoRA step allocates %.0f times, want 0", allocs)
	}
}
