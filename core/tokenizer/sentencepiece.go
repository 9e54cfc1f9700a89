package tokenizer

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Token types as ggml stores them in tokenizer.ggml.token_type.
const (
	TokenTypeUndefined   int32 = 0
	TokenTypeNormal      int32 = 1
	TokenTypeUnknown     int32 = 2
	TokenTypeControl     int32 = 3
	TokenTypeUserDefined int32 = 4
	TokenTypeUnused      int32 = 5
	TokenTypeByte        int32 = 6
)

// spaceMarker is SentencePiece's stand-in for ' ' inside pieces (U+2581).
const spaceMarker = "▁"

// unknownSurface is what SentencePiece prints for the unknown token.
const unknownSurface = " \u2047 "

// SentencePieceConfig describes a SentencePiece-style BPE vocabulary, as
// GGUF stores it under tokenizer.ggml.*.
type SentencePieceConfig struct {
	Tokens []string  // pieces, with '▁' (U+2581) standing for a space
	Scores []float32 // merge priority: higher merges first; len(Tokens)
	// Types holds ggml token types (TokenTypeNormal ... TokenTypeByte), one
	// per token. When nil they are inferred: BOS and EOS are control, UNK
	// is unknown, pieces spelled <0xXX> are bytes, everything else normal.
	Types []int32
	// BOS, EOS and UNK are token ids, or -1 when the vocabulary has none.
	BOS, EOS, UNK int32
	// AddSpacePrefix prepends '▁' to the text before encoding, as
	// SentencePiece's add_dummy_prefix does.
	AddSpacePrefix bool
	// OmitBOS: the model's tokenizer adds no BOS (GGUF
	// tokenizer.ggml.add_bos_token false), so Encode(text, true) does not
	// either.
	OmitBOS bool
}

// SentencePiece is a SentencePiece-style BPE tokenizer following llama.cpp's
// llm_tokenizer_spm: the text, with spaces written as '▁', is split into
// characters, and the adjacent pair whose concatenation is the
// highest-scoring vocabulary piece is merged until no pair is in the
// vocabulary. Characters left over become byte-fallback tokens. Control,
// user-defined and unknown tokens are first cut out of the text whole, as
// llama.cpp does with parse_special, and each stretch of text at the start
// or after such a token gets the space prefix.
//
// Unlike llama.cpp, merges may only produce normal and user-defined
// pieces, as in SentencePiece itself: text that spells "</s>" becomes the
// EOS token only as a whole special token, never through merges.
type SentencePiece struct {
	tokens         []string
	types          []int32
	scores         []float32
	pieceBytes     [][]byte    // TokenBytes per id
	mergeable      *pieceIndex // pieces a merge may produce
	joinableASCII  [utf8.RuneSelf]bool
	joinable       map[rune]bool // non-ASCII runes of multi-character mergeable pieces
	specials       specialTable  // control, user-defined and unknown tokens, cut out of text whole
	byteToken      [256]int32
	bos, eos, unk  int32
	addSpacePrefix bool
	addBOS         bool
	eog            []int32 // ids that end generation, ascending
	// splitWords: no mergeable piece has '▁' right after another
	// character, so no merge crosses the start of a word and words can be
	// merged one by one, through words.
	splitWords bool
	words      wordCache
}

