package peft

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"

	"github.com/graft-ml/graft/core/tensor"
)

// maxConfigSize bounds adapter_config.json; a real one is a few kilobytes
// even with a rank_pattern for every layer of a large model.
const maxConfigSize = 16 << 20

// ReadLoraConfig reads and validates an adapter_config.json. Unknown keys are
// ignored and reported in warnings, each prefixed with the path.
func ReadLoraConfig(path string) (LoraConfig, []string, error) {
	data, err := readLimited(path, maxConfigSize)
	if err != nil {
		return LoraConfig{}, nil, fmt.Errorf("peft config %s: %w", path, err)
	}
	return parseConfigFile(data, path)
}

// parseConfigFile parses and validates adapter_config.json read from path.
func parseConfigFile(data []byte, path string) (LoraConfig, []string, error) {
	cfg, warnings, err := ParseConfig[LoraConfig](data)
	if err != nil {
		return LoraConfig{}, nil, fmt.Errorf("peft config %s: %w", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return LoraConfig{}, nil, fmt.Errorf("peft config %s: %w", path, err)
	}
	switch init := cfg.InitLoraWeights; {
	case init.performedOnLoad() && init != InitPiSSA && init != InitOLoRA:
		warnings = append(warnings, fmt.Sprintf("init_lora_weights %q: the base weights become the residual of a randomized SVD, as PEFT does on load; it differs slightly from the one the adapter was trained on unless it was saved converted to plain LoRA", string(init)))
	case init.modifiesBase() && !init.performedOnLoad():
		warnings = append(warnings, fmt.Sprintf("init_lora_weights %q changes the base weights; the adapter matches PEFT on the original base model only if it was saved converted to plain LoRA", string(init)))
	}
	for i, w := range warnings {
		warnings[i] = path + ": " + w
	}
	return cfg, warnings, nil
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than the %d-byte limit", limit)
	}
	return data, nil
}

// Load reads a PEFT LoRA adapter directory (adapter_config.json and
// adapter_model.safetensors) and adds it to the model as adapter name,
// inactive unless it is the first adapter. A DoRA adapter (use_dora) also
// needs each layer's lora_magnitude_vector. As PEFT does, an adapter whose
// init_lora_weights is "pissa", "pissa_niter_N" or "olora" first replaces
// the base weights by the residual of that initialisation (recomputed from
// the current weights; a random sketch for pissa_niter_N) and then loads
// A and B, which reproduces the trained model for "pissa" and "olora". Every tensor the config implies
// must be present with its exact shape, a float dtype (F32, F16, BF16 or
// F64; converted to F32) and finite values, and the file may hold no other
// tensor; otherwise Load changes nothing and the error names the file and
// tensor. Warnings list config keys that were ignored.
func (mg *Manager) Load(dir, name string) (warnings []string, err error) {
	return mg.LoadFrom(Dir(dir), name)
}

// LoadFrom is Load reading the adapter's files from src (a directory, or
// files held in memory such as an unpacked bundle).
func (mg *Manager) LoadFrom(src Source, name string) (warnings []string, err error) {
	if err := checkAdapterName(name); err != nil {
		return nil, err
	}
	if _, dup := mg.adapters[name]; dup {
		return nil, fmt.Errorf("lora: adapter %q already exists", name)
	}
	data, cfgPath, err := readConfigFile(src)
	if err != nil {
		return nil, err
	}
	cfg, warnings, err := parseConfigFile(data, cfgPath)
	if err != nil {
		return nil, err
	}
	_, targets, err := resolveTargets(mg.m, cfg)
	if err != nil {
		return nil, fmt.Errorf("peft config %s: %w", cfgPath, err)
	}
	values, err := readAdapterTensors(src, mg, targets, cfg.UseDoRA)
	if err != nil {
		return nil, err
	}
	init := cfg.InitLoraWeights
	if init.performedOnLoad() && len(mg.Merged()) > 0 {
		return nil, fmt.Errorf("peft config %s: init_lora_weights %q changes the base weights; unmerge %q first", cfgPath, string(init), mg.Merged())
	}
	rng := rand.New(rand.NewPCG(0x5EED, 0)) // a fixed sketch for pissa_niter_N
	err = mg.addAdapter(name, cfg, func(t target) (layerInit, error) {
		v := values[t.lin.Name]
		li := layerInit{a: v[0], b: v[1], mag: v[2]}
		if init.performedOnLoad() {
			p, err := principalInit(mg.b, t, init, rng)
			if err != nil {
				return layerInit{}, fmt.Errorf("peft adapter %s: %w", src.Name(), err)
			}
			li.residual, li.a0, li.b0 = p.residual, p.a, p.b
		}
		return li, nil
	})
	if err != nil {
		return nil, err
	}
	return warnings, nil
}

