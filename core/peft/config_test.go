package peft

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestGoldenConfig pins the adapter_config.json PEFT 0.13 writes for the
// same settings: every field, PEFT's defaults, sorted keys, two-space
// indent, Python's number formatting.
func TestGoldenConfig(t *testing.T) {
	cases := []struct {
		file string
		cfg  LoraConfig
	}{
		{"testdata/adapter_config.golden.json", LoraConfig{
			R: 8, LoraAlpha: 16, LoraDropout: 0.05, TargetConfig: TargetConfig{TargetModules: TargetNames("v_proj", "q_proj")},
			BaseConfig: BaseConfig{BaseModelNameOrPath: "stories260K", InferenceMode: true},
		}},
		{"testdata/adapter_config_patterns.golden.json", LoraConfig{
			R: 8, LoraAlpha: 8,
			TargetConfig: TargetConfig{TargetModules: TargetNames("q_proj", "v_proj", "o_proj"),
				ExcludeModules:    TargetPattern(`model\.layers\.1\.self_attn\.q_proj`),
				LayersToTransform: []int{0, 1}, LayersPattern: []string{"layers"}},
			PatternConfig: PatternConfig{RankPattern: Patterns[int]{{"v_proj", 4}, {"q_proj", 16}},
				AlphaPattern: Patterns[float64]{{"layers.0.self_attn.q_proj", 32.5}}},
			UseRSLoRA: true, InitLoraWeights: InitGaussian, BaseConfig: BaseConfig{Revision: "main"},
		}},
	}
	for _, c := range cases {
		want, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		got, err := EncodeConfig(c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: got\n%s\nwant\n%s", c.file, got, want)
		}
		back, warnings, err := ParseConfig[LoraConfig](want)
		if err != nil || len(warnings) > 0 {
			t.Fatalf("%s: parse: %v %q", c.file, err, warnings)
		}
		if err := back.Validate(); err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		again, _ := EncodeConfig(back)
		if !bytes.Equal(again, want) {
			t.Errorf("%s: parse and encode changed it:\n%s", c.file, again)
		}
	}
}

// unsortedObjects walks JSON and returns the key lists of the objects
// whose keys are out of order.
func unsortedObjects(data []byte) (bad [][]string) {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		object bool
		keys   []string
		expect bool // the next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				if top != nil && top.object {
					top.expect = true // the container was a value
				}
				stack = append(stack, &frame{object: v == '{', expect: v == '{'})
			default:
				if f := stack[len(stack)-1]; f.object && !slices.IsSorted(f.keys) {
					bad = append(bad, f.keys)
				}
				stack = stack[:len(stack)-1]
			}
		default:
			if top != nil && top.object {
				if top.expect {
					top.keys = append(top.keys, v.(string))
				}
				top.expect = !top.expect
			}
		}
	}
	return bad
}

func TestConfigKeysSorted(t *testing.T) {
	cfg := LoraConfig{R: 4, LoraAlpha: 8, TargetConfig: TargetConfig{TargetModules: TargetNames("z", "a")},
		PatternConfig: PatternConfig{RankPattern: Patterns[int]{{"z_proj", 2}, {"a_proj", 3}, {"m", 1}}, AlphaPattern: Patterns[float64]{{"zz", 1.5}, {"aa", 2}}},
	}
	data, err := EncodeConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if bad := unsortedObjects(data); bad != nil {
		t.Errorf("keys out of order: %q", bad)
	}
	if !strings.Contains(string(data), `"a_proj": 3,`) {
		t.Errorf("rank_pattern not written sorted:\n%s", data)
	}
	// The checker itself must notice disorder, also in nested objects.
	bad := unsortedObjects([]byte(`{"a": [{"y": 1, "x": 2}], "b": {"d": 1, "c": 2}}`))
	if !reflect.DeepEqual(bad, [][]string{{"y", "x"}, {"d", "c"}}) {
		t.Errorf("unsortedObjects found %q", bad)
	}
}

