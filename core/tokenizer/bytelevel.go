package tokenizer

import (
	"slices"
	"sort"
	"unicode/utf8"
)

// ByteLevelBPE is a byte-level BPE tokenizer as Hugging Face's tokenizers
// library and llama.cpp run one (GPT-2, Llama-3, Qwen2): added tokens are
// cut out of the text first, the rest is pre-tokenized, each pre-token's
// bytes are spelled in GPT-2's byte alphabet, and BPE merges are applied by
// rank.
//
// Build one with ParseHFTokenizer (tokenizer.json) or NewGGUFBPE (GGUF
// metadata); the two differ only where Hugging Face and llama.cpp do.
type ByteLevelBPE struct {
	vocab        map[string]int32 // byte-level spelling -> id
	tokens       []string         // id -> vocabulary entry ("" for gaps)
	tokenBytes   [][]byte         // id -> decoded bytes, nil for special tokens
	types        []int32          // id -> TokenTypeNormal, TokenTypeControl, ...
	merges       map[uint64]bpeMerge
	ignoreMerges bool
	unk          int32 // model.unk_token, -1 when none

	pre     preTokenizer
	ggmlPre string            // tokenizer.ggml.pre naming pre, "" when llama.cpp has none
	added   [256][]addedToken // by first byte, longest first

	// specials, when set, cuts special tokens out of text as llama.cpp
	// does, instead of Hugging Face's leftmost-longest match of added
	// (splitAdded).
	specials *specialTable
	// replaceInvalidUTF8: bytes that are not valid UTF-8 become U+FFFD
	// before pre-tokenization (llama.cpp) instead of passing through.
	replaceInvalidUTF8 bool

	bos, eos int32
	addBOS   bool    // Encode(text, true) prepends bos
	eot, eom int32   // end of turn, end of message; -1 when none
	eog      []int32 // ids that end generation, ascending

	cache wordCache // pre-token -> ids
}

// bpeMerge is the result of merging a pair of ids.
type bpeMerge struct {
	rank int32
	id   int32
}

