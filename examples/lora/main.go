// Command lora fine-tunes the bundled stories260K with LoRA through graft's
// Go API and saves the adapter in Hugging Face PEFT's format.
//
//	go run ./examples/lora [-steps 200] [-out out/example-lora]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/train"
)

func main() {
	modelPath := flag.String("model", "models/stories260K/stories260K.gguf", "base model")
	dataDir := flag.String("data", "examples/lora/data", "folder with train.jsonl and eval.jsonl")
	steps := flag.Int("steps", 200, "optimizer steps")
	out := flag.String("out", "out/example-lora", "adapter output directory")
	flag.Parse()
	if err := run(*modelPath, *dataDir, *out, *steps); err != nil {
		log.Fatal(err)
	}
}

func run(modelPath, dataDir, out string, steps int) error {
	// 1. Load the base model onto the CPU backend.
	m, err := model.Load(modelPath, cpu.New())
	if err != nil {
		return err
	}
	defer m.Free()

	// 2. Declare the run: LoRA r=8 on the attention projections, as PEFT's
	// LoraConfig would, trained with AdamW, warm-up and a cosine schedule on
	// packed rows of 128 tokens. train.Run tokenizes, batches, seeds,
	// evaluates before and during training, and saves
	// adapter_config.json + adapter_model.safetensors into out for PEFT.
	spec := train.Spec{
		Model: modelPath, Data: dataDir + "/train.jsonl", Eval: dataDir + "/eval.jsonl",
		Method:  "lora",
		Options: map[string]any{"r": 8, "lora_alpha": 16, "target_modules": []string{"q_proj", "k_proj", "v_proj", "o_proj"}},
		SeqLen:  128, Batch: 4, Pack: true,
		Steps: steps, LR: 5e-3, Warmup: min(10, steps/2), EvalEvery: 50, Seed: 1,
		// Overwrite: a second run replaces this example's earlier output
		// (without it, Run refuses an out directory that holds another run).
		Out: out, Overwrite: true,
	}
	res, err := train.Run(context.Background(), m, spec, func(e train.Event) {
		if e.Kind == train.EventEval {
			fmt.Printf("step %3d  eval loss %.4f\n", e.Step, e.EvalLoss)
		}
	})
	if err != nil {
		return err
	}
	fmt.Printf("eval loss %.4f -> %.4f in %s\n", res.EvalBefore, res.EvalLoss, res.Elapsed.Round(1e6))

	// 3. The adapter is still attached: generate with it.
	prompt := m.Tokenizer.Encode("Once upon a time, there was a little blue owl", true)
	ids, err := m.Generate(prompt, model.GenerateOptions{MaxTokens: 40})
	if err != nil {
		return err
	}
	fmt.Printf("adapter saved to %s\n%s\n", out, m.Tokenizer.Decode(append(prompt, ids...)))
	return nil
}
