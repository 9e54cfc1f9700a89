package peft

import (
	"errors"
	"slices"
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/tensor"
)

func mustPrefixTuning(t *testing.T, m *model.Model, cfg PrefixTuningConfig, seed uint64) Adapter {
	t.Helper()
	a, err := NewPrefixTuning(m, cfg, seeded(seed))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func prefixConfig(n int, projection bool, hidden int) PrefixTuningConfig {
	return PrefixTuningConfig{PromptLearningConfig: PromptLearningConfig{NumVirtualTokens: n},
		PrefixProjection: projection, EncoderHiddenSize: hidden}
}

func TestPrefixTuningGradients(t *testing.T) {
	m := tinyModel(t, 3)
	a := mustPrefixTuning(t, m, prefixConfig(3, false, 0), 1)
	params := a.Params()
	// Two layers, keys and values, 3 positions of KVDim 8.
	if len(params) != 1 || params[0].Name != "prompt_embeddings" || !params[0].Value.Shape().Equal(tensor.Shape{2 * 2 * 3, 8}) {
		t.Fatalf("params %+v", params)
	}
	checkParamGradients(t, m, params, tinyBatch())
}

func TestPrefixProjectionGradients(t *testing.T) {
	m := tinyModel(t, 4)
	a := mustPrefixTuning(t, m, prefixConfig(3, true, 5), 2)
	params := a.Params()
	want := map[string]tensor.Shape{
		"prompt_encoder.embedding.weight":   {3, 8},
		"prompt_encoder.transform.0.weight": {5, 8},
		"prompt_encoder.transform.0.bias":   {5},
		"prompt_encoder.transform.2.weight": {2 * 2 * 8, 5},
		"prompt_encoder.transform.2.bias":   {2 * 2 * 8},
	}
	if len(params) != len(want) {
		t.Fatalf("%d params, want %d", len(params), len(want))
	}
	for _, p := range params {
		if !p.Value.Shape().Equal(want[p.Name]) {
			t.Errorf("%s: shape %v, want %v", p.Name, p.Value.Shape(), want[p.Name])
		}
	}
	checkParamGradients(t, m, params, tinyBatch())
	// Prompt tuning and prefix tuning together.
	pt := mustPromptTuning(t, m, PromptTuningConfig{PromptLearningConfig: PromptLearningConfig{NumVirtualTokens: 2}}, 3)
	checkParamGradients(t, m, append(pt.Params(), params...), tinyBatch())
}

func TestPrefixTuningGeneration(t *testing.T) {
	for _, c := range []struct {
		name       string
		projection bool
		prompt     bool
	}{
		{"prefix", false, false},
		{"projection", true, false},
		{"prefix and prompt", false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := loadModel(t, storiesGGUF)
			base := logits(t, m, storyIDs)
			a := mustPrefixTuning(t, m, prefixConfig(5, c.projection, 24), 8)
			if c.prompt {
				mustPromptTuning(t, m, PromptTuningConfig{PromptLearningConfig: PromptLearningConfig{NumVirtualTokens: 3}}, 9)
			}
			if relDiff(logits(t, m, storyIDs), base) < 1e-3 {
				t.Fatal("the prefix does not change the logits")
			}
			checkCachedMatchesTraining(t, m, storyIDs)
			if err := a.Merge(); !errors.Is(err, ErrNotMergeable) {
				t.Errorf("Merge: %v", err)
			}
			if err := a.Unload(); err != nil {
				t.Fatal(err)
			}
			if m.Prefix != nil || a.Params() != nil {
				t.Error("Unload left the hook or parameters")
			}
			if err := a.Unload(); err == nil {
				t.Error("second Unload accepted")
			}
			if !c.prompt && !slices.Equal(logits(t, m, storyIDs), base) {
				t.Error("Unload did not restore the base model")
			}
		})
	}
}

