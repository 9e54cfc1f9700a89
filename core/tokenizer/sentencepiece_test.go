package tokenizer

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// The expected ids were computed independently by a naive reference (the
// O(n²) loop of llama2.c's encode: merge the best-scoring adjacent pair,
// leftmost on ties, then fall back to bytes) over the same tok512.bin.
func TestLlama2CEncode(t *testing.T) {
	sp := loadTok512(t)
	tests := []struct {
		text string
		want []int32
	}{
		{"Once upon a time", []int32{403, 407, 261, 378}},
		{"Hello world", []int32{346, 306, 414, 263, 304, 341}},
		{"Lily was happy.", []int32{317, 286, 393, 426}},
		// é, 日本 and the emoji are not in the 512-piece vocabulary: bytes.
		{"café 日本 😀", []int32{280, 412, 431, 485, 410, 233, 154, 168, 233, 159, 175, 410, 243, 162, 155, 131}},
		{"  two  spaces  ", []int32{410, 410, 259, 424, 414, 410, 262, 427, 412, 331, 419, 410, 410}},
		{"line1\nline2\n", []int32{278, 271, 411, 475, 13, 421, 271, 411, 479, 13}},
		{" ", []int32{410, 410}},
		{"", nil},
	}
	for _, tt := range tests {
		got := sp.Encode(tt.text, false)
		if !equalIDs(got, tt.want) {
			t.Errorf("Encode(%q) = %v, want %v", tt.text, got, tt.want)
		}
		withBOS := sp.Encode(tt.text, true)
		if len(withBOS) != len(tt.want)+1 || withBOS[0] != 1 || !equalIDs(withBOS[1:], tt.want) {
			t.Errorf("Encode(%q, addBOS) = %v, want 1 then %v", tt.text, withBOS, tt.want)
		}
		if got := sp.Decode(withBOS); got != tt.text {
			t.Errorf("Decode(Encode(%q)) = %q", tt.text, got)
		}
	}
}

func TestLlama2CVocabulary(t *testing.T) {
	sp := loadTok512(t)
	checks := []struct {
		id   int32
		str  string
		typ  int32
		text string
	}{
		{0, "<unk>", TokenTypeUnknown, unknownSurface},
		{1, "<s>", TokenTypeControl, ""},
		{2, "</s>", TokenTypeControl, ""},
		{3, "<0x00>", TokenTypeByte, "\x00"},
		{13, "<0x0A>", TokenTypeByte, "\n"},
		{258, "<0xFF>", TokenTypeByte, "\xff"},
		{259, "▁t", TokenTypeNormal, " t"},
		{403, "▁Once", TokenTypeNormal, " Once"},
		{410, "▁", TokenTypeNormal, " "},
	}
	for _, c := range checks {
		if got := sp.TokenString(c.id); got != c.str {
			t.Errorf("TokenString(%d) = %q, want %q", c.id, got, c.str)
		}
		if got := sp.TokenType(c.id); got != c.typ {
			t.Errorf("TokenType(%d) = %d, want %d", c.id, got, c.typ)
		}
		if got := string(sp.TokenBytes(c.id)); got != c.text {
			t.Errorf("TokenBytes(%d) = %q, want %q", c.id, got, c.text)
		}
	}
	if sp.VocabSize() != 512 || sp.BOS() != 1 || sp.EOS() != 2 || sp.UNK() != 0 || sp.Kind() != KindSentencePiece || !sp.AddSpacePrefix() {
		t.Errorf("metadata: size %d BOS %d EOS %d UNK %d kind %q", sp.VocabSize(), sp.BOS(), sp.EOS(), sp.UNK(), sp.Kind())
	}
	if sp.TokenBytes(1) != nil || sp.TokenBytes(-1) != nil || sp.TokenBytes(512) != nil || sp.TokenString(512) != "" {
		t.Error("control or out-of-range ids must give nil bytes and empty strings")
	}
	if sp.Score(260) != -1 || sp.Score(9999) != 0 {
		t.Errorf("Score(260) = %v", sp.Score(260))
	}
	// Every id decodes, and every normal piece encodes back to itself.
	for id := int32(0); id < 512; id++ {
		if sp.TokenType(id) != TokenTypeNormal {
			continue
		}
		text := string(sp.TokenBytes(id))
		ids := sp.Encode(strings.TrimPrefix(text, " "), false)
		if got := sp.Decode(ids); got != strings.TrimPrefix(text, " ") {
			t.Errorf("id %d: Decode(Encode(%q)) = %q", id, text, got)
		}
	}
}

// A control token spelled out in the text is that token, as llama.cpp
// (parse_special) and transformers read it; text around it gets the space
// prefix again. Merges never produce a control token: "</" + "s>" is text.
func TestSentencePieceControlTextIsControl(t *testing.T) {
	sp := loadTok512(t)
	if got, want := sp.Encode("</s><s>", false), []int32{2, 1}; !equalIDs(got, want) {
		t.Errorf("Encode(\"</s><s>\") = %v, want %v", got, want)
	}
	if got, want := sp.Encode("a</s>a", false), append(append(sp.Encode("a", false), 2), sp.Encode("a", false)...); !equalIDs(got, want) {
		t.Errorf("Encode(\"a</s>a\") = %v, want %v", got, want)
	}
	for _, id := range sp.Encode("</ s>< s>", false) {
		if sp.TokenType(id) == TokenTypeControl {
			t.Fatalf("Encode(\"</ s>< s>\") produced control token %d", id)
		}
	}
}

