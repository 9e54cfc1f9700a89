package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/model"
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
