package peft

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/formats/safetensors"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/tensor"
)

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// TestSaveFormat pins PEFT's layout: file names, tensor keys, shapes,
// dtype, metadata and config fields.
func TestSaveFormat(t *testing.T) {
	m := loadModel(t, storiesGGUF)
	mg := attach(t, m, LoraConfig{R: 8, LoraAlpha: 16, LoraDropout: 0.05,
		TargetConfig: TargetConfig{TargetModules: TargetNames("q_proj", "k_proj", "v_proj", "o_proj")}}, 1)
	parent := t.TempDir()
	dir := filepath.Join(parent, "adapter")
	if err := mg.Save(dir, "a"); err != nil {
		t.Fatal(err)
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{"adapter_config.json", "adapter_model.safetensors"}) {
		t.Fatalf("adapter dir holds %q", got)
	}
	if got := dirNames(t, parent); !slices.Equal(got, []string{"adapter"}) {
		t.Fatalf("temporary files left beside the adapter: %q", got)
	}

	cfgJSON, err := os.ReadFile(filepath.Join(dir, "adapter_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if bad := unsortedObjects(cfgJSON); bad != nil {
		t.Errorf("config keys out of order: %q", bad)
	}
	for _, want := range []string{`"peft_type": "LORA"`, `"task_type": "CAUSAL_LM"`, `"r": 8`, `"lora_alpha": 16`,
		`"lora_dropout": 0.05`, `"inference_mode": true`, `"init_lora_weights": false`, `"bias": "none"`,
		`"use_dora": false`, `"use_rslora": false`, `"fan_in_fan_out": false`, `"modules_to_save": null`,
		"\"target_modules\": [\n    \"k_proj\",\n    \"o_proj\",\n    \"q_proj\",\n    \"v_proj\"\n  ]"} {
		if !strings.Contains(string(cfgJSON), want) {
			t.Errorf("config lacks %s:\n%s", want, cfgJSON)
		}
	}

	f, err := safetensors.Open(filepath.Join(dir, "adapter_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if len(f.Metadata) != 1 || f.Metadata["format"] != "pt" {
		t.Errorf("metadata %v, want {format: pt}", f.Metadata)
	}
	c := m.Config
	shapes := map[string][2][]int{ // module -> lora_A, lora_B shapes
		"q_proj": {{8, c.Dim}, {c.QDim(), 8}},
		"k_proj": {{8, c.Dim}, {c.KVDim(), 8}},
		"v_proj": {{8, c.Dim}, {c.KVDim(), 8}},
		"o_proj": {{8, c.QDim()}, {c.Dim, 8}},
	}
	var want []string
	wantShape := map[string][]int{}
	for i := range c.Layers {
		for mod, s := range shapes {
			for j, which := range []string{"lora_A", "lora_B"} {
				name := fmt.Sprintf("base_model.model.model.layers.%d.self_attn.%s.%s.weight", i, mod, which)
				want = append(want, name)
				wantShape[name] = s[j]
			}
		}
	}
	sort.Strings(want)
	if got := f.Names(); !slices.Equal(got, want) {
		t.Fatalf("tensor names\n%q\nwant\n%q", got, want)
	}
	for _, ti := range f.Tensors {
		if ti.DType != tensor.F32 || !slices.Equal(ti.Shape, wantShape[ti.Name]) {
			t.Errorf("%s: %s %v, want F32 %v", ti.Name, ti.DTypeName, ti.Shape, wantShape[ti.Name])
		}
	}

	// B of q_proj is saved in Hugging Face row order, B of v_proj as is.
	lw := mg.layerOf(m.Layers[2].Q).weights["a"]
	internal := read(t, m.Backend, lw.B)
	saved := readTensor(t, f, "base_model.model.model.layers.2.self_attn.q_proj.lora_B.weight")
	d := c.HeadDim
	for h := range c.Heads {
		for p := range d / 2 {
			for s := range 2 {
				hf, meta := h*d+s*d/2+p, h*d+2*p+s
				if !slices.Equal(saved[hf*8:hf*8+8], internal[meta*8:meta*8+8]) {
					t.Fatalf("q_proj B: HF row %d is not Meta row %d", hf, meta)
				}
			}
		}
	}
	vw := mg.layerOf(m.Layers[2].V).weights["a"]
	if !slices.Equal(readTensor(t, f, "base_model.model.model.layers.2.self_attn.v_proj.lora_B.weight"), read(t, m.Backend, vw.B)) {
		t.Error("v_proj B was permuted")
	}
}

func readTensor(t *testing.T, f *safetensors.File, name string) []float32 {
	t.Helper()
	tt, err := f.ReadTensor(name)
	if err != nil {
		t.Fatal(err)
	}
	v, err := tt.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// toHFOrder turns a GGUF-loaded model into the Hugging Face layout of the
// same weights: q/k rows in rotate-half order and RoPEHalf.
func toHFOrder(t *testing.T, m *model.Model) {
	t.Helper()
	b := m.Backend
	for i := range m.Layers {
		for _, l := range []*model.Linear{m.Layers[i].Q, m.Layers[i].K} {
			w, err := permuteRoPERows(read(t, b, l.Weight), l.Out, l.In, l.RoPEPermuted, true)
			if err != nil {
				t.Fatal(err)
			}
			old := l.Weight
			l.Weight = loadF32(t, b, w, l.Out, l.In)
			b.Free(old)
			l.RoPEPermuted = 0
		}
	}
	m.Config.RoPE = backend.RoPEHalf
}

// TestAdapterOnHFOrderModel saves an adapter trained on the GGUF (Meta
// order) model and applies it to the same weights in Hugging Face order:
// the outputs must agree, and saving it back gives the same file.
func TestAdapterOnHFOrderModel(t *testing.T) {
	gg := loadModel(t, storiesGGUF)
	hf := loadModel(t, storiesGGUF)
	toHFOrder(t, hf)
	if d := relDiff(logits(t, hf, storyIDs), logits(t, gg, storyIDs)); d > 1e-5 {
		t.Fatalf("the HF-order base model differs from the GGUF one by %g", d)
	}
	mgG := attach(t, gg, LoraConfig{R: 4, LoraAlpha: 8, TargetConfig: TargetConfig{TargetModules: TargetNames("q_proj", "k_proj", "v_proj", "o_proj")}}, 9)
	want := logits(t, gg, storyIDs)
	dir := filepath.Join(t.TempDir(), "from-gguf")
	if err := mgG.Save(dir, "a"); err != nil {
		t.Fatal(err)
	}
	mgH := AttachLoRA(hf)
	if _, err := mgH.Load(dir, "a"); err != nil {
		t.Fatal(err)
	}
	if d := relDiff(logits(t, hf, storyIDs), want); d > 1e-5 {
		t.Errorf("the adapter on the HF-order model gives logits %g away from the GGUF model's", d)
	}
	back := filepath.Join(t.TempDir(), "from-hf")
	if err := mgH.Save(back, "a"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"adapter_model.safetensors", "adapter_config.json"} {
		a, _ := os.ReadFile(filepath.Join(dir, name))
		b, _ := os.ReadFile(filepath.Join(back, name))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs when saved from the HF-order model", name)
		}
	}
}

func TestSaveAtomic(t *testing.T) {
	m := tinyModel(t, 30)
	mg := attach(t, m, LoraConfig{R: 2, LoraAlpha: 4}, 2)
	parent := t.TempDir()
	dir := filepath.Join(parent, "adapter")

	// Into an existing directory: other files stay, nothing temporary left.
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("notes"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := mg.Save(dir, "a"); err != nil {
		t.Fatal(err)
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{"README.md", "adapter_config.json", "adapter_model.safetensors"}) {
		t.Fatalf("dir holds %q", got)
	}
	oldCfg, _ := os.ReadFile(filepath.Join(dir, "adapter_config.json"))
	oldWeights, _ := os.ReadFile(filepath.Join(dir, "adapter_model.safetensors"))

	// A failing save (a non-finite weight) changes nothing.
	lw := mg.adapters["a"].modules[0]
	bad := read(t, m.Backend, lw.B)
	bad[3] = float32(math.Inf(1))
	if err := m.Backend.Write(lw.B, 0, bad); err != nil {
		t.Fatal(err)
	}
	err := mg.Save(dir, "a")
	if err == nil || !strings.Contains(err.Error(), "lora_B.weight") {
		t.Fatalf("saving an infinite weight: err = %v", err)
	}
	cfgNow, _ := os.ReadFile(filepath.Join(dir, "adapter_config.json"))
	weightsNow, _ := os.ReadFile(filepath.Join(dir, "adapter_model.safetensors"))
	if !bytes.Equal(cfgNow, oldCfg) || !bytes.Equal(weightsNow, oldWeights) {
		t.Error("a failed save modified the existing adapter")
	}
	if got := dirNames(t, dir); len(got) != 3 {
		t.Errorf("a failed save left files: %q", got)
	}
	fresh := filepath.Join(parent, "fresh")
	if err := mg.Save(fresh, "a"); err == nil {
		t.Fatal("saved an infinite weight")
	}
	if got := dirNames(t, parent); !slices.Equal(got, []string{"adapter"}) {
		t.Errorf("a failed save into a new dir left %q", got)
	}

	// A path that is a file is refused.
	file := filepath.Join(parent, "file")
	os.WriteFile(file, nil, 0o644)
	bad[3] = 0
	m.Backend.Write(lw.B, 0, bad)
	if err := mg.Save(file, "a"); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("saving over a file: err = %v", err)
	}
	if err := mg.Save(filepath.Join(parent, "x"), "nope"); err == nil {
		t.Error("saving an unknown adapter")
	}
}
