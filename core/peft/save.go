package peft

import (
	"bytes"
	"fmt"
	"math"
	"slices"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/formats/safetensors"
	"github.com/graft-ml/graft/core/model"
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

// Files encodes adapter name in PEFT's format, as Save writes it. A DoRA
// adapter also gets base_model.model.<module>.lora_magnitude_vector [out]
// per layer.
func (mg *Manager) Files(name string) (Files, error) {
	a, err := mg.adapter(name)
	if err != nil {
		return nil, err
	}
	return mg.encode(a, a.cfg, func(w *loraWeights) (av, bv []float32, r int, err error) {
		if av, err = readAll(mg.b, w.A); err != nil {
			return nil, nil, 0, err
		}
		if bv, err = readAll(mg.b, w.B); err != nil {
			return nil, nil, 0, err
		}
		return av, bv, w.r, nil
	})
}

// FilesConverted encodes an adapter initialised by PiSSA or OLoRA (whose
// base weights are residuals) as a plain LoRA adapter for the original
// base weights, as PEFT's save_pretrained does with
// path_initial_model_for_weight_conversion: with A₀, B₀ the initial
// matrices, s·B·A − s·B₀·A₀ is the whole change of the weight, so
// A' = [A; A₀] (2r × in) and B' = [B, −B₀] (out × 2r) with r' = 2r and
// lora_alpha' = 2·lora_alpha (√2·lora_alpha with rsLoRA), rank_pattern and
// alpha_pattern doubled alike, and init_lora_weights true. PEFT refuses the
// conversion with rsLoRA and a rank or alpha pattern, and so does graft; a
// DoRA adapter, whose magnitude PEFT's conversion drops, is refused too.
func (mg *Manager) FilesConverted(name string) (Files, error) {
	a, err := mg.adapter(name)
	if err != nil {
		return nil, err
	}
	cfg := a.cfg
	switch {
	case !cfg.InitLoraWeights.performedOnLoad():
		return nil, fmt.Errorf("lora: adapter %q: init_lora_weights %q did not change the base weights; there is nothing to convert (use Files)", name, string(cfg.InitLoraWeights))
	case cfg.UseDoRA:
		return nil, fmt.Errorf("lora: adapter %q: a DoRA adapter cannot be converted to plain LoRA (its magnitude would be lost)", name)
	case cfg.UseRSLoRA && (len(cfg.RankPattern) > 0 || len(cfg.AlphaPattern) > 0):
		return nil, fmt.Errorf("lora: adapter %q: converting is not supported with use_rslora together with rank_pattern or alpha_pattern (as in PEFT)", name)
	}
	for _, w := range a.modules {
		if w.init0A == nil {
			return nil, fmt.Errorf("lora: adapter %q: %s has no initial matrices to convert against", name, w.layer.lin.Name)
		}
	}
	cfg.InitLoraWeights = InitDefault
	cfg.R *= 2
	if cfg.UseRSLoRA {
		cfg.LoraAlpha *= math.Sqrt2
	} else {
		cfg.LoraAlpha *= 2
	}
	cfg.RankPattern = slices.Clone(cfg.RankPattern)
	for i := range cfg.RankPattern {
		cfg.RankPattern[i].Value *= 2
	}
	cfg.AlphaPattern = slices.Clone(cfg.AlphaPattern)
	for i := range cfg.AlphaPattern {
		cfg.AlphaPattern[i].Value *= 2
	}
	return mg.encode(a, cfg, func(w *loraWeights) (av, bv []float32, r int, err error) {
		in, out := w.layer.lin.In, w.layer.lin.Out
		if av, err = readAll(mg.b, w.A); err != nil {
			return nil, nil, 0, err
		}
		bNow, err := readAll(mg.b, w.B)
		if err != nil {
			return nil, nil, 0, err
		}
		av = append(av[:w.r*in:w.r*in], w.init0A...)
		bv = make([]float32, out*2*w.r)
		for o := range out {
			row := bv[o*2*w.r : (o+1)*2*w.r]
			copy(row, bNow[o*w.r:(o+1)*w.r])
			for j, v := range w.init0B[o*w.r : (o+1)*w.r] {
				row[w.r+j] = -v
			}
		}
		return av, bv, 2 * w.r, nil
	})
}

// encode writes cfg and, per layer, the A and B that values returns (of
// rank r, in the model's row order) and DoRA's magnitude.
func (mg *Manager) encode(a *adapter, cfg LoraConfig, values func(*loraWeights) (av, bv []float32, r int, err error)) (Files, error) {
	cfg.InferenceMode = true
	cfgJSON, err := EncodeConfig(cfg)
	if err != nil {
		return nil, err
	}
	var tensors []*tensor.Tensor
	for _, w := range a.modules {
		lin := w.layer.lin
		av, bv, r, err := values(w)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", lin.Name, err)
		}
		var mv []float32
		if w.dora != nil {
			if mv, err = readAll(mg.b, w.dora.m); err != nil {
				return nil, fmt.Errorf("%s lora_magnitude_vector: %w", lin.Name, err)
			}
		}
		if lin.RoPEPermuted > 0 {
			if bv, err = permuteRoPERows(bv, lin.Out, r, lin.RoPEPermuted, true); err != nil {
				return nil, fmt.Errorf("%s lora_B: %w", lin.Name, err)
			}
			if mv != nil {
				if mv, err = permuteRoPERows(mv, lin.Out, 1, lin.RoPEPermuted, true); err != nil {
					return nil, fmt.Errorf("%s lora_magnitude_vector: %w", lin.Name, err)
				}
			}
		}
		parts := []struct {
			name  string
			vals  []float32
			shape tensor.Shape
		}{
			{tensorName(lin.Name, "lora_A"), av, tensor.Shape{r, lin.In}},
			{tensorName(lin.Name, "lora_B"), bv, tensor.Shape{lin.Out, r}},
		}
		if mv != nil {
			parts = append(parts, struct {
				name  string
				vals  []float32
				shape tensor.Shape
			}{magnitudeName(lin.Name), mv, tensor.Shape{lin.Out}})
		}
		for _, p := range parts {
			if i := firstNonFinite(p.vals); i >= 0 {
				return nil, fmt.Errorf("refusing to save tensor %q: element %d is %g", p.name, i, p.vals[i])
			}
			t, err := tensor.FromFloat32(p.name, p.shape, p.vals)
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

// permuteRoPERows moves rows between Meta's and Hugging Face's RoPE
// orders; see model.PermuteRoPERows.
var permuteRoPERows = model.PermuteRoPERows

// SaveConverted writes FilesConverted(name) into dir, as Save does.
func (mg *Manager) SaveConverted(dir, name string) error {
	files, err := mg.FilesConverted(name)
	if err != nil {
		return fmt.Errorf("peft adapter %s: %w", dir, err)
	}
	if err := WriteDir(dir, files); err != nil {
		return fmt.Errorf("peft adapter %s: %w", dir, err)
	}
	return nil
}
