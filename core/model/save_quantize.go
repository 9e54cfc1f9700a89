package model

import (
	"fmt"

	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/quantmix"
	"github.com/graft-ml/graft/core/tensor"
)

// ggmlQuantizationVersion is ggml's GGML_QNT_VERSION, which llama.cpp's
// quantize tool writes as general.quantization_version.
const ggmlQuantizationVersion = 2

// quantizedTypes chooses the type of each GGUF tensor (names[i] for
// ws[i]) under opt.Quantize as llama.cpp's quantize tool would; it
// returns nil when opt asks for no preset. Tensors the preset leaves
// alone (norms, biases) keep the type the save would give them.
func (m *Model) quantizedTypes(ws []weightOut, names []string, opt SaveOptions) ([]tensor.DType, error) {
	if opt.Quantize == 0 {
		return nil, nil
	}
	ts := make([]quantmix.Tensor, len(ws))
	for i, w := range ws {
		src, ok := gguf.GGMLType(w.dtype)
		if !ok {
			src = quantmix.F32
		}
		ts[i] = quantmix.Tensor{Name: names[i], Shape: w.shape, Type: src}
	}
	c := m.Config
	arch := c.Arch
	if arch == "" {
		arch = "llama"
	}
	plan, err := quantmix.Plan(opt.Quantize, quantmix.Model{Arch: arch, Layers: c.Layers, Heads: c.Heads, KVHeads: c.KVHeads}, ts)
	if err != nil {
		return nil, err
	}
	out := make([]tensor.DType, len(ws))
	for i, ch := range plan {
		dt, ok := gguf.DTypeOfGGML(ch.Type)
		if !ok {
			return nil, fmt.Errorf("%s: %v puts %s on it, which graft cannot encode yet", names[i], opt.Quantize, quantmix.TypeName(ch.Type))
		}
		if ch.Fallback != "" {
			opt.warn("%s: %s (as llama.cpp falls back)", names[i], ch.Fallback)
		}
		out[i] = dt
	}
	return out, nil
}
