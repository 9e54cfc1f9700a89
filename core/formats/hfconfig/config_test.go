package hfconfig

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// want lists the fields a realistic config must parse to.
type want struct {
	modelType, arch                    string
	hidden, ffn, layers, heads, kv, hd int
	eps, theta                         float64
	tied                               bool
	maxPos, vocab                      int
	bos                                *int
	eos                                []int
	bias                               bool
	dtype                              string
	window                             *int
	ropeKind                           string
	queryDim, kvDim                    int
}

func p(v int) *int { return &v }

var realistic = map[string]want{
	"llama-2-7b.json":            {Llama, "LlamaForCausalLM", 4096, 11008, 32, 32, 32, 128, 1e-5, 10000, false, 4096, 32000, p(1), []int{2}, false, "float16", nil, "", 4096, 4096},
	"tinyllama-1.1b-chat.json":   {Llama, "LlamaForCausalLM", 2048, 5632, 22, 32, 4, 64, 1e-5, 10000, false, 2048, 32000, p(1), []int{2}, false, "bfloat16", nil, "", 2048, 256},
	"smollm-135m.json":           {Llama, "LlamaForCausalLM", 576, 1536, 30, 9, 3, 64, 1e-5, 10000, true, 2048, 49152, p(0), []int{0}, false, "float32", nil, "", 576, 192},
	"qwen2-0.5b.json":            {Qwen2, "Qwen2ForCausalLM", 896, 4864, 24, 14, 2, 64, 1e-6, 1e6, true, 131072, 151936, p(151643), []int{151643}, true, "bfloat16", p(131072), "", 896, 128},
	"mistral-7b-v0.1.json":       {Mistral, "MistralForCausalLM", 4096, 14336, 32, 32, 8, 128, 1e-5, 10000, false, 32768, 32000, p(1), []int{2}, false, "bfloat16", p(4096), "", 4096, 1024},
	"llama-3.2-1b-instruct.json": {Llama, "LlamaForCausalLM", 2048, 8192, 16, 32, 8, 64, 1e-5, 500000, true, 131072, 128256, p(128000), []int{128001, 128008, 128009}, false, "bfloat16", nil, "llama3", 2048, 512},
	"qwen3-0.6b.json":            {Qwen3, "Qwen3ForCausalLM", 1024, 3072, 28, 16, 8, 128, 1e-6, 1e6, true, 40960, 151936, p(151643), []int{151645}, false, "bfloat16", nil, "", 2048, 1024},
	"gemma-3-270m.json":          {Gemma3Text, "Gemma3ForCausalLM", 640, 2048, 18, 4, 1, 256, 1e-6, 1e6, true, 32768, 262144, p(2), []int{1}, false, "bfloat16", p(512), "", 1024, 256},
}

func check(t *testing.T, c *Config, w want) {
	t.Helper()
	got := want{
		c.ModelType, strings.Join(c.Architectures, ","),
		c.HiddenSize, c.IntermediateSize, c.NumHiddenLayers, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim,
		c.RMSNormEps, c.RopeTheta, c.TieWordEmbeddings, c.MaxPositionEmbeddings, c.VocabSize,
		c.BOSTokenID, c.EOSTokenID, c.AttentionBias, c.TorchDType, c.SlidingWindow, "", c.QueryDim(), c.KVDim(),
	}
	if c.RopeScaling != nil {
		got.ropeKind = c.RopeScaling.Kind()
	}
	if !reflect.DeepEqual(got, w) {
		t.Errorf("parsed\n%+v\nwant\n%+v", got, w)
	}
}

func TestRealisticConfigs(t *testing.T) {
	for file, w := range realistic {
		t.Run(file, func(t *testing.T) {
			c, err := Load(filepath.Join("testdata", file))
			if err != nil {
				t.Fatal(err)
			}
			check(t, c, w)
			if c.OutputProjBias() {
				t.Error("OutputProjBias true")
			}
		})
	}
}

func TestLlama3RopeScaling(t *testing.T) {
	c, err := Load("testdata/llama-3.2-1b-instruct.json")
	if err != nil {
		t.Fatal(err)
	}
	want := &RopeScaling{RopeType: "llama3", Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8192}
	if !reflect.DeepEqual(c.RopeScaling, want) {
		t.Errorf("rope_scaling = %+v, want %+v", c.RopeScaling, want)
	}
	if string(c.Extra["transformers_version"]) != `"4.45.0.dev0"` || string(c.Extra["pretraining_tp"]) != "1" {
		t.Errorf("Extra = %v", c.Extra)
	}
	for _, k := range []string{"hidden_size", "rope_scaling", "eos_token_id", "mlp_bias"} {
		if _, ok := c.Extra[k]; ok {
			t.Errorf("Extra holds parsed key %q", k)
		}
	}
}