// NewSentencePiece validates c and builds a tokenizer from it. When a piece
// appears twice, the first id wins for encoding.
func NewSentencePiece(c SentencePieceConfig) (*SentencePiece, error) {
	n := len(c.Tokens)
	if n == 0 {
		return nil, errors.New("sentencepiece: empty vocabulary")
	}
	if len(c.Scores) != n {
		return nil, fmt.Errorf("sentencepiece: %d scores for %d tokens", len(c.Scores), n)
	}
	if c.Types != nil && len(c.Types) != n {
		return nil, fmt.Errorf("sentencepiece: %d token types for %d tokens", len(c.Types), n)
	}
	for _, s := range []struct {
		name string
		id   int32
	}{{"BOS", c.BOS}, {"EOS", c.EOS}, {"UNK", c.UNK}} {
		if s.id < -1 || int(s.id) >= n {
			return nil, fmt.Errorf("sentencepiece: %s id %d out of range [-1, %d)", s.name, s.id, n)
		}
	}
	sp := &SentencePiece{
		tokens:         c.Tokens,
		scores:         c.Scores,
		types:          make([]int32, n),
		pieceBytes:     make([][]byte, n),
		mergeable:      newPieceIndex(c.Tokens, n),
		joinable:       make(map[rune]bool),
		bos:            c.BOS,
		eos:            c.EOS,
		unk:            c.UNK,
		addSpacePrefix: c.AddSpacePrefix,
		addBOS:         !c.OmitBOS,
	}
	for i := range sp.byteToken {
		sp.byteToken[i] = -1
	}
	for i, tok := range c.Tokens {
		typ := inferType(c, int32(i))
		if typ < TokenTypeUndefined || typ > TokenTypeByte {
			return nil, fmt.Errorf("sentencepiece: token %d %q: unknown token type %d", i, tok, typ)
		}
		sp.types[i] = typ
	}
	// llama.cpp's corrections of token types (end-of-turn tokens typed
	// normal become control, ...) come before anything uses the types.
	sp.eog = resolveSpecials(noRoles(), sp.eos, specialNameLookup(sp.tokens), sp.types).eog
	for i, tok := range c.Tokens {
		id := int32(i)
		typ := sp.types[i]
		if isSpecialType(typ) && tok != "" {
			sp.specials.add(tok, id)
		}
		switch typ {
		case TokenTypeNormal, TokenTypeUndefined:
			if tok != "" {
				sp.mergeable.add(id)
			}
			sp.pieceBytes[i] = []byte(strings.ReplaceAll(tok, spaceMarker, " "))
		case TokenTypeUserDefined:
			if tok != "" {
				sp.mergeable.add(id)
			}
			sp.pieceBytes[i] = []byte(tok)
		case TokenTypeByte:
			b, ok := parseByteToken(tok)
			if !ok {
				return nil, fmt.Errorf("sentencepiece: token %d %q has type byte but is not spelled <0xXX>", i, tok)
			}
			if sp.byteToken[b] < 0 {
				sp.byteToken[b] = id
			}
			sp.pieceBytes[i] = []byte{b}
		case TokenTypeUnknown:
			sp.pieceBytes[i] = []byte(unknownSurface)
		}
		// Control and unused tokens contribute nothing to decoded text.
	}
	sp.splitWords = true
	for _, id := range sp.mergeable.ids {
		piece := sp.tokens[id]
		if strings.Contains(strings.TrimLeft(piece, spaceMarker), spaceMarker) {
			sp.splitWords = false // '▁' after another character
		}
		if utf8.RuneCountInString(piece) < 2 {
			continue
		}
		for _, r := range piece {
			if r < utf8.RuneSelf {
				sp.joinableASCII[r] = true
			} else {
				sp.joinable[r] = true
			}
		}
	}
	sp.specials.finish()
	if sp.unk < 0 {
		for b, id := range sp.byteToken {
			if id < 0 {
				return nil, fmt.Errorf("sentencepiece: no byte-fallback token <0x%02X> and no unknown token to stand in for it", b)
			}
		}
	}
	return sp, nil
}

// inferType returns the type of token id, inferring it when c.Types is nil.
func inferType(c SentencePieceConfig, id int32) int32 {
	if c.Types != nil {
		return c.Types[id]
	}
	switch {
	case id == c.UNK:
		return TokenTypeUnknown
	case id == c.BOS || id == c.EOS:
		return TokenTypeControl
	}
	if _, ok := parseByteToken(c.Tokens[id]); ok {
		return TokenTypeByte
	}
	return TokenTypeNormal
}

