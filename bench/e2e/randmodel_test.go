package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/model"
)

// tiny is a shape small enough to write, load and run in a test.
var tiny = shape{Name: "tiny", Dim: 16, FFN: 24, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 300, Ctx: 64, NormEps: 1e-5, RopeTheta: 10000}

func TestRandomModelLoadsAndRuns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "tiny.gguf")
	if err := ensureRandomModel(path, tiny, 7, t.Logf); err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(path, cpu.New())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	c := m.Config
	if c.Dim != 16 || c.FFN != 24 || c.Layers != 2 || c.Heads != 4 || c.KVHeads != 2 || c.Vocab != 300 || c.Context != 64 || c.TiedOutput {
		t.Errorf("loaded config %+v does not match the shape %+v", c, tiny)
	}
	if tok := m.Tokenizer; tok == nil || tok.VocabSize() != 300 || tok.BOS() != 1 || tok.EOS() != 2 {
		t.Fatalf("tokenizer %v: want a vocabulary of 300 with BOS 1 and EOS 2", tok)
	}
	logits, err := m.Forward(m.NewCache(8), []int32{1, 100, 299}, false)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range logits {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("logit %d is %v", i, v)
		}
	}
}

func TestRandomModelCache(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	var logs []string
	logf := func(f string, a ...any) { logs = append(logs, f) }
	if err := ensureRandomModel(path, tiny, 7, logf); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	logs = nil
	if err := ensureRandomModel(path, tiny, 7, logf); err != nil {
		t.Fatal(err)
	}
	if len(logs) != 0 {
		t.Errorf("a cached file of the right shape was rewritten: %q", logs)
	}
	wider := tiny
	wider.FFN = 32
	if err := ensureRandomModel(path, wider, 7, logf); err != nil {
		t.Fatal(err)
	}
	info, err := model.Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.FFN != 32 || !strings.Contains(strings.Join(logs, "\n"), "another shape") {
		t.Errorf("after a shape change: ffn %d, logs %q; want the file rewritten with ffn 32", info.Config.FFN, logs)
	}
	// Same seed, same bytes: the file is reproducible.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := ensureRandomModel(path, tiny, 7, logf); err != nil {
		t.Fatal(err)
	}
	again, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(first) != string(again) {
		t.Error("two files written with the same seed differ")
	}
}

func TestRandomModelRejectsBadShapes(t *testing.T) {
	for _, s := range []shape{
		{Dim: 16, FFN: 8, Layers: 1, Heads: 3, KVHeads: 1, Vocab: 300, Ctx: 8}, // 16 does not split into 3 heads
		{Dim: 16, FFN: 8, Layers: 1, Heads: 4, KVHeads: 3, Vocab: 300, Ctx: 8}, // 4 heads do not group into 3
		{Dim: 16, FFN: 8, Layers: 1, Heads: 4, KVHeads: 2, Vocab: 100, Ctx: 8}, // no room for the byte tokens
		{Dim: 16, FFN: 8, Layers: 1, Heads: 0, KVHeads: 0, Vocab: 300, Ctx: 8}, // no heads
	} {
		if _, _, err := randomModel(s, 1); err == nil {
			t.Errorf("randomModel(%+v) succeeded, want an error", s)
		}
	}
}

func TestSyntheticVocab(t *testing.T) {
	v, err := syntheticVocab(2000)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.tokens) != 2000 || len(v.scores) != 2000 || len(v.types) != 2000 {
		t.Fatalf("%d tokens, %d scores, %d types; want 2000 of each", len(v.tokens), len(v.scores), len(v.types))
	}
	seen := map[string]int{}
	for i, tok := range v.tokens {
		if j, dup := seen[tok]; dup {
			t.Fatalf("token %q at %d and %d", tok, j, i)
		}
		seen[tok] = i
	}
	for tok, want := range map[string]int{"<unk>": 0, "<s>": 1, "</s>": 2, "<0x00>": 3, "<0x0A>": 13, "<0xFF>": 258, "▁a": 259, "a": 260, "▁b": 261} {
		if got, ok := seen[tok]; !ok || got != want {
			t.Errorf("token %q at %d (present %v), want %d", tok, got, ok, want)
		}
	}
	if v.types[13] != tokenByte || v.types[1] != tokenControl || v.types[0] != tokenUnknown || v.types[500] != tokenNormal {
		t.Errorf("token types %v... are not Llama's layout", v.types[:16])
	}
}

func TestLetters(t *testing.T) {
	for _, c := range []struct {
		i    int
		want string
	}{{0, "a"}, {25, "z"}, {26, "aa"}, {27, "ab"}, {26 + 26*26, "aaa"}} {
		if got := letters(c.i); got != c.want {
			t.Errorf("letters(%d) = %q, want %q", c.i, got, c.want)
		}
	}
}