// TestMarshalMatchesTransformers pins Marshal to the files' own layout:
// each realistic config comes back byte for byte, plus the fields
// transformers would add for its model type.
func TestMarshalMatchesTransformers(t *testing.T) {
	added := map[string][]string{
		"llama-2-7b.json":            {`"attention_bias": false`, `"head_dim": 128`, `"mlp_bias": false`, `"rope_theta": 10000.0`},
		"tinyllama-1.1b-chat.json":   {`"head_dim": 64`, `"mlp_bias": false`},
		"smollm-135m.json":           {`"head_dim": 64`, `"mlp_bias": false`},
		"qwen2-0.5b.json":            {`"head_dim": 64`, `"rope_scaling": null`},
		"mistral-7b-v0.1.json":       {`"head_dim": 128`, `"rope_scaling": null`},
		"llama-3.2-1b-instruct.json": nil,
		"qwen3-0.6b.json":            nil,
		"gemma-3-270m.json":          {`"tie_word_embeddings": true`},
	}
	for file, extra := range added {
		t.Run(file, func(t *testing.T) {
			orig, err := os.ReadFile(filepath.Join("testdata", file))
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse(orig, file)
			if err != nil {
				t.Fatal(err)
			}
			out, err := c.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			// Expected: the original's top-level lines plus the added ones,
			// in sorted order (all values added are one-liners).
			if want := withLines(t, orig, extra); !bytes.Equal(out, want) {
				t.Errorf("Marshal =\n%s\nwant\n%s", out, want)
			}
			again, err := Parse(out, "marshalled")
			if err != nil {
				t.Fatal(err)
			}
			again.name = c.name
			if !reflect.DeepEqual(again, c) {
				t.Errorf("round trip changed the config:\n%+v\n%+v", again, c)
			}
		})
	}
}

// withLines inserts top-level `"key": value` lines into a sorted,
// two-space-indented JSON object, keeping key order.
func withLines(t *testing.T, orig []byte, lines []string) []byte {
	t.Helper()
	text := strings.TrimSuffix(string(orig), "\n")
	body := strings.TrimSuffix(strings.TrimPrefix(text, "{\n"), "\n}")
	// Split into top-level entries: each starts with two spaces and a quote.
	var entries []string
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, `  "`) {
			entries = append(entries, line)
		} else {
			entries[len(entries)-1] += "\n" + line
		}
	}
	for i := range entries {
		entries[i] = strings.TrimSuffix(entries[i], ",")
	}
	for _, l := range lines {
		entries = append(entries, "  "+l)
	}
	slices.Sort(entries)
	return []byte("{\n" + strings.Join(entries, ",\n") + "\n}\n")
}

