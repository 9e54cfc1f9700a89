package peft

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/model"
)

func hooked(m *model.Model) []string {
	var out []string
	for _, l := range candidates(m) {
		if len(l.Hooks()) > 0 {
			out = append(out, l.Name)
		}
	}
	return out
}

func TestManagerLifecycle(t *testing.T) {
	m := tinyModel(t, 7)
	base := logits(t, m, tinyIDs)
	mg := AttachLoRA(m)
	qv := LoraConfig{R: 4, LoraAlpha: 8, TargetConfig: TargetConfig{TargetModules: TargetNames("q_proj", "v_proj")}, InitLoraWeights: InitRandom}
	mlp := LoraConfig{R: 2, LoraAlpha: 2, TargetConfig: TargetConfig{TargetModules: TargetNames("up_proj", "q_proj")}, InitLoraWeights: InitRandom}
	if err := mg.AddAdapter("qv", qv, seeded(1)); err != nil {
		t.Fatal(err)
	}
	if err := mg.AddAdapter("mlp", mlp, seeded(2)); err != nil {
		t.Fatal(err)
	}
	if got := mg.Active(); !slices.Equal(got, []string{"qv"}) {
		t.Fatalf("active %q: the first adapter should be active, later ones not", got)
	}
	if got := mg.Adapters(); !slices.Equal(got, []string{"qv", "mlp"}) {
		t.Fatalf("adapters %q", got)
	}
	want := []string{"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj", "model.layers.0.mlp.up_proj",
		"model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj", "model.layers.1.mlp.up_proj"}
	if got := hooked(m); !slices.Equal(got, want) {
		t.Fatalf("hooked %q", got)
	}
	withQV := logits(t, m, tinyIDs)
	if relDiff(withQV, base) < 1e-4 {
		t.Fatal("adapter qv does not change the logits")
	}
	if err := mg.SetActive("mlp", "qv"); err != nil {
		t.Fatal(err)
	}
	both := logits(t, m, tinyIDs)
	if relDiff(both, withQV) < 1e-4 {
		t.Fatal("activating mlp as well changes nothing")
	}

	// Disabled: exactly the base model, restored afterwards even on error.
	sentinel := errors.New("stop")
	err := mg.WithDisabled(func() error {
		if got := logits(t, m, tinyIDs); !slices.Equal(got, base) {
			t.Errorf("disabled logits differ from the base model by %g", relDiff(got, base))
		}
		return sentinel
	})
	if err != sentinel {
		t.Fatalf("WithDisabled returned %v", err)
	}
	if got := logits(t, m, tinyIDs); !slices.Equal(got, both) {
		t.Error("adapters not restored after WithDisabled")
	}
	func() {
		defer func() { recover() }()
		mg.WithDisabled(func() error { panic("boom") })
	}()
	if got := logits(t, m, tinyIDs); !slices.Equal(got, both) {
		t.Error("adapters not restored after a panic in WithDisabled")
	}

	// Deleting an active adapter leaves the others.
	if err := mg.DeleteAdapter("mlp"); err != nil {
		t.Fatal(err)
	}
	if got := mg.Active(); !slices.Equal(got, []string{"qv"}) {
		t.Fatalf("active after delete %q", got)
	}
	if got := logits(t, m, tinyIDs); !slices.Equal(got, withQV) {
		t.Error("logits after deleting mlp differ from qv alone")
	}
	if got := hooked(m); len(got) != 4 {
		t.Errorf("hooks after delete: %q", got)
	}
	if err := mg.DeleteAdapter("qv"); err != nil {
		t.Fatal(err)
	}
	if got := hooked(m); len(got) != 0 {
		t.Errorf("hooks left after deleting every adapter: %q", got)
	}
	if got := logits(t, m, tinyIDs); !slices.Equal(got, base) {
		t.Error("logits after deleting every adapter differ from the base model")
	}
}

