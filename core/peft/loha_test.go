package peft

import (
	"bytes"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/model"
)

func TestLoHaMatchesPEFTGolden(t *testing.T) {
	g := readLycoGolden(t)
	n := 0
	for _, c := range g.Cases {
		if c.Method != "loha" {
			continue
		}
		n++
		t.Run(c.Name, func(t *testing.T) {
			worst := checkLycoGolden(t, c, func(lin *model.Linear) lycoPlan { return lohaPlan(lin, c.R, c.Alpha) },
				func(m *model.Model) (*lycoAdapter, func(*lycoLayer) (deltaMethod, error)) {
					ad := newLoHaAdapter(m, DefaultConfig[LoHaConfig]())
					return ad, ad.newLoHaDelta
				})
			t.Logf("max |graft - PEFT| %.3g", worst)
		})
	}
	if n < 2 {
		t.Fatalf("%d LoHa golden cases", n)
	}
}

// newLyco creates a LoHa or LoKr adapter from an adapter_config.json
// document, as the CLI and plugins do, and sets every factor to ±scale so
// that tests do not run at the no-op initialisation.
func newLyco(t *testing.T, m *model.Model, config string, scale float64) Adapter {
	t.Helper()
	a, err := NewAdapter(m, []byte(config), seeded(1))
	if err != nil {
		t.Fatal(err)
	}
	if scale > 0 {
		vecRandomize(t, m.Backend, a, 0, scale)
	}
	return a
}

