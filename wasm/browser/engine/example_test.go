package engine_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/wasm/browser/engine"
)

// A person's examples train a soft prompt, which then exports as a bundle
// another Engine imports.
func Example() {
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "models", "stories260K", "stories260K.gguf"))
	if err != nil {
		log.Fatal(err)
	}
	e, err := engine.Load(data, "stories260K.gguf", cpu.New(), "cpu")
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	res, err := e.Train(context.Background(), engine.TrainRequest{
		Method:   engine.MethodPromptTuning,
		Examples: []string{"The purple robot hummed a song about the moon."},
		Steps:    3,
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	bundle, err := e.ExportBundle()
	if err != nil {
		log.Fatal(err)
	}
	other, err := engine.Load(data, "stories260K.gguf", cpu.New(), "cpu")
	if err != nil {
		log.Fatal(err)
	}
	defer other.Close()
	peftType, err := other.ImportBundle(bundle, "adapter.msgpack")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.PeftType, res.Steps, len(res.Losses), peftType)
	// Output: PROMPT_TUNING 3 3 PROMPT_TUNING
}
