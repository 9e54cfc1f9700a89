package main

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
	"github.com/graft-ml/graft/internal/randgguf"
)

// runCmd runs one graft command line and returns stdout, stderr and the
// error that decides graft's exit status.
func runCmd(args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	_, _, err := execute(args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func runQuantize(args ...string) (string, string, error) {
	return runCmd(append([]string{"quantize"}, args...)...)
}

// randomF32 writes a random F32 llama 3 GGUF (untied output head).
func randomF32(t *testing.T) string {
	t.Helper()
	rm, err := randgguf.NewFamily(randgguf.Llama3, 256, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "f32.gguf")
	if err := rm.WriteGGUF(path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestQuantizeCommand(t *testing.T) {
	src := randomF32(t)
	out := filepath.Join(t.TempDir(), "q.gguf")
	if _, stderr, err := runQuantize("--type", "q4_0", src, out); err != nil {
		t.Fatalf("quantize: %v\n%s", err, stderr)
	}
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	ft, _ := f.Uint("general.file_type")
	types := map[string]string{}
	for _, ti := range f.Tensors {
		types[ti.Name] = gguf.GGMLTypeName(ti.GGMLType)
	}
	f.Close()
	if ft != 2 {
		t.Errorf("general.file_type %d, want 2 (MOSTLY_Q4_0)", ft)
	}
	// Q4_0 gives the output head Q6_K, which rows of 64 cannot hold:
	// llama.cpp falls back to Q8_0. Norms stay F32.
	for name, want := range map[string]string{"blk.0.attn_q.weight": "Q4_0", "blk.1.ffn_down.weight": "Q4_0", "token_embd.weight": "Q4_0",
		"output.weight": "Q8_0", "blk.0.attn_norm.weight": "F32", "output_norm.weight": "F32"} {
		if types[name] != want {
			t.Errorf("%s: %s, want %s", name, types[name], want)
		}
	}

	// Q4_K_M on rows of 64 and 128: llama.cpp's fallbacks, with a warning.
	km := filepath.Join(t.TempDir(), "km.gguf")
	_, stderr, err := runQuantize("--type", "q4_k_m", src, km)
	if err != nil || !strings.Contains(stderr, "as llama.cpp falls back") {
		t.Fatalf("q4_k_m: %v, stderr %q", err, stderr)
	}
	if f, err = gguf.Open(km); err != nil {
		t.Fatal(err)
	}
	// Two layers: n/8 = 0 and 7n/8 = 1, so only layer 1 gets more bits.
	for name, want := range map[string]string{"blk.0.attn_q.weight": "Q5_0", "blk.0.ffn_down.weight": "Q5_0", "blk.1.ffn_down.weight": "Q8_0", "output.weight": "Q8_0", "blk.0.attn_norm.weight": "F32"} {
		ti, _ := f.Tensor(name)
		if got := gguf.GGMLTypeName(ti.GGMLType); got != want {
			t.Errorf("q4_k_m %s: %s, want %s", name, got, want)
		}
	}
	f.Close()

	// An existing OUT is kept unless --overwrite.
	_, _, err = runQuantize("--type", "q8_0", src, out)
	if err == nil || !strings.Contains(err.Error(), "--overwrite") {
		t.Errorf("existing OUT: %v, want a refusal naming --overwrite", err)
	}
	if _, stderr, err := runQuantize("--type", "q8_0", "--overwrite", src, out); err != nil {
		t.Errorf("--overwrite: %v\n%s", err, stderr)
	}

	// Weights that are quantized already are refused unless allowed.
	again := filepath.Join(t.TempDir(), "again.gguf")
	_, _, err = runQuantize("--type", "q4_0", out, again)
	if err == nil || !strings.Contains(err.Error(), "--allow-requantize") {
		t.Errorf("requantize: %v, want a refusal naming --allow-requantize", err)
	}
	if _, stderr, err := runQuantize("--type", "q4_0", "--allow-requantize", out, again); err != nil || !strings.Contains(stderr, "already quantized") {
		t.Errorf("--allow-requantize: %v, stderr %q", err, stderr)
	}

	// A Hugging Face directory quantizes as its GGUF twin does.
	rm, err := randgguf.NewFamily(randgguf.Llama3, 256, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	hf := filepath.Join(t.TempDir(), "hf")
	if err := rm.WriteHF(hf); err != nil {
		t.Fatal(err)
	}
	fromHF := filepath.Join(t.TempDir(), "hf-q4_0.gguf")
	if _, stderr, err := runQuantize("--type", "q4_0", hf, fromHF); err != nil {
		t.Fatalf("quantize an HF directory: %v\n%s", err, stderr)
	}
	if f, err = gguf.Open(fromHF); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"blk.0.attn_q.weight": "Q4_0", "output.weight": "Q8_0", "token_embd.weight": "Q4_0", "output_norm.weight": "F32"} {
		if ti, ok := f.Tensor(name); !ok || gguf.GGMLTypeName(ti.GGMLType) != want {
			t.Errorf("from HF: %s: %v, want %s", name, ti, want)
		}
	}
	f.Close()

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--type", "q3_k_xl", src, filepath.Join(t.TempDir(), "x.gguf")}, "q4_k_m"},
		{[]string{src, filepath.Join(t.TempDir(), "x.gguf")}, "--type is required"},
		{[]string{"--type", "q8_0", src, filepath.Join(t.TempDir(), "x.bin")}, ".gguf"},
		{[]string{"--type", "q8_0", src}, "want IN and OUT.gguf"},
	} {
		_, _, err := runQuantize(tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, new(usageError)) {
			t.Errorf("%q: %v, want a usage error mentioning %q", tc.args, err, tc.want)
		}
	}
}

// TestMergeQuantize merges a LoRA into a random F32 base and writes it as
// Q8_0 GGUF (graft merge --quantize q8_0): every matrix is Q8_0, the
// norms F32, general.file_type 7, and the merged file's logits are those
// of the base with the adapter, within Q8_0's rounding.
func TestMergeQuantize(t *testing.T) {
	src := randomF32(t)
	m, err := model.LoadGGUF(src, cpu.New())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	a, err := peft.NewAdapter(m, []byte(`{"peft_type":"LORA","r":4,"lora_alpha":8,"target_modules":["q_proj","v_proj","down_proj"],"init_lora_weights":false}`), rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	adapter := filepath.Join(t.TempDir(), "adapter")
	if err := peft.Save(a, adapter); err != nil {
		t.Fatal(err)
	}
	ids := []int32{1, 5, 9, 200, 17, 33}
	want, err := m.Forward(m.NewCache(0), ids, true)
	if err != nil {
		t.Fatal(err)
	}
	a.Unload()
	plain, err := m.Forward(m.NewCache(0), ids, true)
	if err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(t.TempDir(), "merged.gguf")
	if _, stderr, err := runCmd("merge", "--model", src, "--adapter", adapter, "--quantize", "q8_0", "--out", out); err != nil {
		t.Fatalf("merge: %v\n%s", err, stderr)
	}
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	if ft, _ := f.Uint("general.file_type"); ft != 7 {
		t.Errorf("general.file_type %d, want 7 (MOSTLY_Q8_0)", ft)
	}
	for _, ti := range f.Tensors {
		want := "Q8_0"
		if len(ti.Shape) == 1 {
			want = "F32"
		}
		if got := gguf.GGMLTypeName(ti.GGMLType); got != want {
			t.Errorf("%s: %s, want %s", ti.Name, got, want)
		}
	}
	f.Close()
	mm, err := model.LoadGGUF(out, cpu.New())
	if err != nil {
		t.Fatal(err)
	}
	defer mm.Free()
	got, err := mm.Forward(mm.NewCache(0), ids, true)
	if err != nil {
		t.Fatal(err)
	}
	relTo := func(ref []float32) float64 {
		var num, den float64
		for i := range got {
			d := float64(got[i] - ref[i])
			num, den = num+d*d, den+float64(ref[i])*float64(ref[i])
		}
		return math.Sqrt(num / den)
	}
	// Q8_0's rounding moves this random model's logits by a few percent;
	// the adapter must show through it.
	withAdapter, without := relTo(want), relTo(plain)
	t.Logf("merged Q8_0 logits: %.3g relative from base+adapter, %.3g from the base alone", withAdapter, without)
	if withAdapter > without/4 {
		t.Errorf("the merged Q8_0 model is %.3g from base+adapter and %.3g from the base alone: the merge does not show", withAdapter, without)
	}

	if _, _, err := runCmd("merge", "--model", src, "--adapter", adapter, "--quantize", "q8_0", "--out", filepath.Join(t.TempDir(), "hf")); err == nil || !strings.Contains(err.Error(), ".gguf") {
		t.Errorf("--quantize with an HF --out: %v, want a usage error", err)
	}
}
