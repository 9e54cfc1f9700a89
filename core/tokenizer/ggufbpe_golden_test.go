package tokenizer_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/tokenizer"
	"github.com/graft-ml/graft/internal/tokfixture"
)

// loadFixture returns the shared vocabularies, cases and llama.cpp's
// answers, failing when llamacpp.json was recorded for other cases.
func loadFixture(t *testing.T) *tokfixture.Fixture {
	t.Helper()
	f, err := tokfixture.Load()
	if err != nil {
		t.Fatal(err)
	}
	c, g := f.Cases, f.Golden
	if len(g.Pres) != len(c.Pres) || len(g.SPM) != len(c.SPM) {
		t.Fatalf("llamacpp.json has %d+%d vocabularies, cases.json %d+%d: run `go run ./tools/tokgolden golden`", len(g.Pres), len(g.SPM), len(c.Pres), len(c.SPM))
	}
	for i, p := range c.Pres {
		if g.Pres[i].Pre != p.Pre || !slices.Equal(g.Pres[i].Strings, c.Strings) {
			t.Fatalf("llamacpp.json is stale for pre %q: run `go run ./tools/tokgolden golden`", p.Pre)
		}
	}
	for i, s := range c.SPM {
		if g.SPM[i].Pre != s.Name || !slices.Equal(g.SPM[i].Strings, c.Strings) {
			t.Fatalf("llamacpp.json is stale for %q: run `go run ./tools/tokgolden golden`", s.Name)
		}
	}
	if len(c.Strings) < 30 {
		t.Fatalf("only %d strings", len(c.Strings))
	}
	return f
}

// TestGGUFBPEMatchesLlamaCpp: for every pre-tokenizer, graft's tokenizer
// built from the GGUF metadata gives llama.cpp's ids for every string,
// and the same BOS, EOS, EOT, add-BOS rule and end-of-generation set.
func TestGGUFBPEMatchesLlamaCpp(t *testing.T) {
	f := loadFixture(t)
	v, c, g := f.BPE, f.Cases, f.Golden
	for i, p := range c.Pres {
		want := g.Pres[i]
		t.Run(p.Pre, func(t *testing.T) {
			tok, err := tokenizer.NewGGUFBPE(v.GGUFConfig(p))
			if err != nil {
				t.Fatal(err)
			}
			checkAgainstLlamaCpp(t, tok, c.Strings, want, p.EOT != "")
		})
	}
}

// checkAgainstLlamaCpp compares tok with llama.cpp's answers; eot is
// compared only when the file named it (otherwise llama.cpp picks among
// the candidates in hash-map order).
func checkAgainstLlamaCpp(t *testing.T, tok tokenizer.Tokenizer, strs []string, want tokfixture.GoldenPre, eot bool) {
	t.Helper()
	equal := 0
	for j, s := range strs {
		if got := tok.Encode(s, false); slices.Equal(got, want.IDs[j]) {
			equal++
		} else {
			t.Errorf("Encode(%q)\n got %v\nwant %v (llama.cpp)", s, got, want.IDs[j])
		}
	}
	t.Logf("%d/%d strings give llama.cpp's ids", equal, len(strs))
	if bos, eos := nodeView(tok, tok.BOS()), nodeView(tok, tok.EOS()); bos != want.BOS || eos != want.EOS {
		t.Errorf("BOS %d EOS %d, llama.cpp %d %d", bos, eos, want.BOS, want.EOS)
	}
	if got := tokenizer.AddsBOS(tok); got != want.AddBOS {
		t.Errorf("AddsBOS = %v, llama.cpp %v", got, want.AddBOS)
	}
	if got := tokenizer.EndOfGeneration(tok); !slices.Equal(got, want.EOG) {
		t.Errorf("EndOfGeneration = %v, llama.cpp %v", got, want.EOG)
	}
	if b, ok := tok.(*tokenizer.ByteLevelBPE); ok && eot && b.EOT() != want.EOT {
		t.Errorf("EOT %d, llama.cpp %d", b.EOT(), want.EOT)
	}
	if want.AddBOS {
		if got := tok.Encode(strs[0], true); len(got) == 0 || got[0] != want.BOS || !slices.Equal(got[1:], want.IDs[0]) {
			t.Errorf("Encode(%q, true) = %v, want BOS %d then %v", strs[0], got, want.BOS, want.IDs[0])
		}
	} else if got := tok.Encode(strs[0], true); !slices.Equal(got, want.IDs[0]) {
		t.Errorf("Encode(%q, true) = %v, want %v (no BOS)", strs[0], got, want.IDs[0])
	}
}

// nodeView is id as node-llama-cpp reports a BOS or EOS id: -1 unless it
// is a control (or undefined) token. llama.cpp itself keeps the id: its
// default BOS and EOS for a "gpt2" vocabulary are 11, a normal token in
// the fixture, and the end-of-generation set llama.cpp reports includes it.
func nodeView(tok tokenizer.Tokenizer, id int32) int32 {
	b, ok := tok.(*tokenizer.ByteLevelBPE)
	if !ok || id < 0 {
		return id
	}
	if typ := b.TokenType(id); typ != tokenizer.TokenTypeControl && typ != tokenizer.TokenTypeUndefined {
		return -1
	}
	return id
}

// TestSentencePieceMatchesLlamaCpp: graft's SentencePiece tokenizer, built
// as from a GGUF "llama" vocabulary, gives llama.cpp's ids for every
// string, with Llama 2's space prefix and without it (Gemma), and the same
// BOS, EOS, BOS rule and end-of-generation set.
func TestSentencePieceMatchesLlamaCpp(t *testing.T) {
	f := loadFixture(t)
	for i, s := range f.Cases.SPM {
		t.Run(s.Name, func(t *testing.T) {
			tok, err := tokenizer.NewSentencePiece(f.SPM.Config(s))
			if err != nil {
				t.Fatal(err)
			}
			checkAgainstLlamaCpp(t, tok, f.Cases.Strings, f.Golden.SPM[i], false)
		})
	}
}

