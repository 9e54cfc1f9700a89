package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The expected ids were computed independently with a reference
// implementation of OpenAI's encoder.py (Python `regex` split, greedy
// lowest-rank merges) over the same encoder.json and vocab.bpe; the first
// three are also widely published GPT-2 encodings.
func TestGPT2Encode(t *testing.T) {
	tok := loadGPT2(t)
	tests := []struct {
		text string
		want []int32
	}{
		{"Hello world", []int32{15496, 995}},
		{" Hello", []int32{18435}},
		{"<|endoftext|>", []int32{50256}},
		{"Hello, world! I'm fine.", []int32{15496, 11, 995, 0, 314, 1101, 3734, 13}},
		{"  multiple   spaces\n\nnew line", []int32{220, 3294, 220, 220, 9029, 198, 198, 3605, 1627}},
		{"café 日本 😀", []int32{66, 1878, 2634, 10545, 245, 98, 17312, 105, 30325, 222}},
		{"The year 2024 had 366 days.", []int32{464, 614, 48609, 550, 44856, 1528, 13}},
		{"a<|endoftext|>b", []int32{64, 50256, 65}},
		{"", []int32{}},
	}
	for _, tt := range tests {
		if got := tok.Encode(tt.text, false); !equalIDs(got, tt.want) {
			t.Errorf("Encode(%q) = %v, want %v", tt.text, got, tt.want)
		}
		if !strings.Contains(tt.text, "<|endoftext|>") {
			if got := tok.Decode(tok.Encode(tt.text, false)); got != tt.text {
				t.Errorf("Decode(Encode(%q)) = %q", tt.text, got)
			}
		}
	}
	if tok.VocabSize() != 50257 || tok.Kind() != KindByteLevelBPE {
		t.Errorf("VocabSize %d, Kind %q", tok.VocabSize(), tok.Kind())
	}
	// GPT-2 has no post-processor template; both fall back to <|endoftext|>.
	if tok.BOS() != 50256 || tok.EOS() != 50256 {
		t.Errorf("BOS %d EOS %d, want 50256", tok.BOS(), tok.EOS())
	}
	// ... but, as in transformers, the BOS is not added: only a template
	// adds one.
	if got := tok.Encode("Hello world", true); !equalIDs(got, []int32{15496, 995}) || tok.AddsBOS() {
		t.Errorf("Encode with BOS = %v, AddsBOS %v; want no BOS", got, tok.AddsBOS())
	}
	if got := tok.EndOfGeneration(); !equalIDs(got, []int32{50256}) || tok.EOT() != 50256 {
		t.Errorf("EndOfGeneration = %v, EOT %d; want [50256], 50256", got, tok.EOT())
	}
	if tok.TokenString(18435) != "ĠHello" || string(tok.TokenBytes(18435)) != " Hello" || tok.TokenBytes(50256) != nil {
		t.Errorf("token 18435 = %q / %q", tok.TokenString(18435), tok.TokenBytes(18435))
	}
	tok.SetBOS(-1)
	tok.SetEOS(1 << 20) // out of range: no EOS
	if tok.BOS() != -1 || tok.EOS() != -1 || len(tok.Encode("x", true)) != 1 {
		t.Error("SetBOS/SetEOS did not take effect")
	}
	tok.SetEOS(50256)
	if tok.EOS() != 50256 {
		t.Error("SetEOS(50256) did not take effect")
	}
}

