package peft

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/graft-ml/graft/core/formats/safetensors"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/tensor"
)

// BottleneckWeightsFileName is the tensor file of a bottleneck adapter
// directory: AdapterHub's name for safetensors weights.
//
// A bottleneck adapter directory follows what AdapterHub's
// model.save_adapter(dir, name, use_safetensors=True) writes:
//
//	adapter_config.json   {"config": {BnConfig fields}, "hidden_size": Dim,
//	                       "model_class": "LlamaForCausalLM", "model_name": ...,
//	                       "model_type": "llama", "name": NAME,
//	                       "peft_type": "BOTTLENECK", "version": "graft.1"}
//	adapter.safetensors   F32 tensors, no metadata
//
// The config holds every BnConfig field with keys sorted, indented by two
// spaces. Its "config" object says mh_adapter (true for Houlsby, false for
// Pfeiffer), output_adapter (true), reduction_factor, non_linearity,
// init_weights, dropout, scaling, leave_out, and fixes the placement
// options graft implements (original_ln_before false, original_ln_after
// true, residual_before_ln true, ln_before/ln_after false, is_parallel
// false; see NewBottleneck). peft_type is graft's addition for LoadAdapter;
// AdapterHub ignores it, and LoadAdapter reads files without it.
//
// For each adapted decoder layer N and location LOC, "attention_adapters"
// (Houlsby only) and "output_adapters", the weights file holds
//
//	model.layers.N.LOC.adapters.NAME.adapter_down.0.weight  [width, Dim]
//	model.layers.N.LOC.adapters.NAME.adapter_down.0.bias    [width]
//	model.layers.N.LOC.adapters.NAME.adapter_up.weight      [Dim, width]
//	model.layers.N.LOC.adapters.NAME.adapter_up.bias        [Dim]
//
// with width = max(1, floor(Dim / reduction_factor)): the state-dict keys
// of AdapterHub's Adapter module (adapter_down is Sequential(Linear,
// activation)) inside LlamaForCausalLM.
const BottleneckWeightsFileName = "adapter.safetensors"

// bnTorchWeightsFileName is AdapterHub's pickle weights file, which graft
// does not read.
const bnTorchWeightsFileName = "pytorch_adapter.bin"

// Files encodes the adapter in AdapterHub's layout (see
// BottleneckWeightsFileName).
func (ad *bottleneckAdapter) Files() (Files, error) {
	if ad.unloaded {
		return nil, errors.New("bottleneck adapter: unloaded")
	}
	cfgJSON, err := encodeBottleneckConfig(ad.cfg, ad.m.Config)
	if err != nil {
		return nil, err
	}
	var tensors []*tensor.Tensor
	for _, p := range ad.Params() {
		vals, err := readAll(ad.m.Backend, p.Value)
		if err != nil {
			return nil, fmt.Errorf("bottleneck adapter: reading %s: %w", p.Name, err)
		}
		if i := firstNonFinite(vals); i >= 0 {
			return nil, fmt.Errorf("refusing to save tensor %q: element %d is %g", p.Name, i, vals[i])
		}
		t, err := tensor.FromFloat32(p.Name, p.Value.Shape(), vals)
		if err != nil {
			return nil, err
		}
		tensors = append(tensors, t)
	}
	var weights bytes.Buffer
	if err := safetensors.Write(&weights, tensors, nil); err != nil {
		return nil, err
	}
	return Files{ConfigFileName: cfgJSON, BottleneckWeightsFileName: weights.Bytes()}, nil
}

func init() {
	for _, kind := range []string{BottleneckHoulsby, BottleneckPfeiffer} {
		Register(Method{
			Name: kind, PeftType: PeftTypeBottleneck,
			Summary: map[string]string{
				BottleneckHoulsby:  "Houlsby adapters: bottleneck MLPs after attention and after the feed-forward block (AdapterHub)",
				BottleneckPfeiffer: "Pfeiffer adapters: one bottleneck MLP after the feed-forward block (AdapterHub)",
			}[kind],
			Defaults: map[string]any{"reduction_factor": 16, "non_linearity": map[string]string{
				BottleneckHoulsby: "swish", BottleneckPfeiffer: "relu"}[kind]},
			LR: 3e-2,
			Flags: map[string]string{"model": "model_name", "reduction-factor": "reduction_factor",
				"non-linearity": "non_linearity", "dropout": "dropout"},
			New: func(m *model.Model, config []byte, rng *rand.Rand) (Adapter, error) {
				cfg, err := parseNewBottleneck(config, kind)
				if err != nil {
					return nil, err
				}
				return NewBottleneck(m, cfg, rng)
			},
			Load: loadBottleneck,
		})
	}
}

