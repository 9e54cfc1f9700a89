package model

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/tensor"
)

// Load reads a model from a GGUF file or a Hugging Face directory (or its
// config.json) and uploads the weights to b.
func Load(path string, b backend.Backend) (*Model, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", path, err)
	}
	if st.IsDir() {
		return LoadHF(path, b)
	}
	if filepath.Base(path) == "config.json" {
		return LoadHF(filepath.Dir(path), b)
	}
	return LoadGGUF(path, b)
}

// tensorSource reads named tensors from a file format.
type tensorSource interface {
	ReadTensor(name string) (*tensor.Tensor, error)
}

// loader uploads tensors by name and checks their shapes.
type loader struct {
	src    tensorSource
	b      backend.Backend
	where  string // file or directory, for errors
	dtypes map[string]int
	loaded []backend.Buffer
	// normShift is added to every RMSNorm weight: Gemma's Hugging Face
	// checkpoints store w for a norm that multiplies by 1+w, which graft
	// (like llama.cpp's GGUF) holds as 1+w.
	normShift float32
}

// norm loads an RMSNorm weight of n elements, shifted by ld.normShift.
func (ld *loader) norm(name string, n int) (backend.Buffer, error) {
	if ld.normShift == 0 {
		return ld.load(name, n)
	}
	return ld.loadWith(name, func(t *tensor.Tensor) (*tensor.Tensor, error) {
		vals, err := t.Float32s()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ld.where, err)
		}
		for i := range vals {
			vals[i] += ld.normShift
		}
		return tensor.FromFloat32(name, t.Shape, vals)
	}, n)
}

func (ld *loader) load(name string, shape ...int) (backend.Buffer, error) {
	return ld.loadWith(name, nil, shape...)
}

// loadWith loads a tensor, passing it through edit (when not nil) after the
// shape check.
func (ld *loader) loadWith(name string, edit func(*tensor.Tensor) (*tensor.Tensor, error), shape ...int) (backend.Buffer, error) {
	t, err := ld.src.ReadTensor(name)
	if err != nil {
		return nil, err
	}
	want := tensor.Shape(shape)
	got := t.Shape
	// A 1-D weight may be stored with a leading unit dimension, and GGUF
	// drops trailing unit dimensions; compare element layouts.
	if !got.Equal(want) && !(got.Numel() == want.Numel() && squeeze(got).Equal(squeeze(want))) {
		return nil, fmt.Errorf("%s: tensor %q has shape %v, the config implies %v", ld.where, name, got, want)
	}
	t.Shape = want
	if !t.DType.Float() {
		return nil, fmt.Errorf("%s: tensor %q has non-float dtype %v", ld.where, name, t.DType)
	}
	if edit != nil {
		if t, err = edit(t); err != nil {
			return nil, err
		}
	}
	if t.DType == tensor.F64 {
		vals, err := t.Float32s()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ld.where, err)
		}
		if t, err = tensor.FromFloat32(name, want, vals); err != nil {
			return nil, err
		}
	}
	buf, err := ld.b.Load(t)
	if err != nil {
		return nil, fmt.Errorf("%s: tensor %q: %w", ld.where, name, err)
	}
	if ld.dtypes == nil {
		ld.dtypes = map[string]int{}
	}
	ld.dtypes[t.DType.String()]++
	ld.loaded = append(ld.loaded, buf)
	return buf, nil
}

// optional loads a tensor that may be absent.
func (ld *loader) optional(has func(string) bool, name string, shape ...int) (backend.Buffer, error) {
	if !has(name) {
		return nil, nil
	}
	return ld.load(name, shape...)
}

// abort frees what was loaded so far.
func (ld *loader) abort() {
	for _, buf := range ld.loaded {
		ld.b.Free(buf)
	}
}

func squeeze(s tensor.Shape) tensor.Shape {
	var out tensor.Shape
	for _, d := range s {
		if d != 1 {
			out = append(out, d)
		}
	}
	return out
}

// hfName returns the Hugging Face module name of a decoder projection (or
// of a q/k norm, which sits in self_attn too).
func hfName(layer int, module string) string {
	block := "self_attn"
	if strings.HasSuffix(module, "gate_proj") || strings.HasSuffix(module, "up_proj") || strings.HasSuffix(module, "down_proj") {
		block = "mlp"
	}
	return fmt.Sprintf("model.layers.%d.%s.%s", layer, block, module)
}
