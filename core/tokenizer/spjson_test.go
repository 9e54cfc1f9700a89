package tokenizer_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/tokenizer"
)

// TestSentencePieceHFRoundTrip: the tokenizer.json graft writes for a
// SentencePiece vocabulary (Llama 2's space prefix and Gemma's none) reads
// back as the same tokenizer: llama.cpp's ids on every fixture string, the
// same BOS/EOS/BOS rule, and the same tokens, scores and types, so GGUF →
// HF → GGUF keeps the vocabulary.
func TestSentencePieceHFRoundTrip(t *testing.T) {
	f := loadFixture(t)
	for i, s := range f.Cases.SPM {
		t.Run(s.Name, func(t *testing.T) {
			gg, err := tokenizer.NewSentencePiece(f.SPM.Config(s))
			if err != nil {
				t.Fatal(err)
			}
			data, err := gg.HFTokenizerJSON()
			if err != nil {
				t.Fatal(err)
			}
			if !tokenizer.IsHFSentencePiece(data) {
				t.Fatal("IsHFSentencePiece(written file) = false")
			}
			hf, err := tokenizer.ParseHFSentencePiece(data, "written")
			if err != nil {
				t.Fatal(err)
			}
			checkAgainstLlamaCpp(t, hf, f.Cases.Strings, f.Golden.SPM[i], false)
			for _, text := range f.Cases.Strings {
				if a, b := gg.Encode(text, true), hf.Encode(text, true); !slices.Equal(a, b) {
					t.Errorf("Encode(%q): GGUF %v, tokenizer.json %v", text, a, b)
				}
			}
			want, got := gg.GGUFSentencePieceConfig(), hf.GGUFSentencePieceConfig()
			if !slices.Equal(got.Tokens, want.Tokens) || !slices.Equal(got.Scores, want.Scores) || !slices.Equal(got.Types, want.Types) {
				t.Errorf("tokens/scores/types changed in the round trip")
			}
			if got.BOS != want.BOS || got.EOS != want.EOS || got.UNK != want.UNK || got.AddSpacePrefix != want.AddSpacePrefix || got.OmitBOS != want.OmitBOS {
				t.Errorf("settings: got %+v, want %+v", []any{got.BOS, got.EOS, got.UNK, got.AddSpacePrefix, got.OmitBOS}, []any{want.BOS, want.EOS, want.UNK, want.AddSpacePrefix, want.OmitBOS})
			}
		})
	}
}

