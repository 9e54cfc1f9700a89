package peft

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/formats/safetensors"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/tensor"
)

// tinyBatch is two rows of the tiny model's tokens with a down-weighted
// and an excluded position, so the weights reach the gradient.
func tinyBatch() model.TokenBatch {
	const B, T = 2, 5
	tb := model.TokenBatch{B: B, T: T, IDs: make([]int32, B*T), Targets: make([]int32, B*T), Weights: make([]float32, B*T)}
	for r := range B {
		seq := tinyIDs[r*4 : r*4+T+1]
		copy(tb.IDs[r*T:], seq[:T])
		copy(tb.Targets[r*T:], seq[1:])
	}
	for i := range tb.Weights {
		tb.Weights[i] = 1
	}
	tb.Weights[1], tb.Weights[7] = 0.5, 0
	return tb
}

// checkParamGradients compares the gradient LossAndGrad accumulates for
// every element of every parameter with central differences of
// BatchLoss, and checks that a second pass accumulates (doubles) it.
func checkParamGradients(t *testing.T, m *model.Model, params []model.Param, tb model.TokenBatch) {
	t.Helper()
	b := m.Backend
	for _, p := range params {
		b.Scale(p.Grad, p.Grad, 0)
	}
	loss, err := m.LossAndGrad(tb, 1)
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := m.BatchLoss(tb); err != nil || plain != loss {
		t.Fatalf("BatchLoss = %.9g (%v), LossAndGrad's loss = %.9g", plain, err, loss)
	}
	const h = 1e-2
	for _, p := range params {
		analytic := read(t, b, p.Grad)
		vals := read(t, b, p.Value)
		set := func(i int, v float32) {
			t.Helper()
			if err := b.Write(p.Value, i, []float32{v}); err != nil {
				t.Fatal(err)
			}
		}
		lossAt := func() float64 {
			t.Helper()
			l, err := m.BatchLoss(tb)
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		var worst, scale float64
		worstAt := 0
		for i, orig := range vals {
			set(i, orig+h)
			up := lossAt()
			set(i, orig-h)
			down := lossAt()
			set(i, orig)
			fd := (up - down) / (2 * h)
			if d := math.Abs(fd - float64(analytic[i])); d > worst {
				worst, worstAt = d, i
			}
			scale = math.Max(scale, math.Abs(fd))
		}
		if scale < 1e-4 || worst > 5e-3*scale+1e-4 {
			t.Errorf("%s: max |finite difference - analytic| = %g at %d (analytic %g), scale %g", p.Name, worst, worstAt, analytic[worstAt], scale)
		}
	}
	// A second pass adds the same gradient again.
	first := make([][]float32, len(params))
	for i, p := range params {
		first[i] = read(t, b, p.Grad)
	}
	if _, err := m.LossAndGrad(tb, 1); err != nil {
		t.Fatal(err)
	}
	for i, p := range params {
		twice := read(t, b, p.Grad)
		for j := range twice {
			if math.Abs(float64(twice[j]-2*first[i][j])) > 1e-5*math.Abs(float64(first[i][j]))+1e-6 {
				t.Fatalf("%s[%d]: %g after two passes, %g after one", p.Name, j, twice[j], first[i][j])
			}
		}
	}
}

// checkCachedMatchesTraining checks that generation with a KV cache, one
// token at a time and all at once, computes what the training forward
// computes: the same logits and the same loss as BatchLoss.
func checkCachedMatchesTraining(t *testing.T, m *model.Model, ids []int32) {
	t.Helper()
	vocab := m.Config.Vocab
	all := logits(t, m, ids)
	c := m.NewCache(len(ids))
	defer m.FreeCache(c)
	var stepwise []float32
	for _, id := range ids {
		out, err := m.Forward(c, []int32{id}, false)
		if err != nil {
			t.Fatal(err)
		}
		stepwise = append(stepwise, out...)
	}
	if d := relDiff(stepwise, all); d > 1e-5 {
		t.Errorf("token-by-token logits differ from the one-pass logits by %g", d)
	}
	// The training forward's loss on the same sequence.
	T := len(ids) - 1
	tb := model.TokenBatch{B: 1, T: T, IDs: ids[:T], Targets: ids[1:]}
	got, err := m.BatchLoss(tb)
	if err != nil {
		t.Fatal(err)
	}
	var want float64
	for i := range T {
		row := stepwise[i*vocab : (i+1)*vocab]
		mx := float64(slices.Max(row))
		var sum float64
		for _, v := range row {
			sum += math.Exp(float64(v) - mx)
		}
		want += mx + math.Log(sum) - float64(row[ids[i+1]])
	}
	if math.Abs(got-want) > 1e-5*math.Abs(want) {
		t.Errorf("training loss %.9g, loss of the cached logits %.9g", got, want)
	}
}

// trainAndEval trains params on the example stories for steps and returns
// the held-out eval loss before and after.
func trainAndEval(t *testing.T, m *model.Model, a Adapter, lr float64, steps int) (before, after float64) {
	t.Helper()
	dir := "../../examples/lora/data"
	load := func(name string, shuffle bool) *data.Loader {
		ex, err := data.Load(filepath.Join(dir, name), m.Tokenizer, data.DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		l, err := data.NewLoader(ex, data.LoaderOptions{Batch: 4, SeqLen: 32, Pack: true, Shuffle: shuffle})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	return fit(t, m, a, load("train.jsonl", true), load("eval.jsonl", false), FitArgs{LR: lr, Steps: steps, Warmup: 2, Seed: 7, MaxEval: 4})
}

// savedFiles saves a into a new directory and returns it.
func savedFiles(t *testing.T, a Adapter) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "adapter")
	if err := Save(a, dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// readSaved returns the saved config as a map and the tensors' names,
// shapes and prompt_embeddings.
func readSaved(t *testing.T, dir string) (cfg map[string]any, names []string, shape tensor.Shape, vals []float32) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, ConfigFileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(dir, WeightsFileName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Metadata["format"] != "pt" {
		t.Errorf("metadata %v, want format pt", f.Metadata)
	}
	names = f.Names()
	ti, ok := f.Tensor(promptEmbeddingsKey)
	if !ok {
		t.Fatalf("no %s in %v", promptEmbeddingsKey, names)
	}
	if ti.DType != tensor.F32 {
		t.Errorf("dtype %s, want F32", ti.DTypeName)
	}
	return cfg, names, ti.Shape, readTensor(t, f, promptEmbeddingsKey)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// promptLearningKeys are the adapter_config.json keys of PEFT's
// PromptLearningConfig (without peft_version, which graft does not write).
var promptLearningKeys = []string{"auto_mapping", "base_model_name_or_path", "inference_mode", "modules_to_save",
	"num_attention_heads", "num_layers", "num_transformer_submodules", "num_virtual_tokens", "peft_type",
	"revision", "task_type", "token_dim"}

func TestAsciiJSON(t *testing.T) {
	got := string(asciiJSON([]byte(`{"a": "café 😀 <&>"}`)))
	if want := `{"a": "caf\u00e9 \ud83d\ude00 <&>"}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	var back map[string]string
	if err := json.Unmarshal([]byte(got), &back); err != nil || back["a"] != "café 😀 <&>" {
		t.Errorf("does not decode back: %v %q", err, back)
	}
}

func TestPromptConfigsParse(t *testing.T) {
	pt, warnings, err := ParseConfig[PromptTuningConfig]([]byte(`{"peft_type": "PROMPT_TUNING", "task_type": "CAUSAL_LM",
		"num_virtual_tokens": 20, "token_dim": 64, "num_transformer_submodules": 1, "num_attention_heads": 8,
		"num_layers": 5, "prompt_tuning_init": "TEXT", "prompt_tuning_init_text": "Tell a story",
		"tokenizer_name_or_path": "stories", "tokenizer_kwargs": null, "peft_version": "0.17.0",
		"auto_mapping": null, "revision": null, "inference_mode": true, "mystery": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	want := PromptTuningConfig{PromptLearningConfig: PromptLearningConfig{
		BaseConfig:       BaseConfig{PeftType: PeftTypePromptTuning, TaskType: TaskCausalLM, InferenceMode: true},
		NumVirtualTokens: 20, TokenDim: 64, NumTransformerSubmodules: 1, NumAttentionHeads: 8, NumLayers: 5},
		PromptTuningInit: PromptInitText, PromptTuningInitText: "Tell a story", TokenizerNameOrPath: "stories"}
	if mustJSON(t, pt) != mustJSON(t, want) {
		t.Errorf("parsed\n%s\nwant\n%s", mustJSON(t, pt), mustJSON(t, want))
	}
	if !slices.Equal(warnings, []string{`unknown key "mystery" ignored`}) {
		t.Errorf("warnings %q", warnings)
	}
	px, _, err := ParseConfig[PrefixTuningConfig]([]byte(`{"peft_type": "PREFIX_TUNING", "num_virtual_tokens": 4,
		"prefix_projection": true, "encoder_hidden_size": 16, "init_weights": "zero"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !px.PrefixProjection || px.EncoderHiddenSize != 16 || px.InitWeights != PrefixInitZero || px.NumVirtualTokens != 4 {
		t.Errorf("parsed %+v", px)
	}
	for _, bad := range []struct{ json, want string }{
		{`{"num_virtual_tokens": 4}`, "peft_type is missing"},
		{`{"peft_type": "PREFIX_TUNING", "num_virtual_tokens": "4"}`, "num_virtual_tokens"},
		{`{"peft_type": "PREFIX_TUNING", "num_virtual_tokens": 4.5}`, "num_virtual_tokens"},
		{`{"peft_type": "PREFIX_TUNING",`, "invalid JSON"},
		{`[1]`, "not a JSON object"},
	} {
		if _, _, err := ParseConfig[PrefixTuningConfig]([]byte(bad.json)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: error %v, want one mentioning %q", bad.json, err, bad.want)
		}
	}
}

func TestPromptConfigsResolve(t *testing.T) {
	m := tinyModel(t, 1) // Dim 16, 4 heads, 2 KV heads of 4: KVDim 8, 2 layers, context 64
	good := PromptLearningConfig{NumVirtualTokens: 3}
	for _, c := range []struct {
		name string
		edit func(*PromptLearningConfig)
		want string
	}{
		{"no tokens", func(c *PromptLearningConfig) { c.NumVirtualTokens = 0 }, "num_virtual_tokens is 0"},
		{"too many tokens", func(c *PromptLearningConfig) { c.NumVirtualTokens = 64 }, "context of 64"},
		{"seq2seq", func(c *PromptLearningConfig) { c.NumTransformerSubmodules = 2 }, "num_transformer_submodules"},
		{"task", func(c *PromptLearningConfig) { c.TaskType = "SEQ_CLS" }, `task_type "SEQ_CLS"`},
		{"type", func(c *PromptLearningConfig) { c.PeftType = "LORA" }, `peft_type is "LORA"`},
		{"token_dim", func(c *PromptLearningConfig) { c.TokenDim = 32 }, "token_dim is 32"},
		{"layers", func(c *PromptLearningConfig) { c.NumLayers = 3 }, "num_layers is 3"},
		{"heads", func(c *PromptLearningConfig) { c.NumAttentionHeads = 3 }, "num_attention_heads is 3"},
		{"modules_to_save", func(c *PromptLearningConfig) { c.ModulesToSave = []string{"lm_head"} }, "modules_to_save"},
	} {
		t.Run(c.name, func(t *testing.T) {
			pt := PromptTuningConfig{PromptLearningConfig: good}
			c.edit(&pt.PromptLearningConfig)
			if _, err := NewPromptTuning(m, pt, seeded(1)); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("prompt tuning: error %v, want one mentioning %q", err, c.want)
			}
			px := PrefixTuningConfig{PromptLearningConfig: good}
			c.edit(&px.PromptLearningConfig)
			if c.name == "token_dim" { // the prefix's token_dim is KVDim 8
				px.TokenDim = 16
			}
			if _, err := NewPrefixTuning(m, px, seeded(1)); err == nil || !strings.Contains(err.Error(), strings.Replace(c.want, "32", "16", 1)) {
				t.Errorf("prefix tuning: error %v, want one mentioning %q", err, c.want)
			}
		})
	}
	if m.Prompt != nil || m.Prefix != nil {
		t.Error("a refused config left a hook on the model")
	}
	for _, c := range []struct {
		cfg  PromptTuningConfig
		want string
	}{
		{PromptTuningConfig{PromptLearningConfig: good, PromptTuningInit: "WHATEVER"}, `"WHATEVER" is not one of`},
		{PromptTuningConfig{PromptLearningConfig: good, PromptTuningInit: PromptInitText}, "needs a prompt_tuning_init_text"},
		{PromptTuningConfig{PromptLearningConfig: good, PromptTuningInit: PromptInitText, PromptTuningInitText: "hi"}, "has none"},
		{PromptTuningConfig{PromptLearningConfig: good, TokenizerKwargs: map[string]any{"use_fast": true}}, "tokenizer_kwargs"},
	} {
		if _, err := NewPromptTuning(m, c.cfg, seeded(1)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one mentioning %q", c.cfg, err, c.want)
		}
	}
	if _, err := NewPromptTuning(m, PromptTuningConfig{PromptLearningConfig: good}, nil); err == nil {
		t.Error("RANDOM init without a random source accepted")
	}
	for _, c := range []struct {
		cfg  PrefixTuningConfig
		want string
	}{
		{PrefixTuningConfig{PromptLearningConfig: good, InitWeights: "ones"}, `init_weights "ones"`},
		{PrefixTuningConfig{PromptLearningConfig: good, EncoderHiddenSize: -1}, "encoder_hidden_size"},
	} {
		if _, err := NewPrefixTuning(m, c.cfg, seeded(1)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one mentioning %q", c.cfg, err, c.want)
		}
	}
}

// loadErrorCases corrupts a saved prompt-learning adapter in the ways a
// user may meet and checks that loading names the file and the problem
// and leaves the model untouched.
func checkLoadErrors(t *testing.T, m *model.Model, dir string, shape tensor.Shape) {
	t.Helper()
	for _, c := range []struct {
		name  string
		edit  func(dir string)
		wants []string
	}{
		{"token_dim", func(d string) { editConfig(t, d, func(c map[string]any) { c["token_dim"] = 7 }) },
			[]string{ConfigFileName, "token_dim is 7"}},
		{"num_layers", func(d string) { editConfig(t, d, func(c map[string]any) { c["num_layers"] = 9 }) },
			[]string{ConfigFileName, "num_layers is 9"}},
		{"virtual tokens", func(d string) {
			editConfig(t, d, func(c map[string]any) { c["num_virtual_tokens"] = shape[0] + 1 })
		}, []string{WeightsFileName, promptEmbeddingsKey, "has shape"}},
		{"task", func(d string) { editConfig(t, d, func(c map[string]any) { c["task_type"] = "SEQ_2_SEQ_LM" }) },
			[]string{ConfigFileName, "SEQ_2_SEQ_LM"}},
		{"bad JSON", func(d string) { os.WriteFile(filepath.Join(d, ConfigFileName), []byte("{"), 0o644) },
			[]string{ConfigFileName, "JSON"}},
		{"wrong shape", func(d string) {
			editTensors(t, d, func(ts []*tensor.Tensor) []*tensor.Tensor {
				v := make([]float32, shape[0]*shape[1])
				nt, _ := tensor.FromFloat32(promptEmbeddingsKey, tensor.Shape{shape[1], shape[0]}, v)
				return []*tensor.Tensor{nt}
			})
		}, []string{WeightsFileName, promptEmbeddingsKey, "has shape"}},
		{"extra tensor", func(d string) {
			editTensors(t, d, func(ts []*tensor.Tensor) []*tensor.Tensor {
				nt, _ := tensor.FromFloat32("prompt_encoder.embedding.weight", tensor.Shape{1}, []float32{1})
				return append(ts, nt)
			})
		}, []string{WeightsFileName, `"prompt_encoder.embedding.weight"`}},
		{"missing tensor", func(d string) {
			editTensors(t, d, func(ts []*tensor.Tensor) []*tensor.Tensor { return nil })
		}, []string{WeightsFileName, "is missing"}},
		{"NaN", func(d string) {
			editTensors(t, d, func(ts []*tensor.Tensor) []*tensor.Tensor {
				v, _ := ts[0].Float32s()
				v[3] = float32(math.NaN())
				nt, _ := tensor.FromFloat32(promptEmbeddingsKey, ts[0].Shape, v)
				return []*tensor.Tensor{nt}
			})
		}, []string{WeightsFileName, "element 3 is NaN"}},
		{"truncated", func(d string) {
			p := filepath.Join(d, WeightsFileName)
			raw, _ := os.ReadFile(p)
			os.WriteFile(p, raw[:len(raw)-5], 0o644)
		}, []string{WeightsFileName}},
		{"no weights", func(d string) { os.Remove(filepath.Join(d, WeightsFileName)) },
			[]string{WeightsFileName}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := copyDir(t, dir)
			c.edit(d)
			prompt, prefix := m.Prompt, m.Prefix
			_, _, err := LoadAdapter(m, Dir(d))
			if err == nil {
				t.Fatal("loaded")
			}
			for _, w := range c.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if m.Prompt != prompt || m.Prefix != prefix {
				t.Error("a failed load changed the model's hooks")
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, ConfigFileName)); errors.Is(err, os.ErrNotExist) {
		t.Fatal("the original adapter was modified")
	}
}

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestPromptMethodsFromJSON(t *testing.T) {
	m := tinyModel(t, 6)
	a, err := NewAdapter(m, []byte(`{"peft_type": "PREFIX_TUNING", "num_virtual_tokens": 2, "prefix_projection": true, "encoder_hidden_size": 6}`), seeded(1))
	if err != nil {
		t.Fatal(err)
	}
	if a.PeftType() != PeftTypePrefixTuning || len(a.Params()) != 5 || m.Prefix == nil {
		t.Errorf("made %s with %d params", a.PeftType(), len(a.Params()))
	}
	b, err := NewAdapter(m, []byte(`{"peft_type": "PROMPT_TUNING", "num_virtual_tokens": 2, "prompt_tuning_init": "SAMPLE_VOCAB"}`), seeded(1))
	if err != nil {
		t.Fatal(err)
	}
	if b.PeftType() != PeftTypePromptTuning || len(b.Params()) != 1 || m.Prompt == nil {
		t.Errorf("made %s with %d params", b.PeftType(), len(b.Params()))
	}
	if _, err := NewAdapter(m, []byte(`{"peft_type": "PROMPT_TUNING", "num_virtual_tokens": 2}`), seeded(1)); err == nil {
		t.Error("a second prompt-tuning adapter accepted")
	}
	if _, err := NewAdapter(m, []byte(`{"peft_type": "PROMPT_TUNING", "num_virtual_tokens": "x"}`), seeded(1)); err == nil || !strings.Contains(err.Error(), "num_virtual_tokens") {
		t.Errorf("bad config: %v", err)
	}
}
