// Command nativelogits loads a model and an adapter natively (CPU) and
// writes the logits of every position of a prompt as little-endian
// float32s: the browser test compares them bit for bit with the page's.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"os"

	"github.com/graft-ml/graft/core/atomicfile"
	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
	"github.com/graft-ml/graft/wasm/browser/engine"
)

func main() {
	modelPath := flag.String("model", "models/stories260K/stories260K.gguf", "base model `path`")
	adapter := flag.String("adapter", "", "adapter `path`: a .msgpack bundle or a PEFT directory")
	prompt := flag.String("prompt", "Once upon a time", "prompt (encoded with BOS)")
	out := flag.String("out", "", "output `file` of float32 logits")
	flag.Parse()
	if err := run(*modelPath, *adapter, *prompt, *out); err != nil {
		fmt.Fprintln(os.Stderr, "nativelogits:", err)
		os.Exit(1)
	}
}

func run(modelPath, adapter, prompt, out string) error {
	if out == "" {
		return fmt.Errorf("-out is required")
	}
	m, err := model.Load(modelPath, cpu.New())
	if err != nil {
		return err
	}
	defer m.Free()
	if adapter != "" {
		src, err := peft.OpenAdapterPath(adapter)
		if err != nil {
			return err
		}
		if _, _, err := peft.LoadAdapter(m, src); err != nil {
			return err
		}
	}
	logits, err := engine.AllLogits(m, m.Tokenizer.Encode(prompt, true))
	if err != nil {
		return err
	}
	raw := make([]byte, 4*len(logits))
	for i, v := range logits {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return atomicfile.WriteFile(out, raw, 0o644)
}