// loadBottleneck reads a bottleneck adapter directory (adapter_config.json
// and adapter.safetensors, as written by Files or by AdapterHub with
// use_safetensors=True) from src and attaches it to m. The config must
// describe a placement graft implements (see NewBottleneck); every tensor
// it implies must be present with its exact shape, a float dtype and finite
// values, and the file may hold no other tensor; otherwise nothing changes
// and the error names the file and the tensor. Warnings list ignored keys.
func loadBottleneck(m *model.Model, src Source) (Adapter, []string, error) {
	data, cfgPath, err := readConfigFile(src)
	if err != nil {
		return nil, nil, err
	}
	fc, warnings, err := parseBottleneckConfig(data)
	if err != nil {
		return nil, nil, fmt.Errorf("bottleneck config %s: %w", cfgPath, err)
	}
	if fc.hiddenSize != 0 && fc.hiddenSize != m.Config.Dim {
		return nil, nil, fmt.Errorf("bottleneck config %s: hidden_size %d does not match the model's %d", cfgPath, fc.hiddenSize, m.Config.Dim)
	}
	if fc.modelType != "" && m.Config.Arch != "" && fc.modelType != m.Config.Arch {
		warnings = append(warnings, fmt.Sprintf("model_type %q differs from the model's %q", fc.modelType, m.Config.Arch))
	}
	sort.Strings(warnings)
	warnings = prefixWarnings(cfgPath, warnings)
	cfg := fc.cfg
	for _, l := range cfg.LeaveOut {
		if l >= len(m.Layers) {
			return nil, nil, fmt.Errorf("bottleneck config %s: leave_out layer %d is outside the model's %d layers", cfgPath, l, len(m.Layers))
		}
	}
	values, err := readBottleneckTensors(src, m, cfg)
	if err != nil {
		return nil, nil, err
	}
	ad, err := buildBottleneck(m, cfg, func(s *bnSite) (wd, bd, wu, bu []float32, err error) {
		get := func(suffix string) []float32 { return values[s.tensorName(suffix)] }
		return get("adapter_down.0.weight"), get("adapter_down.0.bias"), get("adapter_up.weight"), get("adapter_up.bias"), nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("bottleneck adapter %s: %w", src.Name(), err)
	}
	return ad, warnings, nil
}

// bnSuffixes are the tensors of one site.
var bnSuffixes = []string{"adapter_down.0.weight", "adapter_down.0.bias", "adapter_up.weight", "adapter_up.bias"}

// readBottleneckTensors checks the weights file against what cfg implies
// for m and returns every tensor's values by name.
func readBottleneckTensors(src Source, m *model.Model, cfg BottleneckConfig) (map[string][]float32, error) {
	dim := m.Config.Dim
	width := bottleneckWidth(dim, cfg.ReductionFactor)
	shapes := map[string]tensor.Shape{
		"adapter_down.0.weight": {width, dim}, "adapter_down.0.bias": {width},
		"adapter_up.weight": {dim, width}, "adapter_up.bias": {dim},
	}
	probe := &bottleneckAdapter{m: m, cfg: cfg}
	expected := map[string]tensor.Shape{}
	for _, s := range bnSitesFor(probe, len(m.Layers)) {
		for _, suffix := range bnSuffixes {
			expected[s.tensorName(suffix)] = shapes[suffix]
		}
	}
	return readTensorsIn(src, BottleneckWeightsFileName, expected,
		func(name string) string { return explainBottleneckTensor(m, cfg, name) },
		func(string) string {
			return fmt.Sprintf("hidden size %d, reduction_factor %g: bottleneck width %d", dim, cfg.ReductionFactor, width)
		})
}

// explainBottleneckTensor says why a tensor the config does not imply is
// refused.
func explainBottleneckTensor(m *model.Model, cfg BottleneckConfig, name string) string {
	const want = "model.layers.N.{attention,output}_adapters.adapters.NAME.{adapter_down.0,adapter_up}.{weight,bias}"
	rest, ok := strings.CutPrefix(name, "model.layers.")
	if !ok {
		return "not a bottleneck adapter tensor (want " + want + ")"
	}
	layerStr, rest, _ := strings.Cut(rest, ".")
	loc, rest, _ := strings.Cut(rest, ".adapters.")
	adapterName, suffix, _ := strings.Cut(rest, ".")
	layer, err := strconv.Atoi(layerStr)
	attnOK, _ := cfg.sites()
	switch {
	case err != nil || (loc != "attention_adapters" && loc != "output_adapters"):
		return "not a bottleneck adapter tensor (want " + want + ")"
	case adapterName != cfg.Name:
		return fmt.Sprintf("belongs to adapter %q, but adapter_config.json names %q", adapterName, cfg.Name)
	case !slices.Contains(bnSuffixes, suffix):
		return fmt.Sprintf("%q is not one of the adapter's tensors %v", suffix, bnSuffixes)
	case layer >= len(m.Layers):
		return fmt.Sprintf("layer %d does not exist in the model (%d layers)", layer, len(m.Layers))
	case loc == "attention_adapters" && !attnOK:
		return "the config has mh_adapter false (Pfeiffer): there are no attention adapters"
	}
	return fmt.Sprintf("layer %d is in the config's leave_out %v", layer, cfg.LeaveOut)
}