func TestLoHaGoldenConfig(t *testing.T) {
	const file = "testdata/loha_adapter_config.golden.json"
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig[LoHaConfig]()
	cfg.Alpha = 16
	cfg.RankDropout = 0.05
	cfg.TargetModules = TargetNames("v_proj", "q_proj")
	cfg.LayersToTransform = []int{0, 2}
	cfg.LayersPattern = []string{"layers"}
	cfg.AlphaPattern = Patterns[float64]{{"v_proj", 4}, {"q_proj", 2.5}}
	cfg.BaseModelNameOrPath = "stories260K"
	cfg.InferenceMode = true
	got, err := EncodeConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	back, warnings, err := ParseConfig[LoHaConfig](want)
	if err != nil || len(warnings) > 0 {
		t.Fatalf("parse: %v %q", err, warnings)
	}
	if err := back.Validate(); err != nil {
		t.Fatal(err)
	}
	if again, _ := EncodeConfig(back); !bytes.Equal(again, want) {
		t.Errorf("parse and encode changed it:\n%s", again)
	}
	// Missing keys take PEFT's defaults; unknown keys are reported.
	min, warnings, err := ParseConfig[LoHaConfig]([]byte(`{"peft_type": "LOHA", "peft_version": "0.17.0", "shiny": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	if min.R != 8 || min.Alpha != 8 || !min.InitWeights || min.RankDropout != 0 {
		t.Errorf("defaults: %+v", min)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "shiny") {
		t.Errorf("warnings %q", warnings)
	}
}

func TestLoHaConfigErrors(t *testing.T) {
	for _, c := range []struct {
		name, config, want string
	}{
		{"rank", `{"peft_type": "LOHA", "r": 0}`, "r = 0"},
		{"alpha", `{"peft_type": "LOHA", "alpha": -1}`, "alpha"},
		{"rank dropout", `{"peft_type": "LOHA", "rank_dropout": 1}`, "rank_dropout"},
		{"module dropout", `{"peft_type": "LOHA", "module_dropout": -0.5}`, "module_dropout"},
		{"modules to save", `{"peft_type": "LOHA", "modules_to_save": ["lm_head"]}`, "modules_to_save"},
		{"layers pattern alone", `{"peft_type": "LOHA", "layers_pattern": "layers"}`, "layers_to_transform"},
		{"rank pattern", `{"peft_type": "LOHA", "rank_pattern": {"q_proj": 0}}`, "rank_pattern"},
		{"alpha pattern", `{"peft_type": "LOHA", "alpha_pattern": {"(": 2}}`, "alpha_pattern"},
		{"other type", `{"peft_type": "LOKR"}`, "LOKR"},
		{"task", `{"peft_type": "LOHA", "task_type": "SEQ_CLS"}`, "task_type"},
		{"r type", `{"peft_type": "LOHA", "r": 2.5}`, "r"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, _, err := ParseConfig[LoHaConfig]([]byte(c.config))
			if err == nil {
				err = cfg.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

func TestLoHaInit(t *testing.T) {
	m := tinyModel(t, 31)
	base := logits(t, m, tinyIDs)
	a := newLyco(t, m, `{"peft_type": "LOHA", "r": 6, "target_modules": ["q_proj", "up_proj"]}`, 0)
	if d := relDiff(logits(t, m, tinyIDs), base); d != 0 {
		t.Errorf("a new adapter (w2_b = 0) changes the logits by %g", d)
	}
	if n := len(a.Params()); n != 4*2*m.Config.Layers {
		t.Errorf("%d parameters, want %d", n, 4*2*m.Config.Layers)
	}
	for _, p := range a.Params() {
		v := read(t, m.Backend, p.Value)
		if strings.HasSuffix(p.Name, ".hada_w2_b") {
			if _, _, mx := stats(v); mx != 0 {
				t.Errorf("%s starts at max %g, want 0", p.Name, mx)
			}
			continue
		}
		// Kaiming-uniform with a=√5: U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
		// fan_in the number of columns.
		bound := 1 / math.Sqrt(float64(p.Value.Shape()[1]))
		if _, _, mx := stats(v); mx > bound || mx < 0.5*bound {
			t.Errorf("%s: max |value| %g, want U(±%g)", p.Name, mx, bound)
		}
	}
	if err := a.Unload(); err != nil {
		t.Fatal(err)
	}
	// init_weights false draws w2_b too: the adapter acts at once.
	a = newLyco(t, m, `{"peft_type": "LOHA", "r": 6, "init_weights": false, "target_modules": ["q_proj"]}`, 0)
	if d := relDiff(logits(t, m, tinyIDs), base); d == 0 {
		t.Error("init_weights false leaves the logits unchanged")
	}
	if err := a.Unload(); err != nil {
		t.Fatal(err)
	}
}

func TestLoHaStacksWithLoRA(t *testing.T) {
	lycoCheckStack(t, `{"peft_type": "LOHA", "r": 3, "target_modules": ["q_proj", "up_proj"]}`)
}

func TestLoHaGradients(t *testing.T) {
	for _, c := range []struct {
		name   string
		config string
	}{
		{"plain", `{"peft_type": "LOHA", "r": 3, "alpha": 5, "target_modules": ["q_proj", "up_proj", "down_proj"]}`},
		{"rank pattern", `{"peft_type": "LOHA", "r": 3, "rank_pattern": {"up_proj": 2}, "alpha_pattern": {"q_proj": 1}, "target_modules": ["q_proj", "up_proj", "down_proj"]}`},
		{"rank dropout", `{"peft_type": "LOHA", "r": 3, "rank_dropout": 0.4, "target_modules": ["q_proj", "up_proj", "down_proj"]}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := tinyModel(t, 32)
			a := newLyco(t, m, c.config, 0.6)
			reset := func() {
				if err := a.SetTraining(true, seeded(99)); err != nil { // the same draws every pass
					t.Fatal(err)
				}
			}
			// q_proj keeps Meta's RoPE row order; down_proj is wider than tall.
			for _, lin := range []*model.Linear{m.Layers[0].Q, m.Layers[1].Up, m.Layers[0].Down} {
				vecGradCheck(t, m, a, lin, reset)
			}
			if l := a.(*lycoAdapter).layers[0]; strings.Contains(c.name, "dropout") && !l.masked {
				t.Error("training with rank_dropout did not apply it")
			}
		})
	}
}

