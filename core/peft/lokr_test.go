package peft

import (
	"bytes"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/model"
)

func TestLoKrMatchesPEFTGolden(t *testing.T) {
	g := readLycoGolden(t)
	n := 0
	for _, c := range g.Cases {
		if c.Method != "lokr" {
			continue
		}
		n++
		t.Run(c.Name, func(t *testing.T) {
			worst := checkLycoGolden(t, c, func(lin *model.Linear) lycoPlan {
				return lokrPlan(lin, c.R, c.Alpha, c.DecomposeBoth, c.DecomposeFactor)
			}, func(m *model.Model) (*lycoAdapter, func(*lycoLayer) (deltaMethod, error)) {
				ad := newLoKrAdapter(m, DefaultConfig[LoKrConfig]())
				return ad, ad.newLoKrDelta
			})
			t.Logf("max |graft - PEFT| %.3g", worst)
		})
	}
	if n < 5 {
		t.Fatalf("%d LoKr golden cases", n)
	}
}

func TestLoKrFactorizationMatchesPEFT(t *testing.T) {
	g := readLycoGolden(t)
	if len(g.Factorization) < 50 {
		t.Fatalf("%d factorization cases", len(g.Factorization))
	}
	for _, c := range g.Factorization {
		if m, n := factorization(c[0], c[1]); m != c[2] || n != c[3] {
			t.Errorf("factorization(%d, %d) = (%d, %d), PEFT (%d, %d)", c[0], c[1], m, n, c[2], c[3])
		}
	}
}

func TestLoKrGoldenConfig(t *testing.T) {
	const file = "testdata/lokr_adapter_config.golden.json"
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig[LoKrConfig]()
	cfg.R = 4
	cfg.Alpha = 8
	cfg.ModuleDropout = 0.1
	cfg.DecomposeBoth = true
	cfg.DecomposeFactor = 8
	cfg.RankDropoutScale = true
	cfg.InitWeights = LoKrInitLycoris
	cfg.TargetModules = TargetAllLinear()
	cfg.RankPattern = Patterns[int]{{"down_proj", 2}}
	cfg.BaseModelNameOrPath = "stories260K"
	cfg.InferenceMode = true
	got, err := EncodeConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	back, warnings, err := ParseConfig[LoKrConfig](want)
	if err != nil || len(warnings) > 0 {
		t.Fatalf("parse: %v %q", err, warnings)
	}
	if err := back.Validate(); err != nil {
		t.Fatal(err)
	}
	if again, _ := EncodeConfig(back); !bytes.Equal(again, want) {
		t.Errorf("parse and encode changed it:\n%s", again)
	}
	// Missing keys take PEFT's defaults; init_weights is a boolean or
	// "lycoris".
	min, warnings, err := ParseConfig[LoKrConfig]([]byte(`{"peft_type": "LOKR", "init_weights": false, "shiny": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	if min.R != 8 || min.Alpha != 8 || min.DecomposeFactor != -1 || min.DecomposeBoth || min.InitWeights != LoKrInitRandom {
		t.Errorf("defaults: %+v", min)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "shiny") {
		t.Errorf("warnings %q", warnings)
	}
	if enc, _ := EncodeConfig(min); !bytes.Contains(enc, []byte(`"init_weights": false`)) {
		t.Errorf("init_weights false written as\n%s", enc)
	}
}

func TestLoKrConfigErrors(t *testing.T) {
	for _, c := range []struct {
		name, config, want string
	}{
		{"rank", `{"peft_type": "LOKR", "r": -1}`, "r = -1"},
		{"alpha", `{"peft_type": "LOKR", "alpha": 0}`, "alpha"},
		{"rank dropout", `{"peft_type": "LOKR", "rank_dropout": 2}`, "rank_dropout"},
		{"init", `{"peft_type": "LOKR", "init_weights": "gaussian"}`, "init_weights"},
		{"init type", `{"peft_type": "LOKR", "init_weights": 1}`, "init_weights"},
		{"factor type", `{"peft_type": "LOKR", "decompose_factor": "8"}`, "decompose_factor"},
		{"other type", `{"peft_type": "LOHA"}`, "LOHA"},
		{"modules to save", `{"peft_type": "LOKR", "modules_to_save": ["lm_head"]}`, "modules_to_save"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, _, err := ParseConfig[LoKrConfig]([]byte(c.config))
			if err == nil {
				err = cfg.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

func TestLoKrInit(t *testing.T) {
	m := loadModel(t, storiesGGUF)
	base := logits(t, m, storyIDs)
	for _, c := range []struct {
		name, init string
		zero       []string // factors that start at zero
		noop       bool
	}{
		{"default", `true`, []string{"lokr_w1", "lokr_w1_a"}, true},
		{"lycoris", `"lycoris"`, []string{"lokr_w2", "lokr_w2_b"}, true},
		{"random", `false`, nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			// r 2 with decompose_both decomposes every factor; at r 8 only
			// down_proj's w2 [8, 43] is (its in 172 = 4x43).
			for _, r := range []string{"2", "8"} {
				a := newLyco(t, m, `{"peft_type": "LOKR", "r": `+r+`, "decompose_both": true, "init_weights": `+c.init+`, "target_modules": ["q_proj", "down_proj"]}`, 0)
				if d := relDiff(logits(t, m, storyIDs), base); (d == 0) != c.noop {
					t.Errorf("r %s: a new adapter changes the logits by %g", r, d)
				}
				for _, p := range a.Params() {
					v := read(t, m.Backend, p.Value)
					_, _, mx := stats(v)
					suffix := p.Name[strings.LastIndexByte(p.Name, '.')+1:]
					if strings.Contains(" "+strings.Join(c.zero, " ")+" ", " "+suffix+" ") {
						if mx != 0 {
							t.Errorf("%s starts at max %g, want 0", p.Name, mx)
						}
						continue
					}
					bound := 1 / math.Sqrt(float64(p.Value.Shape()[1]))
					if mx > bound || mx < 0.3*bound {
						t.Errorf("%s: max |value| %g, want U(±%g)", p.Name, mx, bound)
					}
				}
				if err := a.Unload(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestLoKrGradients(t *testing.T) {
	for _, c := range []struct {
		name   string
		config string
	}{
		{"whole factors", `{"peft_type": "LOKR", "r": 4, "alpha": 5, "target_modules": ["q_proj", "up_proj", "down_proj"]}`},
		{"decomposed", `{"peft_type": "LOKR", "r": 1, "decompose_both": true, "target_modules": ["q_proj", "up_proj", "down_proj"]}`},
		{"factor and patterns", `{"peft_type": "LOKR", "r": 2, "decompose_factor": 2, "rank_pattern": {"up_proj": 1}, "alpha_pattern": {"q_proj": 3}, "target_modules": ["q_proj", "up_proj", "down_proj"]}`},
		{"rank dropout", `{"peft_type": "LOKR", "r": 2, "rank_dropout": 0.4, "rank_dropout_scale": true, "target_modules": ["q_proj", "up_proj", "down_proj"]}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := tinyModel(t, 41)
			a := newLyco(t, m, c.config, 0.6)
			reset := func() {
				if err := a.SetTraining(true, seeded(99)); err != nil { // the same draws every pass
					t.Fatal(err)
				}
			}
			// q_proj keeps Meta's RoPE row order (a gathered ΔW); up_proj
			// and down_proj are 24x16 and 16x24.
			for _, lin := range []*model.Linear{m.Layers[0].Q, m.Layers[1].Up, m.Layers[0].Down} {
				vecGradCheck(t, m, a, lin, reset)
			}
		})
	}
}