// readAdapterTensors checks the safetensors file against the targets and
// returns each module's A, B and (with DoRA) magnitude values, rows of B
// and of the magnitude in the model's order.
func readAdapterTensors(src Source, mg *Manager, targets []target, dora bool) (map[string][3][]float32, error) {
	type want struct {
		t     *target
		which int // 0: lora_A, 1: lora_B, 2: lora_magnitude_vector
	}
	wants := map[string]want{}
	expected := map[string]tensor.Shape{}
	for i := range targets {
		t := &targets[i]
		wants[tensorName(t.lin.Name, "lora_A")] = want{t, 0}
		expected[tensorName(t.lin.Name, "lora_A")] = tensor.Shape{t.r, t.lin.In}
		wants[tensorName(t.lin.Name, "lora_B")] = want{t, 1}
		expected[tensorName(t.lin.Name, "lora_B")] = tensor.Shape{t.lin.Out, t.r}
		if dora {
			wants[magnitudeName(t.lin.Name)] = want{t, 2}
			expected[magnitudeName(t.lin.Name)] = tensor.Shape{t.lin.Out}
		}
	}
	vals, err := readExactTensors(src, expected, func(name string) string { return explainExtra(mg, name) })
	if err != nil {
		return nil, err
	}
	out := map[string][3][]float32{}
	for name, v := range vals {
		w := wants[name]
		if lin := w.t.lin; w.which > 0 && lin.RoPEPermuted > 0 {
			cols := map[bool]int{true: 1, false: w.t.r}[w.which == 2]
			if v, err = permuteRoPERows(v, lin.Out, cols, lin.RoPEPermuted, false); err != nil {
				return nil, fmt.Errorf("safetensors %s: tensor %q: %w", sourcePath(src, WeightsFileName), name, err)
			}
		}
		group := out[w.t.lin.Name]
		group[w.which] = v
		out[w.t.lin.Name] = group
	}
	return out, nil
}

// explainExtra says why a tensor the config does not imply is refused.
func explainExtra(mg *Manager, name string) string {
	rest, ok := strings.CutPrefix(name, "base_model.model.")
	if !ok {
		return "not a PEFT LoRA tensor name (want base_model.model.<module>.lora_A.weight or .lora_B.weight)"
	}
	if module, ok := strings.CutSuffix(rest, ".lora_magnitude_vector"); ok {
		if _, ok := mg.m.Linear(module); !ok {
			return fmt.Sprintf("module %s does not exist in the model", module)
		}
		return "a DoRA magnitude, but the config's use_dora is false"
	}
	for _, which := range []string{".lora_A.", ".lora_B."} {
		module, suffix, ok := strings.Cut(rest, which)
		if !ok {
			continue
		}
		if suffix != "weight" {
			return fmt.Sprintf("has %q after %s; want %sweight (an adapter name in the key?)", suffix, strings.Trim(which, "."), which)
		}
		if _, ok := mg.m.Linear(module); !ok {
			return fmt.Sprintf("module %s does not exist in the model", module)
		}
		return fmt.Sprintf("module %s is not selected by the config's target_modules", module)
	}
	return "not a LoRA weight; graft's LoRA loads only lora_A, lora_B and (DoRA) lora_magnitude_vector tensors"
}
