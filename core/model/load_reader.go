package model

import (
	"fmt"
	"io"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/formats/gguf"
)

// LoadGGUFReader reads a GGUF model of size bytes through r, as LoadGGUF
// does from a file, and uploads its weights to b. name identifies the model
// in errors and becomes SourcePath. It serves callers without a file
// system: a WebAssembly plugin handed the model's bytes, a browser worker.
func LoadGGUFReader(r io.ReaderAt, size int64, name string, b backend.Backend) (*Model, error) {
	f, err := gguf.Parse(r, size, name)
	if err != nil {
		return nil, err
	}
	cfg, err := ggufConfig(f)
	if err != nil {
		return nil, fmt.Errorf("gguf %s: %w", name, err)
	}
	m := &Model{Config: cfg, Backend: b, Source: "gguf", SourcePath: name}
	if m.Tokenizer, err = ggufTokenizer(f); err != nil {
		return nil, fmt.Errorf("gguf %s: tokenizer: %w", name, err)
	}
	has := func(name string) bool { _, ok := f.Tensor(name); return ok }
	ld := &loader{src: f, b: b, where: "gguf " + name}
	if err := m.loadWeights(ld, has, ggufNames{}); err != nil {
		ld.abort()
		return nil, err
	}
	m.WeightDTypes = ld.dtypes
	m.SourceMetadata = f.KVs
	return m, nil
}