func TestLoKrSaveLoad(t *testing.T) {
	m := loadModel(t, storiesGGUF)
	base := logits(t, m, storyIDs)
	a := newLyco(t, m, `{"peft_type": "LOKR", "r": 2, "decompose_both": true, "rank_pattern": {"v_proj": 8}, "target_modules": ["q_proj", "k_proj", "v_proj", "down_proj"]}`, 0.3)
	files, err := a.Files()
	if err != nil {
		t.Fatal(err)
	}
	shapes, meta := vecTensorShapes(t, files)
	if meta["format"] != "pt" {
		t.Errorf("metadata %v, want format pt", meta)
	}
	// stories260K: q_proj 64x64 = (8x8)x(8x8), k_proj and v_proj 32x64 =
	// (4x8)x(8x8), down_proj 64x172 = (8x8)x(4x43).
	want := map[string][]int{
		"base_model.model.model.layers.0.self_attn.q_proj.lokr_w1_a": {8, 2},
		"base_model.model.model.layers.0.self_attn.q_proj.lokr_w1_b": {2, 8},
		"base_model.model.model.layers.0.self_attn.q_proj.lokr_w2_a": {8, 2},
		"base_model.model.model.layers.0.self_attn.q_proj.lokr_w2_b": {2, 8},
		"base_model.model.model.layers.0.self_attn.k_proj.lokr_w1_a": {4, 2},
		"base_model.model.model.layers.0.self_attn.v_proj.lokr_w1":   {4, 8},
		"base_model.model.model.layers.0.self_attn.v_proj.lokr_w2":   {8, 8},
		"base_model.model.model.layers.3.mlp.down_proj.lokr_w1_a":    {8, 2},
		"base_model.model.model.layers.3.mlp.down_proj.lokr_w2_b":    {2, 43},
	}
	for name, shape := range want {
		if got, ok := shapes[name]; !ok || !vecSameInts(got, shape) {
			t.Errorf("tensor %s: shape %v (present %v), want %v", name, got, ok, shape)
		}
	}
	if n := (4 + 4 + 2 + 4) * m.Config.Layers; len(shapes) != n {
		t.Errorf("%d tensors, want %d", len(shapes), n)
	}
	back := vecRoundTrip(t, m, a, base)
	if err := back.Unload(); err != nil {
		t.Fatal(err)
	}
}

