package peft_test

import (
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
)

// Attach LoRA to q_proj and v_proj of a model, run a forward pass and save
// the adapter in Hugging Face PEFT's format.
func Example() {
	m, err := model.Load("../../models/stories260K/stories260K.gguf", cpu.New())
	if err != nil {
		log.Fatal(err)
	}
	defer m.Free()

	mg := peft.AttachLoRA(m)
	cfg := peft.LoraConfig{R: 8, LoraAlpha: 16, LoraDropout: 0.05, TargetConfig: peft.TargetConfig{TargetModules: peft.TargetNames("q_proj", "v_proj")}}
	if err := mg.AddAdapter("default", cfg, rand.New(rand.NewPCG(1, 2))); err != nil {
		log.Fatal(err)
	}
	modules, _ := mg.Modules("default")
	fmt.Println(len(modules), "layers adapted, first", modules[0])

	// B starts at zero, so the adapted model still computes the base
	// model's logits until it is trained.
	ids := []int32{1, 403, 407, 261}
	logits, err := m.Forward(m.NewCache(len(ids)), ids, true)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(logits)/m.Config.Vocab, "positions of logits")

	dir, err := os.MkdirTemp("", "graft-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := mg.Save(filepath.Join(dir, "my-adapter"), "default"); err != nil {
		log.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "my-adapter"))
	for _, e := range entries {
		fmt.Println(e.Name())
	}
	// Output:
	// 10 layers adapted, first model.layers.0.self_attn.q_proj
	// 4 positions of logits
	// adapter_config.json
	// adapter_model.safetensors
}

// Load a saved adapter beside another, switch between them and fold one
// into the base weights.
func ExampleManager_Load() {
	m, err := model.Load("../../models/stories260K/stories260K.gguf", cpu.New())
	if err != nil {
		log.Fatal(err)
	}
	defer m.Free()
	mg := peft.AttachLoRA(m)
	rng := rand.New(rand.NewPCG(3, 4))
	cfg := peft.LoraConfig{R: 4, LoraAlpha: 8, TargetConfig: peft.TargetConfig{TargetModules: peft.TargetAllLinear()}, InitLoraWeights: peft.InitRandom}
	if err := mg.AddAdapter("chat", cfg, rng); err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "graft-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := mg.Save(dir, "chat"); err != nil {
		log.Fatal(err)
	}

	warnings, err := mg.Load(dir, "chat-copy")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("warnings:", len(warnings))
	fmt.Println("adapters:", mg.Adapters(), "active:", mg.Active())
	if err := mg.SetActive("chat-copy"); err != nil {
		log.Fatal(err)
	}
	if err := mg.Merge(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("merged:", mg.Merged())
	// Output:
	// warnings: 0
	// adapters: [chat chat-copy] active: [chat]
	// merged: [chat-copy]
}

// Read an adapter_config.json written by PEFT; keys graft does not know
// come back as warnings.
func ExampleParseConfig() {
	cfg, warnings, err := peft.ParseConfig[peft.LoraConfig]([]byte(`{
		"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 16, "lora_alpha": 32,
		"target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"], "use_rslora": true,
		"my_tool_version": "1.2"}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cfg.R, cfg.TargetModules.Names, cfg.Scaling(cfg.R, cfg.LoraAlpha))
	fmt.Println(warnings)
	// Output:
	// 16 [q_proj k_proj v_proj o_proj] 8
	// [unknown key "my_tool_version" ignored]
}