type addedToken struct {
	content string
	id      int32
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// Encode implements Tokenizer.
func (t *ByteLevelBPE) Encode(text string, addBOS bool) []int32 {
	out := make([]int32, 0, len(text)/3+1)
	if addBOS && t.addBOS && t.bos >= 0 {
		out = append(out, t.bos)
	}
	split := t.splitAdded
	if t.specials != nil {
		split = t.specials.split
	}
	split(text, func(raw string, addedID int32) {
		if t.replaceInvalidUTF8 {
			raw = validUTF8(raw)
		}
		if raw != "" {
			t.pre.split(raw, func(piece string) { out = t.appendPiece(out, piece) })
		}
		if addedID >= 0 {
			out = append(out, addedID)
		}
	})
	return out
}

// splitAdded calls f for each stretch of text between added tokens,
// passing the added token that ends it (or -1 for the last stretch). At
// each position the longest added token that matches wins.
func (t *ByteLevelBPE) splitAdded(text string, f func(raw string, addedID int32)) {
	start := 0
	for i := 0; i < len(text); i++ {
		for _, a := range t.added[text[i]] {
			if len(text)-i >= len(a.content) && text[i:i+len(a.content)] == a.content {
				f(text[start:i], a.id)
				start = i + len(a.content)
				i = start - 1
				break
			}
		}
	}
	f(text[start:], -1)
}

// appendPiece appends the ids of one pre-token, from the cache when it can.
func (t *ByteLevelBPE) appendPiece(out []int32, piece string) []int32 {
	if len(piece) > maxCachedWord {
		return append(out, t.bpe(piece)...)
	}
	if ids, ok := t.cache.get(piece); ok {
		return append(out, ids...)
	}
	ids := t.bpe(piece)
	t.cache.put(piece, ids)
	return append(out, ids...)
}

// bpe runs the merges over one pre-token.
func (t *ByteLevelBPE) bpe(piece string) []int32 {
	word := string(appendByteLevel(make([]byte, 0, 2*len(piece)), piece))
	if t.ignoreMerges {
		if id, ok := t.vocab[word]; ok {
			return []int32{id}
		}
	}
	// One symbol per byte-level character; start/end count characters.
	syms := make([]symbol, 0, len(piece))
	for i, r := range word {
		id, ok := t.vocab[word[i:i+utf8.RuneLen(r)]]
		if !ok {
			// Only possible for a vocabulary missing part of the byte
			// alphabet: HF substitutes unk_token or drops the character.
			if t.unk < 0 {
				continue
			}
			id = t.unk
		}
		n := int32(len(syms))
		syms = append(syms, symbol{start: n, end: n + 1, prev: n - 1, next: n + 1, id: id})
	}
	if len(syms) == 0 {
		return nil
	}
	syms[len(syms)-1].next = -1
	q := &pairQueue{}
	tryPair := func(left int32) {
		if left < 0 || syms[left].next < 0 {
			return
		}
		right := syms[left].next
		m, ok := t.merges[pairKey(syms[left].id, syms[right].id)]
		if !ok {
			return
		}
		q.push(pair{left: left, right: right, size: syms[right].end - syms[left].start, priority: -float32(m.rank), id: m.id})
	}
	for i := range int32(len(syms)) {
		tryPair(i)
	}
	for q.Len() > 0 {
		p := q.pop()
		l, r := &syms[p.left], &syms[p.right]
		if l.dead() || r.dead() || l.next != p.right || r.end-l.start != p.size {
			continue
		}
		l.end, l.id, l.next = r.end, p.id, r.next
		if r.next >= 0 {
			syms[r.next].prev = p.left
		}
		r.start, r.end = 0, 0
		tryPair(l.prev)
		tryPair(p.left)
	}
	var ids []int32
	for i := int32(0); i >= 0; i = syms[i].next {
		ids = append(ids, syms[i].id)
	}
	return ids
}

// Decode implements Tokenizer. Special added tokens are skipped.
func (t *ByteLevelBPE) Decode(ids []int32) string { return decodeBytes(t, ids) }

// TokenBytes implements Tokenizer.
func (t *ByteLevelBPE) TokenBytes(id int32) []byte {
	if id < 0 || int(id) >= len(t.tokenBytes) {
		return nil
	}
	return t.tokenBytes[id]
}

// TokenString implements Tokenizer.
func (t *ByteLevelBPE) TokenString(id int32) string {
	if id < 0 || int(id) >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// TokenType returns the ggml type of token id (TokenTypeNormal,
// TokenTypeControl for special tokens, TokenTypeUserDefined for added
// tokens that are not special, ...), or TokenTypeUndefined when id is out
// of range or unassigned.
func (t *ByteLevelBPE) TokenType(id int32) int32 {
	if id < 0 || int(id) >= len(t.types) {
		return TokenTypeUndefined
	}
	return t.types[id]
}

// TokenID returns the id of a vocabulary entry or added token.
func (t *ByteLevelBPE) TokenID(s string) (int32, bool) {
	if s != "" {
		for _, a := range t.added[s[0]] {
			if a.content == s {
				return a.id, true
			}
		}
	}
	id, ok := t.vocab[s]
	return id, ok
}

// VocabSize implements Tokenizer.
func (t *ByteLevelBPE) VocabSize() int { return len(t.tokens) }

// BOS implements Tokenizer.
func (t *ByteLevelBPE) BOS() int32 { return t.bos }

// EOS implements Tokenizer.
func (t *ByteLevelBPE) EOS() int32 { return t.eos }

// AddsBOS reports whether Encode(text, true) prepends BOS: whether the
// model's own tokenizer does (GGUF tokenizer.ggml.add_bos_token, or a
// tokenizer.json post-processor template that starts with a special
// token).
func (t *ByteLevelBPE) AddsBOS() bool { return t.addBOS && t.bos >= 0 }

// EOT is the end-of-turn id (<|eot_id|>, <|im_end|>, ...), or -1.
func (t *ByteLevelBPE) EOT() int32 { return t.eot }

// EOM is the end-of-message id (Llama 3.1's <|eom_id|>), or -1.
func (t *ByteLevelBPE) EOM() int32 { return t.eom }

// EndOfGeneration lists the ids that end generation, ascending: EOS, EOT,
// EOM and the other tokens llama.cpp stops at (see resolveSpecials). The
// slice is shared: callers must not modify it.
func (t *ByteLevelBPE) EndOfGeneration() []int32 { return t.eog }

// SetBOS overrides the beginning-of-sequence id, e.g. from a model's
// config. An id outside [0, VocabSize) means "no BOS". It does not change
// whether Encode adds BOS (AddsBOS).
func (t *ByteLevelBPE) SetBOS(id int32) { t.bos = t.validID(id) }

// SetEOS overrides the end-of-sequence id, e.g. from a model's config. An
// id outside [0, VocabSize) means "no EOS". It ends generation from then
// on.
func (t *ByteLevelBPE) SetEOS(id int32) {
	t.eos = t.validID(id)
	if t.eos >= 0 && !slices.Contains(t.eog, t.eos) {
		t.eog = append(slices.Clone(t.eog), t.eos)
		slices.Sort(t.eog)
	}
}

func (t *ByteLevelBPE) validID(id int32) int32 {
	if id < 0 || int(id) >= len(t.tokens) {
		return -1
	}
	return id
}

// Kind implements Tokenizer.
func (t *ByteLevelBPE) Kind() string { return KindByteLevelBPE }

// sortAdded orders each first-byte bucket longest first, so that the
// longest added token wins where several match.
func (t *ByteLevelBPE) sortAdded() {
	for _, bucket := range t.added {
		sort.SliceStable(bucket, func(a, b int) bool { return len(bucket[a].content) > len(bucket[b].content) })
	}
}
