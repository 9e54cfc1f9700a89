package model_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/tokenizer"
	"github.com/graft-ml/graft/internal/randgguf"
	"github.com/graft-ml/graft/internal/tokfixture"
)

// writeTokenizerModel writes a tiny random Llama with n tokens and the
// tokenizer metadata kvs.
func writeTokenizerModel(t *testing.T, n int, kvs []gguf.KV) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "model.gguf")
	shape := randgguf.Shape{Name: "bpe", Dim: 8, FFN: 16, Layers: 1, Heads: 2, KVHeads: 1, Vocab: n, Ctx: 64, NormEps: 1e-5, RopeTheta: 10000}
	if err := randgguf.WriteLlama(path, shape, 1, kvs); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestGGUFByteLevelBPEMatchesLlamaCpp loads each pre-tokenizer's GGUF the
// way graft loads any model file and checks the tokenizer against the ids
// llama.cpp gave for the same file (internal/tokfixture/llamacpp.json).
func TestGGUFByteLevelBPEMatchesLlamaCpp(t *testing.T) {
	f, err := tokfixture.Load()
	if err != nil {
		t.Fatal(err)
	}
	v, c, g := f.BPE, f.Cases, f.Golden
	if len(g.Pres) != len(c.Pres) {
		t.Fatalf("llamacpp.json is stale: run `go run ./tools/tokgolden golden`")
	}
	for i, p := range c.Pres {
		want := g.Pres[i]
		t.Run(p.Pre, func(t *testing.T) {
			path := writeTokenizerModel(t, len(v.Tokens), v.GGUFKVs(p))
			m, err := model.Load(path, cpu.New())
			if err != nil {
				t.Fatal(err)
			}
			tok := m.Tokenizer
			if tok == nil || tok.Kind() != tokenizer.KindByteLevelBPE || tok.VocabSize() != len(v.Tokens) {
				t.Fatalf("tokenizer %v", tok)
			}
			equal := 0
			for j, s := range want.Strings {
				if got := tok.Encode(s, false); slices.Equal(got, want.IDs[j]) {
					equal++
				} else {
					t.Errorf("Encode(%q) = %v, llama.cpp %v", s, got, want.IDs[j])
				}
			}
			t.Logf("%d/%d strings give llama.cpp's ids", equal, len(want.Strings))
			if got := tokenizer.AddsBOS(tok); got != want.AddBOS {
				t.Errorf("AddsBOS %v, llama.cpp %v", got, want.AddBOS)
			}
			if got := tokenizer.EndOfGeneration(tok); !slices.Equal(got, want.EOG) {
				t.Errorf("EndOfGeneration %v, llama.cpp %v", got, want.EOG)
			}
			info, err := model.Inspect(path)
			if err != nil {
				t.Fatal(err)
			}
			if ti := info.Tokenizer; ti == nil || ti.Kind != tokenizer.KindByteLevelBPE || ti.AddsBOS != want.AddBOS || !slices.Equal(ti.EndOfGeneration, want.EOG) {
				t.Errorf("Inspect tokenizer = %+v", info.Tokenizer)
			}
		})
	}
}

// TestGGUFSentencePieceMatchesLlamaCpp loads the SentencePiece fixture
// from GGUF files (Llama 2's space prefix, Gemma's none) and checks the
// tokenizer against llama.cpp's ids for the same files.
func TestGGUFSentencePieceMatchesLlamaCpp(t *testing.T) {
	f, err := tokfixture.Load()
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range f.Cases.SPM {
		want := f.Golden.SPM[i]
		t.Run(s.Name, func(t *testing.T) {
			tok, err := model.LoadTokenizer(writeTokenizerModel(t, len(f.SPM.Tokens), f.SPM.GGUFKVs(s)))
			if err != nil {
				t.Fatal(err)
			}
			for j, str := range want.Strings {
				if got := tok.Encode(str, false); !slices.Equal(got, want.IDs[j]) {
					t.Errorf("Encode(%q) = %v, llama.cpp %v", str, got, want.IDs[j])
				}
			}
			if tok.BOS() != want.BOS || tok.EOS() != want.EOS || tokenizer.AddsBOS(tok) != want.AddBOS || !slices.Equal(tokenizer.EndOfGeneration(tok), want.EOG) {
				t.Errorf("BOS %d EOS %d adds %v stops %v; llama.cpp %d %d %v %v", tok.BOS(), tok.EOS(), tokenizer.AddsBOS(tok), tokenizer.EndOfGeneration(tok), want.BOS, want.EOS, want.AddBOS, want.EOG)
			}
		})
	}
}

