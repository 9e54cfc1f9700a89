package model

import (
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
	return loadGGUF(f, name, b)
}
