package model

import (
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/cpu"
)

const (
	bundledModel = "../../models/stories260K/stories260K.gguf"
	modelsDir    = "../../models/stories260K/"
	storyStart   = "Once upon a time, there was a little girl named Lily."
)

type golden struct {
	PromptIDs    []int32     `json:"prompt_ids"`
	GeneratedIDs []int32     `json:"generated_ids"`
	Positions    []int       `json:"positions"`
	Logits       [][]float32 `json:"logits"`
}

func readGolden(t *testing.T) golden {
	t.Helper()
	data, err := os.ReadFile("testdata/stories260K_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

func loadModel(t testing.TB, path string) *Model {
	t.Helper()
	m, err := Load(path, cpu.New())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Free)
	return m
}

func greedy(t *testing.T, m *Model, n int) []int32 {
	t.Helper()
	out, err := m.Generate([]int32{m.Tokenizer.BOS()}, GenerateOptions{MaxTokens: n})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGoldenLogits compares the forward pass with an independent PyTorch
// implementation (tools/golden/llama_reference.py).
func TestGoldenLogits(t *testing.T) {
	g := readGolden(t)
	m := loadModel(t, bundledModel)
	ids := append(append([]int32{}, g.PromptIDs...), g.GeneratedIDs...)
	ids = ids[:len(ids)-1]
	logits, err := m.Forward(m.NewCache(len(ids)), ids, true)
	if err != nil {
		t.Fatal(err)
	}
	V := m.Config.Vocab
	var worst float64
	for i, p := range g.Positions {
		row := logits[p*V : (p+1)*V]
		for j, want := range g.Logits[i] {
			worst = math.Max(worst, math.Abs(float64(row[j]-want)))
		}
	}
	if worst > 1e-4 {
		t.Fatalf("max |logit - reference| = %g, want <= 1e-4", worst)
	}
	t.Logf("max |logit - reference| = %.3g over %d positions", worst, len(g.Positions))
}

func TestGreedyStory(t *testing.T) {
	g := readGolden(t)
	m := loadModel(t, bundledModel)
	out := greedy(t, m, 256)
	if len(out) != len(g.GeneratedIDs) {
		t.Fatalf("generated %d tokens, want %d", len(out), len(g.GeneratedIDs))
	}
	for i := range out {
		if out[i] != g.GeneratedIDs[i] {
			t.Fatalf("token %d = %d, reference %d (text so far %q)", i, out[i], g.GeneratedIDs[i], m.Tokenizer.Decode(out[:i+1]))
		}
	}
	if text := m.Tokenizer.Decode(out); !strings.HasPrefix(text, storyStart) {
		t.Fatalf("story = %q, want it to begin %q", text, storyStart)
	}
}

func TestGGUFVersionsAndQuantization(t *testing.T) {
	ref := loadModel(t, bundledModel)
	want := ref.Tokenizer.Decode(greedy(t, ref, 64))

	v1 := loadModel(t, modelsDir+"stories260K-v1.gguf")
	if got := v1.Tokenizer.Decode(greedy(t, v1, 64)); got != want {
		t.Errorf("v1 file greedy text = %q, want %q", got, want)
	}

	q8 := loadModel(t, modelsDir+"stories260K-q8_0-v2.gguf")
	if q8.WeightDTypes["Q8_0"] == 0 {
		t.Fatalf("q8_0 file loaded weights %v, want some Q8_0", q8.WeightDTypes)
	}
	got := q8.Tokenizer.Decode(greedy(t, q8, 64))
	if !strings.HasPrefix(got, "Once upon a time") {
		t.Errorf("q8_0 greedy text = %q, want a story", got)
	}
	t.Logf("q8_0 (%v): %q", q8.WeightDTypes, got)
	// Quantization should barely move the loss of the reference story.
	g := readGolden(t)
	ids := append([]int32{ref.Tokenizer.BOS()}, g.GeneratedIDs...)
	lr, err := ref.SequenceLoss(ids)
	if err != nil {
		t.Fatal(err)
	}
	lq, err := q8.SequenceLoss(ids)
	if err != nil {
		t.Fatal(err)
	}
	if d := math.Abs(lr.Loss() - lq.Loss()); d > 0.05 {
		t.Errorf("q8_0 loss %.4f vs f32 %.4f: differ by %.4f", lq.Loss(), lr.Loss(), d)
	}
}

// TestKVCacheMatchesFullPass checks that token-by-token decoding with the
// cache gives the logits of one full pass.
func TestKVCacheMatchesFullPass(t *testing.T) {
	m := loadModel(t, bundledModel)
	ids := m.Tokenizer.Encode("Once upon a time there was a cat", true)
	full, err := m.Forward(m.NewCache(0), ids, true)
	if err != nil {
		t.Fatal(err)
	}
	c := m.NewCache(0)
	V := m.Config.Vocab
	for i, id := range ids {
		row, err := m.Forward(c, []int32{id}, false)
		if err != nil {
			t.Fatal(err)
		}
		for j := range row {
			if d := math.Abs(float64(row[j] - full[i*V+j])); d > 1e-4 {
				t.Fatalf("position %d logit %d: cached %g, full %g", i, j, row[j], full[i*V+j])
			}
		}
	}
}

func TestSequenceLossMatchesLogits(t *testing.T) {
	m := loadModel(t, bundledModel)
	ids := m.Tokenizer.Encode("The cat sat on the mat.", true)
	s, err := m.SequenceLoss(ids)
	if err != nil {
		t.Fatal(err)
	}
	logits, err := m.Forward(m.NewCache(0), ids[:len(ids)-1], true)
	if err != nil {
		t.Fatal(err)
	}
	V := m.Config.Vocab
	var want float64
	for i := 1; i < len(ids); i++ {
		row := logits[(i-1)*V : i*V]
		var mx float64 = math.Inf(-1)
		for _, v := range row {
			mx = math.Max(mx, float64(v))
		}
		var sum float64
		for _, v := range row {
			sum += math.Exp(float64(v) - mx)
		}
		want += mx + math.Log(sum) - float64(row[ids[i]])
	}
	if s.Tokens != len(ids)-1 || math.Abs(s.SumNLL-want) > 1e-3 {
		t.Fatalf("loss %+v, want sum %g over %d tokens", s, want, len(ids)-1)
	}
}

func TestSamplingIsSeededAndValid(t *testing.T) {
	m := loadModel(t, bundledModel)
	opt := GenerateOptions{Sampling: Sampling{Temperature: 0.9, TopK: 20, TopP: 0.9, Seed: 42}, MaxTokens: 40}
	a, err := m.Generate([]int32{m.Tokenizer.BOS()}, opt)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Generate([]int32{m.Tokenizer.BOS()}, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 40 || string(m.Tokenizer.Decode(a)) != m.Tokenizer.Decode(b) {
		t.Fatalf("same seed gave %q and %q", m.Tokenizer.Decode(a), m.Tokenizer.Decode(b))
	}
	opt.Seed = 43
	c, _ := m.Generate([]int32{m.Tokenizer.BOS()}, opt)
	if m.Tokenizer.Decode(c) == m.Tokenizer.Decode(a) {
		t.Errorf("seeds 42 and 43 gave the same text %q", m.Tokenizer.Decode(a))
	}
	for _, bad := range []Sampling{{Temperature: -1}, {TopK: -1}, {TopP: 1.5}, {Temperature: float32(math.NaN())}} {
		if _, err := m.Generate([]int32{1}, GenerateOptions{Sampling: bad, MaxTokens: 1}); err == nil {
			t.Errorf("sampling %+v accepted", bad)
		}
	}
}

func TestSamplerTopK1IsGreedy(t *testing.T) {
	logits := []float32{0.1, 3, -2, 2.9}
	s := NewSampler(Sampling{Temperature: 1.5, TopK: 1, Seed: 1})
	for range 20 {
		if id := s.Next(logits); id != 1 {
			t.Fatalf("top-k 1 picked %d, want 1", id)
		}
	}
	s = NewSampler(Sampling{Temperature: 1, TopP: 0.01, Seed: 1})
	if id := s.Next(logits); id != 1 {
		t.Fatalf("top-p 0.01 picked %d, want 1", id)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile(bundledModel)
	if err != nil {
		t.Fatal(err)
	}
	trunc := dir + "/truncated.gguf"
	if err := os.WriteFile(trunc, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{trunc, dir + "/missing.gguf", dir} {
		_, err := Load(path, cpu.New())
		if err == nil {
			t.Errorf("Load(%s) succeeded", path)
			continue
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("Load(%s) error %q does not name the file", path, err)
		}
	}
}
