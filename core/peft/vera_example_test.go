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

// Attach VeRA to q_proj and v_proj, then save it in PEFT's format together
// with its shared random projections.
func ExampleNewVeRA() {
	m, err := model.Load("../../models/stories260K/stories260K.gguf", cpu.New())
	if err != nil {
		log.Fatal(err)
	}
	defer m.Free()

	cfg := peft.DefaultConfig[peft.VeraConfig]() // r 256, d_initial 0.1, save_projection true
	cfg.R = 32
	cfg.TargetModules = peft.TargetNames("q_proj", "v_proj")
	a, err := peft.NewVeRA(m, cfg, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(a.PeftType(), len(a.Params()), "trainable vectors, first", a.Params()[0].Name)

	dir, err := os.MkdirTemp("", "graft-vera-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := peft.Save(a, filepath.Join(dir, "vera")); err != nil {
		log.Fatal(err)
	}
	if err := a.Unload(); err != nil {
		log.Fatal(err)
	}
	back, _, err := peft.LoadAdapter(m, peft.Dir(filepath.Join(dir, "vera")))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("loaded", back.PeftType())
	// Output:
	// VERA 20 trainable vectors, first base_model.model.model.layers.0.self_attn.q_proj.vera_lambda_b
	// loaded VERA
}

// Attach (IA)³ with PEFT's defaults for Llama (k_proj, v_proj and the
// feedforward down_proj) and fold it into the base weights.
func ExampleNewIA3() {
	m, err := model.Load("../../models/stories260K/stories260K.gguf", cpu.New())
	if err != nil {
		log.Fatal(err)
	}
	defer m.Free()

	a, err := peft.NewIA3(m, peft.DefaultConfig[peft.IA3Config](), nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range a.Params()[:3] {
		fmt.Println(p.Name, p.Value.Shape())
	}
	if err := a.Merge(); err != nil {
		log.Fatal(err)
	}
	if err := a.Unload(); err != nil { // restores the original weights
		log.Fatal(err)
	}
	// Output:
	// base_model.model.model.layers.0.self_attn.k_proj.ia3_l [32 1]
	// base_model.model.model.layers.0.self_attn.v_proj.ia3_l [32 1]
	// base_model.model.model.layers.0.mlp.down_proj.ia3_l [1 172]
}
