package randgguf_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/quantmix"
	"github.com/graft-ml/graft/internal/randgguf"
	"github.com/graft-ml/graft/internal/tokfixture"
)

// quantizeOracleTypes are the presets checked against llama.cpp.
var quantizeOracleTypes = []quantmix.FileType{quantmix.Q4KM, quantmix.Q5KM, quantmix.MostlyQ6K, quantmix.MostlyQ80, quantmix.MostlyQ40}

// activationRoundingBound is how far llama.cpp's CPU log-probabilities on
// a quantized file may be from graft's on the same file. graft multiplies
// the dequantized weights by float32 activations; llama.cpp's CPU kernels
// first round the activations (ggml's vec_dot_type): to Q8_0 blocks of 32
// for Q4_0/Q5_x/Q8_0 weights, to Q8_K blocks of 256 for the K-quants,
// about 0.5-0.7% RMS per matmul, which compounds in these small models to
// 1-2% (Q8_0, Q4_0) and 1.3-2.9% (K-quants) in the log-probabilities
// whatever the weight type, while F32 files agree to ~1e-5. So 1e-3
// cannot be met on llama.cpp's CPU; the second check below proves that
// the remaining difference is not the weights.
const activationRoundingBound = 3.5e-2

// strictOracle lists the files held to 1e-3 once graft computes as
// llama.cpp does (llamaCppActivations): measured 3.5e-7 for Qwen 3's Q6_K
// and Q4_0 files and 1.6e-4 for its Q8_0 file. The others are not held
// here because a few activations or f16 block scales sit on a rounding
// boundary that llama.cpp's slightly different float values cross (Gemma
// 3's GELU table and llama 3's RoPE factors differ by ~1e-5; elsewhere the
// last bits), and one such step moves these models by up to ~1e-2;
// TestQuantTypesMatchLlamaCpp resolves those near-ties (roundingTies) and
// holds the types themselves to 1e-3.
var strictOracle = map[randgguf.Family]map[quantmix.FileType]bool{
	randgguf.Qwen3: {quantmix.MostlyQ6K: true, quantmix.MostlyQ80: true, quantmix.MostlyQ40: true},
}

