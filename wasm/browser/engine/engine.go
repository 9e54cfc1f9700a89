package engine

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/formats/bundle"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
)

// Engine holds one base model and at most one adapter attached to it. It
// is not safe for concurrent use: the browser worker serializes calls.
type Engine struct {
	m           *model.Model
	name        string
	backendName string
	adapter     peft.Adapter
	quantized   string // "nf4" after Quantize
}

// ModelInfo describes the loaded model and the backend it runs on.
type ModelInfo struct {
	Name    string `json:"name"`
	Backend string `json:"backend"`
	Arch    string `json:"arch"`
	Vocab   int    `json:"vocab"`
	Dim     int    `json:"dim"`
	Layers  int    `json:"layers"`
	Heads   int    `json:"heads"`
	Context int    `json:"context"`
	Params  int64  `json:"params"`
	// Quantized is "nf4" for a QLoRA base (see Quantize).
	Quantized string `json:"quantized,omitempty"`
}

// ggufMagic starts every GGUF file.
var ggufMagic = []byte("GGUF")

// Load reads a base model from data, the bytes of a GGUF file or of a
// msgpack bundle holding one (a single entry whose name ends in .gguf),
// onto b. backendName is what Info reports ("cpu", "webgpu").
func Load(data []byte, name string, b backend.Backend, backendName string) (*Engine, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("model %s: no bytes", name)
	}
	gg, ggName := data, name
	if !bytes.HasPrefix(data, ggufMagic) {
		var err error
		if gg, ggName, err = ggufFromBundle(data, name); err != nil {
			return nil, err
		}
	}
	m, err := model.LoadGGUFReader(bytes.NewReader(gg), int64(len(gg)), ggName, b)
	if err != nil {
		return nil, err
	}
	if m.Tokenizer == nil {
		m.Free()
		return nil, fmt.Errorf("model %s: no tokenizer in the file; the browser API works on text", name)
	}
	return &Engine{m: m, name: name, backendName: backendName}, nil
}

// ggufFromBundle finds the one GGUF file in a msgpack bundle.
func ggufFromBundle(data []byte, name string) ([]byte, string, error) {
	files, err := bundle.Decode(data, name)
	if err != nil {
		return nil, "", fmt.Errorf("model %s: neither GGUF (no GGUF magic) nor a msgpack bundle: %w", name, err)
	}
	var found []string
	for n := range files {
		if strings.HasSuffix(strings.ToLower(n), ".gguf") {
			found = append(found, n)
		}
	}
	sort.Strings(found)
	if len(found) != 1 {
		return nil, "", fmt.Errorf("model %s: bundle holds %d .gguf files %q, want exactly 1", name, len(found), found)
	}
	return files[found[0]], name + "/" + found[0], nil
}

// Model returns the loaded model, for callers that need more than the
// methods here (tests comparing logits).
func (e *Engine) Model() *model.Model { return e.m }

// Info describes the model.
func (e *Engine) Info() ModelInfo {
	c := e.m.Config
	return ModelInfo{
		Name: e.name, Backend: e.backendName, Arch: c.Arch, Vocab: c.Vocab, Dim: c.Dim,
		Layers: c.Layers, Heads: c.Heads, Context: c.Context, Params: c.NumParams(), Quantized: e.quantized,
	}
}

// errNoAdapter is returned by calls that need an adapter when none is
// trained or imported.
var errNoAdapter = errors.New("no adapter: train or import one first")

// HasAdapter reports whether an adapter is attached.
func (e *Engine) HasAdapter() bool { return e.adapter != nil }

// AdapterType returns the attached adapter's peft_type, or "".
func (e *Engine) AdapterType() string {
	if e.adapter == nil {
		return ""
	}
	return e.adapter.PeftType()
}

// DropAdapter removes the attached adapter, if any.
func (e *Engine) DropAdapter() error {
	if e.adapter == nil {
		return nil
	}
	err := e.adapter.Unload()
	e.adapter = nil
	if err != nil {
		return fmt.Errorf("unload adapter: %w", err)
	}
	return nil
}

// Close frees the adapter and the model.
func (e *Engine) Close() {
	if e.m == nil {
		return
	}
	_ = e.DropAdapter() // the model goes too
	e.m.Free()
	e.m = nil
}