// parseByteToken parses a byte-fallback piece "<0xXX>".
func parseByteToken(s string) (byte, bool) {
	if len(s) != 6 || s[:3] != "<0x" || s[5] != '>' {
		return 0, false
	}
	hi, ok1 := hexDigit(s[3])
	lo, ok2 := hexDigit(s[4])
	return hi<<4 | lo, ok1 && ok2
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// Encode implements Tokenizer.
func (sp *SentencePiece) Encode(text string, addBOS bool) []int32 {
	var out []int32
	if addBOS && sp.addBOS && sp.bos >= 0 {
		out = append(out, sp.bos)
	}
	if text == "" {
		return out
	}
	// As llama.cpp does, every stretch of text that starts the text or
	// follows a special token gets the space prefix.
	afterSpecial := true
	sp.specials.split(text, func(raw string, specialID int32) {
		if raw != "" {
			if afterSpecial && sp.addSpacePrefix {
				raw = " " + raw
			}
			afterSpecial = false
			out = sp.encodeRaw(strings.ReplaceAll(raw, " ", spaceMarker), out)
		}
		if specialID >= 0 {
			out = append(out, specialID)
			afterSpecial = true
		}
	})
	return out
}

// encodeRaw appends the ids of text, already escaped with '▁', to out.
//
// Characters that occur in no multi-character piece can never take part
// in a merge, so they split the text into stretches that are merged
// independently. That gives the same result as merging the whole text at
// once (as llama.cpp does) while keeping the working set small: for
// typical vocabularies every newline starts a new stretch.
//
// When no merge crosses the start of a word (splitWords), each word (a
// run of '▁' and the characters up to the next one) is merged on its
// own, and its ids come from a cache when the word was seen before:
// natural text repeats its words, and the merge loop, a few hash lookups
// a character, is most of the cost of tokenizing (the training data of a
// plugin or browser run is tokenized in WebAssembly, several times
// slower than natively).
func (sp *SentencePiece) encodeRaw(text string, out []int32) []int32 {
	var m spMerger
	start := 0
	afterMarker := true
	for i := 0; i < len(text); {
		r, w := utf8.DecodeRuneInString(text[i:])
		if !sp.isJoinable(r) {
			out = sp.encodeWord(&m, text[start:i], out)
			out = sp.appendPiece(text[i:i+w], out)
			i += w
			start = i
			afterMarker = false
			continue
		}
		marker := r == spaceMarkerRune
		if marker && !afterMarker && sp.splitWords {
			out = sp.encodeWord(&m, text[start:i], out)
			start = i
		}
		afterMarker = marker
		i += w
	}
	return sp.encodeWord(&m, text[start:], out)
}

// spaceMarkerRune is spaceMarker's one rune.
const spaceMarkerRune = '▁'

// encodeWord appends the ids of one stretch of joinable text: from the
// cache when the stretch is a word seen before, else merged by m.
func (sp *SentencePiece) encodeWord(m *spMerger, word string, out []int32) []int32 {
	if word == "" {
		return out
	}
	if !sp.splitWords || len(word) > maxCachedWord {
		return m.encode(sp, word, out)
	}
	if ids, ok := sp.words.get(word); ok {
		return append(out, ids...)
	}
	n := len(out)
	out = m.encode(sp, word, out)
	sp.words.put(word, out[n:])
	return out
}

// isJoinable reports whether r occurs in some multi-character piece that
// merges can produce. Invalid UTF-8 (utf8.RuneError) is never joinable
// unless U+FFFD itself is.
func (sp *SentencePiece) isJoinable(r rune) bool {
	if r < utf8.RuneSelf {
		return sp.joinableASCII[r]
	}
	return sp.joinable[r]
}

// appendPiece appends the id of a final symbol: the piece itself when the
// vocabulary has it, else one byte-fallback token (or UNK) per byte.
func (sp *SentencePiece) appendPiece(piece string, out []int32) []int32 {
	if id, ok := sp.mergeable.lookup(piece); ok {
		return append(out, id)
	}
	for j := 0; j < len(piece); j++ {
		if id := sp.byteToken[piece[j]]; id >= 0 {
			out = append(out, id)
		} else {
			out = append(out, sp.unk)
		}
	}
	return out
}

// spMerger holds the buffers of the merge loop, reused across stretches.
type spMerger struct {
	syms []symbol
	q    pairQueue
}

// encode merges one stretch of text and appends its ids.
func (m *spMerger) encode(sp *SentencePiece, text string, out []int32) []int32 {
	if text == "" {
		return out
	}
	syms := m.syms[:0]
	for i := 0; i < len(text); {
		_, w := utf8.DecodeRuneInString(text[i:])
		n := int32(len(syms))
		syms = append(syms, symbol{start: int32(i), end: int32(i + w), prev: n - 1, next: n + 1})
		i += w
	}
	syms[len(syms)-1].next = -1
	m.syms = syms

	q := &m.q
	q.reset()
	tryPair := func(left int32) {
		if left < 0 {
			return
		}
		right := syms[left].next
		if right < 0 {
			return
		}
		piece := text[syms[left].start:syms[right].end]
		id, ok := sp.mergeable.lookup(piece)
		if !ok {
			return
		}
		q.push(pair{left: left, right: right, size: int32(len(piece)), priority: sp.scores[id]})
	}
	for i := int32(0); i+1 < int32(len(syms)); i++ {
		tryPair(i)
	}
	for q.Len() > 0 {
		p := q.pop()
		l, r := &syms[p.left], &syms[p.right]
		// Skip pairs made stale by an earlier merge of either side.
		if l.dead() || r.dead() || l.next != p.right || r.end-l.start != p.size {
			continue
		}
		l.end = r.end
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = p.left
		}
		r.start, r.end = 0, 0 // mark dead
		tryPair(l.prev)
		tryPair(p.left)
	}
	// Every merge produces a vocabulary piece, so only single characters
	// can be missing from the vocabulary and fall back to bytes.
	for i := int32(0); i >= 0; i = syms[i].next {
		out = sp.appendPiece(text[syms[i].start:syms[i].end], out)
	}
	return out
}