func TestLoHaSaveLoad(t *testing.T) {
	m := loadModel(t, storiesGGUF)
	base := logits(t, m, storyIDs)
	a := newLyco(t, m, `{"peft_type": "LOHA", "r": 4, "alpha": 8, "rank_pattern": {"v_proj": 2}, "target_modules": ["q_proj", "k_proj", "v_proj", "up_proj"]}`, 0.3)
	files, err := a.Files()
	if err != nil {
		t.Fatal(err)
	}
	shapes, meta := vecTensorShapes(t, files)
	if meta["format"] != "pt" {
		t.Errorf("metadata %v, want format pt", meta)
	}
	c := m.Config
	want := map[string][]int{
		"base_model.model.model.layers.0.self_attn.q_proj.hada_w1_a": {c.QDim(), 4},
		"base_model.model.model.layers.0.self_attn.q_proj.hada_w1_b": {4, c.Dim},
		"base_model.model.model.layers.0.self_attn.k_proj.hada_w2_a": {c.KVDim(), 4},
		"base_model.model.model.layers.0.self_attn.v_proj.hada_w2_b": {2, c.Dim},
		"base_model.model.model.layers.4.mlp.up_proj.hada_w1_a":      {c.FFN, 4},
	}
	for name, shape := range want {
		if got, ok := shapes[name]; !ok || !vecSameInts(got, shape) {
			t.Errorf("tensor %s: shape %v (present %v), want %v", name, got, ok, shape)
		}
	}
	if n := 4 * 4 * c.Layers; len(shapes) != n {
		t.Errorf("%d tensors, want %d", len(shapes), n)
	}
	back := vecRoundTrip(t, m, a, base)
	if err := back.Unload(); err != nil {
		t.Fatal(err)
	}
}

// TestLoHaOnHFOrderModel applies an adapter saved from the GGUF (Meta
// order) model to the same weights in Hugging Face order: the logits must
// agree, so the saved factors are in Hugging Face's order.
func TestLoHaOnHFOrderModel(t *testing.T) {
	gg := loadModel(t, storiesGGUF)
	hf := loadModel(t, storiesGGUF)
	toHFOrder(t, hf)
	newLyco(t, gg, `{"peft_type": "LOHA", "r": 4, "target_modules": ["q_proj", "k_proj", "v_proj"]}`, 0.3)
	want := logits(t, gg, storyIDs)
	lycoCheckHFOrder(t, gg, hf, want)
}

// lycoCheckHFOrder loads the adapter on gg's q_proj into hf and compares
// logits and the saved tensors.
func lycoCheckHFOrder(t *testing.T, gg, hf *model.Model, want []float32) {
	t.Helper()
	a := gg.Layers[0].Q.Hooks()[0].(*lycoLayer).ad
	files, err := a.Files()
	if err != nil {
		t.Fatal(err)
	}
	back, _, err := LoadAdapter(hf, InMemory("mem", files))
	if err != nil {
		t.Fatal(err)
	}
	if d := relDiff(logits(t, hf, storyIDs), want); d > 1e-5 {
		t.Errorf("the adapter on the HF-order model gives logits %g away from the GGUF model's", d)
	}
	again, err := back.Files()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again[WeightsFileName], files[WeightsFileName]) {
		t.Error("saving from the HF-order model gives different tensors")
	}
	// Merged on both models, the weights differ only by the row order.
	for _, ad := range []Adapter{a, back} {
		if err := ad.Merge(); err != nil {
			t.Fatal(err)
		}
	}
	if d := relDiff(logits(t, hf, storyIDs), want); d > 1e-5 {
		t.Errorf("merged on the HF-order model, logits %g away", d)
	}
	if d := relDiff(logits(t, gg, storyIDs), want); d > 1e-5 {
		t.Errorf("merged on the GGUF model, logits %g away", d)
	}
}

func TestLoHaMerge(t *testing.T) {
	t.Run("stories", func(t *testing.T) {
		m := loadModel(t, storiesGGUF)
		base := logits(t, m, storyIDs)
		vecCheckMerge(t, m, newLyco(t, m, `{"peft_type": "LOHA", "r": 4, "target_modules": ["q_proj", "v_proj", "o_proj", "down_proj"]}`, 0.3), base)
	})
	t.Run("tied head", func(t *testing.T) {
		m := tinyModel(t, 33)
		base := logits(t, m, tinyIDs)
		embed := read(t, m.Backend, m.Embed)
		a := newLyco(t, m, `{"peft_type": "LOHA", "r": 2, "target_modules": ["v_proj", "lm_head"]}`, 0.3)
		want := logits(t, m, tinyIDs)
		if err := a.Merge(); err != nil {
			t.Fatal(err)
		}
		if d := relDiff(logits(t, m, tinyIDs), want); d > 1e-5 {
			t.Errorf("merged logits differ by %g", d)
		}
		if !vecSameFloats(read(t, m.Backend, m.Embed), embed) {
			t.Error("merging into the tied head changed the embeddings")
		}
		if err := a.Unload(); err != nil {
			t.Fatal(err)
		}
		if d := relDiff(logits(t, m, tinyIDs), base); d != 0 {
			t.Errorf("after Unload the logits differ from the base by %g", d)
		}
	})
}

