package peft_test

import (
	"fmt"
	"log"
	"math/rand/v2"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
)

func storiesModel() *model.Model {
	m, err := model.Load("../../models/stories260K/stories260K.gguf", cpu.New())
	if err != nil {
		log.Fatal(err)
	}
	return m
}

// A DoRA adapter has a magnitude vector per layer besides A and B; PEFT
// saves it as lora_magnitude_vector.
func ExampleLoraConfig_dora() {
	m := storiesModel()
	defer m.Free()
	mg := peft.AttachLoRA(m)
	cfg := peft.LoraConfig{R: 8, LoraAlpha: 16, UseDoRA: true, TargetConfig: peft.TargetConfig{TargetModules: peft.TargetNames("q_proj")}}
	if err := mg.AddAdapter("default", cfg, rand.New(rand.NewPCG(1, 2))); err != nil {
		log.Fatal(err)
	}
	params, _ := mg.Params("default")
	for _, p := range params[:3] {
		fmt.Println(p.Name, p.Value.Shape())
	}
	// Output:
	// base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight [8 64]
	// base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight [64 8]
	// base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector [64]
}

// PiSSA moves the principal part of each weight into the adapter; after
// training, FilesConverted gives a plain LoRA adapter of twice the rank for
// the original model.
func ExampleManager_FilesConverted() {
	m := storiesModel()
	defer m.Free()
	mg := peft.AttachLoRA(m)
	cfg := peft.LoraConfig{R: 4, LoraAlpha: 8, InitLoraWeights: peft.InitPiSSA, TargetConfig: peft.TargetConfig{TargetModules: peft.TargetNames("q_proj", "v_proj")}}
	if err := mg.AddAdapter("pissa", cfg, rand.New(rand.NewPCG(1, 2))); err != nil {
		log.Fatal(err)
	}
	// ... train ...
	files, err := mg.FilesConverted("pissa")
	if err != nil {
		log.Fatal(err)
	}
	conv, _, err := peft.ParseConfig[peft.LoraConfig](files[peft.ConfigFileName])
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("r", conv.R, "lora_alpha", conv.LoraAlpha, "init", conv.InitLoraWeights == peft.InitDefault)
	// Unload gives the model its own weights back.
	if err := mg.Unload(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// r 8 lora_alpha 16 init true
}

// Two adapters combined into a third, as PEFT's add_weighted_adapter.
func ExampleManager_AddWeightedAdapter() {
	m := storiesModel()
	defer m.Free()
	mg := peft.AttachLoRA(m)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, name := range []string{"french", "poetry"} {
		cfg := peft.LoraConfig{R: 4, LoraAlpha: 8, TargetConfig: peft.TargetConfig{TargetModules: peft.TargetNames("q_proj", "v_proj")}}
		if err := mg.AddAdapter(name, cfg, rng); err != nil {
			log.Fatal(err)
		}
	}
	if err := mg.AddWeightedAdapter([]string{"french", "poetry"}, []float64{0.6, 0.4}, "mix", peft.CombineCat, 0); err != nil {
		log.Fatal(err)
	}
	cfg, _ := mg.Config("mix")
	fmt.Println("rank", cfg.R)
	// Output:
	// rank 8
}

// Each sequence of a batch can use its own adapter, or none.
func ExampleManager_SetRowAdapters() {
	m := storiesModel()
	defer m.Free()
	mg := peft.AttachLoRA(m)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, name := range []string{"a", "b"} {
		if err := mg.AddAdapter(name, peft.LoraConfig{R: 4, LoraAlpha: 8}, rng); err != nil {
			log.Fatal(err)
		}
	}
	if err := mg.SetRowAdapters([]string{"a", peft.BaseAdapterName, "b"}); err != nil {
		log.Fatal(err)
	}
	ids := []int32{1, 403, 407, 261, 378, 430}
	tb := model.TokenBatch{B: 3, T: 2, IDs: ids, Targets: ids}
	loss, err := m.BatchLoss(tb)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(loss > 0)
	// Output:
	// true
}
