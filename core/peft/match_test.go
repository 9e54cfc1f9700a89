package peft

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

func names(layers []int, modules ...string) []string {
	var out []string
	for _, i := range layers {
		for _, m := range []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"} {
			if slices.Contains(modules, m) {
				block := "self_attn"
				if strings.HasSuffix(m, "gate_proj") || strings.HasSuffix(m, "up_proj") || strings.HasSuffix(m, "down_proj") {
					block = "mlp"
				}
				out = append(out, fmt.Sprintf("model.layers.%d.%s.%s", i, block, m))
			}
		}
	}
	return out
}

var allSeven = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

// TestSelectModules follows PEFT's check_target_module_exists on the
// module names of a two-layer Llama.
func TestSelectModules(t *testing.T) {
	m := tinyModel(t, 1)
	both := []int{0, 1}
	cases := []struct {
		name string
		cfg  LoraConfig
		want []string
		err  string
	}{
		{"list", LoraConfig{TargetConfig: TargetConfig{TargetModules: TargetNames("q_proj", "v_proj")}}, names(both, "q_proj", "v_proj"), ""},
		{"default is q and v", LoraConfig{}, names(both, "q_proj", "v_proj"), ""},
		{"dotted suffix", LoraConfig{TargetConfig: TargetConfig{TargetModules: TargetNames("self_attn.o_proj")}}, names(both, "o_proj"), ""},
		{"suffix needs a dot", LoraConfig{TargetConfig: TargetConfig{TargetModules: TargetNames("proj")}}, nil, "matched none"},
		{"exact name", LoraConfig{TargetConfig: TargetConfig{TargetModules: TargetNames("model.layers.1.mlp.up_proj")}}, names([]int{1}, "up_proj"), ""},
		{"regex full match", LoraConfig{TargetConfig: TargetConfig{TargetModules: TargetPattern(`.*\.(q|k)_proj`)}}, names(both, "q_proj", "k_proj"), ""},
		{"regex is not a search", LoraConfig{TargetConfig: TargetConfig{TargetModules: TargetPattern(`q_proj`)}}, nil, "matched none"},
		{"regex layer", LoraConfig{TargetConfig: TargetConfig{TargetModules: TargetPattern(`model\.layers\.1\..*`)}}, names([]int{1}, allSeven...), ""},
		{"all-linear", LoraConfig{TargetConfig: TargetConfig{TargetModules: TargetAllLinear()}}, names(both, allSeven...), ""},
		{"lm_head by name", LoraConfig{TargetConfig: TargetConfig{TargetModules: TargetNames("lm_head")}}, []string{"lm_head"}, ""},
		{"lm_head by regex", LoraConfig{TargetConfig: TargetConfig{TargetModules: TargetPattern(`lm_head|.*down_proj`)}},
			append(names(both, "down_proj"), "lm_head"), ""},
		{"exclude list", LoraConfig{TargetConfig: TargetConfig{TargetModules: TargetNames("q_proj"), ExcludeModules: TargetNames("model.layers.0.self_attn.q_proj")}},
			names([]int{1}, "q_proj"), ""},
		{"exclude suffix", LoraConfig{TargetConfig: TargetConfig{TargetModules: TargetAllLinear(), ExcludeModules: TargetNames("mlp.down_proj", "up_proj")}},
			names(both, "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj"), ""},
		{"exclude regex", LoraConfig{TargetConfig: TargetConfig{TargetModules: TargetAllLinear(), ExcludeModules: TargetPattern(`.*\.mlp\..*`)}},
			names(both, "q_proj", "k_proj", "v_proj", "o_proj"), ""},
		{"exclude wins over exact", LoraConfig{TargetConfig: TargetConfig{TargetModules: TargetNames("lm_head"), ExcludeModules: TargetNames("lm_head")}}, nil, "matched none"},
		{"layers int", LoraConfig{TargetConfig: TargetConfig{TargetModules: TargetNames("q_proj"), LayersToTransform: []int{1}}}, names([]int{1}, "q_proj"), ""},
		{"layers with pattern", LoraConfig{TargetConfig: TargetConfig{TargetModules: TargetNames("v_proj"), LayersToTransform: []int{0}, LayersPattern: []string{"layers"}}},
			names([]int{0}, "v_proj"), ""},
		{"layers with a wrong pattern", LoraConfig{TargetConfig: TargetConfig{TargetModules: TargetNames("v_proj"), LayersToTransform: []int{0}, LayersPattern: []string{"h"}}},
			nil, "matched none"},
		{"layers and all-linear", LoraConfig{TargetConfig: TargetConfig{TargetModules: TargetAllLinear(), LayersToTransform: []int{0}}}, names([]int{0}, allSeven...), ""},
		// PEFT checks exact membership before layers_to_transform.
		{"exact name skips the layer check", LoraConfig{TargetConfig: TargetConfig{TargetModules: TargetNames("model.layers.1.self_attn.k_proj"), LayersToTransform: []int{0}}},
			names([]int{1}, "k_proj"), ""},
		{"lm_head has no layer index", LoraConfig{TargetConfig: TargetConfig{TargetModules: TargetNames("lm_head", "q_proj"), LayersToTransform: []int{1}}},
			[]string{"model.layers.1.self_attn.q_proj", "lm_head"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.R, c.cfg.LoraAlpha = 4, 8
			got, err := SelectModules(m, c.cfg)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("got %q\nwant %q", got, c.want)
			}
		})
	}
}