func TestPrefixTuningSaveLoad(t *testing.T) {
	for _, projection := range []bool{false, true} {
		name := map[bool]string{false: "prefix", true: "projection"}[projection]
		t.Run(name, func(t *testing.T) {
			m := loadModel(t, storiesGGUF)
			c := m.Config
			cfg := prefixConfig(6, projection, 0)
			a := mustPrefixTuning(t, m, cfg, 10)
			want := logits(t, m, storyIDs)
			dir := savedFiles(t, a)

			saved, names, shape, _ := readSaved(t, dir)
			if wantShape := (tensor.Shape{6, c.Layers * 2 * c.KVDim()}); !slices.Equal(names, []string{"prompt_embeddings"}) || !shape.Equal(wantShape) {
				t.Errorf("saved tensors %v of shape %v, want prompt_embeddings %v", names, shape, wantShape)
			}
			wantKeys := append(slices.Clone(promptLearningKeys), "encoder_hidden_size", "init_weights", "prefix_projection")
			slices.Sort(wantKeys)
			if got := sortedKeys(saved); !slices.Equal(got, wantKeys) {
				t.Errorf("config keys\n%q\nwant\n%q", got, wantKeys)
			}
			// PEFT records the key/value width for grouped-query models.
			for k, v := range map[string]any{"peft_type": "PREFIX_TUNING", "task_type": "CAUSAL_LM", "num_virtual_tokens": 6.0,
				"token_dim": float64(c.KVDim()), "num_attention_heads": float64(c.KVHeads), "num_layers": float64(c.Layers),
				"encoder_hidden_size": float64(c.KVDim()), "prefix_projection": projection, "inference_mode": true,
				"init_weights": nil} {
				if saved[k] != v {
					t.Errorf("config %s = %v, want %v", k, saved[k], v)
				}
			}
			if err := a.Unload(); err != nil {
				t.Fatal(err)
			}

			b, warnings, err := LoadAdapter(m, Dir(dir))
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) != 0 || b.PeftType() != PeftTypePrefixTuning {
				t.Errorf("loaded %s with warnings %q", b.PeftType(), warnings)
			}
			if got := logits(t, m, storyIDs); !slices.Equal(got, want) {
				t.Errorf("logits after save and load differ by %g", relDiff(got, want))
			}
			// A loaded adapter holds the prefix itself, as PEFT's inference
			// mode does; saving it again gives the same files.
			if ps := b.Params(); len(ps) != 1 || ps[0].Name != "prompt_embeddings" {
				t.Errorf("loaded params %+v", ps)
			}
			again := savedFiles(t, b)
			for _, name := range []string{ConfigFileName, WeightsFileName} {
				if x, y := readFile(t, dir, name), readFile(t, again, name); !slices.Equal(x, y) {
					t.Errorf("%s changed when saved again", name)
				}
			}
			if _, _, err := LoadAdapter(m, Dir(dir)); err == nil {
				t.Error("a second prefix-tuning adapter on the same model accepted")
			}
			if err := b.Unload(); err != nil {
				t.Fatal(err)
			}
			checkLoadErrors(t, m, dir, tensor.Shape{6, c.Layers * 2 * c.KVDim()})
		})
	}
}

// TestPrefixTuningLayout pins the saved layout: row t of prompt_embeddings
// holds, for each layer, its keys then its values, each KV head after
// the other, on a model in Hugging Face's head order.
func TestPrefixTuningLayout(t *testing.T) {
	m := loadModel(t, storiesGGUF)
	toHFOrder(t, m)
	c := m.Config
	n, kv := 3, c.KVDim()
	a := mustPrefixTuning(t, m, prefixConfig(n, false, 0), 1)
	p := a.Params()[0]
	blocks := make([]float32, 2*c.Layers*n*kv)
	value := func(layer, which, tok, col int) float32 {
		return float32(layer*100000 + which*10000 + tok*100 + col)
	}
	for l := range c.Layers {
		for w := range 2 {
			for tok := range n {
				for col := range kv {
					blocks[((2*l+w)*n+tok)*kv+col] = value(l, w, tok, col)
				}
			}
		}
	}
	if err := m.Backend.Write(p.Value, 0, blocks); err != nil {
		t.Fatal(err)
	}
	_, _, _, saved := readSaved(t, savedFiles(t, a))
	for tok := range n {
		for l := range c.Layers {
			for w := range 2 {
				for h := range c.KVHeads {
					for d := range c.HeadDim {
						col := h*c.HeadDim + d
						at := tok*(2*c.Layers*kv) + (2*l+w)*kv + col
						if saved[at] != value(l, w, tok, col) {
							t.Fatalf("saved[%d][%d] = %g, want layer %d %s head %d dim %d of token %d", tok, at%(2*c.Layers*kv), saved[at], l, []string{"key", "value"}[w], h, d, tok)
						}
					}
				}
			}
		}
	}
}

