package peft

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/formats/safetensors"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/tensor"
)

// bnGoldenConfig is the adapter the golden files describe: Houlsby on the
// tiny model's layer 0 only.
var bnGoldenConfig = BottleneckConfig{Kind: "Houlsby", Name: "story", ReductionFactor: 4, NonLinearity: "GELU",
	Dropout: 0.1, LeaveOut: []int{1}, ModelName: "test/tiny-llama"}

// TestBottleneckGoldenLayout pins the saved layout: adapter_config.json byte
// for byte (AdapterHub's keys, sorted, two-space indent) and the names,
// dtypes and shapes of the tensors, with no safetensors metadata, as
// AdapterHub's save_file writes.
func TestBottleneckGoldenLayout(t *testing.T) {
	wantCfg, err := os.ReadFile("testdata/bottleneck_adapter_config.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	wantTensors, err := os.ReadFile("testdata/bottleneck_tensors.golden.txt")
	if err != nil {
		t.Fatal(err)
	}
	m := tinyModel(t, 1)
	ad := newBottleneck(t, m, bnGoldenConfig, 1)
	bnRandomize(t, ad, 0.5, 2)
	files, err := ad.Files()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Errorf("%d files, want adapter_config.json and adapter.safetensors", len(files))
	}
	if got := files[ConfigFileName]; !bytes.Equal(got, wantCfg) {
		t.Errorf("adapter_config.json:\n%s\nwant\n%s", got, wantCfg)
	}
	weights := files[BottleneckWeightsFileName]
	f, err := safetensors.Parse(bytes.NewReader(weights), int64(len(weights)), BottleneckWeightsFileName)
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata != nil {
		t.Errorf("metadata %v, want none", f.Metadata)
	}
	var listing strings.Builder
	for _, ti := range f.Tensors {
		fmt.Fprintf(&listing, "%s %s %v\n", ti.Name, ti.DTypeName, []int(ti.Shape))
	}
	if listing.String() != string(wantTensors) {
		t.Errorf("tensors:\n%s\nwant\n%s", listing.String(), wantTensors)
	}
	// The stored values are the parameters'.
	for _, p := range ad.Params() {
		tt, err := f.ReadTensor(p.Name)
		if err != nil {
			t.Fatal(err)
		}
		vals, _ := tt.Float32s()
		if !reflect.DeepEqual(vals, read(t, m.Backend, p.Value)) {
			t.Errorf("%s: stored values differ from the parameter", p.Name)
		}
	}

	// Parsing the golden config gives back the configuration, resolved.
	fc, warnings, err := parseBottleneckConfig(wantCfg)
	if err != nil || len(warnings) > 0 {
		t.Fatalf("parse: %v %q", err, warnings)
	}
	want, _ := bnGoldenConfig.resolved()
	if !reflect.DeepEqual(fc.cfg, want) || fc.hiddenSize != 16 || fc.modelType != "llama" {
		t.Errorf("parsed %+v (hidden %d, type %q), want %+v", fc.cfg, fc.hiddenSize, fc.modelType, want)
	}
	if again, _ := encodeBottleneckConfig(fc.cfg, m.Config); !bytes.Equal(again, wantCfg) {
		t.Errorf("parse and encode changed the config:\n%s", again)
	}
}

// bnEditConfig returns the golden config with obj edited: a key set to a
// JSON value, or removed when the value is "".
func bnEditConfig(t *testing.T, edits map[string]string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/bottleneck_adapter_config.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		t.Fatal(err)
	}
	var inner map[string]json.RawMessage
	if err := json.Unmarshal(top["config"], &inner); err != nil {
		t.Fatal(err)
	}
	for key, v := range edits {
		obj := top
		if k, ok := strings.CutPrefix(key, "config."); ok {
			obj, key = inner, k
		}
		if v == "" {
			delete(obj, key)
		} else {
			obj[key] = json.RawMessage(v)
		}
	}
	if _, ok := top["config"]; ok {
		top["config"], _ = json.Marshal(inner)
	}
	out, err := json.Marshal(top)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// bnGoldenFiles saves the golden adapter of the tiny model m and returns
// its files; the adapter is unloaded again.
func bnGoldenFiles(t *testing.T, m *model.Model) Files {
	t.Helper()
	ad := newBottleneck(t, m, bnGoldenConfig, 1)
	bnRandomize(t, ad, 0.5, 2)
	files, err := ad.Files()
	if err != nil {
		t.Fatal(err)
	}
	if err := ad.Unload(); err != nil {
		t.Fatal(err)
	}
	return files
}