// tinyVocab is a hand-made vocabulary for pinning merge order rules.
func tinyVocab(t *testing.T, mutate func(*SentencePieceConfig)) *SentencePiece {
	t.Helper()
	c := SentencePieceConfig{
		Tokens: []string{"<unk>", "<s>", "</s>", "▁", "a", "b", "aa", "ab", "▁a", "<tag>", "x"},
		Scores: []float32{0, 0, 0, -1, -1, -1, -2, -3, -4, 0, -1},
		Types:  []int32{2, 3, 3, 1, 1, 1, 1, 1, 1, 4, 1},
		BOS:    1, EOS: 2, UNK: 0,
		AddSpacePrefix: true,
	}
	if mutate != nil {
		mutate(&c)
	}
	sp, err := NewSentencePiece(c)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func TestSentencePieceMergeRules(t *testing.T) {
	sp := tinyVocab(t, nil)
	noPrefix := tinyVocab(t, func(c *SentencePieceConfig) { c.AddSpacePrefix = false })
	tests := []struct {
		name string
		sp   *SentencePiece
		text string
		want []int32
	}{
		// "aa" (-2) beats "ab" (-3) beats "▁a" (-4).
		{"score order", noPrefix, "aab", []int32{6, 5}},
		{"ties go leftmost", noPrefix, "aaa", []int32{6, 4}},
		{"space prefix merges last", sp, "ab", []int32{3, 7}},
		{"user-defined token is literal", noPrefix, "a<tag>b", []int32{4, 9, 5}},
		// As in llama.cpp, the space prefix starts every stretch of text
		// that starts the text or follows a special token.
		{"prefix after a leading user-defined token", sp, "<tag>a", []int32{9, 8}},
		{"prefix after every special token", sp, "a<tag>a", []int32{8, 9, 8}},
		// No byte tokens: unknown characters become UNK, one per byte.
		{"unknown without byte tokens", noPrefix, "aé", []int32{4, 0, 0}},
	}
	for _, tt := range tests {
		if got := tt.sp.Encode(tt.text, false); !equalIDs(got, tt.want) {
			t.Errorf("%s: Encode(%q) = %v, want %v", tt.name, tt.text, got, tt.want)
		}
	}
	// ... which shows in the decoded text, as with llama.cpp.
	if got := sp.Decode(sp.Encode("a<tag>a", true)); got != "a<tag> a" {
		t.Errorf("user-defined round trip = %q, want %q", got, "a<tag> a")
	}
	// Inferred types: BOS/EOS control, UNK unknown, the rest normal.
	inferred := tinyVocab(t, func(c *SentencePieceConfig) { c.Types = nil })
	if inferred.TokenType(1) != TokenTypeControl || inferred.TokenType(0) != TokenTypeUnknown || inferred.TokenType(9) != TokenTypeNormal {
		t.Error("types were not inferred from BOS/EOS/UNK")
	}
}

func TestSentencePieceInvalidUTF8(t *testing.T) {
	sp := loadTok512(t)
	text := "a\xffb\xe2\x96 \xc3"
	ids := sp.Encode(text, false)
	if got := sp.Decode(ids); got != text {
		t.Errorf("Decode(Encode(%q)) = %q", text, got)
	}
	hasByte := false
	for _, id := range ids {
		hasByte = hasByte || id == 3+0xff
	}
	if !hasByte {
		t.Errorf("Encode(%q) = %v lacks byte token <0xFF>", text, ids)
	}
}

func TestNewSentencePieceErrors(t *testing.T) {
	base := func() SentencePieceConfig {
		return SentencePieceConfig{
			Tokens: []string{"<unk>", "<s>", "a"},
			Scores: []float32{0, 0, 0},
			BOS:    1, EOS: -1, UNK: 0,
		}
	}
	tests := []struct {
		name   string
		mutate func(*SentencePieceConfig)
		want   string
	}{
		{"empty", func(c *SentencePieceConfig) { c.Tokens, c.Scores = nil, nil }, "empty vocabulary"},
		{"scores", func(c *SentencePieceConfig) { c.Scores = c.Scores[:2] }, "2 scores for 3 tokens"},
		{"types", func(c *SentencePieceConfig) { c.Types = []int32{1} }, "1 token types"},
		{"bos", func(c *SentencePieceConfig) { c.BOS = 3 }, "BOS id 3 out of range"},
		{"unk", func(c *SentencePieceConfig) { c.UNK = -2 }, "UNK id -2"},
		{"bad type", func(c *SentencePieceConfig) { c.Types = []int32{2, 3, 9} }, "unknown token type 9"},
		{"bad byte", func(c *SentencePieceConfig) { c.Types = []int32{2, 3, 6} }, "not spelled <0xXX>"},
		{"no fallback", func(c *SentencePieceConfig) { c.UNK = -1 }, "no byte-fallback token <0x00>"},
	}
	for _, tt := range tests {
		c := base()
		tt.mutate(&c)
		_, err := NewSentencePiece(c)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tt.name, err, tt.want)
		}
	}
	if _, err := NewSentencePiece(base()); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func TestLoadLlama2CErrors(t *testing.T) {
	good := readRepo(t, "models", "stories260K", "tok512.bin")
	oneToken := func(n int32) []byte {
		b := binary.LittleEndian.AppendUint32(nil, 8)
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(0))
		return binary.LittleEndian.AppendUint32(b, uint32(n))
	}
	tests := []struct {
		name  string
		data  []byte
		vocab int
		want  string
	}{
		{"no header", good[:3], 512, "too short"},
		{"zero vocab", good, 0, "vocabulary size 0"},
		{"vocab too big for data", good, 1 << 30, "cannot fit"},
		{"truncated", good[:len(good)-3], 512, "exceeds"},
		{"trailing", append(append([]byte{}, good...), 0), 512, "trailing"},
		{"negative length", append(oneToken(-1), make([]byte, 32)...), 3, "length -1"},
		{"longer than max", append(oneToken(9), make([]byte, 32)...), 3, "max_token_length"},
		{"fewer tokens than asked", good, 513, "truncated"},
	}
	for _, tt := range tests {
		_, err := LoadLlama2C(tt.data, tt.vocab)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tt.name, err, tt.want)
		}
	}
}

