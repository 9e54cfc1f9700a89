package tokenizer

import (
	"slices"
	"strings"
	"testing"
)

// tinyGGUF is a byte-level vocabulary: the 256 byte tokens (id = byte),
// the merges "Ġ t", "Ġt h" and "Ġth e" (ids 256-258), and then extra
// tokens of the given types.
func tinyGGUF(extra map[string]int32) GGUFBPEConfig {
	c := GGUFBPEConfig{Merges: []string{"Ġ t", "Ġt h", "Ġth e"}, IDs: map[string]uint32{}}
	for b := range 256 {
		c.Tokens = append(c.Tokens, string(byteToRune[b]))
		c.Types = append(c.Types, TokenTypeNormal)
	}
	c.Tokens = append(c.Tokens, "Ġt", "Ġth", "Ġthe")
	c.Types = append(c.Types, TokenTypeNormal, TokenTypeNormal, TokenTypeNormal)
	names := make([]string, 0, len(extra))
	for s := range extra {
		names = append(names, s)
	}
	slices.Sort(names) // stable ids
	for _, s := range names {
		c.Tokens = append(c.Tokens, s)
		c.Types = append(c.Types, extra[s])
	}
	return c
}

func mustGGUF(t *testing.T, c GGUFBPEConfig) *ByteLevelBPE {
	t.Helper()
	tok, err := NewGGUFBPE(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestGGUFBPERejectsBadInput(t *testing.T) {
	good := tinyGGUF(nil)
	tests := []struct {
		name string
		edit func(c *GGUFBPEConfig)
		want string
	}{
		{"unknown pre", func(c *GGUFBPEConfig) { c.Pre = "tekken" }, `tokenizer.ggml.pre "tekken" is not supported (supported: default, gpt-2, `},
		{"no tokens", func(c *GGUFBPEConfig) { c.Tokens, c.Types = nil, nil }, "tokenizer.ggml.tokens is empty"},
		{"short types", func(c *GGUFBPEConfig) { c.Types = c.Types[:10] }, "token_type has 10 entries for 259 tokens"},
		{"duplicate", func(c *GGUFBPEConfig) { c.Tokens = append(slices.Clone(c.Tokens), "Ġt"); c.Types = append(c.Types, 1) }, `"Ġt" is both token 256 and token 259`},
		{"merge without space", func(c *GGUFBPEConfig) { c.Merges = []string{"Ġt"} }, `merges[0] = "Ġt" is not two tokens`},
		{"merge of unknown", func(c *GGUFBPEConfig) { c.Merges = []string{"Ġ x"} }, `merges[0] = "Ġ x": "Ġ", "x" or "Ġx" is not a token`},
	}
	for _, tt := range tests {
		c := good
		tt.edit(&c)
		if _, err := NewGGUFBPE(c); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
	for _, name := range []string{"llama-bpe", "qwen2", "smollm", "gpt-2", "default"} {
		if !slices.Contains(GGMLPreTokenizers(), name) {
			t.Errorf("GGMLPreTokenizers() lacks %q", name)
		}
	}
}

// TestGGUFBPEDefaults follows llama.cpp where metadata is absent: pre
// "default", BOS and EOS 11, BOS added only by Llama 3's pre-tokenizer
// unless tokenizer.ggml.add_bos_token says otherwise.
func TestGGUFBPEDefaults(t *testing.T) {
	f := false
	tr := true
	tests := []struct {
		pre      string
		addBOS   *bool
		ids      map[string]uint32
		wantBOS  int32
		wantAdds bool
	}{
		{"", nil, nil, 11, false},
		{"gpt-2", nil, map[string]uint32{"bos": 3}, 3, false},
		{"gpt-2", &tr, map[string]uint32{"bos": 3}, 3, true},
		{"llama-bpe", nil, map[string]uint32{"bos": 3}, 3, true},
		{"llama-bpe", &f, map[string]uint32{"bos": 3}, 3, false},
		{"qwen2", nil, map[string]uint32{"bos": 1 << 20}, 11, false}, // out of range: the default stays
	}
	for _, tt := range tests {
		c := tinyGGUF(nil)
		c.Pre, c.AddBOS, c.IDs = tt.pre, tt.addBOS, tt.ids
		tok := mustGGUF(t, c)
		ids := tok.Encode("the", true)
		if tok.BOS() != tt.wantBOS || tok.EOS() != 11 || tok.AddsBOS() != tt.wantAdds || (len(ids) > 0 && ids[0] == tok.BOS()) != tt.wantAdds {
			t.Errorf("pre %q add_bos %v ids %v: BOS %d EOS %d AddsBOS %v, Encode = %v", tt.pre, tt.addBOS, tt.ids, tok.BOS(), tok.EOS(), tok.AddsBOS(), ids)
		}
	}
}

// TestGGUFBPESpecials: control, user-defined and unknown tokens are cut out
// of the text whole, longest first as llama.cpp does; control tokens
// decode to nothing, user-defined ones to their text.
func TestGGUFBPESpecials(t *testing.T) {
	tok := mustGGUF(t, tinyGGUF(map[string]int32{
		"<a>": TokenTypeControl, "<ab>": TokenTypeUserDefined, "b><c>": TokenTypeUserDefined, "<u>": TokenTypeUnknown, "<n>": TokenTypeNormal,
	}))
	id := func(s string) int32 { i, _ := tok.TokenID(s); return i }
	tests := []struct {
		text string
		want []int32
	}{
		{"<a>the<a>", []int32{id("<a>"), 't', 'h', 'e', id("<a>")}},
		{"x the<u>", []int32{'x', 258, id("<u>")}},
		// "b><c>" is longer than "<ab>", so llama.cpp cuts it first.
		{"<ab><c>", []int32{'<', 'a', id("b><c>")}},
		{"<ab>x", []int32{id("<ab>"), 'x'}},
		// A normal token is never cut out of text.
		{"<n>", []int32{'<', 'n', '>'}},
	}
	for _, tt := range tests {
		if got := tok.Encode(tt.text, false); !slices.Equal(got, tt.want) {
			t.Errorf("Encode(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
	if got := tok.Decode(tok.Encode("<a>x<ab>", false)); got != "x<ab>" {
		t.Errorf("Decode = %q, want the control token dropped and the user-defined one kept", got)
	}
	if tok.TokenType(id("<a>")) != TokenTypeControl || tok.TokenType(-1) != TokenTypeUndefined {
		t.Errorf("TokenType: %d %d", tok.TokenType(id("<a>")), tok.TokenType(-1))
	}
}

// TestGGUFBPEInvalidUTF8: llama.cpp reads each byte that is not valid
// UTF-8 as U+FFFD.
func TestGGUFBPEInvalidUTF8(t *testing.T) {
	tok := mustGGUF(t, tinyGGUF(nil))
	for bad, good := range map[string]string{
		"a\xffb":        "a\uFFFDb",
		"\xe2\x82":      "\uFFFD\uFFFD", // truncated: one U+FFFD per byte
		"\xf0\x9f\x98a": "\uFFFD\uFFFD\uFFFDa",
	} {
		if got, want := tok.Encode(bad, false), tok.Encode(good, false); !slices.Equal(got, want) {
			t.Errorf("Encode(%q) = %v, want %v", bad, got, want)
		}
	}
	if got, want := validUTF8("a\xe2\x82b\xff"), "a\uFFFD\uFFFDb\uFFFD"; got != want {
		t.Errorf("validUTF8 = %q, want %q", got, want)
	}
}

// TestGGMLContractionCase: llama.cpp compares a contraction's letter by its
// lowercase mapping, so "'ſ" (long s) is no contraction there, while
// Hugging Face's (?i) folds it to "'s".
func TestGGMLContractionCase(t *testing.T) {
	split := func(m matcher, s string) []string {
		var out []string
		findAll(m, s, func(a, b int) { out = append(out, s[a:b]) })
		return out
	}
	const s = "x'ſt X'S"
	if got, want := split(llama3Scanner{maxDigits: 3, contract: caseLower}, s), []string{"x", "'ſt", " X", "'S"}; !slices.Equal(got, want) {
		t.Errorf("llama.cpp split %q = %q, want %q", s, got, want)
	}
	if got, want := split(llama3Scanner{maxDigits: 3, contract: caseFold}, s), []string{"x", "'ſ", "t", " X", "'S"}; !slices.Equal(got, want) {
		t.Errorf("regex split %q = %q, want %q", s, got, want)
	}
}

func TestResolveSpecials(t *testing.T) {
	lookupIn := func(tokens ...string) func(string) (int32, bool) {
		return func(s string) (int32, bool) {
			i := slices.Index(tokens, s)
			return int32(i), i >= 0
		}
	}
	// Names end generation and become control tokens; the file's EOT wins
	// over names; FIM pad ends generation too.
	types := []int32{1, 1, 1, 1, 1}
	roles := noRoles()
	roles[roleEOT] = 3
	sp := resolveSpecials(roles, 0, lookupIn("</s>", "<|im_end|>", "<|fim_pad|>", "x", "<|channel|>"), types)
	if sp.eot != 3 || !slices.Equal(sp.eog, []int32{0, 1, 2, 3}) || !slices.Equal(types, []int32{3, 3, 3, 1, 4}) {
		t.Errorf("eot %d eog %v types %v", sp.eot, sp.eog, types)
	}
	// gpt-oss: <|end|> does not end generation beside <|return|> and <|call|>.
	sp = resolveSpecials(noRoles(), -1, lookupIn("<|end|>", "<|return|>", "<|call|>"), nil)
	if !slices.Equal(sp.eog, []int32{1, 2}) || sp.eot != 0 {
		t.Errorf("gpt-oss: eot %d eog %v", sp.eot, sp.eog)
	}
	// Gemma 4: </s> does not either, beside <|tool_response>.
	sp = resolveSpecials(noRoles(), 0, lookupIn("</s>", "<|tool_response>"), nil)
	if !slices.Equal(sp.eog, []int32{1}) {
		t.Errorf("gemma 4: eog %v", sp.eog)
	}
}
