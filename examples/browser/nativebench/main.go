// Command nativebench trains a preset of the demo page
// (web/presets.json: its request, with the page's sentences) natively on
// the CPU backend, as the page's engine does in the browser, and prints
// each run's tokens/s as a JSON line: the native side of
// bench.mjs, which measures the same request in headless Chromium.
//
//	go run ./examples/browser/nativebench -preset prompt-tuning -threads 2 -rounds 3
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/wasm/browser/engine"
)

// presets is the part of web/presets.json a run needs.
type presets struct {
	Examples    []string `json:"examples"`
	Personalize []struct {
		Value   string              `json:"value"`
		Init    bool                `json:"initTextFromFirstExample"`
		Request engine.TrainRequest `json:"request"`
	} `json:"personalize"`
}

func main() {
	root := flag.String("root", ".", "the repository's `directory`")
	preset := flag.String("preset", "prompt-tuning", "the preset's `value` in web/presets.json")
	threads := flag.Int("threads", 2, "CPU backend threads")
	rounds := flag.Int("rounds", 1, "runs, each on a freshly loaded model")
	flag.Parse()
	if err := run(*root, *preset, *threads, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "nativebench:", err)
		os.Exit(1)
	}
}

func run(root, preset string, threads, rounds int) error {
	file := filepath.Join(root, "examples/browser/web/presets.json")
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var ps presets
	if err := json.Unmarshal(b, &ps); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	modelFile := filepath.Join(root, "models/stories260K/stories260K.gguf")
	model, err := os.ReadFile(modelFile)
	if err != nil {
		return err
	}
	for _, p := range ps.Personalize {
		if p.Value != preset {
			continue
		}
		req := p.Request
		req.Examples = ps.Examples
		if p.Init {
			req.InitText = ps.Examples[0]
		}
		for range rounds {
			e, err := engine.Load(model, "stories260K", cpu.NewWithThreads(threads), "cpu")
			if err != nil {
				return fmt.Errorf("%s: %w", modelFile, err)
			}
			res, err := e.Train(context.Background(), req, nil)
			e.Close()
			if err != nil {
				return err
			}
			line, _ := json.Marshal(map[string]any{"preset": preset, "threads": threads, "kernels": cpu.Kernels(),
				"tokensPerSec": res.TokensPerSec, "tokens": res.Tokens, "ms": res.ElapsedMS,
				"loss": []float64{res.Losses[0], res.Losses[len(res.Losses)-1]}})
			fmt.Println(string(line))
		}
		return nil
	}
	return fmt.Errorf("%s: no preset %q", file, preset)
}
