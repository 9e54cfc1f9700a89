package peft_test

import (
	"fmt"
	"log"
	"math/rand/v2"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
)

// Prepend eight virtual tokens initialised from the embeddings of a text,
// and encode the adapter in PEFT's format.
func ExampleNewPromptTuning() {
	m, err := model.Load("../../models/stories260K/stories260K.gguf", cpu.New())
	if err != nil {
		log.Fatal(err)
	}
	defer m.Free()

	cfg := peft.PromptTuningConfig{
		PromptLearningConfig: peft.PromptLearningConfig{NumVirtualTokens: 8},
		PromptTuningInit:     peft.PromptInitText,
		PromptTuningInitText: "Once upon a time",
	}
	a, err := peft.NewPromptTuning(m, cfg, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range a.Params() {
		fmt.Println("trainable:", p.Name, p.Value.Shape())
	}
	files, err := a.Files() // what peft.Save writes into a directory
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(files), "files")
	// Output:
	// trainable: prompt_embeddings [8 64]
	// 2 files
}

// Train a key/value prefix through PEFT's projection MLP; the saved
// adapter holds the MLP's output, which loads as a plain prefix.
func ExampleNewPrefixTuning() {
	m, err := model.Load("../../models/stories260K/stories260K.gguf", cpu.New())
	if err != nil {
		log.Fatal(err)
	}
	defer m.Free()

	cfg := peft.PrefixTuningConfig{
		PromptLearningConfig: peft.PromptLearningConfig{NumVirtualTokens: 8},
		PrefixProjection:     true,
		EncoderHiddenSize:    64,
	}
	a, err := peft.NewPrefixTuning(m, cfg, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range a.Params() {
		fmt.Println("trainable:", p.Name, p.Value.Shape())
	}
	files, err := a.Files()
	if err != nil {
		log.Fatal(err)
	}
	if err := a.Unload(); err != nil {
		log.Fatal(err)
	}
	loaded, _, err := peft.LoadAdapter(m, peft.InMemory("prefix", files))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("loaded:", loaded.PeftType(), loaded.Params()[0].Name)
	// Output:
	// trainable: prompt_encoder.embedding.weight [8 32]
	// trainable: prompt_encoder.transform.0.weight [64 32]
	// trainable: prompt_encoder.transform.0.bias [64]
	// trainable: prompt_encoder.transform.2.weight [320 64]
	// trainable: prompt_encoder.transform.2.bias [320]
	// loaded: PREFIX_TUNING prompt_embeddings
}
