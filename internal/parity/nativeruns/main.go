// Command nativeruns runs every parity case natively (train.Run on the
// CPU) and prints their traces as one JSON object, by case name. The
// browser engine's tests, which run in wasm under Node and cannot train
// natively themselves, start it (built with -tags purego, the kernels wasm
// runs) and compare bit for bit.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/internal/parity"
)

func main() {
	modelPath := flag.String("model", "models/stories260K/stories260K.gguf", "base model `path`")
	flag.Parse()
	if err := run(*modelPath); err != nil {
		fmt.Fprintln(os.Stderr, "nativeruns:", err)
		os.Exit(1)
	}
}

func run(modelPath string) error {
	traces := map[string]parity.Trace{}
	for _, c := range parity.Cases() {
		// A fresh base per case: QLoRA quantizes it, and every case starts
		// from the file's weights.
		m, err := model.Load(modelPath, cpu.New())
		if err != nil {
			return err
		}
		tr, err := c.Run(context.Background(), m)
		m.Free()
		if err != nil {
			return err
		}
		traces[c.Name] = tr
	}
	return json.NewEncoder(os.Stdout).Encode(traces)
}