func TestManagerErrors(t *testing.T) {
	m := tinyModel(t, 8)
	mg := AttachLoRA(m)
	cfg := LoraConfig{R: 4, LoraAlpha: 8}
	if err := mg.AddAdapter("a", cfg, seeded(1)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"duplicate", mg.AddAdapter("a", cfg, seeded(1)), "already exists"},
		{"nil rng", mg.AddAdapter("b", cfg, nil), "random source"},
		{"bad name", mg.AddAdapter("x.y", cfg, seeded(1)), "adapter name"},
		{"invalid config", mg.AddAdapter("b", LoraConfig{R: 0, LoraAlpha: 1}, seeded(1)), "r = 0"},
		{"loftq", mg.AddAdapter("b", LoraConfig{R: 2, LoraAlpha: 1, InitLoraWeights: "loftq"}, seeded(1)), "init_lora_weights"},
		{"pissa rank too high", mg.AddAdapter("b", LoraConfig{R: 17, LoraAlpha: 1, InitLoraWeights: "pissa", TargetConfig: TargetConfig{TargetModules: TargetNames("q_proj")}}, seeded(1)), "r = 17"},
		{"no match", mg.AddAdapter("b", LoraConfig{R: 2, LoraAlpha: 1, TargetConfig: TargetConfig{TargetModules: TargetNames("c_attn")}}, seeded(1)), "matched none"},
		{"unknown active", mg.SetActive("nope"), `no adapter "nope"`},
		{"no active", mg.SetActive(), "at least one"},
		{"twice active", mg.SetActive("a", "a"), "twice"},
		{"delete unknown", mg.DeleteAdapter("nope"), "no adapter"},
		{"merge unknown", mg.Merge("nope"), "no adapter"},
	}
	for _, c := range cases {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one containing %q", c.name, c.err, c.want)
		}
	}
	if got := mg.Adapters(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("failed calls changed the adapters: %q", got)
	}
	if _, err := mg.Params("nope"); err == nil {
		t.Error("Params of an unknown adapter")
	}

	// DoRA over another adapter's hook is refused (it rescales the plain
	// projection), and nothing is installed.
	other := AttachLoRA(m)
	err := other.AddAdapter("c", LoraConfig{R: 2, LoraAlpha: 2, UseDoRA: true}, seeded(1))
	if err == nil || !strings.Contains(err.Error(), "DoRA needs the plain projection") {
		t.Errorf("DoRA over a foreign hook: err = %v", err)
	}
	if len(other.layers) != 0 {
		t.Error("a failed AddAdapter installed hooks")
	}
}

func TestParams(t *testing.T) {
	m := tinyModel(t, 9)
	mg := attach(t, m, LoraConfig{R: 3, LoraAlpha: 6, TargetConfig: TargetConfig{TargetModules: TargetNames("k_proj", "down_proj")}}, 1)
	params, err := mg.Params("a")
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		name  string
		shape []int
	}
	want := []row{
		{"base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight", []int{3, 16}},
		{"base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight", []int{8, 3}},
		{"base_model.model.model.layers.0.mlp.down_proj.lora_A.weight", []int{3, 24}},
		{"base_model.model.model.layers.0.mlp.down_proj.lora_B.weight", []int{16, 3}},
		{"base_model.model.model.layers.1.self_attn.k_proj.lora_A.weight", []int{3, 16}},
		{"base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight", []int{8, 3}},
		{"base_model.model.model.layers.1.mlp.down_proj.lora_A.weight", []int{3, 24}},
		{"base_model.model.model.layers.1.mlp.down_proj.lora_B.weight", []int{16, 3}},
	}
	if len(params) != len(want) {
		t.Fatalf("%d params, want %d", len(params), len(want))
	}
	for i, p := range params {
		if p.Name != want[i].name || !slices.Equal(p.Value.Shape(), want[i].shape) || !slices.Equal(p.Grad.Shape(), want[i].shape) {
			t.Errorf("param %d: %s %v, want %s %v", i, p.Name, p.Value.Shape(), want[i].name, want[i].shape)
		}
		if p.Value == p.Grad {
			t.Errorf("%s: value and gradient share a buffer", p.Name)
		}
	}
	// The base weights are not parameters and are never copied.
	for _, p := range params {
		for _, l := range candidates(m) {
			if p.Value == l.Weight || p.Grad == l.Weight {
				t.Errorf("%s is a base weight", p.Name)
			}
		}
	}
	var _ backend.Buffer = params[0].Value
}

func TestUnload(t *testing.T) {
	m := tinyModel(t, 10)
	base := logits(t, m, tinyIDs)
	mg := attach(t, m, LoraConfig{R: 2, LoraAlpha: 4, TargetConfig: TargetConfig{TargetModules: TargetAllLinear()}}, 3)
	if err := mg.Merge(); err != nil {
		t.Fatal(err)
	}
	if err := mg.Unload(); err != nil {
		t.Fatal(err)
	}
	if len(hooked(m)) != 0 || len(mg.Adapters()) != 0 {
		t.Fatal("Unload left adapters behind")
	}
	if d := relDiff(logits(t, m, tinyIDs), base); d > 1e-5 {
		t.Errorf("after Unload the logits differ from the base by %g", d)
	}
	// The manager is reusable.
	if err := mg.AddAdapter("again", LoraConfig{R: 2, LoraAlpha: 4}, seeded(1)); err != nil {
		t.Fatal(err)
	}
}
