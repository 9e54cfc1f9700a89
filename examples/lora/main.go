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
	"math/rand/v2"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
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

	// 2. Tokenize the data and batch it: 4 packed rows of 128 tokens.
	trainEx, err := data.Load(dataDir+"/train.jsonl", m.Tokenizer, data.DefaultOptions())
	if err != nil {
		return err
	}
	evalEx, err := data.Load(dataDir+"/eval.jsonl", m.Tokenizer, data.DefaultOptions())
	if err != nil {
		return err
	}
	loader, err := data.NewLoader(trainEx, data.LoaderOptions{Batch: 4, SeqLen: 128, Pack: true, Shuffle: true})
	if err != nil {
		return err
	}
	evalLoader, err := data.NewLoader(evalEx, data.LoaderOptions{Batch: 4, SeqLen: 128, Pack: true})
	if err != nil {
		return err
	}

	// 3. Attach LoRA r=8 to the attention projections, as PEFT's LoraConfig would.
	lora := peft.Attach(m)
	cfg := peft.LoraConfig{R: 8, LoraAlpha: 16, TargetModules: peft.TargetNames("q_proj", "k_proj", "v_proj", "o_proj")}
	if err := lora.AddAdapter("default", cfg, rand.New(rand.NewPCG(1, 2))); err != nil {
		return err
	}
	params, err := lora.Params("default")
	if err != nil {
		return err
	}

	// 4. Train with AdamW, warm-up and a cosine schedule.
	tc := train.DefaultConfig()
	tc.Steps, tc.LR, tc.Warmup, tc.EvalEvery, tc.Seed = steps, 5e-3, min(10, steps/2), 50, 1
	obj := &train.LM{Model: m, Trainable: params, Mode: lora.SetTraining}
	tr, err := train.New(obj, m.Backend, train.LoaderSource(loader), train.EvalBatches(evalLoader), tc)
	if err != nil {
		return err
	}
	before, err := tr.Evaluate()
	if err != nil {
		return err
	}
	res, err := tr.Fit(context.Background(), func(e train.Event) {
		if e.Kind == train.EventEval {
			fmt.Printf("step %3d  eval loss %.4f\n", e.Step, e.EvalLoss)
		}
	})
	if err != nil {
		return err
	}
	fmt.Printf("eval loss %.4f -> %.4f in %s\n", before, res.EvalLoss, res.Elapsed.Round(1e6))

	// 5. Save adapter_config.json + adapter_model.safetensors for PEFT.
	if err := lora.Save(out, "default"); err != nil {
		return err
	}
	prompt := m.Tokenizer.Encode("Once upon a time, there was a little blue owl", true)
	ids, err := m.Generate(prompt, model.GenerateOptions{MaxTokens: 40})
	if err != nil {
		return err
	}
	fmt.Printf("adapter saved to %s\n%s\n", out, m.Tokenizer.Decode(append(prompt, ids...)))
	return nil
}
