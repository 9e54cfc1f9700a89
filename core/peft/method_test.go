package peft

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestLoadAdapterDispatchesOnPeftType(t *testing.T) {
	m := loadModel(t, storiesGGUF)
	mg := AttachLoRA(m)
	cfg := LoraConfig{R: 4, LoraAlpha: 8, TargetConfig: TargetConfig{TargetModules: TargetNames("q_proj", "v_proj")}, InitLoraWeights: InitRandom}
	if err := mg.AddAdapter("a", cfg, seeded(1)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := mg.Save(dir, "a"); err != nil {
		t.Fatal(err)
	}
	want := logits(t, m, storyIDs)
	if err := mg.Unload(); err != nil {
		t.Fatal(err)
	}

	a, _, err := LoadAdapter(m, Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if a.PeftType() != PeftTypeLoRA || len(a.Params()) != 2*2*m.Config.Layers {
		t.Fatalf("loaded %s with %d params", a.PeftType(), len(a.Params()))
	}
	if d := relDiff(logits(t, m, storyIDs), want); d != 0 {
		t.Fatalf("logits through LoadAdapter differ by %g", d)
	}
	// A second LoRA adapter joins the same manager and both are active.
	b, _, err := LoadAdapter(m, Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Unload(); err != nil {
		t.Fatal(err)
	}
	if d := relDiff(logits(t, m, storyIDs), want); d > 1e-6 {
		t.Fatalf("after unloading the second adapter the logits moved by %g", d)
	}

	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, ConfigFileName), []byte(`{"peft_type": "MAGIC"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadAdapter(m, Dir(bad)); err == nil || !strings.Contains(err.Error(), "MAGIC") {
		t.Fatalf("unknown peft_type: %v", err)
	}
	if _, _, err := LoadAdapter(m, Dir(t.TempDir())); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing config: %v", err)
	}
}

func TestNewAdapterFromConfigJSON(t *testing.T) {
	m := loadModel(t, storiesGGUF)
	a, err := NewAdapter(m, []byte(`{"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj"]}`), seeded(3))
	if err != nil {
		t.Fatal(err)
	}
	if a.PeftType() != PeftTypeLoRA || len(a.Params()) != 2*m.Config.Layers {
		t.Fatalf("%s with %d params", a.PeftType(), len(a.Params()))
	}
	if err := a.Unload(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{`{"peft_type": "NOPE"}`, `{"peft_type": "LORA", "r": 0, "lora_alpha": 1}`, `not json`} {
		if _, err := NewAdapter(m, []byte(bad), seeded(1)); err == nil {
			t.Errorf("NewAdapter(%s) succeeded", bad)
		}
	}
}

// TestLoRAAdapterUnloadMerged: Adapter.Unload unmerges a merged LoRA
// adapter first, and the manager's other merged adapters stay merged.
func TestLoRAAdapterUnloadMerged(t *testing.T) {
	m := tinyModel(t, 93)
	base := logits(t, m, tinyIDs)
	mg := attach(t, m, LoraConfig{R: 2, LoraAlpha: 2}, 1)
	if err := mg.AddAdapter("b", LoraConfig{R: 2, LoraAlpha: 2, InitLoraWeights: InitRandom}, seeded(2)); err != nil {
		t.Fatal(err)
	}
	if err := mg.SetActive("a", "b"); err != nil {
		t.Fatal(err)
	}
	if err := mg.Merge(); err != nil {
		t.Fatal(err)
	}
	a, _ := mg.AsAdapter("a")
	if err := a.Unload(); err != nil {
		t.Fatal(err)
	}
	if got := mg.Merged(); !slices.Equal(got, []string{"b"}) {
		t.Errorf("merged after unloading a: %q, want [b]", got)
	}
	onlyB := tinyModel(t, 93)
	mgB := AttachLoRA(onlyB)
	if err := mgB.AddAdapter("b", LoraConfig{R: 2, LoraAlpha: 2, InitLoraWeights: InitRandom}, seeded(2)); err != nil {
		t.Fatal(err)
	}
	if d := relDiff(logits(t, m, tinyIDs), logits(t, onlyB, tinyIDs)); d > 1e-5 {
		t.Errorf("after unloading a the logits differ from b alone by %g", d)
	}
	b, _ := mg.AsAdapter("b")
	if err := b.Unload(); err != nil {
		t.Fatal(err)
	}
	if d := relDiff(logits(t, m, tinyIDs), base); d > 1e-5 {
		t.Errorf("after unloading both the logits differ from the base by %g", d)
	}
}