func bnNoHooks(t *testing.T, m *model.Model) {
	t.Helper()
	for i, l := range m.Layers {
		if l.AttnOut != nil || l.FFNOut != nil {
			t.Fatalf("layer %d has a hook after a failed load", i)
		}
	}
}

func TestBottleneckConfigErrors(t *testing.T) {
	m := tinyModel(t, 1)
	files := bnGoldenFiles(t, m)
	for _, c := range []struct {
		name  string
		edits map[string]string
		want  string
	}{
		{"peft type", map[string]string{"peft_type": `"LORA"`}, `peft_type is "LORA"`},
		{"no config", map[string]string{"config": ""}, `"config" is missing`},
		{"no name", map[string]string{"name": ""}, "name is missing"},
		{"name type", map[string]string{"name": `3`}, "name: 3 is not a string"},
		{"hidden size", map[string]string{"hidden_size": `32`}, "hidden_size 32 does not match the model's 16"},
		{"hidden size type", map[string]string{"hidden_size": `"big"`}, "hidden_size"},
		{"nothing adapted", map[string]string{"config.mh_adapter": `false`, "config.output_adapter": `false`}, "adapts nothing"},
		{"attention only", map[string]string{"config.output_adapter": `false`}, "mh_adapter without output_adapter"},
		{"mh type", map[string]string{"config.mh_adapter": `"yes"`}, `mh_adapter: "yes" is not a boolean`},
		{"no mh", map[string]string{"config.mh_adapter": ``}, "mh_adapter is missing"},
		{"no factor", map[string]string{"config.reduction_factor": ``}, "reduction_factor is missing"},
		{"factor mapping", map[string]string{"config.reduction_factor": `{"1": 8, "default": 16}`}, "per-layer mapping"},
		{"factor negative", map[string]string{"config.reduction_factor": `-4`}, "reduction_factor -4 is not a positive number"},
		{"activation", map[string]string{"config.non_linearity": `"softplus"`}, `non_linearity "softplus" is not supported`},
		{"no activation", map[string]string{"config.non_linearity": ``}, "non_linearity is missing"},
		{"init", map[string]string{"config.init_weights": `"lecun"`}, "init_weights"},
		{"dropout", map[string]string{"config.dropout": `1.5`}, "dropout 1.5"},
		{"scaling learned", map[string]string{"config.scaling": `"learned"`}, "only a constant number"},
		{"scaling zero", map[string]string{"config.scaling": `0.0`}, "scaling 0"},
		{"leave out", map[string]string{"config.leave_out": `[7]`}, "leave_out layer 7 is outside the model's 2 layers"},
		{"leave out type", map[string]string{"config.leave_out": `"1"`}, "leave_out"},
		{"SeqBnConfig placement", map[string]string{"config.original_ln_before": `true`}, "original_ln_before = true is not supported"},
		{"no residual", map[string]string{"config.original_ln_after": `false`}, "original_ln_after = false"},
		{"ln after", map[string]string{"config.ln_after": `true`}, "ln_after = true"},
		{"ln before", map[string]string{"config.ln_before": `true`}, "ln_before = true"},
		{"parallel", map[string]string{"config.is_parallel": `true`}, "is_parallel = true"},
		{"gating", map[string]string{"config.use_gating": `true`}, "use_gating = true"},
		{"phm", map[string]string{"config.phm_layer": `true`}, "phm_layer = true"},
		{"invertible", map[string]string{"config.inv_adapter": `"nice"`}, `inv_adapter = "nice"`},
		{"post add", map[string]string{"config.residual_before_ln": `"post_add"`}, "residual_before_ln"},
		{"stochastic depth", map[string]string{"config.stochastic_depth": `0.1`}, "stochastic_depth"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := Files{ConfigFileName: bnEditConfig(t, c.edits), BottleneckWeightsFileName: files[BottleneckWeightsFileName]}
			_, _, err := loadBottleneck(m, InMemory("mem", bad))
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "mem/adapter_config.json") {
				t.Errorf("error %v, want one naming mem/adapter_config.json and saying %q", err, c.want)
			}
			bnNoHooks(t, m)
		})
	}
	for _, data := range []string{`{"config": `, `[1, 2]`, `{"name": "x", "config": [1]}`} {
		_, _, err := loadBottleneck(m, InMemory("mem", Files{ConfigFileName: []byte(data)}))
		if err == nil || !strings.Contains(err.Error(), "mem/adapter_config.json") {
			t.Errorf("config %s: %v", data, err)
		}
	}
}

