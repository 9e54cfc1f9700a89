package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"time"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/train"
)

// workerOptions are what the harness hands a worker subprocess.
type workerOptions struct {
	Model         string
	Threads       int
	Steps, Warmup int
	Batch, Seq    int
	Checkpointing bool
	GenTokens     int
	Prompt        []int32
}

// runWorker runs one graft workload in this process and prints its result
// as one JSON line; the parent measures the process's peak RSS.
func runWorker(kind string, o workerOptions) error {
	runtime.GOMAXPROCS(o.Threads)
	var out map[string]any
	var err error
	switch kind {
	case "train":
		out, err = trainWorkload(o)
	case "generate":
		out, err = generateWorkload(o)
	default:
		return fmt.Errorf("unknown worker kind %q (want train or generate)", kind)
	}
	if err != nil {
		return err
	}
	out["threads"] = o.Threads
	out["go"] = runtime.Version()
	return json.NewEncoder(os.Stdout).Encode(out)
}

// trainWorkload trains LoRA r=16, alpha 32 on q, k, v and o over random
// tokens for Warmup untimed and Steps timed optimizer steps, through
// train.Run as every graft runtime trains.
func trainWorkload(o workerOptions) (map[string]any, error) {
	m, err := model.Load(o.Model, cpu.New())
	if err != nil {
		return nil, err
	}
	defer m.Free()
	spec := train.Spec{
		Examples: randomExamples(m.Config.Vocab, 4*o.Batch, o.Seq+1),
		Method:   "lora",
		Options:  map[string]any{"r": 16, "lora_alpha": 32, "target_modules": []string{"q_proj", "k_proj", "v_proj", "o_proj"}},
		Batch:    o.Batch, SeqLen: o.Seq, Steps: o.Warmup + o.Steps, LR: 1e-3, Schedule: train.ScheduleConstant,
		Checkpointing: o.Checkpointing,
	}
	// Step events carry the time since Fit began: the timed span runs from
	// the end of the last warmup step to the end of the last step.
	var warmEnd, end time.Duration
	onEvent := func(e train.Event) {
		if e.Kind != train.EventStep {
			return
		}
		if e.Step == o.Warmup {
			warmEnd = e.Elapsed
		}
		end = e.Elapsed
	}
	res, err := train.Run(context.Background(), m, spec, onEvent)
	if err != nil {
		return nil, err
	}
	if math.IsNaN(res.Loss) || math.IsInf(res.Loss, 0) {
		return nil, fmt.Errorf("training loss is %v", res.Loss)
	}
	secs := (end - warmEnd).Seconds()
	return map[string]any{
		"kind": "train", "model": o.Model, "steps": o.Steps, "warmup": o.Warmup,
		"batch": o.Batch, "seq": o.Seq, "checkpointing": o.Checkpointing,
		"tokens_per_s": float64(o.Batch*o.Seq*o.Steps) / secs,
		"step_ms":      secs / float64(o.Steps) * 1e3,
		"loss":         res.Loss,
	}, nil
}

// randomExamples returns n rows of length ids drawn uniformly from the
// vocabulary, every token but the first scored.
func randomExamples(vocab, n, length int) []data.Example {
	r := rand.New(rand.NewPCG(3, 4))
	out := make([]data.Example, n)
	for i := range out {
		ids, loss := make([]int32, length), make([]bool, length)
		for j := range ids {
			ids[j], loss[j] = int32(r.IntN(vocab)), j > 0
		}
		out[i] = data.Example{IDs: ids, Loss: loss}
	}
	return out
}

// generateWorkload evaluates all but the last prompt token, then times
// GenTokens single-token passes through the KV cache, each followed by a
// greedy pick: what tools/llamacpp/generate_bench.mjs times in llama.cpp.
func generateWorkload(o workerOptions) (map[string]any, error) {
	m, err := model.Load(o.Model, cpu.New())
	if err != nil {
		return nil, err
	}
	defer m.Free()
	if len(o.Prompt) == 0 {
		return nil, fmt.Errorf("generate: empty prompt")
	}
	for _, id := range o.Prompt {
		if id < 0 || int(id) >= m.Config.Vocab {
			return nil, fmt.Errorf("generate: prompt token %d is outside the vocabulary of %d", id, m.Config.Vocab)
		}
	}
	if need := len(o.Prompt) + o.GenTokens; need > m.Config.Context {
		return nil, fmt.Errorf("generate: %d prompt and %d new tokens exceed the context of %d", len(o.Prompt), o.GenTokens, m.Config.Context)
	}
	cache := m.NewCache(len(o.Prompt) + o.GenTokens)
	defer m.FreeCache(cache)
	head, next := o.Prompt[:len(o.Prompt)-1], o.Prompt[len(o.Prompt)-1]
	if len(head) > 0 {
		if _, err := m.Forward(cache, head, false); err != nil {
			return nil, err
		}
	}
	sampler := model.NewSampler(model.Sampling{})
	generated := make([]int32, 0, o.GenTokens)
	one := []int32{0}
	start := time.Now()
	for range o.GenTokens {
		one[0] = next
		logits, err := m.Forward(cache, one, false)
		if err != nil {
			return nil, err
		}
		next = sampler.Next(logits)
		generated = append(generated, next)
	}
	secs := time.Since(start).Seconds()
	return map[string]any{
		"kind": "generate", "model": o.Model, "tokens": o.GenTokens, "prompt_tokens": len(o.Prompt),
		"seconds": secs, "tokens_per_s": float64(o.GenTokens) / secs,
		"first_tokens": generated[:min(8, len(generated))],
	}, nil
}