// Decode implements Tokenizer.
func (sp *SentencePiece) Decode(ids []int32) string { return decodeBytes(sp, ids) }

// TokenBytes implements Tokenizer.
func (sp *SentencePiece) TokenBytes(id int32) []byte {
	if id < 0 || int(id) >= len(sp.pieceBytes) {
		return nil
	}
	return sp.pieceBytes[id]
}

// TokenString implements Tokenizer.
func (sp *SentencePiece) TokenString(id int32) string {
	if id < 0 || int(id) >= len(sp.tokens) {
		return ""
	}
	return sp.tokens[id]
}

// TokenType returns the ggml type of token id, or TokenTypeUndefined when
// id is out of range.
func (sp *SentencePiece) TokenType(id int32) int32 {
	if id < 0 || int(id) >= len(sp.types) {
		return TokenTypeUndefined
	}
	return sp.types[id]
}

// Score returns the merge score of token id, or 0 when id is out of range.
func (sp *SentencePiece) Score(id int32) float32 {
	if id < 0 || int(id) >= len(sp.scores) {
		return 0
	}
	return sp.scores[id]
}

// VocabSize implements Tokenizer.
func (sp *SentencePiece) VocabSize() int { return len(sp.tokens) }

// BOS implements Tokenizer.
func (sp *SentencePiece) BOS() int32 { return sp.bos }

// EOS implements Tokenizer.
func (sp *SentencePiece) EOS() int32 { return sp.eos }

// AddsBOS reports whether Encode(text, true) prepends BOS.
func (sp *SentencePiece) AddsBOS() bool { return sp.addBOS && sp.bos >= 0 }

// EndOfGeneration lists the ids that end generation, ascending: EOS and
// the tokens llama.cpp stops at by their text (</s>, <end_of_turn>, ...).
// The slice is shared: callers must not modify it.
func (sp *SentencePiece) EndOfGeneration() []int32 { return sp.eog }

// UNK returns the unknown-token id, or -1 when there is none.
func (sp *SentencePiece) UNK() int32 { return sp.unk }

// Kind implements Tokenizer.
func (sp *SentencePiece) Kind() string { return KindSentencePiece }

// AddSpacePrefix reports whether Encode prepends '▁' to the text.
func (sp *SentencePiece) AddSpacePrefix() bool { return sp.addSpacePrefix }

func (sp *SentencePiece) stripsLeadingSpace() bool { return sp.addSpacePrefix }
