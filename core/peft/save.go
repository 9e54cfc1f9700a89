package peft

import (
	"bytes"
	"fmt"
	"math"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/formats/safetensors"
	"github.com/graft-ml/graft/core/tensor"
)

// WeightsFileName is the tensor file of a PEFT adapter directory.
const WeightsFileName = "adapter_model.safetensors"

// ConfigFileName is the config file of a PEFT adapter directory.
const ConfigFileName = configFileName

// Save writes adapter name to dir in PEFT's format: adapter_config.json
// (sorted keys, inference_mode true) and adapter_model.safetensors with
// metadata {"format": "pt"} and F32 tensors
// base_model.model.<module>.lora_A.weight [r, in] and .lora_B.weight
// [out, r]. Rows of B on projections stored in Meta's RoPE order (GGUF q/k)
// are permuted to Hugging Face's order, so the adapter applies unchanged
// to the Hugging Face model.
//
// The files are written as the package-level Save describes.
func (mg *Manager) Save(dir, name string) error {
	files, err := mg.Files(name)
	if err != nil {
		return fmt.Errorf("peft adapter %s: %w", dir, err)
	}
	if err := WriteDir(dir, files); err != nil {
		return fmt.Errorf("peft adapter %s: %w", dir, err)
	}
	return nil
}

// Files encodes adapter name in PEFT's format, as Save writes it.
func (mg *Manager) Files(name string) (Files, error) {
	a, err := mg.adapter(name)
	if err != nil {
		return nil, err
	}
	cfg := a.cfg
	cfg.InferenceMode = true
	cfgJSON, err := EncodeConfig(cfg)
	if err != nil {
		return nil, err
	}
	var tensors []*tensor.Tensor
	for _, w := range a.modules {
		lin := w.layer.lin
		av, err := readAll(mg.b, w.A)
		if err != nil {
			return nil, fmt.Errorf("%s lora_A: %w", lin.Name, err)
		}
		bv, err := readAll(mg.b, w.B)
		if err != nil {
			return nil, fmt.Errorf("%s lora_B: %w", lin.Name, err)
		}
		if lin.RoPEPermuted > 0 {
			if bv, err = permuteRoPERows(bv, lin.Out, w.r, lin.RoPEPermuted, true); err != nil {
				return nil, fmt.Errorf("%s lora_B: %w", lin.Name, err)
			}
		}
		for _, p := range []struct {
			which string
			vals  []float32
			shape tensor.Shape
		}{
			{"lora_A", av, tensor.Shape{w.r, lin.In}},
			{"lora_B", bv, tensor.Shape{lin.Out, w.r}},
		} {
			tn := tensorName(lin.Name, p.which)
			if i := firstNonFinite(p.vals); i >= 0 {
				return nil, fmt.Errorf("refusing to save tensor %q: element %d is %g", tn, i, p.vals[i])
			}
			t, err := tensor.FromFloat32(tn, p.shape, p.vals)
			if err != nil {
				return nil, err
			}
			tensors = append(tensors, t)
		}
	}
	var weights bytes.Buffer
	if err := safetensors.Write(&weights, tensors, map[string]string{"format": "pt"}); err != nil {
		return nil, err
	}
	return Files{ConfigFileName: cfgJSON, WeightsFileName: weights.Bytes()}, nil
}

func readAll(b backend.Backend, buf backend.Buffer) ([]float32, error) {
	out := make([]float32, buf.Shape().Numel())
	if err := b.Read(buf, 0, out); err != nil {
		return nil, err
	}
	return out, nil
}

func firstNonFinite(vals []float32) int {
	for i, v := range vals {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return i
		}
	}
	return -1
}

// permuteRoPERows reorders the rows of a [rows, cols] matrix between Meta's
// interleaved RoPE order (GGUF) and Hugging Face's rotate-half order. Within
// each head of d rows, HF row s·(d/2)+p is Meta row 2p+s (s ∈ {0,1},
// p < d/2).
func permuteRoPERows(vals []float32, rows, cols, heads int, toHF bool) ([]float32, error) {
	if heads <= 0 || rows%heads != 0 || (rows/heads)%2 != 0 {
		return nil, fmt.Errorf("%d rows do not split into %d heads of even size", rows, heads)
	}
	d := rows / heads
	out := make([]float32, len(vals))
	for h := range heads {
		for s := range 2 {
			for p := range d / 2 {
				hf := h*d + s*(d/2) + p
				meta := h*d + 2*p + s
				from, to := meta, hf
				if !toHF {
					from, to = hf, meta
				}
				copy(out[to*cols:(to+1)*cols], vals[from*cols:(from+1)*cols])
			}
		}
	}
	return out, nil
}
