package peft

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/formats/safetensors"
	"github.com/graft-ml/graft/core/tensor"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	m1 := loadModel(t, storiesGGUF)
	mg1 := attach(t, m1, LoraConfig{R: 8, LoraAlpha: 16, TargetConfig: TargetConfig{TargetModules: TargetAllLinear()},
		PatternConfig: PatternConfig{RankPattern: Patterns[int]{{"down_proj", 2}}}, UseRSLoRA: true}, 4)
	want := logits(t, m1, storyIDs)
	dir := filepath.Join(t.TempDir(), "adapter")
	if err := mg1.Save(dir, "a"); err != nil {
		t.Fatal(err)
	}

	m2 := loadModel(t, storiesGGUF)
	mg2 := AttachLoRA(m2)
	warnings, err := mg2.Load(dir, "loaded")
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings %q", warnings)
	}
	if got := logits(t, m2, storyIDs); !slices.Equal(got, want) {
		t.Errorf("logits after save and load differ by %g", relDiff(got, want))
	}
	p1, _ := mg1.Params("a")
	p2, _ := mg2.Params("loaded")
	if len(p1) != len(p2) {
		t.Fatalf("%d params, want %d", len(p2), len(p1))
	}
	for i := range p1 {
		if p1[i].Name != p2[i].Name || !slices.Equal(read(t, m1.Backend, p1[i].Value), read(t, m2.Backend, p2[i].Value)) {
			t.Errorf("param %s differs after the round trip", p1[i].Name)
		}
	}
	cfg1, _ := mg1.Config("a")
	cfg2, _ := mg2.Config("loaded")
	cfg1.InferenceMode = true
	if j1, j2 := mustJSON(t, cfg1), mustJSON(t, cfg2); j1 != j2 {
		t.Errorf("config changed:\n%s\n%s", j1, j2)
	}

	// A second adapter loaded beside the first is inactive until chosen.
	if _, err := mg1.Load(dir, "copy"); err != nil {
		t.Fatal(err)
	}
	if err := mg1.SetActive("copy"); err != nil {
		t.Fatal(err)
	}
	if got := logits(t, m1, storyIDs); !slices.Equal(got, want) {
		t.Error("the reloaded copy computes something else")
	}
	if _, err := mg1.Load(dir, "copy"); err == nil {
		t.Error("loading over an existing adapter name")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// copyDir copies an adapter directory for a test to damage.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "adapter")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range dirNames(t, src) {
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func editConfig(t *testing.T, dir string, edit func(map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, ConfigFileName)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	edit(cfg)
	if data, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func editTensors(t *testing.T, dir string, edit func([]*tensor.Tensor) []*tensor.Tensor) {
	t.Helper()
	path := filepath.Join(dir, WeightsFileName)
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var ts []*tensor.Tensor
	for _, n := range f.Names() {
		tt, err := f.ReadTensor(n)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, tt)
	}
	f.Close()
	if err := safetensors.WriteFile(path, edit(ts), map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
}

func find(ts []*tensor.Tensor, suffix string) *tensor.Tensor {
	for _, tt := range ts {
		if strings.HasSuffix(tt.Name, suffix) {
			return tt
		}
	}
	return nil
}

func TestLoadErrors(t *testing.T) {
	m := tinyModel(t, 40)
	good := filepath.Join(t.TempDir(), "good")
	src := attach(t, m, LoraConfig{R: 4, LoraAlpha: 8, TargetConfig: TargetConfig{TargetModules: TargetNames("q_proj", "v_proj")}}, 1)
	if err := src.Save(good, "a"); err != nil {
		t.Fatal(err)
	}
	if err := src.Unload(); err != nil {
		t.Fatal(err)
	}
	qB := "layers.0.self_attn.q_proj.lora_B.weight"
	cases := []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   []string // substrings of the error
	}{
		{"no config", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, ConfigFileName)) },
			[]string{"adapter_config.json"}},
		{"bad JSON", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, ConfigFileName), []byte(`{"peft_type": "LORA", "r": 4,`), 0o644)
		}, []string{"adapter_config.json", "invalid JSON"}},
		{"wrong type in config", func(t *testing.T, dir string) {
			editConfig(t, dir, func(c map[string]any) { c["lora_dropout"] = "high" })
		}, []string{"adapter_config.json", "lora_dropout"}},
		{"truncated safetensors", func(t *testing.T, dir string) {
			path := filepath.Join(dir, WeightsFileName)
			st, _ := os.Stat(path)
			os.Truncate(path, st.Size()/2)
		}, []string{"adapter_model.safetensors"}},
		{"no weights", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, WeightsFileName)) },
			[]string{"adapter_model.safetensors"}},
		{"pickle only", func(t *testing.T, dir string) {
			os.Rename(filepath.Join(dir, WeightsFileName), filepath.Join(dir, "adapter_model.bin"))
		}, []string{"adapter_model.bin", "safetensors"}},
		{"r disagrees with the tensors", func(t *testing.T, dir string) {
			editConfig(t, dir, func(c map[string]any) { c["r"] = 2 })
		}, []string{"adapter_model.safetensors", "lora_A.weight", "shape [4 16], want [2 16]"}},
		{"rank_pattern disagrees", func(t *testing.T, dir string) {
			editConfig(t, dir, func(c map[string]any) { c["rank_pattern"] = map[string]any{"v_proj": 3} })
		}, []string{"v_proj.lora_A.weight", "want [3 16]"}},
		{"module the model lacks", func(t *testing.T, dir string) {
			editTensors(t, dir, func(ts []*tensor.Tensor) []*tensor.Tensor {
				extra := *find(ts, "layers.0.self_attn.q_proj.lora_A.weight")
				extra.Name = "base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight"
				return append(ts, &extra)
			})
		}, []string{"adapter_model.safetensors", "layers.7.self_attn.q_proj", "does not exist"}},
		{"module not targeted", func(t *testing.T, dir string) {
			editTensors(t, dir, func(ts []*tensor.Tensor) []*tensor.Tensor {
				extra := *find(ts, "layers.0.self_attn.v_proj.lora_A.weight")
				extra.Name = "base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight"
				return append(ts, &extra)
			})
		}, []string{"k_proj.lora_A.weight", "not selected"}},
		{"config targets more", func(t *testing.T, dir string) {
			editConfig(t, dir, func(c map[string]any) { c["target_modules"] = []string{"q_proj", "v_proj", "o_proj"} })
		}, []string{"o_proj.lora_A.weight", "missing"}},
		{"missing tensor", func(t *testing.T, dir string) {
			editTensors(t, dir, func(ts []*tensor.Tensor) []*tensor.Tensor {
				return slices.DeleteFunc(ts, func(tt *tensor.Tensor) bool { return strings.HasSuffix(tt.Name, qB) })
			})
		}, []string{"adapter_model.safetensors", qB, "missing"}},
		{"adapter name in the key", func(t *testing.T, dir string) {
			editTensors(t, dir, func(ts []*tensor.Tensor) []*tensor.Tensor {
				find(ts, qB).Name = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.default.weight"
				return ts
			})
		}, []string{"lora_B.default.weight", "adapter name"}},
		{"not a PEFT name", func(t *testing.T, dir string) {
			editTensors(t, dir, func(ts []*tensor.Tensor) []*tensor.Tensor {
				find(ts, qB).Name = "model.layers.0.self_attn.q_proj.lora_B.weight"
				return ts
			})
		}, []string{"not a PEFT LoRA tensor name"}},
		{"wrong dtype", func(t *testing.T, dir string) {
			editTensors(t, dir, func(ts []*tensor.Tensor) []*tensor.Tensor {
				tt := find(ts, qB)
				tt.DType = tensor.I32 // same size as F32
				return ts
			})
		}, []string{qB, "dtype I32"}},
		{"wrong rank of shape", func(t *testing.T, dir string) {
			editTensors(t, dir, func(ts []*tensor.Tensor) []*tensor.Tensor {
				tt := find(ts, qB)
				tt.Shape = tensor.Shape{int(tt.Shape.Numel())}
				return ts
			})
		}, []string{qB, "shape [64]"}},
		{"NaN", func(t *testing.T, dir string) {
			editTensors(t, dir, func(ts []*tensor.Tensor) []*tensor.Tensor {
				tt := find(ts, qB)
				v, _ := tt.Float32s()
				v[5] = float32(math.NaN())
				tensor.PutFloat32s(tt.Data, v)
				return ts
			})
		}, []string{qB, "element 5 is NaN"}},
		{"DoRA", func(t *testing.T, dir string) {
			editConfig(t, dir, func(c map[string]any) { c["use_dora"] = true })
		}, []string{"lora_magnitude_vector", "is missing"}},
		{"bias", func(t *testing.T, dir string) {
			editConfig(t, dir, func(c map[string]any) { c["bias"] = "all" })
		}, []string{`bias "all"`}},
		{"other method", func(t *testing.T, dir string) {
			editConfig(t, dir, func(c map[string]any) { c["peft_type"] = "IA3" })
		}, []string{"peft_type"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyDir(t, good)
			c.damage(t, dir)
			mg := AttachLoRA(m)
			_, err := mg.Load(dir, "x")
			if err == nil {
				t.Fatal("loaded a damaged adapter")
			}
			t.Log(err)
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if len(mg.Adapters()) != 0 || len(hooked(m)) != 0 {
				t.Error("a failed Load left an adapter installed")
			}
		})
	}
}

