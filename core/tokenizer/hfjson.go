package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// hfFile is the part of a Hugging Face tokenizer.json that graft reads.
type hfFile struct {
	AddedTokens   []hfAddedToken  `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         hfModel         `json:"model"`
}

type hfAddedToken struct {
	ID      int64  `json:"id"`
	Content string `json:"content"`
	Special bool   `json:"special"`
}

type hfModel struct {
	Type                    string            `json:"type"`
	Vocab                   map[string]int64  `json:"vocab"`
	Merges                  []json.RawMessage `json:"merges"`
	IgnoreMerges            bool              `json:"ignore_merges"`
	ByteFallback            bool              `json:"byte_fallback"`
	UnkToken                *string           `json:"unk_token"`
	ContinuingSubwordPrefix *string           `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string           `json:"end_of_word_suffix"`
}

// hfComponent holds the fields of any normalizer, pre-tokenizer,
// post-processor or decoder object; which ones matter depends on Type.
type hfComponent struct {
	Type             string            `json:"type"`
	AddPrefixSpace   bool              `json:"add_prefix_space"`
	UseRegex         *bool             `json:"use_regex"`
	Pattern          hfPattern         `json:"pattern"`
	Behavior         string            `json:"behavior"`
	Invert           bool              `json:"invert"`
	IndividualDigits bool              `json:"individual_digits"`
	Normalizers      []json.RawMessage `json:"normalizers"`
	Pretokenizers    []json.RawMessage `json:"pretokenizers"`
	Processors       []json.RawMessage `json:"processors"`
	Decoders         []json.RawMessage `json:"decoders"`
	Single           []hfTemplatePiece `json:"single"`
	SpecialTokens    map[string]struct {
		IDs []int64 `json:"ids"`
	} `json:"special_tokens"`
}

type hfPattern struct {
	Regex  *string `json:"Regex"`
	String *string `json:"String"`
}

type hfTemplatePiece struct {
	SpecialToken *struct {
		ID string `json:"id"`
	} `json:"SpecialToken"`
	Sequence *struct {
		ID string `json:"id"`
	} `json:"Sequence"`
}

// Bounds that keep a corrupt file from making us allocate a huge id table:
// real vocabularies are dense, so ids may exceed the number of entries
// only by a margin.
const (
	maxVocabID    = 1 << 24
	vocabIDSlack  = 1 << 16
	maxComponents = 64 // nesting and sequence length of components
)

// bosNames and eosNames are looked up, in order, when the post-processor
// names no BOS or EOS. GPT-2 uses <|endoftext|> for both; the caller can
// correct a guess with SetBOS/SetEOS. A BOS found this way is not added by
// Encode: transformers adds only what the post-processor's template says
// (GPT-2 and Qwen2 add none).
var (
	bosNames = []string{"<|begin_of_text|>", "<s>", "<|endoftext|>"}
	eosNames = []string{"<|end_of_text|>", "</s>", "<|endoftext|>", "<|im_end|>"}
)

// ParseHFTokenizer builds a byte-level BPE tokenizer from the contents of
// a Hugging Face tokenizer.json; name (usually the file's path) appears in
// error messages.
//
// Supported: model BPE (merges as "a b" strings or [a, b] pairs,
// ignore_merges, no byte_fallback); pre-tokenizers ByteLevel, Split (Regex
// or String pattern, any behavior, invert), Digits and Sequence, with
// ByteLevel last; normalizer none or NFC; decoder ByteLevel. NFC is treated
// as the identity: the text is assumed to be NFC already (this package
// uses only the standard library, which has no Unicode normalization).
// The added tokens' lstrip, rstrip, single_word and normalized flags are
// ignored: added tokens match exactly where they appear.
func ParseHFTokenizer(data []byte, name string) (*ByteLevelBPE, error) {
	t, err := parseHF(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer.json %s: %w", name, err)
	}
	return t, nil
}