// TestBottleneckLoadsAdapterHubConfig reads a config as AdapterHub writes it
// (no peft_type, its version string, AdapterHub's default init_weights
// omitted, extra keys) through LoadAdapter, which recognises AdapterHub's
// layout without a peft_type.
func TestBottleneckLoadsAdapterHubConfig(t *testing.T) {
	m := tinyModel(t, 1)
	files := bnGoldenFiles(t, m)
	cfg := bnEditConfig(t, map[string]string{"peft_type": "", "version": `"adapters.1.2.0"`, "model_class": `"LlamaAdapterModel"`,
		"type": `"text_task"`, "config.init_weights": "", "config.phm_dim": "", "config.architecture": `null`,
		"config.non_linearity": `"Gelu"`, "config.future_option": `1`, "model_type": `"mistral"`})
	ad, warnings, err := LoadAdapter(m, InMemory("hub", Files{ConfigFileName: cfg, BottleneckWeightsFileName: files[BottleneckWeightsFileName]}))
	if err != nil {
		t.Fatal(err)
	}
	defer ad.Unload()
	sort.Strings(warnings)
	want := []string{
		`hub/adapter_config.json: model_type "mistral" differs from the model's "llama"`,
		`hub/adapter_config.json: unknown key "config.future_option" ignored`,
		`hub/adapter_config.json: unknown key "type" ignored`,
	}
	if !reflect.DeepEqual(warnings, want) {
		t.Errorf("warnings %q, want %q", warnings, want)
	}
	got := ad.(*bottleneckAdapter).cfg
	if got.InitWeights != BottleneckInitBERT || got.NonLinearity != "gelu" || got.Kind != BottleneckHoulsby || got.Name != "story" {
		t.Errorf("config %+v", got)
	}
	if m.Layers[0].AttnOut == nil || m.Layers[0].FFNOut == nil || m.Layers[1].AttnOut != nil || m.Layers[1].FFNOut != nil {
		t.Error("hooks are not on layer 0's outputs only")
	}
}

// TestBottleneckLegacyActivationNames checks that a config without a
// version, written before AdapterHub's adapters v1, has its activation
// renamed as AdapterHub renames it.
func TestBottleneckLegacyActivationNames(t *testing.T) {
	for _, c := range []struct{ version, in, want string }{
		{"", `"gelu"`, "gelu_new"},
		{"", `"gelu_orig"`, "gelu"},
		{"", `"relu"`, "relu"},
		{`"adapters.1.2.0"`, `"gelu"`, "gelu"},
	} {
		fc, _, err := parseBottleneckConfig(bnEditConfig(t, map[string]string{"version": c.version, "config.non_linearity": c.in}))
		if err != nil || fc.cfg.NonLinearity != c.want {
			t.Errorf("version %s, non_linearity %s: got %q (%v), want %q", c.version, c.in, fc.cfg.NonLinearity, err, c.want)
		}
	}
}