func TestBuildGPT2TokenizerJSON(t *testing.T) {
	var f struct {
		AddedTokens []hfAddedToken `json:"added_tokens"`
		Model       struct {
			Vocab  map[string]int `json:"vocab"`
			Merges []string       `json:"merges"`
		} `json:"model"`
	}
	if err := json.Unmarshal(gpt2JSON(t), &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Model.Vocab) != 50257 || len(f.Model.Merges) != 50000 || f.Model.Merges[0] != "Ġ t" {
		t.Errorf("vocab %d merges %d first %q", len(f.Model.Vocab), len(f.Model.Merges), f.Model.Merges[0])
	}
	if len(f.AddedTokens) != 1 || f.AddedTokens[0] != (hfAddedToken{ID: 50256, Content: "<|endoftext|>", Special: true}) {
		t.Errorf("added tokens %+v", f.AddedTokens)
	}
	for _, tt := range []struct{ enc, bpe, want string }{
		{`[1]`, "", "encoder.json"},
		{`{"a":0}`, "", "no <|endoftext|>"},
		{`{"<|endoftext|>":0}`, "#version: 0.2\nabc\n", `line 2: "abc"`},
	} {
		if _, err := BuildGPT2TokenizerJSON([]byte(tt.enc), []byte(tt.bpe)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("BuildGPT2TokenizerJSON(%s): err = %v, want %q", tt.enc, err, tt.want)
		}
	}
}

// TestScannersMatchRegex checks the hand-written scanners against splits
// that a backtracking regex engine produced (see testdata/).
func TestScannersMatchRegex(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "pretokenize_cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []map[string]any
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	scanners := map[string]matcher{"gpt2": gpt2Scanner{}, "llama3": llama3Scanner{maxDigits: 3, contract: caseFold}, "qwen2": llama3Scanner{maxDigits: 1, contract: caseFold}}
	if len(cases) < 300 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		text := c["text"].(string)
		for name, m := range scanners {
			want := []string{}
			for _, p := range c[name].([]any) {
				want = append(want, p.(string))
			}
			got := []string{}
			findAll(m, text, func(s, e int) { got = append(got, text[s:e]) })
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s(%q) = %q, want %q", name, text, got, want)
			}
		}
	}
}

func TestSplitBehaviors(t *testing.T) {
	dash := literalMatcher("-")
	tests := []struct {
		name string
		pre  preTokenizer
		text string
		want []string
	}{
		{"isolated", splitPre{m: dash, behavior: splitIsolated}, "a-b--c", []string{"a", "-", "b", "-", "-", "c"}},
		{"removed", splitPre{m: dash, behavior: splitRemoved}, "a-b--c", []string{"a", "b", "c"}},
		{"removed inverted", splitPre{m: dash, behavior: splitRemoved, invert: true}, "a-b--c", []string{"-", "-", "-"}},
		{"merged with previous", splitPre{m: dash, behavior: splitMergedWithPrevious}, "a-b--c", []string{"a-", "b-", "-", "c"}},
		{"merged with next", splitPre{m: dash, behavior: splitMergedWithNext}, "a-b--c", []string{"a", "-b", "-", "-c"}},
		{"contiguous", splitPre{m: dash, behavior: splitContiguous}, "a-b--c", []string{"a", "-", "b", "--", "c"}},
		{"digits", splitPre{m: digitsMatcher{individual: true}, behavior: splitIsolated}, "ab12c345", []string{"ab", "1", "2", "c", "3", "4", "5"}},
		{"digit runs", splitPre{m: digitsMatcher{}, behavior: splitIsolated}, "ab12c345", []string{"ab", "12", "c", "345"}},
		{"prefix space", byteLevelPre{addPrefixSpace: true, useRegex: true}, "hi there", []string{" hi", " there"}},
		{"no regex", byteLevelPre{}, "hi there", []string{"hi there"}},
		{"sequence", sequencePre{splitPre{m: dash, behavior: splitRemoved}, byteLevelPre{useRegex: true}}, "a b-c", []string{"a", " b", "c"}},
	}
	for _, tt := range tests {
		got := []string{}
		tt.pre.split(tt.text, func(s string) { got = append(got, s) })
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %q split into %q, want %q", tt.name, tt.text, got, tt.want)
		}
	}
}