// TestLoadAccepts covers inputs PEFT produces that graft must take:
// half-precision tensors and config keys from other PEFT versions.
func TestLoadAccepts(t *testing.T) {
	m := tinyModel(t, 41)
	good := filepath.Join(t.TempDir(), "good")
	src := attach(t, m, LoraConfig{R: 4, LoraAlpha: 8}, 1)
	want := logits(t, m, tinyIDs)
	if err := src.Save(good, "a"); err != nil {
		t.Fatal(err)
	}
	src.Unload()

	dir := copyDir(t, good)
	editTensors(t, dir, func(ts []*tensor.Tensor) []*tensor.Tensor {
		for i, tt := range ts {
			v, _ := tt.Float32s()
			data := make([]byte, 2*len(v))
			if err := tensor.Encode(tensor.BF16, v, data); err != nil {
				t.Fatal(err)
			}
			ts[i] = &tensor.Tensor{Name: tt.Name, DType: tensor.BF16, Shape: tt.Shape, Data: data}
		}
		return ts
	})
	editConfig(t, dir, func(c map[string]any) {
		c["lora_bias"] = false
		c["peft_version"] = "0.17.0"
		c["custom_field"] = 1
		c["fan_in_fan_out"] = true
	})
	mg := AttachLoRA(m)
	warnings, err := mg.Load(dir, "bf16")
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 2 || !strings.Contains(warnings[0], "fan_in_fan_out") || !strings.Contains(warnings[1], `"custom_field"`) ||
		!strings.HasPrefix(warnings[1], filepath.Join(dir, ConfigFileName)) {
		t.Errorf("warnings %q", warnings)
	}
	if d := relDiff(logits(t, m, tinyIDs), want); d > 1e-2 || d == 0 {
		t.Errorf("BF16 adapter logits differ by %g, want a small rounding difference", d)
	}
}