func TestParseConfigForms(t *testing.T) {
	base := `"peft_type": "LORA", "r": 4, "lora_alpha": 8`
	cases := []struct {
		name, json string
		check      func(LoraConfig) bool
		warnings   []string
		err        string
	}{
		{"regex target", `{` + base + `, "target_modules": ".*q_proj"}`,
			func(c LoraConfig) bool { return c.TargetModules.Pattern == ".*q_proj" && c.TargetModules.Names == nil }, nil, ""},
		{"list target", `{` + base + `, "target_modules": ["q_proj", "k_proj"]}`,
			func(c LoraConfig) bool { return reflect.DeepEqual(c.TargetModules.Names, []string{"q_proj", "k_proj"}) }, nil, ""},
		{"null target", `{` + base + `, "target_modules": null}`,
			func(c LoraConfig) bool { return c.TargetModules.IsZero() }, nil, ""},
		{"all-linear", `{` + base + `, "target_modules": "all-linear"}`,
			func(c LoraConfig) bool { return c.TargetModules.Pattern == AllLinear }, nil, ""},
		{"layers int", `{` + base + `, "layers_to_transform": 3, "layers_pattern": "layers"}`,
			func(c LoraConfig) bool {
				return slices.Equal(c.LayersToTransform, []int{3}) && slices.Equal(c.LayersPattern, []string{"layers"})
			}, nil, ""},
		{"layers list", `{` + base + `, "layers_to_transform": [0, 2], "layers_pattern": ["layers", "h"]}`,
			func(c LoraConfig) bool {
				return slices.Equal(c.LayersToTransform, []int{0, 2}) && slices.Equal(c.LayersPattern, []string{"layers", "h"})
			}, nil, ""},
		{"init false", `{` + base + `, "init_lora_weights": false}`,
			func(c LoraConfig) bool { return c.InitLoraWeights == InitRandom }, nil, ""},
		{"init gaussian", `{` + base + `, "init_lora_weights": "gaussian"}`,
			func(c LoraConfig) bool { return c.InitLoraWeights == InitGaussian }, nil, ""},
		{"pattern order kept", `{` + base + `, "rank_pattern": {"b": 2, "a": 3}}`,
			func(c LoraConfig) bool { return reflect.DeepEqual(c.RankPattern, Patterns[int]{{"b", 2}, {"a", 3}}) }, nil, ""},
		{"alpha default", `{"peft_type": "LORA", "r": 4}`,
			func(c LoraConfig) bool { return c.LoraAlpha == 8 }, nil, ""},
		{"unknown keys warn", `{` + base + `, "zeta": 1, "alpha_beta": {}}`, nil,
			[]string{`unknown key "alpha_beta" ignored`, `unknown key "zeta" ignored`}, ""},
		{"later PEFT keys at defaults", `{` + base + `, "lora_bias": false, "eva_config": null, "corda_config": null,
			"trainable_token_indices": null, "use_qalora": false, "qalora_group_size": 16, "target_parameters": null,
			"alora_invocation_tokens": null, "peft_version": "0.17.1", "layer_replication": null}`, nil, nil, ""},
		{"fan_in_fan_out overridden", `{` + base + `, "fan_in_fan_out": true}`, nil,
			[]string{"fan_in_fan_out is true but the target layers are nn.Linear; using false, as PEFT does"}, ""},
		{"lora_bias true", `{` + base + `, "lora_bias": true}`, nil, nil, "lora_bias = true"},
		{"trainable tokens", `{` + base + `, "trainable_token_indices": [1, 2]}`, nil, nil, "trainable_token_indices"},
		{"layer replication", `{` + base + `, "layer_replication": [[0, 2]]}`, nil, nil, "layer_replication"},
		{"not an object", `[1, 2]`, nil, nil, "not a JSON object"},
		{"truncated", `{"peft_type": "LORA", "r": 4`, nil, nil, "invalid JSON"},
		{"r missing", `{"peft_type": "LORA"}`, nil, nil, "r is missing"},
		{"r fractional", `{"peft_type": "LORA", "r": 4.5}`, nil, nil, "not an integer"},
		{"peft_type missing", `{"r": 4}`, nil, nil, "peft_type is missing"},
		{"target number", `{` + base + `, "target_modules": 3}`, nil, nil, "target_modules"},
		{"target list of numbers", `{` + base + `, "target_modules": [3]}`, nil, nil, "element 0"},
		{"rank pattern string", `{` + base + `, "rank_pattern": {"q": "x"}}`, nil, nil, "rank_pattern"},
		{"rank pattern fraction", `{` + base + `, "rank_pattern": {"q": 2.5}}`, nil, nil, "not an integer"},
		{"layers strings", `{` + base + `, "layers_to_transform": ["a"]}`, nil, nil, "layers_to_transform"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, warnings, err := ParseConfig[LoraConfig]([]byte(c.json))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.check != nil && !c.check(cfg) {
				t.Errorf("parsed %+v", cfg)
			}
			if !slices.Equal(warnings, c.warnings) {
				t.Errorf("warnings %q, want %q", warnings, c.warnings)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	good := LoraConfig{R: 8, LoraAlpha: 16, TargetConfig: TargetConfig{TargetModules: TargetNames("q_proj")}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, init := range []LoraInit{InitPiSSA, "pissa_niter_4", InitOLoRA} {
		c := good
		c.UseDoRA, c.InitLoraWeights = true, init
		if err := c.Validate(); err != nil {
			t.Errorf("use_dora with init_lora_weights %q: %v", string(init), err)
		}
	}
	cases := []struct {
		name   string
		modify func(*LoraConfig)
		err    string
	}{
		{"r zero", func(c *LoraConfig) { c.R = 0 }, "r = 0"},
		{"alpha zero", func(c *LoraConfig) { c.LoraAlpha = 0 }, "lora_alpha"},
		{"dropout one", func(c *LoraConfig) { c.LoraDropout = 1 }, "lora_dropout"},
		{"dropout negative", func(c *LoraConfig) { c.LoraDropout = -0.1 }, "lora_dropout"},
		{"bias all", func(c *LoraConfig) { c.Bias = "all" }, `bias "all"`},
		{"bias lora_only", func(c *LoraConfig) { c.Bias = "lora_only" }, `bias "lora_only"`},
		{"fan in fan out", func(c *LoraConfig) { c.FanInFanOut = true }, "fan_in_fan_out"},
		{"modules to save", func(c *LoraConfig) { c.ModulesToSave = []string{"lm_head"} }, "modules_to_save"},
		{"peft type", func(c *LoraConfig) { c.PeftType = "IA3" }, "peft_type"},
		{"task type", func(c *LoraConfig) { c.TaskType = "SEQ_CLS" }, "task_type"},
		{"bad target regex", func(c *LoraConfig) { c.TargetModules = TargetPattern("q_proj(") }, "target_modules"},
		{"look-ahead regex", func(c *LoraConfig) { c.TargetModules = TargetPattern("(?!lm_head).*") }, "target_modules"},
		{"bad exclude regex", func(c *LoraConfig) { c.ExcludeModules = TargetPattern("[") }, "exclude_modules"},
		{"empty target name", func(c *LoraConfig) { c.TargetModules = TargetNames("") }, "empty name"},
		{"both forms", func(c *LoraConfig) { c.TargetModules = Modules{Pattern: "x", Names: []string{"y"}} }, "both"},
		{"layers with regex", func(c *LoraConfig) {
			c.TargetModules = TargetPattern(".*q_proj")
			c.LayersToTransform = []int{0}
		}, "layers_to_transform"},
		{"layers pattern with regex", func(c *LoraConfig) {
			c.TargetModules = TargetPattern(".*q_proj")
			c.LayersPattern = []string{"layers"}
		}, "layers_pattern"},
		{"negative layer", func(c *LoraConfig) { c.LayersToTransform = []int{-1} }, "negative"},
		{"bad rank key", func(c *LoraConfig) { c.RankPattern = Patterns[int]{{"(", 2}} }, "rank_pattern"},
		{"zero rank", func(c *LoraConfig) { c.RankPattern = Patterns[int]{{"q", 0}} }, "rank 0"},
		{"bad alpha", func(c *LoraConfig) { c.AlphaPattern = Patterns[float64]{{"q", -1}} }, "alpha -1"},
		{"unknown init", func(c *LoraConfig) { c.InitLoraWeights = "magic" }, "init_lora_weights"},
	}
	for _, c := range cases {
		cfg := good
		c.modify(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: err = %v, want one containing %q", c.name, err, c.err)
		}
	}
}

func TestPythonNumbers(t *testing.T) {
	floats := map[float64]string{0: "0.0", 0.05: "0.05", 0.1: "0.1", 1: "1.0", 1e-5: "1e-05", 1.5e-7: "1.5e-07", 2.5e16: "2.5e+16"}
	for v, want := range floats {
		if got := pyFloat(v); got != want {
			t.Errorf("pyFloat(%g) = %s, want %s", v, got, want)
		}
	}
	numbers := map[float64]string{16: "16", 0.5: "0.5", 32.25: "32.25"}
	for v, want := range numbers {
		if got := pyNumber(v); got != want {
			t.Errorf("pyNumber(%g) = %s, want %s", v, got, want)
		}
	}
}

func TestConfigUnmarshalJSON(t *testing.T) {
	var cfg LoraConfig
	if err := json.Unmarshal([]byte(`{"peft_type": "LORA", "r": 2, "lora_alpha": 4, "extra": 1}`), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.R != 2 || cfg.LoraAlpha != 4 {
		t.Errorf("got %+v", cfg)
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"r":2`) || strings.Contains(string(data), "extra") {
		t.Errorf("marshalled %s", data)
	}
}
