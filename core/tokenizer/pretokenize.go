package tokenizer

import (
	"regexp"
	"unicode"
	"unicode/utf8"
)

// preTokenizer splits a stretch of text into pre-tokens, the units BPE
// runs on, calling emit for each non-empty one in order. Pre-tokens are raw
// text; the byte-level mapping happens after pre-tokenization.
type preTokenizer interface {
	split(s string, emit func(string))
}

// byteLevelPre is HF's ByteLevel pre-tokenizer: an optional space prefix
// and, with useRegex, a split by GPT2Pattern.
type byteLevelPre struct {
	addPrefixSpace bool
	useRegex       bool
}

func (p byteLevelPre) split(s string, emit func(string)) {
	if p.addPrefixSpace && (s == "" || s[0] != ' ') {
		s = " " + s
	}
	if !p.useRegex {
		if s != "" {
			emit(s)
		}
		return
	}
	findAll(gpt2Scanner{}, s, func(start, end int) { emit(s[start:end]) })
}

// splitBehavior says what happens to the matches of a Split pre-tokenizer
// (HF's SplitDelimiterBehavior).
type splitBehavior uint8

const (
	splitIsolated           splitBehavior = iota // matches become pre-tokens of their own
	splitRemoved                                 // matches are dropped
	splitMergedWithPrevious                      // a match joins the text before it
	splitMergedWithNext                          // a match joins the text after it
	splitContiguous                              // adjacent matches join each other
)

var splitBehaviors = map[string]splitBehavior{
	"Isolated":           splitIsolated,
	"Removed":            splitRemoved,
	"MergedWithPrevious": splitMergedWithPrevious,
	"MergedWithNext":     splitMergedWithNext,
	"Contiguous":         splitContiguous,
}

// splitPre is HF's Split pre-tokenizer.
type splitPre struct {
	m        matcher
	behavior splitBehavior
	invert   bool // the text between matches is what the behavior applies to
}

func (p splitPre) split(s string, emit func(string)) {
	type segment struct {
		start, end int
		match      bool
	}
	var segs []segment
	last := 0
	findAll(p.m, s, func(start, end int) {
		if start == end {
			return // an empty match splits nothing off
		}
		if start > last {
			segs = append(segs, segment{last, start, p.invert})
		}
		segs = append(segs, segment{start, end, !p.invert})
		last = end
	})
	if last < len(s) {
		segs = append(segs, segment{last, len(s), p.invert})
	}
	// pend is a pre-token under construction: [pendStart, pendEnd).
	pendStart, pendEnd := -1, -1
	flush := func() {
		if pendStart >= 0 && pendEnd > pendStart {
			emit(s[pendStart:pendEnd])
		}
		pendStart, pendEnd = -1, -1
	}
	prevMatch := false
	for _, g := range segs {
		switch p.behavior {
		case splitIsolated:
			emit(s[g.start:g.end])
		case splitRemoved:
			if !g.match {
				emit(s[g.start:g.end])
			}
		case splitMergedWithPrevious:
			if g.match && pendStart >= 0 {
				pendEnd = g.end
				flush()
				continue
			}
			flush()
			pendStart, pendEnd = g.start, g.end
			if g.match {
				flush()
			}
		case splitMergedWithNext:
			if g.match {
				flush() // a match never joins a match before it
				pendStart, pendEnd = g.start, g.end
				break
			}
			if pendStart < 0 {
				pendStart = g.start
			}
			pendEnd = g.end
			flush()
		case splitContiguous:
			if !(g.match && prevMatch) {
				flush()
				pendStart = g.start
			}
			pendEnd = g.end
		}
		prevMatch = g.match
	}
	flush()
}

// regexpMatcher runs a pattern that Go's regexp can compile.
type regexpMatcher struct{ re *regexp.Regexp }

// matchAt is here to satisfy matcher; findAll uses findAllIndex instead,
// which searches once rather than at every position.
func (m regexpMatcher) matchAt(s string, i int) int {
	loc := m.re.FindStringIndex(s[i:])
	if loc == nil || loc[0] != 0 {
		return -1
	}
	return i + loc[1]
}

func (m regexpMatcher) findAllIndex(s string, f func(start, end int)) {
	for _, loc := range m.re.FindAllStringIndex(s, -1) {
		f(loc[0], loc[1])
	}
}

// literalMatcher matches a fixed string (Split's String pattern).
type literalMatcher string

func (m literalMatcher) matchAt(s string, i int) int {
	if len(m) > 0 && len(s)-i >= len(m) && s[i:i+len(m)] == string(m) {
		return i + len(m)
	}
	return -1
}

// digitsMatcher matches numeric characters: one at a time, or runs.
type digitsMatcher struct{ individual bool }

func (m digitsMatcher) matchAt(s string, i int) int {
	j := i
	for j < len(s) {
		r, w := utf8.DecodeRuneInString(s[j:])
		if !unicode.IsNumber(r) {
			break
		}
		j += w
		if m.individual {
			break
		}
	}
	if j == i {
		return -1
	}
	return j
}

// sequencePre applies pre-tokenizers in turn, each to the pre-tokens the
// previous one produced.
type sequencePre []preTokenizer

func (p sequencePre) split(s string, emit func(string)) { p.run(0, s, emit) }

func (p sequencePre) run(step int, s string, emit func(string)) {
	if step == len(p) {
		emit(s)
		return
	}
	p[step].split(s, func(piece string) { p.run(step+1, piece, emit) })
}
