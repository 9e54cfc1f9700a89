package tokenizer

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// checkIDs fails when an id is out of the vocabulary or decoding through a
// StreamDecoder disagrees with Decode.
func checkIDs(t *testing.T, name string, tok Tokenizer, text string, ids []int32) {
	t.Helper()
	for _, id := range ids {
		if id < 0 || int(id) >= tok.VocabSize() {
			t.Fatalf("%s: Encode(%q) produced id %d outside [0, %d)", name, text, id, tok.VocabSize())
		}
		_ = tok.TokenString(id)
	}
	if got, want := streamAll(tok, ids), tok.Decode(ids); got != want {
		t.Fatalf("%s: streamed %q, Decode %q", name, got, want)
	}
}

func FuzzParseHFTokenizer(f *testing.F) {
	f.Add(gpt2JSON(f))
	f.Add(smallHFJSON(f, nil))
	f.Add(smallHFJSON(f, setPreTokenizer(Qwen2Pattern)))
	f.Add(smallHFJSON(f, setPreTokenizer(`\p{L}+|\d{2}|.`)))
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]},"pre_tokenizer":{"type":"ByteLevel"}}`))
	f.Add([]byte(`{"model":{"vocab":{"a":0,"Ġ":1},"merges":[["a","a"]]},"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":true},{"type":"Split","pattern":{"String":"-"},"behavior":"MergedWithNext","invert":true},{"type":"ByteLevel","add_prefix_space":true}]},"added_tokens":[{"id":5,"content":"<x>","special":true}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := ParseHFTokenizer(data, "fuzz.json")
		if err != nil {
			return
		}
		for _, text := range []string{"", "Hello world 123", "a  b\n\n c\xff\xfe", "<x><|endoftext|>日本😀"} {
			checkIDs(t, "fuzzed tokenizer", tok, text, tok.Encode(text, true))
		}
	})
}

func FuzzEncode(f *testing.F) {
	sp := loadTok512(f)
	gpt2 := loadGPT2(f)
	small, err := ParseHFTokenizer(smallHFJSON(f, nil), "small")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"", " ", "Once upon a time", "  a\n\n\tb  ", "café 日本 😀", "\xff\xc3", "I'M 12345!!\r\n", "<|eot_id|><tool>"} {
		f.Add([]byte(s))
	}
	whole := loadTok512(f) // merges every stretch whole, for comparison
	whole.splitWords = false
	f.Fuzz(func(t *testing.T, data []byte) {
		text := string(data)
		if got, want := sp.Encode(text, true), whole.Encode(text, true); !equalIDs(got, want) {
			t.Fatalf("tok512: Encode(%q) word by word = %v, whole = %v", text, got, want)
		}
		for _, c := range []struct {
			name string
			tok  Tokenizer
			// roundTrips says whether Decode must give text back: not when
			// the text spells a special token (decoded as nothing) or, for
			// SentencePiece, contains '▁' (decoded as a space).
			roundTrips bool
		}{
			{"tok512", sp, !strings.Contains(text, spaceMarker) && !strings.Contains(text, "<s>") && !strings.Contains(text, "</s>") && !strings.Contains(text, "<unk>")},
			{"gpt2", gpt2, !strings.Contains(text, "<|endoftext|>")},
			{"small", small, !strings.Contains(text, "<|")},
		} {
			ids := c.tok.Encode(text, true)
			checkIDs(t, c.name, c.tok, text, ids)
			if got := c.tok.Decode(ids); c.roundTrips && got != text {
				t.Fatalf("%s: Decode(Encode(%q)) = %q (valid UTF-8: %v)", c.name, text, got, utf8.ValidString(text))
			}
		}
	})
}
