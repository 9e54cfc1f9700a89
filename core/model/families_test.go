package model_test

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
	"github.com/graft-ml/graft/internal/randgguf"
)

// familyFiles writes family f's random model as a GGUF file and a Hugging
// Face directory in a temporary directory and returns their paths.
func familyFiles(t *testing.T, f randgguf.Family, vocab int) (ggufPath, hfDir string) {
	t.Helper()
	m, err := randgguf.NewFamily(f, vocab, 7, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ggufPath, hfDir = filepath.Join(dir, "model.gguf"), filepath.Join(dir, "hf")
	if err := m.WriteGGUF(ggufPath); err != nil {
		t.Fatal(err)
	}
	if err := m.WriteHF(hfDir); err != nil {
		t.Fatal(err)
	}
	return ggufPath, hfDir
}

// familySequence is a fixed 32-token sequence over a vocabulary.
func familySequence(vocab int) []int32 {
	r := rand.New(rand.NewPCG(3, 4))
	ids := make([]int32, 32)
	for i := range ids {
		ids[i] = int32(r.IntN(vocab))
	}
	return ids
}

// TestFamiliesGGUFMatchesHF loads each family's GGUF (llama.cpp's names,
// keys and layouts: Meta-ordered q/k rows for llama, rope_freqs.weight,
// Gemma's 1+w norms) and its Hugging Face checkpoint (config.json's
// model_type and rope_scaling, HF names and layouts) and checks that the
// two give the same logits over 32 tokens: max |gguf - hf| at most 1e-4
// of max |hf| over all 32 x vocab logits. It also checks what each loader
// made of the family's features.
func TestFamiliesGGUFMatchesHF(t *testing.T) {
	const vocab = 300
	ids := familySequence(vocab)
	for _, f := range randgguf.Families {
		t.Run(string(f), func(t *testing.T) {
			ggufPath, hfDir := familyFiles(t, f, vocab)
			var logits [2][]float32
			for i, path := range []string{ggufPath, hfDir} {
				m, err := model.Load(path, cpu.New())
				if err != nil {
					t.Fatal(err)
				}
				checkFamilyConfig(t, f, m.Config)
				cache := m.NewCache(len(ids))
				if logits[i], err = m.Forward(cache, ids, true); err != nil {
					t.Fatal(err)
				}
				m.Free()
			}
			var worst, scale float64
			for i, want := range logits[1] {
				worst = max(worst, math.Abs(float64(logits[0][i]-want)))
				scale = max(scale, math.Abs(float64(want)))
			}
			t.Logf("max |gguf - hf| = %.3g, max |logit| = %.3g", worst, scale)
			if worst > 1e-4*scale {
				t.Errorf("GGUF and HF logits differ by %.3g, over 1e-4 of the largest logit %.3g", worst, scale)
			}
		})
	}
}

// checkFamilyConfig checks the features a loader must have read.
func checkFamilyConfig(t *testing.T, f randgguf.Family, c model.Config) {
	t.Helper()
	ok := true
	switch f {
	case randgguf.Llama3:
		ok = c.Arch == "llama" && c.RopeScaling.Type == model.RopeLlama3 && !c.TiedOutput
	case randgguf.SmolLM2:
		ok = c.Arch == "llama" && !c.RopeScaling.Scaled() && c.TiedOutput
	case randgguf.Qwen2:
		ok = c.Arch == "qwen2" && c.AttnBias && c.TiedOutput
	case randgguf.Qwen3:
		ok = c.Arch == "qwen3" && c.QKNorm && c.HeadDim == 24 && c.RopeScaling.Type == model.RopeYaRN && c.RopeScaling.OrigContext == 16
	case randgguf.Gemma3:
		ok = c.Arch == "gemma3" && c.QKNorm && c.PostNorms && c.Act == model.ActGELUTanh && c.SlidingWindow == 8 &&
			c.SlidingPattern == 6 && c.RopeThetaLocal == 10000 && c.RopeScaling.Type == model.RopeLinear &&
			c.EmbedScale == float32(math.Sqrt(64)) && c.AttnScale == float32(1/math.Sqrt(32)) && c.IsLocal(4) && !c.IsLocal(5)
	}
	if !ok {
		t.Errorf("%s config: %+v", f, c)
	}
}

// TestFamilyGradientsMatchFiniteDifferences runs the end-to-end gradient
// check (LoRA on all seven projections) on every family, so that each new
// op's backward (q/k norms, post-norms, GELU-tanh, sliding windows, scaled
// RoPE tables, embedding scale) is checked inside the model, with and
// without activation checkpointing.
func TestFamilyGradientsMatchFiniteDifferences(t *testing.T) {
	for _, f := range randgguf.Families {
		for _, checkpointing := range []bool{false, true} {
			if checkpointing && f != randgguf.Gemma3 {
				continue // checkpointing reruns the same block code; one family shows it
			}
			if testing.Short() && (checkpointing || f != randgguf.Gemma3) {
				continue // under wasm: Gemma 3 alone has every new op
			}
			name := string(f)
			if checkpointing {
				name += "/checkpointing"
			}
			t.Run(name, func(t *testing.T) {
				path, _ := familyFiles(t, f, 300)
				checkGradientsOn(t, path, checkpointing, 0, 0.75, attachLoRA)
			})
		}
	}
}

// TestGemma3VirtualTokenGradients runs the gradient check with prompt and
// prefix tuning on Gemma 3: virtual tokens are not scaled by √hidden, and
// prefix keys are the oldest positions, which local layers' windows drop.
func TestGemma3VirtualTokenGradients(t *testing.T) {
	for _, c := range []struct {
		name, config string
		scale        float64 // of the virtual tokens' values; 0 keeps PEFT's initialisation
		sizable      float64 // fraction of sampled gradients above 10x the absolute tolerance
	}{
		{"prompt-tuning", `{"peft_type": "PROMPT_TUNING", "num_virtual_tokens": 4}`, 0, 0.75},
		// Local layers' queries see the prefix only while it is within the
		// window, so many prefix gradients are small: half must be sizable.
		{"prefix-tuning", `{"peft_type": "PREFIX_TUNING", "num_virtual_tokens": 4}`, 1, 0.5},
	} {
		t.Run(c.name, func(t *testing.T) {
			path, _ := familyFiles(t, randgguf.Gemma3, 300)
			checkGradientsOn(t, path, false, 0, c.sizable, func(t *testing.T, m *model.Model, rng *rand.Rand) []model.Param {
				a, err := peft.NewAdapter(m, []byte(c.config), rng)
				if err != nil {
					t.Fatal(err)
				}
				// Unit-scale virtual tokens, keys and values (PEFT starts
				// them smaller), so that most entries move the loss enough
				// for a finite difference.
				for _, p := range a.Params() {
					scale := c.scale
					if scale == 0 {
						break
					}
					vals := make([]float32, p.Value.Shape().Numel())
					for i := range vals {
						vals[i] = float32(rng.NormFloat64() * scale)
					}
					if err := m.Backend.Write(p.Value, 0, vals); err != nil {
						t.Fatal(err)
					}
				}
				return a.Params()
			})
		})
	}
}

// TestFamiliesSaveRoundTrip saves each family's GGUF as a Hugging Face
// directory and its HF checkpoint as GGUF (what graft merge writes) and
// checks that graft loads both back to the same logits: norms shifted for
// Gemma's HF convention, Llama 3's rope_freqs.weight recovered as
// rope_scaling and written back, YaRN's and Gemma's keys carried.
func TestFamiliesSaveRoundTrip(t *testing.T) {
	const vocab = 300
	ids := familySequence(vocab)
	logitsOf := func(t *testing.T, path string) ([]float32, model.Config) {
		t.Helper()
		m, err := model.Load(path, cpu.New())
		if err != nil {
			t.Fatal(err)
		}
		defer m.Free()
		out, err := m.Forward(m.NewCache(len(ids)), ids, true)
		if err != nil {
			t.Fatal(err)
		}
		return out, m.Config
	}
	for _, f := range randgguf.Families {
		t.Run(string(f), func(t *testing.T) {
			ggufPath, hfDir := familyFiles(t, f, vocab)
			want, _ := logitsOf(t, ggufPath)
			dir := t.TempDir()
			for _, c := range []struct {
				from, to string
				save     func(*model.Model, string) error
			}{
				{ggufPath, filepath.Join(dir, "hf"), func(m *model.Model, p string) error { return m.SaveHF(p, model.SaveOptions{}) }},
				{hfDir, filepath.Join(dir, "m.gguf"), func(m *model.Model, p string) error { return m.SaveGGUF(p, model.SaveOptions{}) }},
			} {
				m, err := model.Load(c.from, cpu.New())
				if err != nil {
					t.Fatal(err)
				}
				if err := c.save(m, c.to); err != nil {
					t.Fatal(err)
				}
				m.Free()
				got, cfg := logitsOf(t, c.to)
				checkFamilyConfig(t, f, cfg)
				var worst, scale float64
				for i := range want {
					worst = max(worst, math.Abs(float64(got[i]-want[i])))
					scale = max(scale, math.Abs(float64(want[i])))
				}
				if worst > 1e-4*scale {
					t.Errorf("%s saved as %s: logits differ by %.3g (max %.3g)", c.from, c.to, worst, scale)
				}
			}
		})
	}
}