// TestParseHFSentencePieceForms: the forms transformers writes for the
// same vocabulary (normalizer Prepend+Replace as Llama 2, Metaspace
// pre-tokenizer as newer Llama-style files, merges shuffled out of id
// order so scores come from ranks) give the same ids; unknown constructs
// are refused by name.
func TestParseHFSentencePieceForms(t *testing.T) {
	f := loadFixture(t)
	llama := f.Cases.SPM[0]
	if !llama.AddSpacePrefix {
		t.Fatalf("first SPM case %q has no space prefix", llama.Name)
	}
	ref, err := tokenizer.NewSentencePiece(f.SPM.Config(llama))
	if err != nil {
		t.Fatal(err)
	}
	data, err := ref.HFTokenizerJSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	edit := func(change func(doc map[string]any)) []byte {
		var d map[string]any
		_ = json.Unmarshal(data, &d)
		change(d)
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	metaspace := func(scheme string) func(map[string]any) {
		return func(d map[string]any) {
			d["normalizer"] = nil
			d["pre_tokenizer"] = map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": scheme, "split": false}
		}
	}
	for _, tc := range []struct {
		name   string
		change func(map[string]any)
	}{
		{"metaspace first", metaspace("first")},
		{"metaspace always", metaspace("always")},
		{"merges by rank, vocabulary not in merge order", func(d map[string]any) {
			m := d["model"].(map[string]any)
			merges := m["merges"].([]any)
			// Swap the first two pieces' merges: ranks no longer follow ids.
			merges[0], merges[1] = merges[1], merges[0]
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := tokenizer.ParseHFSentencePiece(edit(tc.change), tc.name)
			if err != nil {
				t.Fatal(err)
			}
			same := 0
			for _, s := range f.Cases.Strings {
				if slices.Equal(tok.Encode(s, true), ref.Encode(s, true)) {
					same++
				}
			}
			// Swapping two merges may legitimately change a string that
			// uses both; the others must agree.
			if min := len(f.Cases.Strings) - 1; same < min || (!strings.HasPrefix(tc.name, "merges") && same != len(f.Cases.Strings)) {
				t.Errorf("%d/%d strings agree with the GGUF path", same, len(f.Cases.Strings))
			}
		})
	}
	// Gemma's form: Replace normalizer, no-op Split at " ", no prefix.
	gemmaSettings := f.Cases.SPM[1]
	if gemmaSettings.AddSpacePrefix {
		t.Fatalf("second SPM case %q has a space prefix", gemmaSettings.Name)
	}
	gemmaRef, err := tokenizer.NewSentencePiece(f.SPM.Config(gemmaSettings))
	if err != nil {
		t.Fatal(err)
	}
	gemmaJSON, err := gemmaRef.HFTokenizerJSON()
	if err != nil {
		t.Fatal(err)
	}
	var gd map[string]any
	if err := json.Unmarshal(gemmaJSON, &gd); err != nil {
		t.Fatal(err)
	}
	gd["pre_tokenizer"] = map[string]any{"type": "Split", "pattern": map[string]any{"String": " "}, "behavior": "MergedWithPrevious", "invert": false}
	gemmaJSON, _ = json.Marshal(gd)
	gemma, err := tokenizer.ParseHFSentencePiece(gemmaJSON, "gemma")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range f.Cases.Strings {
		if a, b := gemma.Encode(s, true), gemmaRef.Encode(s, true); !slices.Equal(a, b) {
			t.Errorf("Gemma form: Encode(%q) = %v, GGUF path %v", s, a, b)
		}
	}

	// Metaspace never: no space prefix, as Gemma's settings.
	tok, err := tokenizer.ParseHFSentencePiece(edit(metaspace("never")), "never")
	if err != nil {
		t.Fatal(err)
	}
	if tok.AddSpacePrefix() {
		t.Error("prepend_scheme never: AddSpacePrefix() = true")
	}

	for _, tc := range []struct {
		name, want string
		change     func(map[string]any)
	}{
		{"NFKC normalizer", `"NFKC"`, func(d map[string]any) { d["normalizer"] = map[string]any{"type": "NFKC"} }},
		{"split metaspace", "split true", func(d map[string]any) {
			metaspace("first")(d)
			d["pre_tokenizer"].(map[string]any)["split"] = true
		}},
		{"Split at a regex", "Split", func(d map[string]any) {
			d["pre_tokenizer"] = map[string]any{"type": "Split", "pattern": map[string]any{"Regex": "\\s+"}, "behavior": "Isolated"}
		}},
		{"ByteLevel pre-tokenizer", `"ByteLevel"`, func(d map[string]any) { d["pre_tokenizer"] = map[string]any{"type": "ByteLevel"} }},
		{"unknown decoder", `"WordPiece"`, func(d map[string]any) { d["decoder"] = map[string]any{"type": "WordPiece"} }},
		{"no byte fallback", "byte_fallback", func(d map[string]any) { d["model"].(map[string]any)["byte_fallback"] = false }},
		{"merge to nothing", "not a normal token", func(d map[string]any) {
			m := d["model"].(map[string]any)
			m["merges"] = append(m["merges"].([]any), "▁the ▁the")
		}},
		{"no replace", "'▁'", func(d map[string]any) { d["normalizer"] = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tokenizer.ParseHFSentencePiece(edit(tc.change), "bad.json")
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "bad.json") {
				t.Errorf("err = %v, want one naming bad.json and %s", err, tc.want)
			}
		})
	}
}