// TestQuantizedRunsInLlamaCpp quantizes a random model (256-wide, for the
// K-quants' super-blocks) of three families (llama 3 with an output head;
// Qwen 3, tied, whose attention output falls back from K-quants; Gemma 3)
// with each preset as
// `graft quantize` does (model.SaveGGUF with a preset) and checks that
// llama.cpp loads the file, that every tensor has the type the preset's
// plan gives it, that general.file_type names the preset, and that
// llama.cpp's log-probabilities on 32 tokens (relative L2 of centred
// values, as TestFamiliesMatchLlamaCpp measures) are within
// activationRoundingBound of graft's on the same file and closer to them
// than to graft's unquantized model: llama.cpp computes with the weights
// graft wrote (Q4_K_M: 0.014-0.028 against 0.10-0.26 unquantized). The
// files of strictOracle must moreover agree within 1e-3 when graft rounds
// its activations as llama.cpp's kernels do.
func TestQuantizedRunsInLlamaCpp(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the llama.cpp check runs where Node.js is present")
	}
	if _, err := os.Stat(filepath.Join(llamaCppDir, "node_modules", "node-llama-cpp", "package.json")); err != nil {
		t.Fatalf("node is present but node-llama-cpp is not installed in tools/llamacpp: run `make llamacpp` (%v)", err)
	}
	fx, err := tokfixture.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []randgguf.Family{randgguf.Llama3, randgguf.Qwen3, randgguf.Gemma3} {
		kvs, V := familyTokenizer(t, fx, f)
		ids, _ := oracleData(V)
		rm, err := randgguf.NewFamilySized(f, V, 31, kvs, 256, 512)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		src := filepath.Join(dir, "f32.gguf")
		if err := rm.WriteGGUF(src); err != nil {
			t.Fatal(err)
		}
		fm, err := model.LoadGGUF(src, cpu.New())
		if err != nil {
			t.Fatal(err)
		}
		unquantized, _ := graftForward(t, fm, ids, 0)
		fm.Free()
		for _, ft := range quantizeOracleTypes {
			t.Run(string(f)+"/"+ft.String(), func(t *testing.T) {
				m, err := model.LoadGGUF(src, cpu.New())
				if err != nil {
					t.Fatal(err)
				}
				out := filepath.Join(dir, strings.ToLower(ft.String())+".gguf")
				err = m.SaveGGUF(out, model.SaveOptions{Quantize: ft})
				m.Free()
				if err != nil {
					t.Fatal(err)
				}
				checkPlanned(t, out, ft)
				qm, err := model.LoadGGUF(out, cpu.New())
				if err != nil {
					t.Fatal(err)
				}
				defer qm.Free()
				got, _ := graftForward(t, qm, ids, 0)
				roundActivationsLikeLlamaCpp(t, qm, out, nil)
				emulated, _ := graftForward(t, qm, ids, 0)
				want := runForward(t, node, out, ids, 0)
				rel, rms, worst := compareLogProbs(t, want, got, V, len(ids))
				relF32, _, _ := compareLogProbs(t, want, unquantized, V, len(ids))
				relEm, _, worstEm := compareLogProbs(t, want, emulated, V, len(ids))
				t.Logf("%s %s: centred log-probs relative L2 error %.3g (RMS %.3g), max |diff| %.3g; with llama.cpp's activation rounding %.3g (max |diff| %.3g); llama.cpp vs graft's unquantized model %.3g", f, ft, rel, rms, worst, relEm, worstEm, relF32)
				if rel > activationRoundingBound {
					t.Errorf("llama.cpp's log-probabilities on graft's %s file differ from graft's by %.3g relative, over %.3g", ft, rel, activationRoundingBound)
				}
				if strictOracle[f][ft] && relEm > 1e-3 {
					t.Errorf("with llama.cpp's activation rounding emulated, graft's log-probabilities on the %s file differ from llama.cpp's by %.3g relative, over 1e-3", ft, relEm)
				}
				if rel >= relF32 {
					t.Errorf("llama.cpp's log-probabilities are no closer to graft's on the %s file (%.3g) than to graft's unquantized model (%.3g): llama.cpp does not read the weights graft wrote", ft, rel, relF32)
				}
			})
		}
	}
}

// checkPlanned reopens a quantized file and checks each tensor's type
// against quantmix.Plan over the file's own tensor list, and the preset in
// general.file_type.
func checkPlanned(t *testing.T, path string, ft quantmix.FileType) {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, _ := f.Uint("general.file_type"); got != uint64(ft) {
		t.Errorf("general.file_type %d, want %d", got, ft)
	}
	layers, _ := f.Uint(f.ArchKey("block_count"))
	heads, _ := f.Uint(f.ArchKey("attention.head_count"))
	kvHeads, _ := f.Uint(f.ArchKey("attention.head_count_kv"))
	var ts []quantmix.Tensor
	for _, ti := range f.Tensors {
		shape := make([]int, len(ti.Shape))
		for i, d := range ti.Shape {
			shape[i] = int(d)
		}
		ts = append(ts, quantmix.Tensor{Name: ti.Name, Shape: shape, Type: quantmix.F32})
	}
	plan, err := quantmix.Plan(ft, quantmix.Model{Arch: f.Architecture(), Layers: int(layers), Heads: int(heads), KVHeads: int(kvHeads)}, ts)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for i, ti := range f.Tensors {
		if ti.GGMLType != plan[i].Type {
			t.Errorf("%s: %s, the plan says %s", ti.Name, gguf.GGMLTypeName(ti.GGMLType), quantmix.TypeName(plan[i].Type))
		}
		counts[gguf.GGMLTypeName(ti.GGMLType)]++
	}
	t.Logf("%s: tensors per type %v", filepath.Base(path), counts)
}
