package peft

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"

	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/tensor"
)

var principalInits = []LoraInit{InitPiSSA, "pissa_niter_4", InitOLoRA}

// TestPiSSAInitKeepsLogits checks that residual + adapter reproduces the
// base model at initialisation, and that Unload gives the model's own
// weights back.
func TestPiSSAInitKeepsLogits(t *testing.T) {
	cases := []struct {
		name    string
		model   func(t *testing.T) *model.Model
		targets Modules
	}{
		{"stories260K F32", func(t *testing.T) *model.Model { return loadModel(t, storiesGGUF) }, TargetAllLinear()},
		{"stories260K Q8_0", func(t *testing.T) *model.Model { return loadModel(t, storiesQ8) }, TargetAllLinear()},
		// Meta-order q/k rows and the output head tied to the embedding.
		{"tiny tied", func(t *testing.T) *model.Model { return tinyModel(t, 3) }, TargetNames("q_proj", "k_proj", "lm_head")},
	}
	for _, c := range cases {
		for _, init := range principalInits {
			t.Run(c.name+"/"+string(init), func(t *testing.T) {
				m := c.model(t)
				ids := storyIDs
				if m.Config.Vocab < 512 {
					ids = tinyIDs
				}
				base := logits(t, m, ids)
				originals := map[*model.Linear]any{}
				for _, l := range append(m.Linears(), m.Output) {
					originals[l] = l.Weight
				}
				mg := AttachLoRA(m)
				if err := mg.AddAdapter("p", LoraConfig{R: 4, LoraAlpha: 8, InitLoraWeights: init, TargetConfig: TargetConfig{TargetModules: c.targets}}, seeded(1)); err != nil {
					t.Fatal(err)
				}
				for _, h := range mg.layers {
					if h.lin.Weight == originals[h.lin] || h.lin.Weight.DType() != tensor.F32 {
						t.Fatalf("%s: the base weight was not replaced by an F32 residual", h.lin.Name)
					}
				}
				if d := relDiff(logits(t, m, ids), base); d > 1e-4 {
					t.Errorf("residual + adapter: logits differ from the base by %g", d)
				}
				// Without the adapter the residual model is far from the base:
				// the principal part really moved into the adapter.
				var res []float32
				mg.WithDisabled(func() error { res = logits(t, m, ids); return nil })
				if relDiff(res, base) < 1e-2 {
					t.Error("the residual model alone computes the base logits")
				}
				if err := mg.Unload(); err != nil {
					t.Fatal(err)
				}
				for l, w := range originals {
					if l.Weight != w {
						t.Fatalf("%s: Unload did not restore the original weight", l.Name)
					}
				}
				if d := relDiff(logits(t, m, ids), base); d != 0 {
					t.Errorf("after Unload logits differ from the base by %g", d)
				}
			})
		}
	}
}

// hfWeight reads a layer's weight in Hugging Face row order, in float64.
func hfWeight(t *testing.T, m *model.Model, lin *model.Linear) []float64 {
	t.Helper()
	v := read(t, m.Backend, lin.Weight)
	if lin.RoPEPermuted > 0 {
		var err error
		if v, err = permuteRoPERows(v, lin.Out, lin.In, lin.RoPEPermuted, true); err != nil {
			t.Fatal(err)
		}
	}
	return toFloat64(v)
}