func TestGGUFByteLevelBPERefusals(t *testing.T) {
	f, err := tokfixture.Load()
	if err != nil {
		t.Fatal(err)
	}
	v, c := f.BPE, f.Cases
	replace := func(kvs []gguf.KV, key string, value any) []gguf.KV {
		out := slices.Clone(kvs)
		for i := range out {
			if out[i].Key == key {
				if value == nil {
					return slices.Delete(out, i, i+1)
				}
				out[i].Value = value
			}
		}
		return out
	}
	base := v.GGUFKVs(c.Pres[0])
	tests := []struct {
		name string
		kvs  []gguf.KV
		want []string
	}{
		{"unknown pre", replace(base, "tokenizer.ggml.pre", "tekken"),
			[]string{"model.gguf", `tokenizer.ggml.pre "tekken" is not supported`, "llama-bpe", "qwen2", "smollm", "gpt-2", "default"}},
		{"no merges", replace(base, "tokenizer.ggml.merges", nil), []string{"model.gguf", "tokenizer.ggml.merges is missing"}},
		{"unknown model", replace(base, "tokenizer.ggml.model", "t5"), []string{"model.gguf", `tokenizer.ggml.model "t5" is not supported (supported: llama, gpt2)`}},
	}
	for _, tt := range tests {
		path := writeTokenizerModel(t, len(v.Tokens), tt.kvs)
		for _, load := range []func() error{
			func() error { _, err := model.LoadTokenizer(path); return err },
			func() error { _, err := model.Inspect(path); return err },
		} {
			err := load()
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("%s: err = %v, want it to mention %q", tt.name, err, w)
				}
			}
		}
	}
}

// TestTokenizerRoundTrips: graft writes the tokenizer with the model in
// either format. GGUF -> Hugging Face directory gives tokenizer.json and
// tokenizer_config.json (chat template included) that encode as the GGUF
// did (but for the strings where transformers and llama.cpp differ); that
// directory -> GGUF gives tokenizer.ggml.* metadata that encodes as
// llama.cpp did with the original file, on every string.
func TestTokenizerRoundTrips(t *testing.T) {
	f, err := tokfixture.Load()
	if err != nil {
		t.Fatal(err)
	}
	v, c, g := f.BPE, f.Cases, f.Golden
	const tmpl = "{% for m in messages %}{{ m.content }}{% endfor %}"
	for i, p := range c.Pres {
		want := g.Pres[i]
		t.Run(p.Pre, func(t *testing.T) {
			kvs := append(v.GGUFKVs(p), gguf.KV{Key: "tokenizer.chat_template", Value: tmpl})
			src, err := model.Load(writeTokenizerModel(t, len(v.Tokens), kvs), cpu.New())
			if err != nil {
				t.Fatal(err)
			}
			var warnings []string
			opt := model.SaveOptions{Warn: func(s string) { warnings = append(warnings, s) }}
			hfDir := filepath.Join(t.TempDir(), "hf")
			if err := src.SaveHF(hfDir, opt); err != nil {
				t.Fatal(err)
			}
			hf, err := model.Load(hfDir, cpu.New())
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := os.ReadFile(filepath.Join(hfDir, "tokenizer_config.json"))
			if err != nil || !strings.Contains(string(cfg), `"chat_template": "{% for m in messages %}`) {
				t.Errorf("tokenizer_config.json: %v\n%s", err, cfg)
			}
			sameTokenizer(t, "hf", hf.Tokenizer, src.Tokenizer, want.Strings, c.HFDivergent)

			ggPath := filepath.Join(t.TempDir(), "back.gguf")
			if err := hf.SaveGGUF(ggPath, opt); err != nil {
				t.Fatal(err)
			}
			back, err := model.Load(ggPath, cpu.New())
			if err != nil {
				t.Fatal(err)
			}
			sameTokenizer(t, "gguf", back.Tokenizer, src.Tokenizer, want.Strings, nil)
			for j, s := range want.Strings {
				if got := back.Tokenizer.Encode(s, false); !slices.Equal(got, want.IDs[j]) {
					t.Errorf("gguf: Encode(%q) = %v, llama.cpp %v", s, got, want.IDs[j])
				}
			}
			f, err := gguf.Open(ggPath)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if got, _ := f.String("tokenizer.chat_template"); got != tmpl {
				t.Errorf("tokenizer.chat_template = %q, want %q", got, tmpl)
			}
			if pre, _ := f.String("tokenizer.ggml.pre"); pre != p.Pre {
				t.Errorf("tokenizer.ggml.pre = %q, want %q", pre, p.Pre)
			}
			if len(warnings) > 0 {
				t.Errorf("warnings: %q", warnings)
			}
		})
	}
}