// bnTensorFile encodes F32 tensors named in vals with the given shapes.
func bnTensorFile(t *testing.T, tensors []*tensor.Tensor) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := safetensors.Write(&buf, tensors, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// bnGoldenTensors returns the golden adapter's tensors, editable.
func bnGoldenTensors(t *testing.T, files Files) []*tensor.Tensor {
	t.Helper()
	data := files[BottleneckWeightsFileName]
	f, err := safetensors.Parse(bytes.NewReader(data), int64(len(data)), "golden")
	if err != nil {
		t.Fatal(err)
	}
	var out []*tensor.Tensor
	for _, n := range f.Names() {
		tt, err := f.ReadTensor(n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tt)
	}
	return out
}

func TestBottleneckWeightsErrors(t *testing.T) {
	m := tinyModel(t, 1)
	files := bnGoldenFiles(t, m)
	const prefix = "model.layers.0.output_adapters.adapters.story."
	f32 := func(name string, shape ...int) *tensor.Tensor {
		tt, err := tensor.FromFloat32(name, shape, make([]float32, tensor.Shape(shape).Numel()))
		if err != nil {
			t.Fatal(err)
		}
		return tt
	}
	for _, c := range []struct {
		name string
		edit func(ts []*tensor.Tensor) []*tensor.Tensor
		want string
	}{
		{"missing", func(ts []*tensor.Tensor) []*tensor.Tensor { return ts[1:] },
			`tensor "model.layers.0.attention_adapters.adapters.story.adapter_down.0.bias" is missing (1 of the 8 tensors`},
		{"other adapter", func(ts []*tensor.Tensor) []*tensor.Tensor {
			return append(ts, f32("model.layers.0.output_adapters.adapters.other.adapter_up.bias", 16))
		}, `belongs to adapter "other", but adapter_config.json names "story"`},
		{"left-out layer", func(ts []*tensor.Tensor) []*tensor.Tensor {
			return append(ts, f32("model.layers.1.output_adapters.adapters.story.adapter_up.bias", 16))
		}, "layer 1 is in the config's leave_out [1]"},
		{"no such layer", func(ts []*tensor.Tensor) []*tensor.Tensor {
			return append(ts, f32("model.layers.9.output_adapters.adapters.story.adapter_up.bias", 16))
		}, "layer 9 does not exist"},
		{"unknown suffix", func(ts []*tensor.Tensor) []*tensor.Tensor {
			return append(ts, f32(prefix+"adapter_norm_after.weight", 16))
		}, `"adapter_norm_after.weight" is not one of the adapter's tensors`},
		{"foreign tensor", func(ts []*tensor.Tensor) []*tensor.Tensor {
			return append(ts, f32("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", 4, 16))
		}, "not a bottleneck adapter tensor"},
		{"shape", func(ts []*tensor.Tensor) []*tensor.Tensor {
			for i, tt := range ts {
				if tt.Name == prefix+"adapter_down.0.weight" {
					ts[i] = f32(tt.Name, 8, 16)
				}
			}
			return ts
		}, `tensor "` + prefix + `adapter_down.0.weight" has shape [8 16], want [4 16] (hidden size 16, reduction_factor 4: bottleneck width 4)`},
		{"dtype", func(ts []*tensor.Tensor) []*tensor.Tensor {
			for i, tt := range ts {
				if tt.Name == prefix+"adapter_up.bias" {
					ts[i], _ = tensor.New(tt.Name, tensor.I32, tensor.Shape{16}, make([]byte, 64))
				}
			}
			return ts
		}, "has dtype I32"},
		{"not finite", func(ts []*tensor.Tensor) []*tensor.Tensor {
			for i, tt := range ts {
				if tt.Name == prefix+"adapter_up.weight" {
					vals := make([]float32, 64)
					vals[5] = float32(math.Inf(-1))
					ts[i], _ = tensor.FromFloat32(tt.Name, tt.Shape, vals)
				}
			}
			return ts
		}, "element 5 is -Inf"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := Files{ConfigFileName: files[ConfigFileName], BottleneckWeightsFileName: bnTensorFile(t, c.edit(bnGoldenTensors(t, files)))}
			_, _, err := loadBottleneck(m, InMemory("mem", bad))
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "mem/adapter.safetensors") {
				t.Errorf("error %v\nwant one naming mem/adapter.safetensors and saying %q", err, c.want)
			}
			bnNoHooks(t, m)
		})
	}

	weights := files[BottleneckWeightsFileName]
	for _, c := range []struct {
		name  string
		files Files
		want  string
	}{
		{"truncated", Files{ConfigFileName: files[ConfigFileName], BottleneckWeightsFileName: weights[:len(weights)-9]}, "mem/adapter.safetensors"},
		{"garbage header", Files{ConfigFileName: files[ConfigFileName], BottleneckWeightsFileName: []byte("\xff\xff\xff\xff\xff\xff\xff\x7fxx")}, "mem/adapter.safetensors"},
		{"no weights", Files{ConfigFileName: files[ConfigFileName]}, "adapter.safetensors"},
		{"pickle only", Files{ConfigFileName: files[ConfigFileName], "pytorch_adapter.bin": []byte("PK")}, "only pytorch_adapter.bin (a PyTorch pickle) is present"},
		{"no config", Files{BottleneckWeightsFileName: weights}, "mem/adapter_config.json"},
	} {
		_, _, err := loadBottleneck(m, InMemory("mem", c.files))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.want)
		}
		bnNoHooks(t, m)
	}

	// A model of another width: the config's hidden_size says so first.
	other := loadModel(t, storiesGGUF)
	if _, _, err := LoadAdapter(other, InMemory("mem", files)); err == nil || !strings.Contains(err.Error(), "hidden_size 16 does not match the model's 64") {
		t.Errorf("other model: %v", err)
	}
	// Loading onto outputs that already hold an adapter is refused.
	first, _, err := LoadAdapter(m, InMemory("mem", files))
	if err != nil {
		t.Fatal(err)
	}
	defer first.Unload()
	if _, _, err := LoadAdapter(m, InMemory("mem", files)); err == nil || !strings.Contains(err.Error(), "already has a block hook") {
		t.Errorf("second load: %v", err)
	}
}