// TestPrincipalFactors checks A and B against PEFT's formulas, in Hugging
// Face row order, on a Meta-order q_proj and a plain up_proj.
func TestPrincipalFactors(t *testing.T) {
	const r, alpha = 3, 12.0
	for _, init := range []LoraInit{InitPiSSA, InitOLoRA} {
		m := tinyModel(t, 9)
		weights := map[string][]float64{}
		for _, l := range m.Linears() {
			weights[l.Name] = hfWeight(t, m, l)
		}
		mg := AttachLoRA(m)
		if err := mg.AddAdapter("p", LoraConfig{R: r, LoraAlpha: alpha, InitLoraWeights: init, TargetConfig: TargetConfig{TargetModules: TargetNames("q_proj", "up_proj")}}, seeded(1)); err != nil {
			t.Fatal(err)
		}
		s := alpha / r
		for _, h := range mg.layers {
			lin, w := h.lin, h.weights["p"]
			in, out := lin.In, lin.Out
			a := toFloat64(read(t, m.Backend, w.A))
			bv := read(t, m.Backend, w.B)
			if lin.RoPEPermuted > 0 {
				var err error
				if bv, err = permuteRoPERows(bv, out, r, lin.RoPEPermuted, true); err != nil {
					t.Fatal(err)
				}
			}
			b := toFloat64(bv)
			W := weights[lin.Name]
			name := fmt.Sprintf("%s %s", init, lin.Name)
			switch init {
			case InitPiSSA:
				// A·Aᵀ = Bᵀ·B = diag(S_r / s) with S the singular values of W.
				_, sv, _ := svdJacobi(W, out, in)
				aat := matMul(a, transpose(a, r, in), r, in, r)
				btb := matMul(transpose(b, out, r), b, r, out, r)
				for i := range r {
					for j := range r {
						want := 0.0
						if i == j {
							want = sv[i] / s
						}
						if math.Abs(aat[i*r+j]-want) > 1e-5*sv[0] || math.Abs(btb[i*r+j]-want) > 1e-5*sv[0] {
							t.Errorf("%s: A·Aᵀ[%d][%d] = %g, Bᵀ·B = %g, want %g", name, i, j, aat[i*r+j], btb[i*r+j], want)
						}
					}
				}
			case InitOLoRA:
				// A = R[:r], B = Q[:, :r] of torch.linalg.qr(W).
				q, rr := qrHouseholder(W, out, in)
				k := min(out, in)
				for i := range r * in {
					if math.Abs(a[i]-rr[i]) > 1e-6 {
						t.Fatalf("%s: A[%d] = %g, R says %g", name, i, a[i], rr[i])
					}
				}
				for o := range out {
					for j := range r {
						if math.Abs(b[o*r+j]-q[o*k+j]) > 1e-6 {
							t.Fatalf("%s: B[%d][%d] = %g, Q says %g", name, o, j, b[o*r+j], q[o*k+j])
						}
					}
				}
			}
			// The residual is W − s·B·A.
			res := hfWeight(t, m, lin)
			ba := matMul(b, a, out, r, in)
			for i := range res {
				if d := math.Abs(res[i] + s*ba[i] - W[i]); d > 1e-5 {
					t.Fatalf("%s: residual + s·B·A differs from W by %g at %d", name, d, i)
				}
			}
		}
	}
}

