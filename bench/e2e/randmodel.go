package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/quantmix"
	"github.com/graft-ml/graft/core/tensor"
	"github.com/graft-ml/graft/internal/randgguf"
)

// shape is the architecture of a random-init Llama written as GGUF.
type shape = randgguf.Shape

// smol135m is SmolLM-135M's architecture (untied output head here, so the
// training workload matches bench/torch_lora.py's smol135m preset).
var smol135m = shape{
	Name: "smol135m-random", Dim: 576, FFN: 1536, Layers: 30, Heads: 9, KVHeads: 3,
	Vocab: 49152, Ctx: 2048, NormEps: 1e-5, RopeTheta: 10000,
}

// matchesShape reports whether an inspected file has shape s, so a cached
// file written by an older harness with other dimensions is rewritten.
func matchesShape(s shape, info *model.Info) bool {
	c := info.Config
	return c.Dim == s.Dim && c.FFN == s.FFN && c.Layers == s.Layers && c.Heads == s.Heads &&
		c.KVHeads == s.KVHeads && c.Vocab == s.Vocab && c.Context == s.Ctx && !c.TiedOutput &&
		info.Tokenizer != nil && info.Tokenizer.Vocab == s.Vocab
}

// ensureRandomModel returns path, writing the random model there first
// unless a file of the right shape is already present.
func ensureRandomModel(path string, s shape, seed uint64, logf func(string, ...any)) error {
	if info, err := model.Inspect(path); err == nil && matchesShape(s, info) {
		return nil
	} else if err == nil {
		logf("%s has another shape; rewriting it", path)
	}
	logf("writing %s (random init, F32, seed %d)", path, seed)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("random model: %w", err)
	}
	kvs, tensors, err := randomModel(s, seed)
	if err != nil {
		return fmt.Errorf("random model %s: %w", path, err)
	}
	return gguf.WriteFile(path, kvs, tensors)
}

// randomModel returns the GGUF metadata and F32 tensors of a llama model of
// shape s (see randgguf.Llama) with a synthetic SentencePiece vocabulary.
func randomModel(s shape, seed uint64) ([]gguf.KV, []*tensor.Tensor, error) {
	vocab, err := syntheticVocab(s.Vocab)
	if err != nil {
		return nil, nil, err
	}
	return randgguf.Llama(s, seed, vocab.kvs())
}

// ensureQuantized returns out, writing it first, unless present with the
// right shape, as Q4_K_M of in. A child process does the work: the kernel
// hands a child the peak RSS of the process it was forked from, so the
// harness itself must never hold a model, or every later workload would
// report that peak as its own.
func (h *harness) ensureQuantized(in, out string, s shape) error {
	if info, err := model.Inspect(out); err == nil && matchesShape(s, info) {
		return nil
	}
	h.logf("writing %s (Q4_K_M of %s)", out, filepath.Base(in))
	res, err := runChild(h.root, h.exe, "-worker", "quantize", "-model", in, "-quantize-out", out)
	if err != nil {
		return fmt.Errorf("quantize %s: %w", in, err)
	}
	if note, ok := res.Line["note"].(string); ok && note != "" {
		h.logf("quantize: %s", note)
	}
	return nil
}

// quantizeWorker writes in quantized as preset to out, as `graft quantize
// --type preset in out` does (the model loaded on the CPU and saved with
// llama.cpp's per-tensor choice of types), and prints a JSON line.
func quantizeWorker(in, out, preset string) error {
	ft, err := quantmix.ParseFileType(preset)
	if err != nil {
		return err
	}
	m, err := model.Load(in, cpu.New())
	if err != nil {
		return fmt.Errorf("quantize %s: %w", in, err)
	}
	defer m.Free()
	// At this shape most rows (576 values) are not whole super-blocks, and
	// the quantizer says so per tensor; one line and a count say enough.
	var first string
	warnings := 0
	warn := func(msg string) {
		if warnings == 0 {
			first = msg
		}
		warnings++
	}
	if err := m.SaveGGUF(out, model.SaveOptions{Quantize: ft, Warn: warn}); err != nil {
		return fmt.Errorf("quantize %s: %w", in, err)
	}
	note := ""
	if warnings > 0 {
		note = fmt.Sprintf("%s (and %d more such notes)", first, warnings-1)
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"kind": "quantize", "out": out, "note": note})
}