// TestSentencePieceBOSAndStops: BOS is added unless the GGUF file says the
// model's tokenizer adds none; generation stops at EOS and at tokens such
// as <end_of_turn> that llama.cpp knows by name.
func TestSentencePieceBOSAndStops(t *testing.T) {
	c := SentencePieceConfig{
		Tokens: []string{"<unk>", "<s>", "</s>", "<end_of_turn>", "▁a", "a"},
		Scores: make([]float32, 6),
		Types:  []int32{TokenTypeUnknown, TokenTypeControl, TokenTypeControl, TokenTypeControl, TokenTypeNormal, TokenTypeNormal},
		BOS:    1, EOS: 2, UNK: 0, AddSpacePrefix: true,
	}
	sp, err := NewSentencePiece(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := sp.Encode("a", true); !equalIDs(got, []int32{1, 4}) || !AddsBOS(sp) {
		t.Errorf("Encode = %v, AddsBOS %v; want [1 4], true", got, AddsBOS(sp))
	}
	if got := EndOfGeneration(sp); !equalIDs(got, []int32{2, 3}) {
		t.Errorf("EndOfGeneration = %v, want [2 3]", got)
	}
	c.OmitBOS = true
	if sp, err = NewSentencePiece(c); err != nil {
		t.Fatal(err)
	}
	if got := sp.Encode("a", true); !equalIDs(got, []int32{4}) || AddsBOS(sp) {
		t.Errorf("OmitBOS: Encode = %v, AddsBOS %v; want [4], false", got, AddsBOS(sp))
	}
}

// TestSentencePieceWordByWord: merging word by word (with the word cache)
// gives the ids of merging each stretch whole, for a vocabulary whose
// pieces allow it; a vocabulary with '▁' after another character in a
// piece ("a▁") merges whole, and across words where that piece applies.
func TestSentencePieceWordByWord(t *testing.T) {
	split := loadTok512(t)
	whole := loadTok512(t)
	whole.splitWords = false
	if !split.splitWords {
		t.Fatal("tok512 has no piece with '▁' after another character, yet does not split words")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"Once", "upon", "a", "time", "Lily", "was", "happy", ".", ",", "the", "little", "girl", "  ", "\n", "!", "café", "日本", "▁", "▁▁x"}
	for i := range 300 {
		var b strings.Builder
		for range rng.IntN(30) {
			b.WriteString(words[rng.IntN(len(words))])
			if rng.IntN(3) > 0 {
				b.WriteByte(' ')
			}
		}
		text := b.String()
		want := whole.Encode(text, true)
		for pass := range 2 { // the second from the cache
			if got := split.Encode(text, true); !equalIDs(got, want) {
				t.Fatalf("text %d %q, pass %d: word by word %v, whole %v", i, text, pass, got, want)
			}
		}
	}

	joined := tinyVocab(t, func(c *SentencePieceConfig) {
		c.Tokens = append(c.Tokens, "a▁")
		c.Scores = append(c.Scores, 10)
		c.Types = append(c.Types, TokenTypeNormal)
	})
	if joined.splitWords {
		t.Fatal(`a vocabulary with "a▁" splits words`)
	}
	if got, want := joined.Encode("a a", false), []int32{3, 11, 4}; !equalIDs(got, want) {
		t.Fatalf(`Encode("a a") = %v, want %v ("▁", then "a▁" merged across the word start)`, got, want)
	}
}