// TestPrefixTuningOnHFOrderModel saves a prefix trained on the GGUF model
// (keys in Meta's head order) and applies it to the same weights in
// Hugging Face's order: the logits must agree, and saving it back gives
// the same file.
func TestPrefixTuningOnHFOrderModel(t *testing.T) {
	gg := loadModel(t, storiesGGUF)
	hf := loadModel(t, storiesGGUF)
	toHFOrder(t, hf)
	a := mustPrefixTuning(t, gg, prefixConfig(4, true, 16), 11)
	want := logits(t, gg, storyIDs)
	dir := savedFiles(t, a)
	b, _, err := LoadAdapter(hf, Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if d := relDiff(logits(t, hf, storyIDs), want); d > 1e-5 {
		t.Errorf("the prefix on the HF-order model gives logits %g away from the GGUF model's", d)
	}
	again := savedFiles(t, b)
	if !slices.Equal(readFile(t, dir, WeightsFileName), readFile(t, again, WeightsFileName)) {
		t.Error("the prefix differs when saved from the HF-order model")
	}
}

func TestPrefixTuningZeroInit(t *testing.T) {
	m := tinyModel(t, 5)
	for _, projection := range []bool{false, true} {
		cfg := prefixConfig(2, projection, 4)
		cfg.InitWeights = PrefixInitZero
		a := mustPrefixTuning(t, m, cfg, 1)
		saved, _, _, vals := readSaved(t, savedFiles(t, a))
		if _, _, mx := stats(vals); mx != 0 {
			t.Errorf("projection %v: zero init saved a prefix up to %g", projection, mx)
		}
		if saved["init_weights"] != "zero" {
			t.Errorf("init_weights saved as %v", saved["init_weights"])
		}
		if err := a.Unload(); err != nil {
			t.Fatal(err)
		}
	}
	// Random init of the plain prefix is N(0, 1), like torch.nn.Embedding.
	a := mustPrefixTuning(t, m, prefixConfig(20, false, 0), 2)
	if mean, std, _ := stats(read(t, m.Backend, a.Params()[0].Value)); mean > 0.1 || mean < -0.1 || std < 0.93 || std > 1.07 {
		t.Errorf("random prefix: mean %g std %g, want N(0, 1)", mean, std)
	}
}

func TestPrefixTuningTraining(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for a few seconds")
	}
	for _, c := range []struct {
		name       string
		projection bool
		lr         float64
	}{
		{"prefix", false, 0.03},
		{"projection", true, 0.003},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := loadModel(t, storiesGGUF)
			a := mustPrefixTuning(t, m, prefixConfig(8, c.projection, 64), 12)
			before, after := trainAndEval(t, m, a, c.lr, 25)
			t.Logf("eval loss %.4f -> %.4f", before, after)
			if !(after < before-0.01) {
				t.Errorf("eval loss %.4f -> %.4f: training did not lower it", before, after)
			}
		})
	}
}

// TestPrefixTuningShortContext checks a prefix cut short by a cache with
// fewer positions than the prefix (a context shorter than it): each layer
// gets the leading rows of its full keys and values.
func TestPrefixTuningShortContext(t *testing.T) {
	for _, projection := range []bool{false, true} {
		m := tinyModel(t, 5)
		const n, rows = 4, 3
		mustPrefixTuning(t, m, prefixConfig(n, projection, 6), 7)
		b, kv := m.Backend, m.Config.KVDim()
		fullK, fullV := b.Zeros(n, kv), b.Zeros(n, kv)
		shortK, shortV := b.Zeros(rows, kv), b.Zeros(rows, kv)
		for layer := range m.Config.Layers {
			m.Prefix.Forward(b, layer, fullK, fullV)
			m.Prefix.Forward(b, layer, shortK, shortV)
			for _, c := range []struct {
				what        string
				full, short backend.Buffer
			}{{"keys", fullK, shortK}, {"values", fullV, shortV}} {
				want, got := read(t, b, c.full)[:rows*kv], read(t, b, c.short)
				// Row blocks of a different height may take another
				// kernel path: equal to float32 rounding.
				if d := relDiff(got, want); d > 1e-6 {
					t.Errorf("projection %v, layer %d: short %s %v are %g away from the leading rows %v", projection, layer, c.what, got, d, want)
				}
			}
		}
	}
}
