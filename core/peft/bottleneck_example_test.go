package peft_test

import (
	"fmt"
	"log"
	"math/rand/v2"
	"os"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
)

// Attach a Pfeiffer bottleneck adapter, save it in AdapterHub's layout and
// load it back through LoadAdapter.
func ExampleNewBottleneck() {
	m, err := model.Load("../../models/stories260K/stories260K.gguf", cpu.New())
	if err != nil {
		log.Fatal(err)
	}
	defer m.Free()

	cfg := peft.BottleneckConfig{Kind: peft.BottleneckPfeiffer, ReductionFactor: 16, NonLinearity: "relu"}
	a, err := peft.NewBottleneck(m, cfg, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		log.Fatal(err)
	}
	params := a.Params()
	fmt.Println(len(params), "tensors, first", params[0].Name, params[0].Value.Shape())

	dir, err := os.MkdirTemp("", "graft-bottleneck-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := peft.Save(a, dir); err != nil {
		log.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		fmt.Println(e.Name())
	}
	if err := a.Unload(); err != nil {
		log.Fatal(err)
	}

	b, _, err := peft.LoadAdapter(m, peft.Dir(dir))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(b.PeftType(), "loaded;", "merge:", b.Merge())
	// Output:
	// 20 tensors, first model.layers.0.output_adapters.adapters.default.adapter_down.0.weight [4 64]
	// adapter.safetensors
	// adapter_config.json
	// BOTTLENECK loaded; merge: this PEFT method cannot be merged into the base weights
}
