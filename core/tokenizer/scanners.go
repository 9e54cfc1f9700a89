package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// The pre-tokenization regexes real byte-level models use contain the
// lookahead \s+(?!\S), which Go's regexp (RE2) lacks. The patterns below
// are recognized by their exact text and run as hand-written scanners that
// follow backtracking regex semantics: alternatives are tried left to
// right and the first that matches wins.
const (
	// GPT2Pattern is the pre-tokenizer of GPT-2 and HF's ByteLevel
	// pre-tokenizer with use_regex.
	GPT2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	// Llama3Pattern is Llama-3's Split pre-tokenizer regex.
	Llama3Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// Qwen2Pattern is Qwen2's, which differs from Llama-3's only in
	// splitting numbers into single digits.
	Qwen2Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// matcher finds pattern matches: matchAt returns the end of the match that
// starts at byte i of s, or -1 when none starts there.
type matcher interface {
	matchAt(s string, i int) int
}

// findAll calls f for every leftmost-first, non-overlapping match in s, as
// a regex engine's find-all does.
func findAll(m matcher, s string, f func(start, end int)) {
	if bulk, ok := m.(interface {
		findAllIndex(string, func(int, int))
	}); ok {
		bulk.findAllIndex(s, f)
		return
	}
	for i := 0; i < len(s); {
		if e := m.matchAt(s, i); e > i {
			f(i, e)
			i = e
			continue
		}
		_, w := utf8.DecodeRuneInString(s[i:])
		i += w
	}
}

type charClass uint8

const (
	classLetter charClass = iota // \p{L}
	classNumber                  // \p{N}
	classSpace                   // \s
	classOther                   // everything else, including invalid UTF-8
)

func classify(r rune) charClass {
	switch {
	case r < utf8.RuneSelf:
		// ASCII fast path: the common case by far.
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z':
			return classLetter
		case '0' <= r && r <= '9':
			return classNumber
		case r == ' ', '\t' <= r && r <= '\r':
			return classSpace
		}
		return classOther
	case unicode.IsLetter(r):
		return classLetter
	case unicode.IsNumber(r):
		return classNumber
	case unicode.IsSpace(r):
		return classSpace
	}
	return classOther
}

// runeAt decodes the rune at byte i; invalid bytes decode as one
// utf8.RuneError byte, which classifies as classOther.
func runeAt(s string, i int) (rune, int) {
	if i >= len(s) {
		return -1, 0
	}
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// classAt is the class of the rune at byte i, and whether there is one.
func classAt(s string, i int) (charClass, bool) {
	if i >= len(s) {
		return 0, false
	}
	r, _ := runeAt(s, i)
	return classify(r), true
}

// runEnd returns the end of the run of class c starting at byte i.
func runEnd(s string, i int, c charClass) int {
	for i < len(s) {
		r, w := runeAt(s, i)
		if classify(r) != c {
			break
		}
		i += w
	}
	return i
}

// spaceRunLookahead matches \s+(?!\S)|\s+ at i, which must start a
// whitespace run: the whole run when it ends the text, else the run minus
// its last character (left to prefix the next word) if that is non-empty.
func spaceRunLookahead(s string, i int) int {
	end := runEnd(s, i, classSpace)
	if end == len(s) {
		return end
	}
	_, w := utf8.DecodeLastRuneInString(s[:end])
	if end-w > i {
		return end - w
	}
	return end
}

// letterCase says how contraction compares the letters after the apostrophe.
type letterCase uint8

const (
	caseExact letterCase = iota // GPT-2's 's|'t|...: lowercase only
	// caseFold is (?i:...) in a backtracking regex engine: simple case
	// folding, so "'ſ" (long s) matches "'s" too.
	caseFold
	// caseLower is llama.cpp's reading of (?i:...): the letter's lowercase
	// mapping must be the ASCII letter, which leaves "'ſ" unmatched.
	caseLower
)

// contraction matches 's|'t|'re|'ve|'m|'ll|'d at i, where s[i] is an
// apostrophe, comparing letters as lc says.
func contraction(s string, i int, lc letterCase) int {
	same := func(r, want rune) bool {
		switch {
		case r == want:
			return true
		case lc == caseLower:
			return unicode.ToLower(r) == want
		case lc == caseFold:
			for f := unicode.SimpleFold(want); f != want; f = unicode.SimpleFold(f) {
				if f == r {
					return true
				}
			}
		}
		return false
	}
	j := i + 1
	r1, w1 := runeAt(s, j)
	for _, c := range []rune{'s', 't', 'm', 'd'} {
		if same(r1, c) {
			return j + w1
		}
	}
	r2, w2 := runeAt(s, j+w1)
	for _, c := range [][2]rune{{'r', 'e'}, {'v', 'e'}, {'l', 'l'}} {
		if same(r1, c[0]) && same(r2, c[1]) {
			return j + w1 + w2
		}
	}
	return -1
}

// gpt2Scanner implements GPT2Pattern.
type gpt2Scanner struct{}

func (gpt2Scanner) matchAt(s string, i int) int {
	r, w := runeAt(s, i)
	if r == '\'' {
		if e := contraction(s, i, caseExact); e > 0 {
			return e
		}
	}
	if r == ' ' {
		// ' ?\p{L}+', ' ?\p{N}+' and ' ?[^\s\p{L}\p{N}]+' with the space.
		if c, ok := classAt(s, i+1); ok && c != classSpace {
			return runEnd(s, i+1, c)
		}
	}
	if c := classify(r); c != classSpace {
		return runEnd(s, i+w, c)
	}
	return spaceRunLookahead(s, i)
}

// llama3Scanner implements Llama3Pattern (maxDigits 3) and Qwen2Pattern
// (maxDigits 1). Its zero letterCase is caseExact, which neither pattern
// uses: set caseFold (Hugging Face's regex) or caseLower (llama.cpp).
type llama3Scanner struct {
	maxDigits int
	contract  letterCase
}

func (m llama3Scanner) matchAt(s string, i int) int {
	r, w := runeAt(s, i)
	if r == '\'' {
		if e := contraction(s, i, m.contract); e > 0 {
			return e
		}
	}
	c := classify(r)
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if c == classLetter {
		return runEnd(s, i+w, classLetter)
	}
	if r != '\r' && r != '\n' && c != classNumber {
		if next, ok := classAt(s, i+w); ok && next == classLetter {
			return runEnd(s, i+w, classLetter)
		}
	}
	// \p{N}{1,maxDigits}
	if c == classNumber {
		j := i + w
		for n := 1; n < m.maxDigits; n++ {
			r2, w2 := runeAt(s, j)
			if w2 == 0 || classify(r2) != classNumber {
				break
			}
			j += w2
		}
		return j
	}
	// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
	start := -1
	if c == classOther {
		start = i
	} else if r == ' ' {
		if next, ok := classAt(s, i+1); ok && next == classOther {
			start = i + 1
		}
	}
	if start >= 0 {
		j := runEnd(s, start, classOther)
		for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
			j++
		}
		return j
	}
	// Only whitespace is left. '\s*[\r\n]+': backtracking makes \s* stop
	// at the run's last line break, which [\r\n]+ then takes.
	end := runEnd(s, i, classSpace)
	for j := end - 1; j >= i; j-- {
		if s[j] == '\r' || s[j] == '\n' {
			return j + 1
		}
	}
	return spaceRunLookahead(s, i)
}
