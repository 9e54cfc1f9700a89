package peft

import (
	"errors"
	"slices"
	"testing"

	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/tensor"
)

func mustPromptTuning(t *testing.T, m *model.Model, cfg PromptTuningConfig, seed uint64) Adapter {
	t.Helper()
	a, err := NewPromptTuning(m, cfg, seeded(seed))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestPromptTuningGradients(t *testing.T) {
	m := tinyModel(t, 2)
	a := mustPromptTuning(t, m, PromptTuningConfig{PromptLearningConfig: PromptLearningConfig{NumVirtualTokens: 3}}, 1)
	params := a.Params()
	if len(params) != 1 || params[0].Name != "prompt_embeddings" || !params[0].Value.Shape().Equal(tensor.Shape{3, 16}) {
		t.Fatalf("params %+v", params)
	}
	checkParamGradients(t, m, params, tinyBatch())
}

func TestPromptTuningRandomInit(t *testing.T) {
	m := loadModel(t, storiesGGUF)
	a := mustPromptTuning(t, m, PromptTuningConfig{PromptLearningConfig: PromptLearningConfig{NumVirtualTokens: 40}}, 3)
	mean, std, _ := stats(read(t, m.Backend, a.Params()[0].Value))
	if n := 40 * m.Config.Dim; mean > 0.05 || mean < -0.05 || std < 0.95 || std > 1.05 {
		t.Errorf("RANDOM init over %d values: mean %g std %g, want N(0, 1)", n, mean, std)
	}
}

func TestPromptTuningTextInit(t *testing.T) {
	m := loadModel(t, storiesGGUF)
	const text = "Once upon a time"
	tokens := m.Tokenizer.Encode(text, true)
	if len(tokens) < 3 || tokens[0] != m.Tokenizer.BOS() {
		t.Fatalf("tokens %v", tokens)
	}
	dim := m.Config.Dim
	table := read(t, m.Backend, m.Embed)
	for _, n := range []int{len(tokens) + 3, len(tokens) - 2} { // repeated, truncated
		cfg := PromptTuningConfig{PromptLearningConfig: PromptLearningConfig{NumVirtualTokens: n},
			PromptTuningInit: PromptInitText, PromptTuningInitText: text}
		a := mustPromptTuning(t, m, cfg, 0)
		got := read(t, m.Backend, a.Params()[0].Value)
		for i := range n {
			id := tokens[i%len(tokens)]
			if !slices.Equal(got[i*dim:(i+1)*dim], table[int(id)*dim:(int(id)+1)*dim]) {
				t.Errorf("n=%d: virtual token %d is not the embedding of token %d", n, i, id)
			}
		}
		cfgOut, _, _, _ := readSaved(t, savedFiles(t, a))
		if cfgOut["prompt_tuning_init"] != "TEXT" || cfgOut["prompt_tuning_init_text"] != text || cfgOut["tokenizer_name_or_path"] != m.SourcePath {
			t.Errorf("saved config %v", cfgOut)
		}
		if err := a.Unload(); err != nil {
			t.Fatal(err)
		}
	}
	// SAMPLE_VOCAB takes rows of the table too.
	a := mustPromptTuning(t, m, PromptTuningConfig{PromptLearningConfig: PromptLearningConfig{NumVirtualTokens: 5},
		PromptTuningInit: PromptInitSampleVocab}, 4)
	got := read(t, m.Backend, a.Params()[0].Value)
	for i := range 5 {
		found := false
		for id := range m.Config.Vocab {
			if slices.Equal(got[i*dim:(i+1)*dim], table[id*dim:(id+1)*dim]) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("SAMPLE_VOCAB virtual token %d is no row of the embedding table", i)
		}
	}
}

func TestPromptTuningGeneration(t *testing.T) {
	m := loadModel(t, storiesGGUF)
	base := logits(t, m, storyIDs)
	a := mustPromptTuning(t, m, PromptTuningConfig{PromptLearningConfig: PromptLearningConfig{NumVirtualTokens: 6}}, 5)
	if relDiff(logits(t, m, storyIDs), base) < 1e-3 {
		t.Fatal("the virtual tokens do not change the logits")
	}
	checkCachedMatchesTraining(t, m, storyIDs)
	if err := a.Merge(); !errors.Is(err, ErrNotMergeable) {
		t.Errorf("Merge: %v", err)
	}
	if err := a.Unload(); err != nil {
		t.Fatal(err)
	}
	if m.Prompt != nil || !slices.Equal(logits(t, m, storyIDs), base) {
		t.Error("Unload did not restore the base model")
	}
	if err := a.Unload(); err == nil {
		t.Error("second Unload accepted")
	}
	if _, err := a.Files(); err == nil {
		t.Error("Files after Unload accepted")
	}
}

func TestPromptTuningSaveLoad(t *testing.T) {
	m := loadModel(t, storiesGGUF)
	cfg := PromptTuningConfig{PromptLearningConfig: PromptLearningConfig{NumVirtualTokens: 7, BaseConfig: BaseConfig{BaseModelNameOrPath: "stories260K"}}}
	a := mustPromptTuning(t, m, cfg, 6)
	want := logits(t, m, storyIDs)
	values := read(t, m.Backend, a.Params()[0].Value)
	dir := savedFiles(t, a)

	saved, names, shape, vals := readSaved(t, dir)
	if !slices.Equal(names, []string{"prompt_embeddings"}) || !shape.Equal(tensor.Shape{7, m.Config.Dim}) || !slices.Equal(vals, values) {
		t.Errorf("saved tensors %v of shape %v", names, shape)
	}
	wantKeys := append(slices.Clone(promptLearningKeys), "prompt_tuning_init", "prompt_tuning_init_text", "tokenizer_kwargs", "tokenizer_name_or_path")
	slices.Sort(wantKeys)
	if got := sortedKeys(saved); !slices.Equal(got, wantKeys) {
		t.Errorf("config keys\n%q\nwant\n%q", got, wantKeys)
	}
	for k, v := range map[string]any{"peft_type": "PROMPT_TUNING", "task_type": "CAUSAL_LM", "num_virtual_tokens": 7.0,
		"token_dim": 64.0, "num_attention_heads": 8.0, "num_layers": 5.0, "num_transformer_submodules": 1.0,
		"prompt_tuning_init": "RANDOM", "inference_mode": true, "base_model_name_or_path": "stories260K",
		"prompt_tuning_init_text": nil, "tokenizer_name_or_path": nil} {
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
	if len(warnings) != 0 || b.PeftType() != PeftTypePromptTuning {
		t.Errorf("loaded %s with warnings %q", b.PeftType(), warnings)
	}
	if got := logits(t, m, storyIDs); !slices.Equal(got, want) {
		t.Errorf("logits after save and load differ by %g", relDiff(got, want))
	}
	// Saving the loaded adapter gives the same files.
	again := savedFiles(t, b)
	for _, name := range []string{ConfigFileName, WeightsFileName} {
		if x, y := readFile(t, dir, name), readFile(t, again, name); !slices.Equal(x, y) {
			t.Errorf("%s changed when saved again", name)
		}
	}
	if _, _, err := LoadAdapter(m, Dir(dir)); err == nil {
		t.Error("a second prompt-tuning adapter on the same model accepted")
	}
	if err := b.Unload(); err != nil {
		t.Fatal(err)
	}
	checkLoadErrors(t, m, dir, tensor.Shape{7, m.Config.Dim})
}

func TestPromptTuningTraining(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for a few seconds")
	}
	m := loadModel(t, storiesGGUF)
	cfg := PromptTuningConfig{PromptLearningConfig: PromptLearningConfig{NumVirtualTokens: 8},
		PromptTuningInit: PromptInitText, PromptTuningInitText: "Once upon a time, there was a little"}
	a := mustPromptTuning(t, m, cfg, 7)
	before, after := trainAndEval(t, m, a, 0.03, 25)
	t.Logf("eval loss %.4f -> %.4f", before, after)
	if !(after < before-0.01) {
		t.Errorf("eval loss %.4f -> %.4f: training did not lower it", before, after)
	}
}