func parseHF(data []byte) (*ByteLevelBPE, error) {
	var f hfFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	m := f.Model
	switch {
	case m.Type != "" && m.Type != "BPE":
		return nil, fmt.Errorf("model type %q is not supported (only BPE)", m.Type)
	case m.Vocab == nil:
		return nil, errors.New("model has no vocab")
	case m.ByteFallback:
		return nil, errors.New("BPE byte_fallback: this is a SentencePiece-style vocabulary, which ParseHFSentencePiece reads")
	case m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "":
		return nil, errors.New("BPE continuing_subword_prefix is not supported")
	case m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "":
		return nil, errors.New("BPE end_of_word_suffix is not supported")
	}
	if err := checkNormalizer(f.Normalizer, 0); err != nil {
		return nil, fmt.Errorf("normalizer: %w", err)
	}
	if err := checkDecoder(f.Decoder, 0); err != nil {
		return nil, fmt.Errorf("decoder: %w", err)
	}
	pre, hasByteLevel, err := parsePreTokenizer(f.PreTokenizer, 0)
	if err != nil {
		return nil, fmt.Errorf("pre_tokenizer: %w", err)
	}
	if !hasByteLevel {
		return nil, errors.New("pre_tokenizer: no ByteLevel step, so this is not a byte-level BPE vocabulary")
	}

	t := &ByteLevelBPE{
		vocab:        make(map[string]int32, len(m.Vocab)),
		merges:       make(map[uint64]bpeMerge, len(m.Merges)),
		ignoreMerges: m.IgnoreMerges,
		unk:          -1,
		pre:          pre,
		ggmlPre:      ggmlPreOfHF(pre, m.IgnoreMerges),
	}
	if err := t.buildVocab(m.Vocab, f.AddedTokens); err != nil {
		return nil, err
	}
	if err := t.buildMerges(m.Merges); err != nil {
		return nil, err
	}
	if m.UnkToken != nil {
		if id, ok := t.vocab[*m.UnkToken]; ok {
			t.unk = id
		}
	}
	t.bos, t.eos = -1, -1
	if err := t.specialsFromPostProcessor(f.PostProcessor, 0); err != nil {
		return nil, fmt.Errorf("post_processor: %w", err)
	}
	if t.bos < 0 {
		t.bos = t.firstKnown(bosNames)
	}
	if t.eos < 0 {
		t.eos = t.firstKnown(eosNames)
	}
	sp := resolveSpecials(noRoles(), t.eos, t.TokenID, nil)
	t.eot, t.eom, t.eog = sp.eot, sp.eom, sp.eog
	return t, nil
}

// buildVocab fills the id tables from model.vocab and added_tokens.
func (t *ByteLevelBPE) buildVocab(vocab map[string]int64, added []hfAddedToken) error {
	maxID := int64(-1)
	for tok, id := range vocab {
		if id < 0 || id >= maxVocabID {
			return fmt.Errorf("vocab: token %q has id %d out of range", tok, id)
		}
		maxID = max(maxID, id)
	}
	for _, a := range added {
		if a.ID < 0 || a.ID >= maxVocabID {
			return fmt.Errorf("added_tokens: %q has id %d out of range", a.Content, a.ID)
		}
		maxID = max(maxID, a.ID)
	}
	if maxID < 0 {
		return errors.New("vocab is empty")
	}
	if maxID >= int64(len(vocab)+len(added))+vocabIDSlack {
		return fmt.Errorf("vocab: id %d is far beyond the %d entries", maxID, len(vocab)+len(added))
	}
	n := int(maxID) + 1
	t.tokens = make([]string, n)
	t.tokenBytes = make([][]byte, n)
	t.types = make([]int32, n) // gaps stay TokenTypeUndefined
	owner := make([]bool, n)
	for tok, id := range vocab {
		if owner[id] {
			// Two entries for one id: keep the smaller string so the
			// result does not depend on map order.
			if t.tokens[id] < tok {
				t.vocab[tok] = int32(id)
				continue
			}
		}
		owner[id] = true
		t.tokens[id] = tok
		t.tokenBytes[id] = byteLevelDecode(tok)
		t.types[id] = TokenTypeNormal
		t.vocab[tok] = int32(id)
	}
	for i, a := range added {
		if a.Content == "" {
			return fmt.Errorf("added_tokens[%d] (id %d) is empty", i, a.ID)
		}
		id := int32(a.ID)
		t.tokens[id] = a.Content
		if a.Special {
			t.tokenBytes[id] = nil
			t.types[id] = TokenTypeControl
		} else {
			t.tokenBytes[id] = []byte(a.Content)
			t.types[id] = TokenTypeUserDefined
		}
		b := a.Content[0]
		t.added[b] = append(t.added[b], addedToken{content: a.Content, id: id})
	}
	t.sortAdded()
	return nil
}