func TestDefaults(t *testing.T) {
	dims := `"hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": 5, "num_attention_heads": 8, "vocab_size": 512`
	cases := []struct {
		name, json string
		want       want
	}{
		{"llama", `{"model_type": "llama", ` + dims + `}`,
			want{Llama, "LlamaForCausalLM", 64, 172, 5, 8, 8, 8, 1e-6, 10000, false, 2048, 512, p(1), []int{2}, false, "", nil, "", 64, 64}},
		{"architecture only", `{"architectures": ["LlamaForCausalLM"], ` + dims + `}`,
			want{Llama, "LlamaForCausalLM", 64, 172, 5, 8, 8, 8, 1e-6, 10000, false, 2048, 512, p(1), []int{2}, false, "", nil, "", 64, 64}},
		{"qwen2", `{"model_type": "qwen2", "attention_bias": false, ` + dims + `}`,
			want{Qwen2, "Qwen2ForCausalLM", 64, 172, 5, 8, 8, 8, 1e-6, 10000, false, 32768, 512, nil, nil, true, "", p(4096), "", 64, 64}},
		{"mistral", `{"model_type": "mistral", "attention_bias": true, ` + dims + `}`,
			want{Mistral, "MistralForCausalLM", 64, 172, 5, 8, 8, 8, 1e-6, 10000, false, 131072, 512, p(1), []int{2}, false, "", p(4096), "", 64, 64}},
		{"mistral without window", `{"model_type": "mistral", "sliding_window": null, ` + dims + `}`,
			want{Mistral, "MistralForCausalLM", 64, 172, 5, 8, 8, 8, 1e-6, 10000, false, 131072, 512, p(1), []int{2}, false, "", nil, "", 64, 64}},
		{"null token ids", `{"model_type": "llama", "bos_token_id": null, "eos_token_id": null, ` + dims + `}`,
			want{Llama, "LlamaForCausalLM", 64, 172, 5, 8, 8, 8, 1e-6, 10000, false, 2048, 512, nil, nil, false, "", nil, "", 64, 64}},
		{"explicit head_dim", `{"model_type": "llama", "head_dim": 16, "num_key_value_heads": 2, "hidden_act": "swish", "dtype": "float32", ` + dims + `}`,
			want{Llama, "LlamaForCausalLM", 64, 172, 5, 8, 2, 16, 1e-6, 10000, false, 2048, 512, p(1), []int{2}, false, "float32", nil, "", 128, 32}},
		{"old rope scaling", `{"model_type": "llama", "rope_scaling": {"type": "linear", "factor": 2.0}, ` + dims + `}`,
			want{Llama, "LlamaForCausalLM", 64, 172, 5, 8, 8, 8, 1e-6, 10000, false, 2048, 512, p(1), []int{2}, false, "", nil, "linear", 64, 64}},
		{"transformers 5 rope_parameters", `{"model_type": "llama", "rope_parameters": {"rope_theta": 500000.0, "rope_type": "llama3", "factor": 8.0}, ` + dims + `}`,
			want{Llama, "LlamaForCausalLM", 64, 172, 5, 8, 8, 8, 1e-6, 500000, false, 2048, 512, p(1), []int{2}, false, "", nil, "llama3", 64, 64}},
		{"default rope_parameters", `{"model_type": "llama", "rope_parameters": {"rope_theta": 20000, "rope_type": "default"}, ` + dims + `}`,
			want{Llama, "LlamaForCausalLM", 64, 172, 5, 8, 8, 8, 1e-6, 20000, false, 2048, 512, p(1), []int{2}, false, "", nil, "", 64, 64}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse([]byte(c.json), c.name)
			if err != nil {
				t.Fatal(err)
			}
			check(t, cfg, c.want)
			// Whatever was defaulted survives Marshal and Parse.
			out, err := cfg.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			again, err := Parse(out, c.name)
			if err != nil {
				t.Fatal(err)
			}
			check(t, again, c.want)
		})
	}
}

func TestLlamaAttentionBias(t *testing.T) {
	c, err := Parse([]byte(`{"model_type": "llama", "attention_bias": true, "hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": 5, "num_attention_heads": 8, "vocab_size": 512}`), "b")
	if err != nil {
		t.Fatal(err)
	}
	if !c.AttentionBias || !c.OutputProjBias() {
		t.Errorf("llama attention_bias: AttentionBias %v OutputProjBias %v", c.AttentionBias, c.OutputProjBias())
	}
	q, err := Load("testdata/qwen2-0.5b.json")
	if err != nil {
		t.Fatal(err)
	}
	if !q.AttentionBias || q.OutputProjBias() {
		t.Errorf("qwen2: AttentionBias %v OutputProjBias %v", q.AttentionBias, q.OutputProjBias())
	}
}

func TestMistralNullWindowIsWritten(t *testing.T) {
	c, err := Parse([]byte(`{"model_type": "mistral", "sliding_window": null, "hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": 5, "num_attention_heads": 8, "vocab_size": 512}`), "m")
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte(`"sliding_window": null`)) {
		t.Errorf("Marshal dropped the null sliding_window, which transformers would default to 4096:\n%s", out)
	}
}

