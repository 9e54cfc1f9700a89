package tokenizer

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// GGUFBPEConfig describes a byte-level BPE vocabulary as a GGUF file stores
// it under tokenizer.ggml.* when tokenizer.ggml.model is "gpt2" (Llama 3,
// Qwen2 and Qwen3, SmolLM, GPT-2 and their relatives).
type GGUFBPEConfig struct {
	Tokens []string // tokenizer.ggml.tokens, in GPT-2's byte-level spelling
	// Types holds tokenizer.ggml.token_type (TokenTypeNormal ...), one per
	// token; nil means every token is normal.
	Types  []int32
	Merges []string // tokenizer.ggml.merges: "left right", best first
	// Pre is tokenizer.ggml.pre; "" (absent) means "default", as in
	// llama.cpp. GGMLPreTokenizers lists the supported values.
	Pre string
	// IDs holds the tokenizer.ggml.<name>_token_id values present in the
	// file, by name: "bos", "eos", "unknown", "eot", "eom", "fim_pre",
	// "fim_suf", "fim_mid", "fim_pad", "fim_rep", "fim_sep". Others are
	// ignored.
	IDs map[string]uint32
	// AddBOS is tokenizer.ggml.add_bos_token; nil when absent, which means
	// the pre-tokenizer's default (true for Llama 3's, false otherwise).
	AddBOS *bool
}

// ggmlBPEDefaultID is the BOS and EOS id llama.cpp assumes for a "gpt2"
// vocabulary whose file names none (GPT-2's own vocabulary has ',' there,
// so a converted file always names them; graft keeps the default so that
// it reads such a file as llama.cpp does).
const ggmlBPEDefaultID = 11

// NewGGUFBPE builds the tokenizer llama.cpp builds from c: its
// pre-tokenizer for c.Pre, its rules for which tokens are special, and its
// choice of BOS, EOS and end-of-generation tokens. Encoding then gives
// llama.cpp's ids with special tokens parsed (llama_tokenize with
// parse_special), BOS first where the file asks for it.
//
// Two corners differ: llama.cpp decodes malformed UTF-8 leniently
// (overlong forms, surrogates and code points past U+10FFFF pass as
// characters) where graft replaces every byte that is not part of valid
// UTF-8 by U+FFFD, as llama.cpp does for the other malformed bytes; and
// characters assigned after the Unicode version of Go's unicode package
// count as unassigned.
func NewGGUFBPE(c GGUFBPEConfig) (*ByteLevelBPE, error) {
	pre, err := lookupGGMLPre(c.Pre)
	if err != nil {
		return nil, err
	}
	n := len(c.Tokens)
	switch {
	case n == 0:
		return nil, errors.New("tokenizer.ggml.tokens is empty")
	case n >= maxVocabID:
		return nil, fmt.Errorf("tokenizer.ggml.tokens has %d entries, more than %d", n, maxVocabID)
	case c.Types != nil && len(c.Types) < n:
		// llama.cpp reads the first n types and refuses fewer.
		return nil, fmt.Errorf("tokenizer.ggml.token_type has %d entries for %d tokens", len(c.Types), n)
	}
	t := &ByteLevelBPE{
		vocab:              make(map[string]int32, n),
		tokens:             make([]string, n),
		tokenBytes:         make([][]byte, n),
		merges:             make(map[uint64]bpeMerge, len(c.Merges)),
		ignoreMerges:       pre.ignoreMerges,
		unk:                -1,
		pre:                pre.split,
		ggmlPre:            pre.names[0],
		specials:           &specialTable{},
		replaceInvalidUTF8: true,
		addBOS:             pre.addBOS,
	}
	types := make([]int32, n)
	for i, tok := range c.Tokens {
		if tok == "" {
			tok = "[EMPTY_" + strconv.Itoa(i) + "]" // llama.cpp's stand-in
		}
		if prev, dup := t.vocab[tok]; dup {
			return nil, fmt.Errorf("tokenizer.ggml.tokens: %q is both token %d and token %d", tok, prev, i)
		}
		t.vocab[tok] = int32(i)
		t.tokens[i] = tok
		types[i] = TokenTypeNormal
		if c.Types != nil {
			types[i] = c.Types[i]
		}
	}
	if err := t.ggmlMerges(c.Merges); err != nil {
		return nil, err
	}

	id := func(name string, def int32) int32 {
		if v, ok := c.IDs[name]; ok && int64(v) < int64(n) {
			return int32(v)
		}
		if def >= int32(n) {
			return -1
		}
		return def
	}
	t.bos = id("bos", ggmlBPEDefaultID)
	t.eos = id("eos", ggmlBPEDefaultID)
	if c.AddBOS != nil {
		t.addBOS = *c.AddBOS
	}
	roles := noRoles()
	for r, key := range roleKeys {
		roles[r] = id(key, -1)
	}
	sp := resolveSpecials(roles, t.eos, func(s string) (int32, bool) { id, ok := t.vocab[s]; return id, ok }, types)
	t.eot, t.eom, t.eog = sp.eot, sp.eom, sp.eog
	t.types = types

	for i, tok := range t.tokens {
		switch types[i] {
		case TokenTypeNormal, TokenTypeByte:
			t.tokenBytes[i] = byteLevelDecode(tok)
		case TokenTypeUserDefined:
			t.tokenBytes[i] = []byte(tok)
		}
		// Control and unknown tokens decode to nothing, as llama.cpp's
		// token_to_piece without special; so do unused and undefined ones.
		if isSpecialType(types[i]) {
			t.specials.add(tok, int32(i))
		}
	}
	t.specials.finish()
	return t, nil
}

// ggmlMerges reads tokenizer.ggml.merges, splitting each at its first
// space after the first byte, as llama.cpp does. Both halves and their
// concatenation must be tokens.
func (t *ByteLevelBPE) ggmlMerges(merges []string) error {
	for rank, m := range merges {
		cut := -1
		if len(m) > 1 {
			if j := strings.IndexByte(m[1:], ' '); j >= 0 {
				cut = j + 1
			}
		}
		if cut < 0 {
			return fmt.Errorf("tokenizer.ggml.merges[%d] = %q is not two tokens separated by a space", rank, m)
		}
		a, b := m[:cut], m[cut+1:]
		left, ok1 := t.vocab[a]
		right, ok2 := t.vocab[b]
		merged, ok3 := t.vocab[a+b]
		if !ok1 || !ok2 || !ok3 {
			return fmt.Errorf("tokenizer.ggml.merges[%d] = %q: %q, %q or %q is not a token", rank, m, a, b, a+b)
		}
		key := pairKey(left, right)
		if _, dup := t.merges[key]; !dup {
			t.merges[key] = bpeMerge{rank: int32(rank), id: merged}
		}
	}
	return nil
}

// validUTF8 replaces each byte that is not part of valid UTF-8 by U+FFFD,
// as llama.cpp's pre-tokenizer does before splitting.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && w == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+w])
		}
		i += w
	}
	return b.String()
}
