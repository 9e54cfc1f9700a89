package peft

import (
	"slices"
	"testing"

	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/tensor"
)

// checkMerge attaches a random adapter, merges, unmerges and compares the
// logits at each step. exactUnmerge says whether unmerging must restore
// the base bit for bit (weights replaced by copies) or up to rounding.
func checkMerge(t *testing.T, m *model.Model, ids []int32, cfg LoraConfig, exactUnmerge bool) {
	t.Helper()
	base := logits(t, m, ids)
	mg := attach(t, m, cfg, 21)
	adapted := logits(t, m, ids)
	if d := relDiff(adapted, base); d < 1e-3 {
		t.Fatalf("the adapter changes the logits by only %g", d)
	}
	if err := mg.Merge(); err != nil {
		t.Fatal(err)
	}
	if got := mg.Merged(); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("merged %q", got)
	}
	merged := logits(t, m, ids)
	if d := relDiff(merged, adapted); d > 1e-5 {
		t.Errorf("merged logits differ from unmerged by %g relative", d)
	}
	// Merging again is a no-op.
	if err := mg.Merge("a"); err != nil {
		t.Fatal(err)
	}
	if got := logits(t, m, ids); !slices.Equal(got, merged) {
		t.Error("merging a merged adapter again changed the logits")
	}
	if err := mg.Unmerge(); err != nil {
		t.Fatal(err)
	}
	if got := logits(t, m, ids); relDiff(got, adapted) > 1e-5 {
		t.Error("after Unmerge the adapter no longer applies")
	}
	err := mg.WithDisabled(func() error {
		got := logits(t, m, ids)
		if exactUnmerge && !slices.Equal(got, base) {
			t.Errorf("after Unmerge the base differs by %g (want identical)", relDiff(got, base))
		}
		if d := relDiff(got, base); d > 1e-5 {
			t.Errorf("after Unmerge the base differs by %g relative", d)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMergeStories260K merges LoRA on q, k, v, o into the real F32 model.
func TestMergeStories260K(t *testing.T) {
	m := loadModel(t, storiesGGUF)
	checkMerge(t, m, storyIDs, LoraConfig{R: 8, LoraAlpha: 16, TargetConfig: TargetConfig{TargetModules: TargetNames("q_proj", "k_proj", "v_proj", "o_proj")}}, false)
}

// TestMergeQuantized merges into Q8_0 weights, which become F32 copies
// while merged; Unmerge restores the quantized originals exactly.
func TestMergeQuantized(t *testing.T) {
	m := loadModel(t, storiesQ8)
	q := m.Layers[0].Q
	if q.Weight.DType() != tensor.Q8_0 {
		t.Fatalf("test model's q_proj is %v, want Q8_0", q.Weight.DType())
	}
	orig := q.Weight
	// down_proj stays F32 in this file (rows of 172 are not whole Q8_0
	// blocks), and F32 weights are merged in place, so leave it out.
	cfg := LoraConfig{R: 8, LoraAlpha: 16, TargetConfig: TargetConfig{TargetModules: TargetAllLinear(), ExcludeModules: TargetNames("down_proj")}}
	checkMerge(t, m, storyIDs, cfg, true)
	if q.Weight != orig {
		t.Error("Unmerge did not restore the original quantized buffer")
	}
}

// TestMergeTiedHead merges an adapter on lm_head, whose weight is the token
// embedding: the embedding must not change.
func TestMergeTiedHead(t *testing.T) {
	m := tinyModel(t, 12)
	embed := read(t, m.Backend, m.Embed)
	checkMerge(t, m, tinyIDs, LoraConfig{R: 4, LoraAlpha: 8, TargetConfig: TargetConfig{TargetModules: TargetNames("lm_head", "o_proj")}}, false)
	if got := read(t, m.Backend, m.Embed); !slices.Equal(got, embed) {
		t.Error("merging into the tied output head changed the token embedding")
	}
}

func TestMergeAndUnload(t *testing.T) {
	for _, c := range []struct {
		name  string
		model func(t *testing.T) *model.Model
		ids   []int32
		cfg   LoraConfig
		f32   []string // layers that must be F32 afterwards
	}{
		{"stories260K q8_0", func(t *testing.T) *model.Model { return loadModel(t, storiesQ8) }, storyIDs,
			LoraConfig{R: 4, LoraAlpha: 8, TargetConfig: TargetConfig{TargetModules: TargetNames("q_proj", "down_proj")}},
			[]string{"model.layers.0.self_attn.q_proj", "model.layers.4.self_attn.q_proj", "model.layers.0.mlp.down_proj"}},
		{"tied head", func(t *testing.T) *model.Model { return tinyModel(t, 13) }, tinyIDs,
			LoraConfig{R: 4, LoraAlpha: 8, TargetConfig: TargetConfig{TargetModules: TargetNames("lm_head", "v_proj")}},
			[]string{"lm_head", "model.layers.1.self_attn.v_proj"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := c.model(t)
			embed := read(t, m.Backend, m.Embed)
			mg := attach(t, m, c.cfg, 5)
			adapted := logits(t, m, c.ids)
			if err := mg.MergeAndUnload(); err != nil {
				t.Fatal(err)
			}
			if len(hooked(m)) != 0 || len(mg.Adapters()) != 0 {
				t.Fatal("MergeAndUnload left hooks or adapters")
			}
			if d := relDiff(logits(t, m, c.ids), adapted); d > 1e-5 {
				t.Errorf("logits after MergeAndUnload differ by %g relative", d)
			}
			if got := read(t, m.Backend, m.Embed); !slices.Equal(got, embed) {
				t.Error("the token embedding changed")
			}
			for _, l := range candidates(m) {
				if slices.Contains(c.f32, l.Name) &&
					l.Weight.DType() != tensor.F32 {
					t.Errorf("%s is %v after merging, want F32", l.Name, l.Weight.DType())
				}
			}
			if m.Output.Weight != m.Embed && m.Config.TiedOutput {
				t.Error("the head has its own weight but the config still says tied")
			}
			if q := m.Layers[0].Q.Weight.DType(); c.name == "stories260K q8_0" && (q != tensor.F32 || m.WeightDTypes["F32"] == 0) {
				t.Errorf("q_proj is %v after merging; weight dtypes %v", q, m.WeightDTypes)
			}
		})
	}
}

// TestWithDisabledMerged: disabling unmerges, runs the base, and merges
// again.
func TestWithDisabledMerged(t *testing.T) {
	m := tinyModel(t, 14)
	base := logits(t, m, tinyIDs)
	mg := attach(t, m, LoraConfig{R: 4, LoraAlpha: 8, TargetConfig: TargetConfig{TargetModules: TargetAllLinear()}}, 6)
	if err := mg.Merge(); err != nil {
		t.Fatal(err)
	}
	merged := logits(t, m, tinyIDs)
	mg.WithDisabled(func() error {
		if d := relDiff(logits(t, m, tinyIDs), base); d > 1e-5 {
			t.Errorf("disabled while merged: logits differ from the base by %g", d)
		}
		return nil
	})
	if got := mg.Merged(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("after WithDisabled merged = %q", got)
	}
	if d := relDiff(logits(t, m, tinyIDs), merged); d > 1e-5 {
		t.Errorf("after WithDisabled logits differ from merged by %g", d)
	}
	if err := mg.DeleteAdapter("a"); err == nil {
		t.Error("deleting a merged adapter was allowed")
	}
}