// mutate parses SmolLM's config, applies edits (a nil value deletes the
// key) and returns the JSON.
func mutate(t *testing.T, edits map[string]any) []byte {
	t.Helper()
	orig, err := os.ReadFile("testdata/smollm-135m.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(orig, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range edits {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestInvalidConfigs(t *testing.T) {
	cases := []struct {
		name  string
		edits map[string]any
		want  string
	}{
		{"gpt2", map[string]any{"model_type": "gpt2", "architectures": []string{"GPT2LMHeadModel"}}, `unsupported model_type "gpt2"`},
		{"unknown architecture only", map[string]any{"model_type": nil, "architectures": []string{"Phi3ForCausalLM"}}, `unsupported architecture "Phi3ForCausalLM"`},
		{"mismatched architecture", map[string]any{"architectures": []string{"MistralForCausalLM"}}, `unsupported architecture "MistralForCausalLM" for model_type "llama"`},
		{"classification head", map[string]any{"architectures": []string{"LlamaForSequenceClassification"}}, "LlamaForSequenceClassification"},
		{"empty architectures", map[string]any{"architectures": []string{}, "model_type": nil}, `unsupported model_type ""`},
		{"gelu", map[string]any{"hidden_act": "gelu"}, `unsupported hidden_act "gelu"`},
		{"missing hidden_size", map[string]any{"hidden_size": nil}, "hidden_size is missing"},
		{"missing vocab", map[string]any{"vocab_size": nil}, "vocab_size is missing"},
		{"zero layers", map[string]any{"num_hidden_layers": 0}, "num_hidden_layers is 0"},
		{"negative ffn", map[string]any{"intermediate_size": -1}, "intermediate_size is -1"},
		{"zero heads", map[string]any{"num_attention_heads": 0}, "num_attention_heads is 0"},
		{"zero kv heads", map[string]any{"num_key_value_heads": 0}, "num_key_value_heads is 0"},
		{"zero max positions", map[string]any{"max_position_embeddings": 0}, "max_position_embeddings is 0"},
		{"heads do not divide hidden", map[string]any{"num_attention_heads": 7}, "hidden_size 576 is not divisible by num_attention_heads 7"},
		{"kv heads do not divide heads", map[string]any{"num_key_value_heads": 4}, "num_key_value_heads 4 does not divide num_attention_heads 9"},
		{"odd head_dim", map[string]any{"head_dim": 63}, "head_dim 63 is odd"},
		{"zero eps", map[string]any{"rms_norm_eps": 0}, "rms_norm_eps is 0"},
		{"negative eps", map[string]any{"rms_norm_eps": -1e-5}, "rms_norm_eps is -1e-05"},
		{"zero theta", map[string]any{"rope_theta": 0}, "rope_theta is 0"},
		{"eos out of vocab", map[string]any{"eos_token_id": 49152}, "eos_token_id 49152 is outside the vocabulary of 49152"},
		{"eos list entry out of vocab", map[string]any{"eos_token_id": []int{0, -1}}, "eos_token_id -1"},
		{"eos string", map[string]any{"eos_token_id": "</s>"}, "eos_token_id: want an int or a list of ints"},
		{"negative bos", map[string]any{"bos_token_id": -1}, "bos_token_id -1"},
		{"string size", map[string]any{"hidden_size": "576"}, "hidden_size: json: cannot unmarshal string"},
		{"fractional size", map[string]any{"hidden_size": 576.5}, "hidden_size: json"},
		{"mlp bias", map[string]any{"mlp_bias": true}, "mlp_bias true is not supported"},
		{"rope_scaling string", map[string]any{"rope_scaling": "linear"}, "rope_scaling: json"},
		{"rope factor string", map[string]any{"rope_scaling": map[string]any{"rope_type": "linear", "factor": "2"}}, "factor: json"},
		{"architectures string", map[string]any{"architectures": "LlamaForCausalLM"}, "architectures: json"},
		{"window string", map[string]any{"sliding_window": "4096"}, "sliding_window: json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(mutate(t, c.edits), "models/smol/config.json")
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "hfconfig models/smol/config.json: ") {
				t.Errorf("err = %q, want it to name the file and contain %q", err, c.want)
			}
		})
	}
	for _, text := range []string{``, `nope`, `[]`, `null`, `{"model_type": "llama",}`, `3`} {
		if _, err := Parse([]byte(text), "x.json"); err == nil || !strings.Contains(err.Error(), "x.json") {
			t.Errorf("Parse(%q) = %v", text, err)
		}
	}
}

func TestHeadDimWithoutDivisibility(t *testing.T) {
	c, err := Parse(mutate(t, map[string]any{"num_attention_heads": 6, "num_key_value_heads": 3, "head_dim": 128}), "hd")
	if err != nil {
		t.Fatal(err)
	}
	if c.QueryDim() != 768 || c.KVDim() != 384 {
		t.Errorf("QueryDim %d KVDim %d", c.QueryDim(), c.KVDim())
	}
}