// TestHFAndGGUFAgree: the same vocabulary read from GGUF metadata and
// from the tokenizer.json graft writes for it (with the pre-tokenizer of
// the models that use it) gives the same ids, BOS included, except on the
// strings where Hugging Face's tokenizers and llama.cpp disagree.
func TestHFAndGGUFAgree(t *testing.T) {
	f := loadFixture(t)
	v, c := f.BPE, f.Cases
	diverged := map[string]bool{} // the strings listed as divergent that do
	for _, p := range c.Pres {
		t.Run(p.Pre, func(t *testing.T) {
			gg, err := tokenizer.NewGGUFBPE(v.GGUFConfig(p))
			if err != nil {
				t.Fatal(err)
			}
			js, err := gg.HFTokenizerJSON()
			if err != nil {
				t.Fatal(err)
			}
			hf, err := tokenizer.ParseHFTokenizer(js, "fixture/"+p.Pre)
			if err != nil {
				t.Fatal(err)
			}
			if hf.AddsBOS() != gg.AddsBOS() {
				t.Errorf("AddsBOS: tokenizer.json %v, GGUF %v", hf.AddsBOS(), gg.AddsBOS())
			}
			n := 0
			for _, s := range c.Strings {
				if slices.Contains(c.HFDivergent, s) {
					if !slices.Equal(hf.Encode(s, true), gg.Encode(s, true)) {
						diverged[s] = true
					}
					continue
				}
				n++
				if a, b := hf.Encode(s, true), gg.Encode(s, true); !slices.Equal(a, b) {
					t.Errorf("Encode(%q): tokenizer.json %v, GGUF %v", s, a, b)
				}
			}
			t.Logf("%d strings compared", n)
		})
	}
	for _, s := range c.HFDivergent {
		if !diverged[s] {
			t.Errorf("%q is listed as a string where tokenizer.json and GGUF disagree, but they agree", s)
		}
	}
}

// TestGGUFBPEDecodeRoundTrip: decoding gives back the text, special
// tokens aside (they decode to nothing), for every pre-tokenizer.
func TestGGUFBPEDecodeRoundTrip(t *testing.T) {
	f := loadFixture(t)
	v, c := f.BPE, f.Cases
	for _, p := range c.Pres {
		tok, err := tokenizer.NewGGUFBPE(v.GGUFConfig(p))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range c.Strings {
			want := s
			for _, special := range []string{"<|begin_of_text|>", "<|eot_id|>", "<|im_start|>", "<|im_end|>", "<|endoftext|>"} {
				want = strings.ReplaceAll(want, special, "")
			}
			if got := tok.Decode(tok.Encode(s, true)); got != want {
				t.Errorf("%s: Decode(Encode(%q)) = %q, want %q", p.Pre, s, got, want)
			}
		}
	}
}

func ExampleNewGGUFBPE() {
	f, err := tokfixture.Load()
	if err != nil {
		panic(err)
	}
	tok, err := tokenizer.NewGGUFBPE(f.BPE.GGUFConfig(f.Cases.Pres[1])) // llama-bpe
	if err != nil {
		panic(err)
	}
	// Llama 3 looks a whole word up before merging, and reads special
	// tokens in the text as themselves.
	for _, s := range []string{" tokenization", "<|eot_id|>"} {
		fmt.Printf("%q -> %v\n", s, tok.Encode(s, false))
	}
	fmt.Println("adds BOS:", tokenizer.AddsBOS(tok), "stops at:", tokenizer.EndOfGeneration(tok))
	// Output:
	// " tokenization" -> [3256]
	// "<|eot_id|>" -> [3264]
	// adds BOS: true stops at: [3259 3261 3264 3265 3267]
}

// TestGGUFToHFToGGUF: GGUF metadata -> tokenizer.json -> GGUF metadata
// keeps the vocabulary, and the result still gives llama.cpp's ids on
// every string; the tokenizer.json names the same llama.cpp pre-tokenizer.
func TestGGUFToHFToGGUF(t *testing.T) {
	f := loadFixture(t)
	v, c, g := f.BPE, f.Cases, f.Golden
	for i, p := range c.Pres {
		t.Run(p.Pre, func(t *testing.T) {
			gg, err := tokenizer.NewGGUFBPE(v.GGUFConfig(p))
			if err != nil {
				t.Fatal(err)
			}
			js, err := gg.HFTokenizerJSON()
			if err != nil {
				t.Fatal(err)
			}
			hf, err := tokenizer.ParseHFTokenizer(js, "fixture")
			if err != nil {
				t.Fatal(err)
			}
			if hf.GGMLPre() != p.Pre {
				t.Errorf("tokenizer.json reads as pre %q, want %q", hf.GGMLPre(), p.Pre)
			}
			// tokenizer.json names no BOS or EOS beside a template's; a
			// Hugging Face directory carries them in tokenizer_config.json
			// and config.json, which core/model reads.
			hf.SetBOS(gg.BOS())
			hf.SetEOS(gg.EOS())
			back, err := hf.GGUFConfig()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(back.Tokens, v.Tokens) || !slices.Equal(back.Types, v.Types) || !slices.Equal(back.Merges, v.Merges) {
				t.Errorf("the vocabulary changed on the way: %d tokens, %d merges", len(back.Tokens), len(back.Merges))
			}
			again, err := tokenizer.NewGGUFBPE(back)
			if err != nil {
				t.Fatal(err)
			}
			checkAgainstLlamaCpp(t, again, c.Strings, g.Pres[i], false)
		})
	}
}
