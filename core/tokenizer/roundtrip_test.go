package tokenizer

import (
	"math/rand"
	"strings"
	"testing"
	"time"
)

// randomText draws strings mixing ASCII words, runs of assorted
// whitespace, punctuation and multi-byte runes up to 4 bytes long.
func randomText(rng *rand.Rand) string {
	pieces := []string{
		"a", "the", "Once", "upon", "I'm", "you'll", "42", "2024", "x7",
		" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "\u00a0", "\u3000",
		".", ",", "!", "?", "'", "\"", "--", "<", ">", "<s>", "</s>", "{", "}",
		"é", "ß", "ñ", "Ω", "日本", "語", "٣", "½", "€", "—",
		"😀", "🦙", "𝄞", "👩‍👩‍👧", "\U0010FFFD",
	}
	var b strings.Builder
	for n := rng.Intn(24); n > 0; n-- {
		b.WriteString(pieces[rng.Intn(len(pieces))])
	}
	return b.String()
}

func TestRoundTripProperty(t *testing.T) {
	toks := map[string]Tokenizer{"tok512": loadTok512(t), "gpt2": loadGPT2(t)}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 2000; i++ {
		text := randomText(rng)
		for name, tok := range toks {
			if name == "tok512" && (strings.Contains(text, "<s>") || strings.Contains(text, "</s>")) {
				continue // control tokens decode to nothing
			}
			ids := tok.Encode(text, true)
			if got := tok.Decode(ids); got != text {
				t.Fatalf("%s: Decode(Encode(%q)) = %q (ids %v)", name, text, got, ids)
			}
			if got := streamAll(tok, ids); got != text {
				t.Fatalf("%s: streamed decode of %q = %q", name, text, got)
			}
		}
	}
}

func TestStreamDecoder(t *testing.T) {
	sp := loadTok512(t)
	// "😀" (F0 9F 98 80) is four byte-fallback tokens: text appears only
	// when the last one arrives.
	ids := sp.Encode("a😀", true)
	d := NewStreamDecoder(sp)
	var got []string
	for _, id := range ids {
		got = append(got, d.Push(id))
	}
	want := []string{"", "a", "", "", "", "😀"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("pushes of %v gave %q, want %q", ids, got, want)
	}
	if rest := d.Flush(); rest != "" {
		t.Errorf("Flush = %q", rest)
	}
	// An incomplete sequence is flushed as it is, and Flush restarts the
	// leading-space rule.
	d.Push(3 + 0xe6) // <0xE6>, the first byte of "日"
	if rest := d.Flush(); rest != "\xe6" {
		t.Errorf("Flush of a partial rune = %q", rest)
	}
	if got := d.Push(403); got != "Once" {
		t.Errorf("first piece after Flush = %q, want the space prefix dropped", got)
	}
	if got := d.Push(403); got != " Once" {
		t.Errorf("second piece = %q", got)
	}
	// Bytes that can never become valid UTF-8 are not held back.
	g := NewStreamDecoder(loadGPT2(t))
	for _, id := range loadGPT2(t).Encode("\xff\x80", false) {
		if out := g.Push(id); out == "" {
			t.Errorf("invalid byte token %d was held back", id)
		}
	}
}

func TestCompleteLen(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"", 0}, {"abc", 3}, {"a\xc3", 1}, {"a\xc3\xa9", 3}, {"\xe6\x97", 0},
		{"\xf0\x9f\x98", 0}, {"\xf0\x9f\x98\x80", 4}, {"\xff", 1}, {"a\x80", 2}, {"\xc3\x41", 2},
	}
	for _, tt := range tests {
		if got := completeLen([]byte(tt.in)); got != tt.want {
			t.Errorf("completeLen(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// TestEncodeSpeed pins the performance requirement: a megabyte of text in
// well under a second with the GPT-2 vocabulary. It takes the best of three
// runs, each with a fresh tokenizer (so a cold cache), to ride out a busy
// machine.
func TestEncodeSpeed(t *testing.T) {
	if testing.Short() {
		t.Skip("slow in -short mode")
	}
	text := string(readRepo(t, "testdata", "tinyshakespeare.txt"))[:1<<20]
	limit := time.Second
	if raceEnabled || isWasm {
		limit = 10 * time.Second // instrumented or interpreted builds are slower
	}
	fresh := map[string]func() Tokenizer{
		"gpt2":   func() Tokenizer { return loadGPT2(t) },
		"tok512": func() Tokenizer { return loadTok512(t) },
	}
	for name, load := range fresh {
		best := time.Duration(1<<63 - 1)
		var ids []int32
		var tok Tokenizer
		for range 3 {
			tok = load()
			start := time.Now()
			ids = tok.Encode(text, false)
			best = min(best, time.Since(start))
		}
		t.Logf("%s: %d bytes -> %d tokens in %v", name, len(text), len(ids), best)
		if best > limit {
			t.Errorf("%s: encoding 1 MB took %v, want under %v", name, best, limit)
		}
		if tok.Decode(ids) != text {
			t.Errorf("%s: 1 MB round trip failed", name)
		}
	}
}

func BenchmarkGPT2Encode(b *testing.B) {
	text := string(readRepo(b, "testdata", "tinyshakespeare.txt"))
	tok := loadGPT2(b)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tok.Encode(text, false)
	}
}

// TestConcurrentEncode shares one tokenizer (and its cache) between
// goroutines; run with -race to check the locking.
func TestConcurrentEncode(t *testing.T) {
	tok := loadGPT2(t)
	want := tok.Encode("Hello world, hello again", false)
	done := make(chan []int32)
	for range 8 {
		go func() { done <- tok.Encode("Hello world, hello again", false) }()
	}
	for range 8 {
		if got := <-done; !equalIDs(got, want) {
			t.Errorf("concurrent Encode = %v, want %v", got, want)
		}
	}
}