func TestValidateAfterEdit(t *testing.T) {
	c, err := Load("testdata/smollm-135m.json")
	if err != nil {
		t.Fatal(err)
	}
	c.NumKeyValueHeads = 2
	err = c.Validate()
	if err == nil || !strings.Contains(err.Error(), "testdata/smollm-135m.json") || !strings.Contains(err.Error(), "does not divide") {
		t.Errorf("Validate = %v", err)
	}
	if _, err := c.Marshal(); err == nil {
		t.Error("Marshal accepted an invalid config")
	}
	var zero Config
	if err := zero.Validate(); err == nil || !strings.HasPrefix(err.Error(), "hfconfig: ") {
		t.Errorf("zero Config: %v", err)
	}
	q, err := Load("testdata/qwen2-0.5b.json")
	if err != nil {
		t.Fatal(err)
	}
	q.AttentionBias = false
	if err := q.Validate(); err == nil || !strings.Contains(err.Error(), "qwen2") {
		t.Errorf("qwen2 without biases: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "config.json")); err == nil || !os.IsNotExist(errUnwrapAll(err)) {
		t.Errorf("missing file: %v", err)
	}
}

func errUnwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func TestPyFloat(t *testing.T) {
	for _, c := range []struct {
		v    float64
		want string
	}{
		{1e-5, "1e-05"}, {1e-6, "1e-06"}, {0.0001, "0.0001"}, {0.00015, "0.00015"},
		{10000, "10000.0"}, {500000, "500000.0"}, {1e6, "1000000.0"}, {0.02, "0.02"},
		{0, "0.0"}, {-2.5, "-2.5"}, {32, "32.0"}, {1e16, "1e+16"}, {1.5e17, "1.5e+17"},
		{123456789012345, "123456789012345.0"},
	} {
		got, err := pyFloat(c.v).MarshalJSON()
		if err != nil || string(got) != c.want {
			t.Errorf("pyFloat(%v) = %s, %v; want %s", c.v, got, err, c.want)
		}
	}
}

func TestGemma3Layers(t *testing.T) {
	c, err := Load("testdata/gemma-3-270m.json")
	if err != nil {
		t.Fatal(err)
	}
	if c.HiddenAct != "gelu_pytorch_tanh" || c.QueryPreAttnScalar != 256 || c.RopeLocalTheta != 10000 || c.SlidingWindowPattern != 6 {
		t.Errorf("gemma3 fields: act %q, query_pre_attn_scalar %v, local theta %v, pattern %d", c.HiddenAct, c.QueryPreAttnScalar, c.RopeLocalTheta, c.SlidingWindowPattern)
	}
	for i := range c.NumHiddenLayers {
		if want := (i+1)%6 != 0; c.IsSliding(i) != want {
			t.Errorf("layer %d sliding = %v, want %v", i, c.IsSliding(i), want)
		}
	}
	// Without layer_types the pattern decides, as in older files.
	c.LayerTypes = nil
	c.SlidingWindowPattern = 3
	if c.IsSliding(2) || !c.IsSliding(3) {
		t.Error("pattern 3: layer 2 should be global and layer 3 local")
	}
	// transformers 5 nests the local base in rope_parameters.
	v5 := `{"model_type": "gemma3_text", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
		"vocab_size": 100, "head_dim": 32, "rope_parameters": {"full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0},
		"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}}`
	c, err = Parse([]byte(v5), "v5.json")
	if err != nil {
		t.Fatal(err)
	}
	if c.RopeTheta != 1e6 || c.RopeLocalTheta != 1e4 || c.RopeScaling == nil || c.RopeScaling.Kind() != "linear" || c.RopeScaling.Factor != 8 {
		t.Errorf("rope_parameters: theta %v, local %v, scaling %+v", c.RopeTheta, c.RopeLocalTheta, c.RopeScaling)
	}
	for _, bad := range []struct{ json, want string }{
		{`"final_logit_softcapping": 30.0`, "final_logit_softcapping"},
		{`"hidden_activation": "gelu"`, "hidden_activation"},
		{`"layer_types": ["full_attention"]`, "layer_types has 1"},
		{`"layer_types": ["full_attention", "chunked"]`, "layer_types[1]"},
	} {
		cfg := `{"model_type": "gemma3_text", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 100, ` + bad.json + `}`
		if _, err := Parse([]byte(cfg), "bad.json"); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: error %v, want one naming %s", bad.json, err, bad.want)
		}
	}
}

func TestYaRNRopeScaling(t *testing.T) {
	cfg := `{"model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2, "vocab_size": 100,
		"rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768, "beta_fast": 16.0, "attention_factor": 1.2}}`
	c, err := Parse([]byte(cfg), "yarn.json")
	if err != nil {
		t.Fatal(err)
	}
	want := &RopeScaling{Type: "yarn", Factor: 4, OriginalMaxPositionEmbeddings: 32768, BetaFast: 16, AttentionFactor: 1.2}
	if !reflect.DeepEqual(c.RopeScaling, want) {
		t.Fatalf("rope_scaling = %+v, want %+v", c.RopeScaling, want)
	}
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse(out, "again")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again.RopeScaling, want) {
		t.Errorf("after Marshal rope_scaling = %+v, want %+v", again.RopeScaling, want)
	}
}