// sameTokenizer checks that got encodes strs as want does (but skip) and
// agrees on BOS, EOS, whether BOS is added and where generation stops.
func sameTokenizer(t *testing.T, name string, got, want tokenizer.Tokenizer, strs, skip []string) {
	t.Helper()
	for _, s := range strs {
		if slices.Contains(skip, s) {
			continue
		}
		if a, b := got.Encode(s, true), want.Encode(s, true); !slices.Equal(a, b) {
			t.Errorf("%s: Encode(%q) = %v, the source %v", name, s, a, b)
		}
	}
	if got.BOS() != want.BOS() || got.EOS() != want.EOS() || tokenizer.AddsBOS(got) != tokenizer.AddsBOS(want) {
		t.Errorf("%s: BOS %d EOS %d adds %v, the source %d %d %v", name, got.BOS(), got.EOS(), tokenizer.AddsBOS(got), want.BOS(), want.EOS(), tokenizer.AddsBOS(want))
	}
	if a, b := tokenizer.EndOfGeneration(got), tokenizer.EndOfGeneration(want); !slices.Equal(a, b) {
		t.Errorf("%s: EndOfGeneration %v, the source %v", name, a, b)
	}
}

// TestSentencePieceTokenizerRoundTrips: a GGUF "llama" (SentencePiece)
// vocabulary, with Llama 2's space prefix and with Gemma's none, becomes
// a SentencePiece-style tokenizer.json in a Hugging Face directory that
// encodes as llama.cpp does, and that directory becomes a GGUF whose
// tokenizer.ggml.* keys hold the original tokens, scores and types.
func TestSentencePieceTokenizerRoundTrips(t *testing.T) {
	f, err := tokfixture.Load()
	if err != nil {
		t.Fatal(err)
	}
	const tmpl = "{% for m in messages %}{{ m.content }}{% endfor %}"
	for i, s := range f.Cases.SPM {
		want := f.Golden.SPM[i]
		t.Run(s.Name, func(t *testing.T) {
			kvs := append(f.SPM.GGUFKVs(s), gguf.KV{Key: "tokenizer.chat_template", Value: tmpl})
			src, err := model.Load(writeTokenizerModel(t, len(f.SPM.Tokens), kvs), cpu.New())
			if err != nil {
				t.Fatal(err)
			}
			var warnings []string
			opt := model.SaveOptions{Warn: func(s string) { warnings = append(warnings, s) }}
			hfDir := filepath.Join(t.TempDir(), "hf")
			if err := src.SaveHF(hfDir, opt); err != nil {
				t.Fatal(err)
			}
			hf, err := model.Load(hfDir, cpu.New())
			if err != nil {
				t.Fatal(err)
			}
			if hf.Tokenizer.Kind() != tokenizer.KindSentencePiece {
				t.Fatalf("tokenizer.json read as %s", hf.Tokenizer.Kind())
			}
			cfg, err := os.ReadFile(filepath.Join(hfDir, "tokenizer_config.json"))
			if err != nil || !strings.Contains(string(cfg), `"chat_template": "{% for m in messages %}`) {
				t.Errorf("tokenizer_config.json: %v\n%s", err, cfg)
			}
			sameTokenizer(t, "hf", hf.Tokenizer, src.Tokenizer, want.Strings, nil)
			for j, str := range want.Strings {
				if got := hf.Tokenizer.Encode(str, false); !slices.Equal(got, want.IDs[j]) {
					t.Errorf("hf: Encode(%q) = %v, llama.cpp %v", str, got, want.IDs[j])
				}
			}

			ggPath := filepath.Join(t.TempDir(), "back.gguf")
			if err := hf.SaveGGUF(ggPath, opt); err != nil {
				t.Fatal(err)
			}
			back, err := model.Load(ggPath, cpu.New())
			if err != nil {
				t.Fatal(err)
			}
			sameTokenizer(t, "gguf", back.Tokenizer, src.Tokenizer, want.Strings, nil)
			g, err := gguf.Open(ggPath)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			tokens, _ := g.Strings("tokenizer.ggml.tokens")
			scores, _ := g.Float32s("tokenizer.ggml.scores")
			types, _ := g.Int32s("tokenizer.ggml.token_type")
			if !slices.Equal(tokens, f.SPM.Tokens) || !slices.Equal(scores, f.SPM.Scores) || !slices.Equal(types, f.SPM.Types) {
				t.Error("tokenizer.ggml.tokens/scores/token_type differ from the source's")
			}
			if m, _ := g.String("tokenizer.ggml.model"); m != "llama" {
				t.Errorf("tokenizer.ggml.model = %q", m)
			}
			if sp, ok := g.Bool("tokenizer.ggml.add_space_prefix"); !ok || sp != s.AddSpacePrefix {
				t.Errorf("tokenizer.ggml.add_space_prefix = %v (present %v), want %v", sp, ok, s.AddSpacePrefix)
			}
			if got, _ := g.String("tokenizer.chat_template"); got != tmpl {
				t.Errorf("tokenizer.chat_template = %q, want %q", got, tmpl)
			}
			if len(warnings) > 0 {
				t.Errorf("warnings: %q", warnings)
			}
		})
	}
}