// buildMerges reads model.merges; a merge's rank is its position.
func (t *ByteLevelBPE) buildMerges(merges []json.RawMessage) error {
	for rank, raw := range merges {
		a, b, err := parseMerge(raw)
		if err != nil {
			return fmt.Errorf("merges[%d]: %w", rank, err)
		}
		left, ok1 := t.vocab[a]
		right, ok2 := t.vocab[b]
		merged, ok3 := t.vocab[a+b]
		if !ok1 || !ok2 || !ok3 {
			return fmt.Errorf("merges[%d]: %q + %q: token not in vocab", rank, a, b)
		}
		key := pairKey(left, right)
		if _, dup := t.merges[key]; !dup { // the first (best) rank wins
			t.merges[key] = bpeMerge{rank: int32(rank), id: merged}
		}
	}
	return nil
}

// parseMerge accepts "a b" (older files) and ["a", "b"] (newer ones).
func parseMerge(raw json.RawMessage) (string, string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '[' {
		var parts []string
		if err := json.Unmarshal(raw, &parts); err != nil {
			return "", "", err
		}
		if len(parts) != 2 {
			return "", "", fmt.Errorf("%d parts, want 2", len(parts))
		}
		return parts[0], parts[1], nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", "", err
	}
	a, b, ok := strings.Cut(s, " ")
	if !ok || strings.Contains(b, " ") {
		return "", "", fmt.Errorf("%q is not two space-separated tokens", s)
	}
	return a, b, nil
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

func parseComponent(raw json.RawMessage, depth int) (hfComponent, error) {
	var c hfComponent
	if depth > maxComponents {
		return c, errors.New("nested too deeply")
	}
	err := json.Unmarshal(raw, &c)
	return c, err
}

// checkNormalizer accepts no normalizer or NFC (see ParseHFTokenizer).
func checkNormalizer(raw json.RawMessage, depth int) error {
	if isNull(raw) {
		return nil
	}
	c, err := parseComponent(raw, depth)
	if err != nil {
		return err
	}
	switch c.Type {
	case "NFC":
		return nil
	case "Sequence":
		for i, n := range c.Normalizers {
			if err := checkNormalizer(n, depth+1); err != nil {
				return fmt.Errorf("normalizers[%d]: %w", i, err)
			}
		}
		return nil
	}
	return fmt.Errorf("type %q is not supported", c.Type)
}

// checkDecoder accepts ByteLevel, or none: decoding is always byte-level.
func checkDecoder(raw json.RawMessage, depth int) error {
	if isNull(raw) {
		return nil
	}
	c, err := parseComponent(raw, depth)
	if err != nil {
		return err
	}
	switch c.Type {
	case "ByteLevel":
		return nil
	case "Sequence":
		for i, d := range c.Decoders {
			if err := checkDecoder(d, depth+1); err != nil {
				return fmt.Errorf("decoders[%d]: %w", i, err)
			}
		}
		return nil
	}
	return fmt.Errorf("type %q is not supported", c.Type)
}

// parsePreTokenizer builds the pre-tokenizer and reports whether it ends
// in a ByteLevel step. ByteLevel must come last because the pre-tokenizers
// here work on raw text and the byte-level spelling is applied afterwards.
func parsePreTokenizer(raw json.RawMessage, depth int) (preTokenizer, bool, error) {
	if isNull(raw) {
		return nil, false, nil
	}
	c, err := parseComponent(raw, depth)
	if err != nil {
		return nil, false, err
	}
	switch c.Type {
	case "ByteLevel":
		useRegex := c.UseRegex == nil || *c.UseRegex // HF's default is true
		return byteLevelPre{addPrefixSpace: c.AddPrefixSpace, useRegex: useRegex}, true, nil
	case "Split":
		m, err := patternMatcher(c.Pattern)
		if err != nil {
			return nil, false, err
		}
		b, ok := splitBehaviors[c.Behavior]
		if !ok {
			return nil, false, fmt.Errorf("Split behavior %q is not supported", c.Behavior)
		}
		return splitPre{m: m, behavior: b, invert: c.Invert}, false, nil
	case "Digits":
		return splitPre{m: digitsMatcher{individual: c.IndividualDigits}, behavior: splitIsolated}, false, nil
	case "Sequence":
		if len(c.Pretokenizers) > maxComponents {
			return nil, false, fmt.Errorf("sequence of %d pre-tokenizers is too long", len(c.Pretokenizers))
		}
		var seq sequencePre
		byteLevel := false
		for i, p := range c.Pretokenizers {
			if byteLevel {
				return nil, false, fmt.Errorf("pretokenizers[%d] follows ByteLevel, which must come last", i)
			}
			step, bl, err := parsePreTokenizer(p, depth+1)
			if err != nil {
				return nil, false, fmt.Errorf("pretokenizers[%d]: %w", i, err)
			}
			if step != nil {
				seq = append(seq, step)
			}
			byteLevel = bl
		}
		if len(seq) == 1 {
			return seq[0], byteLevel, nil
		}
		return seq, byteLevel, nil
	}
	return nil, false, fmt.Errorf("type %q is not supported", c.Type)
}

// patternMatcher turns a Split pattern into a matcher: known lookahead
// patterns get their hand-written scanner, other regexes Go's regexp.
func patternMatcher(p hfPattern) (matcher, error) {
	switch {
	case p.String != nil:
		if *p.String == "" {
			return nil, errors.New("Split pattern is an empty string")
		}
		return literalMatcher(*p.String), nil
	case p.Regex == nil:
		return nil, errors.New("Split pattern has neither Regex nor String")
	}
	switch *p.Regex {
	case GPT2Pattern:
		return gpt2Scanner{}, nil
	case Llama3Pattern:
		return llama3Scanner{maxDigits: 3, contract: caseFold}, nil
	case Qwen2Pattern:
		return llama3Scanner{maxDigits: 1, contract: caseFold}, nil
	}
	re, err := regexp.Compile(*p.Regex)
	if err != nil {
		return nil, fmt.Errorf("Split regex %q is not one of the known patterns and Go's regexp cannot compile it: %w", *p.Regex, err)
	}
	return regexpMatcher{re: re}, nil
}

// specialsFromPostProcessor takes BOS from a TemplateProcessing single
// template's special token before $A, and EOS from one after it.
func (t *ByteLevelBPE) specialsFromPostProcessor(raw json.RawMessage, depth int) error {
	if isNull(raw) {
		return nil
	}
	c, err := parseComponent(raw, depth)
	if err != nil {
		return err
	}
	switch c.Type {
	case "Sequence":
		for i, p := range c.Processors {
			if err := t.specialsFromPostProcessor(p, depth+1); err != nil {
				return fmt.Errorf("processors[%d]: %w", i, err)
			}
		}
	case "TemplateProcessing":
		seenSequence := false
		for _, piece := range c.Single {
			switch {
			case piece.Sequence != nil:
				seenSequence = true
			case piece.SpecialToken != nil:
				id, ok := t.templateID(c, piece.SpecialToken.ID)
				if !ok {
					return fmt.Errorf("template special token %q is not a single known token", piece.SpecialToken.ID)
				}
				if !seenSequence && t.bos < 0 {
					// transformers adds what the template says: this
					// is the one case where encoding starts with BOS.
					t.bos, t.addBOS = id, true
				} else if seenSequence && t.eos < 0 {
					t.eos = id
				}
			}
		}
	}
	// Other processors (ByteLevel, ...) add no special tokens we use.
	return nil
}

func (t *ByteLevelBPE) templateID(c hfComponent, name string) (int32, bool) {
	if st, ok := c.SpecialTokens[name]; ok && len(st.IDs) == 1 {
		id := st.IDs[0]
		if id >= 0 && id < int64(len(t.tokens)) {
			return int32(id), true
		}
		return 0, false
	}
	return t.TokenID(name)
}

func (t *ByteLevelBPE) firstKnown(names []string) int32 {
	for _, n := range names {
		if id, ok := t.TokenID(n); ok {
			return id
		}
	}
	return -1
}