// TestPatternLookup follows PEFT's get_pattern_key:
// re.match(rf"(.*\.)?({key})$", name), first key in order wins.
func TestPatternLookup(t *testing.T) {
	p := Patterns[int]{
		{"layers.0.self_attn.q_proj", 1},
		{"q_proj", 2},
		{`layers\.[01]\.mlp\..*`, 3},
		{"_proj", 4}, // never matches: needs a dot (or the start) before it
	}
	cases := map[string]int{
		"model.layers.0.self_attn.q_proj":  1,
		"model.layers.10.self_attn.q_proj": 2,
		"model.layers.1.self_attn.q_proj":  2,
		"model.layers.1.mlp.up_proj":       3,
		"model.layers.2.mlp.up_proj":       0,
		"model.layers.0.self_attn.k_proj":  0,
		"q_proj":                           2,
		"model.layers.0.self_attn.xq_proj": 0,
	}
	for name, want := range cases {
		got, ok, err := p.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		if (want == 0) == ok || got != want {
			t.Errorf("%s: got %d (found %v), want %d", name, got, ok, want)
		}
	}
	if _, _, err := (Patterns[int]{{"(", 1}}).Lookup("x"); err == nil {
		t.Error("bad key accepted")
	}
}

func TestRankAndAlphaPatterns(t *testing.T) {
	m := tinyModel(t, 2)
	cfg := LoraConfig{R: 8, LoraAlpha: 16, TargetConfig: TargetConfig{TargetModules: TargetNames("q_proj", "v_proj")},
		PatternConfig: PatternConfig{RankPattern: Patterns[int]{{"model.layers.1.self_attn.q_proj", 2}}, AlphaPattern: Patterns[float64]{{"v_proj", 4}}},
	}
	for _, rs := range []bool{false, true} {
		cfg.UseRSLoRA = rs
		_, targets, err := resolveTargets(m, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, tg := range targets {
			r, alpha := 8, 16.0
			if tg.lin.Name == "model.layers.1.self_attn.q_proj" {
				r = 2
			}
			if strings.HasSuffix(tg.lin.Name, "v_proj") {
				alpha = 4
			}
			scaling := alpha / float64(r)
			if rs {
				scaling = alpha / math.Sqrt(float64(r))
			}
			if tg.r != r || tg.alpha != alpha || tg.scaling != scaling {
				t.Errorf("rslora %v, %s: r %d alpha %g scaling %g, want %d %g %g", rs, tg.lin.Name, tg.r, tg.alpha, tg.scaling, r, alpha, scaling)
			}
		}
	}
}