// TestLoKrOnHFOrderModel applies an adapter saved from the GGUF (Meta
// order) model to the same weights in Hugging Face order: the logits must
// agree, so ΔW's rows are gathered into Meta's order on the GGUF model.
func TestLoKrOnHFOrderModel(t *testing.T) {
	gg := loadModel(t, storiesGGUF)
	hf := loadModel(t, storiesGGUF)
	toHFOrder(t, hf)
	newLyco(t, gg, `{"peft_type": "LOKR", "r": 4, "target_modules": ["q_proj", "k_proj", "v_proj"]}`, 0.3)
	want := logits(t, gg, storyIDs)
	lycoCheckHFOrder(t, gg, hf, want)
}

func TestLoKrMerge(t *testing.T) {
	m := loadModel(t, storiesGGUF)
	base := logits(t, m, storyIDs)
	vecCheckMerge(t, m, newLyco(t, m, `{"peft_type": "LOKR", "r": 2, "target_modules": ["q_proj", "k_proj", "o_proj", "down_proj"]}`, 0.3), base)
}

func TestLoKrLoadErrors(t *testing.T) {
	m := loadModel(t, storiesGGUF)
	a := newLyco(t, m, `{"peft_type": "LOKR", "r": 8, "target_modules": ["q_proj", "v_proj"]}`, 0.3)
	good, err := a.Files()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Unload(); err != nil {
		t.Fatal(err)
	}
	const w1 = "base_model.model.model.layers.0.self_attn.q_proj.lokr_w1"
	vecCheckCorrupt(t, m, good, []vecCorrupt{
		{"missing factor", func(t *testing.T, f Files) {
			vecRewriteTensors(t, f, func(v map[string]*namedValues) []namedValues { delete(v, w1); return nil })
		}, []string{WeightsFileName, w1, "missing"}},
		// r 2 < 8/2 decomposes w2: the file's whole w2 is not what the
		// config implies.
		{"other decomposition", func(t *testing.T, f Files) { vecSetConfigKey(t, f, "r", "2") },
			[]string{WeightsFileName, "lokr_w2", "other factors"}},
		{"factor shape", func(t *testing.T, f Files) { vecSetConfigKey(t, f, "decompose_factor", "2") },
			[]string{WeightsFileName, "shape"}},
		{"NaN", func(t *testing.T, f Files) {
			vecRewriteTensors(t, f, func(v map[string]*namedValues) []namedValues {
				v[w1].vals[0] = float32(math.Inf(1))
				return nil
			})
		}, []string{WeightsFileName, w1, "Inf"}},
		{"init", func(t *testing.T, f Files) { vecSetConfigKey(t, f, "init_weights", `"orthogonal"`) },
			[]string{ConfigFileName, "init_weights"}},
	})
}

func TestLoKrDropout(t *testing.T) {
	// PEFT's LoKr rescales the kept rows only with rank_dropout_scale.
	lycoCheckDropout(t, `{"peft_type": "LOKR", "r": 3, "rank_dropout": 0.5, "module_dropout": 0.3, "target_modules": ["q_proj"]}`, false)
	lycoCheckDropout(t, `{"peft_type": "LOKR", "r": 3, "rank_dropout": 0.5, "module_dropout": 0.3, "rank_dropout_scale": true, "target_modules": ["q_proj"]}`, true)
}

func TestLoKrReplaysDropout(t *testing.T) {
	lycoCheckReplay(t, `{"peft_type": "LOKR", "r": 2, "rank_dropout": 0.3, "module_dropout": 0.3, "target_modules": "all-linear"}`)
}

func TestLoKrStacksWithLoRA(t *testing.T) {
	lycoCheckStack(t, `{"peft_type": "LOKR", "r": 2, "target_modules": ["q_proj", "up_proj"]}`)
}

func TestLoKrIsNotExportedAsGGUFLoRA(t *testing.T) {
	lycoCheckNoGGUFExport(t, `{"peft_type": "LOKR", "r": 4}`, PeftTypeLoKr)
}

func TestLoKrTrainingLowersEvalLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for 20 steps")
	}
	m := loadModel(t, storiesGGUF)
	meth, err := LookupMethod("lokr")
	if err != nil {
		t.Fatal(err)
	}
	a := newLyco(t, m, `{"peft_type": "LOKR", "r": 8, "alpha": 16, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}`, 0)
	before, after := vecTrainEval(t, m, a, meth.LR, 20) // the registry's learning rate
	t.Logf("eval loss %.4f -> %.4f", before, after)
	if !(after < before-0.05) {
		t.Errorf("eval loss %g -> %g: training did not lower it", before, after)
	}
}
