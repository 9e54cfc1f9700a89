package host_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/graft-ml/graft/native/host"
)

// A host runs one sandboxed plugin instance per tenant; each loads its
// model from bytes and answers requests.
func Example() {
	ctx := context.Background()
	h, err := host.New(ctx, host.Options{
		MemoryLimitMB: 256,         // per instance
		Timeout:       time.Minute, // per call, unless the context says sooner
		Cooperative:   true,        // deadlines at safe points: faster guest
	})
	if err != nil {
		panic(err)
	}
	defer h.Close(ctx)

	tenant, err := h.NewInstance(ctx)
	if err != nil {
		panic(err)
	}
	defer tenant.Close(ctx)
	gguf, err := os.ReadFile("../../models/stories260K/stories260K.gguf")
	if err != nil {
		panic(err)
	}
	info, err := tenant.LoadModel(ctx, "stories260K.gguf", gguf)
	if err != nil {
		panic(err)
	}
	fmt.Println(info.Arch, info.Layers, "layers")
	out, err := tenant.Generate(ctx, host.GenerateRequest{Prompt: "Once upon a time", MaxTokens: 12})
	if err != nil {
		panic(err)
	}
	fmt.Println(out.Text)
	// Output:
	// llama 5 layers
	// , there was a little girl named Lily. She
}

// Each tenant trains its own adapter inside its sandbox and exports it in
// Hugging Face PEFT's format.
func ExampleInstance_Train() {
	ctx := context.Background()
	h, err := host.New(ctx, host.Options{Cooperative: true})
	if err != nil {
		panic(err)
	}
	defer h.Close(ctx)
	tenant, err := h.NewInstance(ctx)
	if err != nil {
		panic(err)
	}
	gguf, err := os.ReadFile("../../models/stories260K/stories260K.gguf")
	if err != nil {
		panic(err)
	}
	if _, err := tenant.LoadModel(ctx, "stories260K.gguf", gguf); err != nil {
		panic(err)
	}
	data := []byte(`{"text": "Pip the little blue owl lived in the Tall Pine."}` + "\n" +
		`{"text": "Pip the owl and Dot the mouse were best friends."}` + "\n")
	res, err := tenant.Train(ctx, host.TrainRequest{
		Adapter: "pip",
		Method:  "lora",
		Options: map[string]any{"r": 4, "lora_alpha": 8, "target_modules": []string{"q_proj", "v_proj"}},
		Data:    data, Steps: 3, Batch: 2, SeqLen: 32, LR: 1e-2,
	}, func(p host.Progress) error {
		if p.Kind == "step" {
			fmt.Printf("step %d/%d\n", p.Step, p.TotalSteps)
		}
		return nil // an error here stops the run
	})
	if err != nil {
		panic(err)
	}
	files, err := tenant.ExportAdapter(ctx, "pip")
	if err != nil {
		panic(err)
	}
	var names []string
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	fmt.Println(res.Adapter.PeftType, names)
	// Output:
	// step 1/3
	// step 2/3
	// step 3/3
	// LORA [adapter_config.json adapter_model.safetensors]
}