// TestPrincipalTrainConvertReload trains PiSSA and OLoRA adapters, then
// checks that (1) the adapter converted to plain LoRA gives the trained
// model's logits on the original base, and (2) the unconverted adapter,
// loaded as PEFT loads it (recomputing the residual), does too.
func TestPrincipalTrainConvertReload(t *testing.T) {
	for _, init := range principalInits {
		t.Run(string(init), func(t *testing.T) {
			if testing.Short() {
				// Before the model and the SVD init, which trainEval would
				// skip after: 40 s under wasm for nothing.
				t.Skip("training in -short mode")
			}
			m := loadModel(t, storiesGGUF)
			base := logits(t, m, storyIDs)
			mg := AttachLoRA(m)
			cfg := LoraConfig{R: 4, LoraAlpha: 8, InitLoraWeights: init, TargetConfig: TargetConfig{TargetModules: TargetAllLinear()}}
			if err := mg.AddAdapter("p", cfg, seeded(2)); err != nil {
				t.Fatal(err)
			}
			before, after := trainEval(t, m, mg, "p", 1e-3, 40)
			if !(after < before-0.01) {
				t.Errorf("eval loss %g before, %g after 40 steps", before, after)
			}
			trained := logits(t, m, storyIDs)
			if relDiff(trained, base) < 1e-3 {
				t.Fatal("training did not change the logits")
			}

			conv, err := mg.FilesConverted("p")
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(conv[ConfigFileName], &got); err != nil {
				t.Fatal(err)
			}
			if got["r"] != 8.0 || got["lora_alpha"] != 16.0 || got["init_lora_weights"] != true {
				t.Errorf("converted config: r %v, lora_alpha %v, init_lora_weights %v; want 8, 16, true", got["r"], got["lora_alpha"], got["init_lora_weights"])
			}
			fresh := loadModel(t, storiesGGUF)
			if _, _, err := LoadAdapter(fresh, InMemory("converted", conv)); err != nil {
				t.Fatal(err)
			}
			if d := relDiff(logits(t, fresh, storyIDs), trained); d > 1e-4 {
				t.Errorf("converted adapter on the original base: logits differ by %g", d)
			}

			files, err := mg.Files("p")
			if err != nil {
				t.Fatal(err)
			}
			again := loadModel(t, storiesGGUF)
			_, warnings, err := LoadAdapter(again, InMemory("plain", files))
			if err != nil {
				t.Fatal(err)
			}
			if init != InitPiSSA && init != InitOLoRA {
				// A new random sketch gives another residual (without a
				// spectral gap, a quite different one), as in PEFT: Load
				// warns, and only the converted adapter is reliable.
				if len(warnings) == 0 {
					t.Error("no warning about the recomputed randomized residual")
				}
				return
			}
			if len(warnings) != 0 {
				t.Errorf("deterministic %s reload warned: %q", init, warnings)
			}
			if d := relDiff(logits(t, again, storyIDs), trained); d > 1e-4 {
				t.Errorf("reloaded unconverted adapter: logits differ by %g", d)
			}
		})
	}
}

func TestPrincipalDeleteRestores(t *testing.T) {
	m := tinyModel(t, 4)
	base := logits(t, m, tinyIDs)
	orig := m.Layers[0].Q.Weight
	mg := AttachLoRA(m)
	targets := TargetNames("q_proj", "up_proj")
	if err := mg.AddAdapter("p1", LoraConfig{R: 2, LoraAlpha: 4, InitLoraWeights: InitPiSSA, TargetConfig: TargetConfig{TargetModules: targets}}, seeded(1)); err != nil {
		t.Fatal(err)
	}
	if err := mg.AddAdapter("p2", LoraConfig{R: 2, LoraAlpha: 2, InitLoraWeights: InitOLoRA, TargetConfig: TargetConfig{TargetModules: targets}}, seeded(2)); err != nil {
		t.Fatal(err)
	}
	if err := mg.SetActive("p1", "p2"); err != nil {
		t.Fatal(err)
	}
	if d := relDiff(logits(t, m, tinyIDs), base); d > 1e-4 {
		t.Errorf("two stacked residuals with both adapters: logits differ by %g", d)
	}
	if err := mg.DeleteAdapter("p1"); err != nil {
		t.Fatal(err)
	}
	if d := relDiff(logits(t, m, tinyIDs), base); d > 1e-4 {
		t.Errorf("after deleting the first: logits differ by %g", d)
	}
	if err := mg.DeleteAdapter("p2"); err != nil {
		t.Fatal(err)
	}
	if m.Layers[0].Q.Weight != orig {
		t.Error("deleting every adapter did not restore the original weight")
	}
	if d := relDiff(logits(t, m, tinyIDs), base); d != 0 {
		t.Errorf("after deleting both: logits differ by %g", d)
	}
	// Converting an adapter that never changed the base is refused.
	if err := mg.AddAdapter("plain", LoraConfig{R: 2, LoraAlpha: 2}, seeded(3)); err != nil {
		t.Fatal(err)
	}
	if _, err := mg.FilesConverted("plain"); err == nil {
		t.Error("FilesConverted of a plain LoRA adapter succeeded")
	}
}