// smallHFJSON builds a tokenizer.json with the full byte alphabet (ids
// 0..255 in byte order), a few merges and Llama-3-style configuration.
func smallHFJSON(t testing.TB, edit func(f map[string]any)) []byte {
	t.Helper()
	vocab := map[string]int{}
	for b := 0; b < 256; b++ {
		vocab[string(byteToRune[b])] = b
	}
	for i, s := range []string{"he", "ll", "hell", "hello", "34", "Ġw"} {
		vocab[s] = 256 + i
	}
	f := map[string]any{
		"added_tokens": []any{
			map[string]any{"id": 262, "content": "<|begin_of_text|>", "special": true},
			map[string]any{"id": 263, "content": "<|eot_id|>", "special": true},
			map[string]any{"id": 264, "content": "<tool>", "special": false},
			map[string]any{"id": 265, "content": "<|eot_id|>x", "special": true},
		},
		"normalizer": nil,
		"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": Llama3Pattern}, "behavior": "Isolated", "invert": false},
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": false},
		}},
		"post_processor": map[string]any{"type": "Sequence", "processors": []any{
			map[string]any{"type": "ByteLevel"},
			map[string]any{"type": "TemplateProcessing",
				"single": []any{
					map[string]any{"SpecialToken": map[string]any{"id": "<|begin_of_text|>", "type_id": 0}},
					map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}},
				},
				"special_tokens": map[string]any{"<|begin_of_text|>": map[string]any{"id": "<|begin_of_text|>", "ids": []int{262}}},
			},
		}},
		"decoder": map[string]any{"type": "ByteLevel"},
		"model": map[string]any{
			"type": "BPE", "ignore_merges": true, "byte_fallback": false, "vocab": vocab,
			"merges": []any{[]string{"h", "e"}, []string{"l", "l"}, "he ll", []string{"3", "4"}, "Ġ w"},
		},
	}
	if edit != nil {
		edit(f)
	}
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func model(f map[string]any) map[string]any { return f["model"].(map[string]any) }

func setPreTokenizer(regex string) func(map[string]any) {
	return func(f map[string]any) {
		f["pre_tokenizer"].(map[string]any)["pretokenizers"].([]any)[0].(map[string]any)["pattern"] = map[string]any{"Regex": regex}
	}
}