func TestLoHaLoadErrors(t *testing.T) {
	m := loadModel(t, storiesGGUF)
	a := newLyco(t, m, `{"peft_type": "LOHA", "r": 4, "target_modules": ["q_proj", "v_proj"]}`, 0.3)
	good, err := a.Files()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Unload(); err != nil {
		t.Fatal(err)
	}
	const w1a = "base_model.model.model.layers.0.self_attn.q_proj.hada_w1_a"
	vecCheckCorrupt(t, m, good, []vecCorrupt{
		{"truncated weights", func(t *testing.T, f Files) {
			f[WeightsFileName] = f[WeightsFileName][:len(f[WeightsFileName])/2]
		}, []string{WeightsFileName}},
		{"missing factor", func(t *testing.T, f Files) {
			vecRewriteTensors(t, f, func(v map[string]*namedValues) []namedValues { delete(v, w1a); return nil })
		}, []string{WeightsFileName, w1a, "missing"}},
		{"rank mismatch", func(t *testing.T, f Files) { vecSetConfigKey(t, f, "r", "8") },
			[]string{WeightsFileName, "shape"}},
		{"NaN", func(t *testing.T, f Files) {
			vecRewriteTensors(t, f, func(v map[string]*namedValues) []namedValues {
				v[w1a].vals[3] = float32(math.NaN())
				return nil
			})
		}, []string{WeightsFileName, w1a, "NaN"}},
		{"extra tensor", func(t *testing.T, f Files) {
			vecRewriteTensors(t, f, func(v map[string]*namedValues) []namedValues {
				return []namedValues{{"base_model.model.model.layers.0.self_attn.k_proj.hada_w1_a", []int{32, 4}, make([]float32, 128)}}
			})
		}, []string{WeightsFileName, "k_proj", "not selected"}},
		{"other targets", func(t *testing.T, f Files) { vecSetConfigKey(t, f, "target_modules", `["q_proj", "k_proj", "v_proj"]`) },
			[]string{WeightsFileName, "k_proj", "missing"}},
		{"dropout", func(t *testing.T, f Files) { vecSetConfigKey(t, f, "rank_dropout", "1.5") },
			[]string{ConfigFileName, "rank_dropout"}},
		{"bad json", func(t *testing.T, f Files) { f[ConfigFileName] = f[ConfigFileName][:20] },
			[]string{ConfigFileName, "JSON"}},
		{"no weights", func(t *testing.T, f Files) { delete(f, WeightsFileName) },
			[]string{"bad", WeightsFileName}},
	})
}

func TestLoHaTrainingLowersEvalLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for 20 steps")
	}
	m := loadModel(t, storiesGGUF)
	meth, err := LookupMethod("loha")
	if err != nil {
		t.Fatal(err)
	}
	a := newLyco(t, m, `{"peft_type": "LOHA", "r": 8, "alpha": 16, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}`, 0)
	before, after := vecTrainEval(t, m, a, meth.LR, 20) // the registry's learning rate
	t.Logf("eval loss %.4f -> %.4f", before, after)
	if !(after < before-0.05) {
		t.Errorf("eval loss %g -> %g: training did not lower it", before, after)
	}
}

func TestLoHaDropout(t *testing.T) {
	lycoCheckDropout(t, `{"peft_type": "LOHA", "r": 3, "rank_dropout": 0.5, "module_dropout": 0.3, "target_modules": ["q_proj"]}`, true)
}

func TestLoHaReplaysDropout(t *testing.T) {
	lycoCheckReplay(t, `{"peft_type": "LOHA", "r": 4, "rank_dropout": 0.3, "module_dropout": 0.3, "target_modules": "all-linear"}`)
}

func TestLoHaIsNotExportedAsGGUFLoRA(t *testing.T) {
	lycoCheckNoGGUFExport(t, `{"peft_type": "LOHA", "r": 4}`, PeftTypeLoHa)
}