func TestSmallHFTokenizer(t *testing.T) {
	parse := func(edit func(map[string]any)) *ByteLevelBPE {
		tok, err := ParseHFTokenizer(smallHFJSON(t, edit), "small")
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	llama := parse(nil)
	merging := parse(func(f map[string]any) { model(f)["ignore_merges"] = false })
	qwen := parse(setPreTokenizer(Qwen2Pattern))
	gpt2 := parse(setPreTokenizer(GPT2Pattern))
	goRegex := parse(setPreTokenizer(`\p{L}+|\d{2}|.`))
	b := func(c byte) int32 { return int32(c) } // single-byte ids are the byte values
	tests := []struct {
		name string
		tok  *ByteLevelBPE
		text string
		bos  bool
		want []int32
	}{
		{"BOS from template, ignore_merges", llama, "hello", true, []int32{262, 259}},
		{"merges when not ignored", merging, "hello", false, []int32{258, b('o')}},
		{"added tokens split, longest first", llama, "hello<|eot_id|>x<|eot_id|>", false, []int32{259, 265, 263}},
		{"non-special added token", llama, "a<tool>b", false, []int32{b('a'), 264, b('b')}},
		{"space prefixes a word", llama, " w", false, []int32{261}},
		{"llama3 numbers in threes", llama, "12345", false, []int32{b('1'), b('2'), b('3'), b('4'), b('5')}},
		{"qwen2 single digits", qwen, "345", false, []int32{b('3'), b('4'), b('5')}},
		{"gpt2 digit runs", gpt2, "12345", false, []int32{b('1'), b('2'), 260, b('5')}},
		{"go regexp fallback", goRegex, "1234", false, []int32{b('1'), b('2'), 260}},
	}
	for _, tt := range tests {
		if got := tt.tok.Encode(tt.text, tt.bos); !equalIDs(got, tt.want) {
			t.Errorf("%s: Encode(%q) = %v, want %v", tt.name, tt.text, got, tt.want)
		}
	}
	if got := llama.Decode([]int32{262, 259, 264, 263, 261}); got != "hello<tool> w" {
		t.Errorf("Decode = %q, want special tokens skipped", got)
	}
	if llama.BOS() != 262 || llama.EOS() != -1 || llama.VocabSize() != 266 {
		t.Errorf("BOS %d EOS %d size %d", llama.BOS(), llama.EOS(), llama.VocabSize())
	}
	if id, ok := llama.TokenID("<tool>"); !ok || id != 264 {
		t.Errorf("TokenID(<tool>) = %d, %v", id, ok)
	}
}

func TestParseHFTokenizerErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(map[string]any)
		want string
	}{
		{"model type", func(f map[string]any) { model(f)["type"] = "WordPiece" }, `model type "WordPiece"`},
		{"no vocab", func(f map[string]any) { delete(model(f), "vocab") }, "no vocab"},
		{"byte fallback", func(f map[string]any) { model(f)["byte_fallback"] = true }, "byte_fallback"},
		{"suffix", func(f map[string]any) { model(f)["end_of_word_suffix"] = "</w>" }, "end_of_word_suffix"},
		{"merge not in vocab", func(f map[string]any) { model(f)["merges"] = []any{"q z"} }, `"q" + "z": token not in vocab`},
		{"merge shape", func(f map[string]any) { model(f)["merges"] = []any{"abc"} }, "not two space-separated"},
		{"merge pair shape", func(f map[string]any) { model(f)["merges"] = []any{[]string{"a"}} }, "1 parts"},
		{"negative id", func(f map[string]any) { model(f)["vocab"] = map[string]int{"a": -1} }, "out of range"},
		{"sparse ids", func(f map[string]any) { model(f)["vocab"] = map[string]int{"a": 1 << 23} }, "far beyond"},
		{"empty added", func(f map[string]any) {
			f["added_tokens"] = []any{map[string]any{"id": 1, "content": ""}}
		}, "empty"},
		{"normalizer", func(f map[string]any) { f["normalizer"] = map[string]any{"type": "NFKC"} }, `normalizer: type "NFKC"`},
		{"decoder", func(f map[string]any) { f["decoder"] = map[string]any{"type": "Metaspace"} }, `decoder: type "Metaspace"`},
		{"metaspace", func(f map[string]any) { f["pre_tokenizer"] = map[string]any{"type": "Metaspace"} }, `type "Metaspace" is not supported`},
		{"no byte level", func(f map[string]any) { f["pre_tokenizer"] = nil }, "no ByteLevel"},
		{"byte level not last", func(f map[string]any) {
			p := f["pre_tokenizer"].(map[string]any)
			steps := p["pretokenizers"].([]any)
			p["pretokenizers"] = []any{steps[1], steps[0]}
		}, "must come last"},
		{"behavior", func(f map[string]any) {
			f["pre_tokenizer"].(map[string]any)["pretokenizers"].([]any)[0].(map[string]any)["behavior"] = "Sideways"
		}, `behavior "Sideways"`},
		{"lookahead regex", setPreTokenizer(`a(?=b)`), "cannot compile"},
		{"template token", func(f map[string]any) {
			f["post_processor"] = map[string]any{"type": "TemplateProcessing", "single": []any{
				map[string]any{"SpecialToken": map[string]any{"id": "<nope>"}}}}
		}, `"<nope>"`},
	}
	for _, tt := range tests {
		_, err := ParseHFTokenizer(smallHFJSON(t, tt.edit), "bad.json")
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "bad.json") {
			t.Errorf("%s: err = %v, want it to name the file and mention %q", tt.name, err, tt.want)
		}
	}
	if _, err := ParseHFTokenizer([]byte("{"), "x.json"); err == nil {
		t.Error("truncated JSON parsed")
	}
}
