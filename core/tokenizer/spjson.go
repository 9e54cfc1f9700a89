package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"unicode/utf8"
)

// Hugging Face stores SentencePiece-derived vocabularies (Llama 2,
// Mistral, TinyLlama, Gemma) in tokenizer.json as a BPE model with
// byte_fallback: spaces become '▁' in a normalizer (Prepend + Replace) or a
// Metaspace pre-tokenizer, merges are listed best first, and the decoder
// undoes it (Replace, ByteFallback, Fuse, Strip). That is the same
// algorithm as llama.cpp's SentencePiece tokenizer once merge ranks are
// read as scores, so such a file is loaded into a SentencePiece and
// encodes with the llama.cpp-exact code path.

// IsHFSentencePiece reports whether a tokenizer.json holds a
// SentencePiece-style vocabulary (a BPE model with byte_fallback), which
// ParseHFSentencePiece reads, rather than a byte-level one for
// ParseHFTokenizer.
func IsHFSentencePiece(data []byte) bool {
	var f struct {
		Model struct {
			ByteFallback bool `json:"byte_fallback"`
		} `json:"model"`
	}
	return json.Unmarshal(data, &f) == nil && f.Model.ByteFallback
}

// hfSPComponent holds the fields of the normalizers, pre-tokenizers and
// decoders that SentencePiece-style tokenizer.json files use.
type hfSPComponent struct {
	Type           string            `json:"type"`
	Prepend        *string           `json:"prepend"`
	Pattern        hfPattern         `json:"pattern"`
	Content        *string           `json:"content"`
	Replacement    *string           `json:"replacement"`
	PrependScheme  *string           `json:"prepend_scheme"`
	AddPrefixSpace *bool             `json:"add_prefix_space"`
	Split          *bool             `json:"split"`
	Start          *int              `json:"start"`
	Stop           *int              `json:"stop"`
	Normalizers    []json.RawMessage `json:"normalizers"`
	Pretokenizers  []json.RawMessage `json:"pretokenizers"`
	Decoders       []json.RawMessage `json:"decoders"`
}

// spSteps is what the normalizer and pre-tokenizer of a SentencePiece-style
// file do to the text.
type spSteps struct {
	prefix  bool // '▁' is put in front of the text
	replace bool // ' ' becomes '▁'
}

// ParseHFSentencePiece builds a SentencePiece tokenizer from a Hugging Face
// tokenizer.json holding a BPE model with byte_fallback; name (usually the
// file's path) appears in error messages.
//
// Supported: normalizer none, Prepend("▁"), Replace(" " → "▁") or a
// Sequence of them; pre-tokenizer none, Metaspace (replacement "▁",
// prepend_scheme first/always/never or the older add_prefix_space, split
// false) or, after a Replace normalizer, Gemma's no-op Split at " "; decoder none, Replace("▁" → " "), ByteFallback, Fuse, Strip,
// Metaspace or a Sequence of them. Anything else is refused by name.
//
// Scores: llama.cpp merges by score, Hugging Face by merge rank. A piece
// made by a merge of rank r scores -r, unless the vocabulary is in
// merge order (as SentencePiece's own BPE vocabularies are, and as
// HFTokenizerJSON writes them), in which case normal piece i scores
// -(i - first normal id), which is what SentencePiece itself stores. Both
// give the same merges.
func ParseHFSentencePiece(data []byte, name string) (*SentencePiece, error) {
	sp, err := parseHFSentencePiece(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer.json %s: %w", name, err)
	}
	return sp, nil
}

func parseHFSentencePiece(data []byte) (*SentencePiece, error) {
	var f hfFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	m := f.Model
	switch {
	case m.Type != "" && m.Type != "BPE":
		return nil, fmt.Errorf("model type %q is not supported (only BPE)", m.Type)
	case !m.ByteFallback:
		return nil, errors.New("BPE without byte_fallback is not a SentencePiece-style vocabulary")
	case m.Vocab == nil:
		return nil, errors.New("model has no vocab")
	case m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "":
		return nil, errors.New("BPE continuing_subword_prefix is not supported")
	case m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "":
		return nil, errors.New("BPE end_of_word_suffix is not supported")
	}
	var steps spSteps
	if err := steps.normalizer(f.Normalizer, 0); err != nil {
		return nil, fmt.Errorf("normalizer: %w", err)
	}
	if err := steps.preTokenizer(f.PreTokenizer, 0); err != nil {
		return nil, fmt.Errorf("pre_tokenizer: %w", err)
	}
	if !steps.replace {
		return nil, errors.New("neither the normalizer nor the pre-tokenizer writes spaces as '▁' (Replace or Metaspace)")
	}
	if err := checkSPDecoder(f.Decoder, 0); err != nil {
		return nil, fmt.Errorf("decoder: %w", err)
	}

	// Dense id table from the vocab and the added tokens.
	n := 0
	for tok, id := range m.Vocab {
		if id < 0 || id >= maxVocabID {
			return nil, fmt.Errorf("vocab: token %q has id %d out of range", tok, id)
		}
		n = max(n, int(id)+1)
	}
	for _, a := range f.AddedTokens {
		if a.ID < 0 || a.ID >= maxVocabID {
			return nil, fmt.Errorf("added_tokens: %q has id %d out of range", a.Content, a.ID)
		}
		n = max(n, int(a.ID)+1)
	}
	tokens := make([]string, n)
	types := make([]int32, n)
	known := make([]bool, n)
	for tok, id := range m.Vocab {
		if known[id] && tokens[id] != tok {
			return nil, fmt.Errorf("vocab: id %d is both %q and %q", id, tokens[id], tok)
		}
		tokens[id], known[id] = tok, true
		types[id] = TokenTypeNormal
		if _, ok := parseByteToken(tok); ok {
			types[id] = TokenTypeByte
		}
	}
	for _, a := range f.AddedTokens {
		if known[a.ID] && tokens[a.ID] != a.Content {
			return nil, fmt.Errorf("added_tokens: id %d is %q in the vocab but %q here", a.ID, tokens[a.ID], a.Content)
		}
		tokens[a.ID], known[a.ID] = a.Content, true
		types[a.ID] = TokenTypeUserDefined
		if a.Special {
			types[a.ID] = TokenTypeControl
		}
	}
	for id, ok := range known {
		if !ok {
			return nil, fmt.Errorf("no token has id %d (a SentencePiece vocabulary is dense)", id)
		}
	}
	unk := int32(-1)
	if m.UnkToken != nil {
		id, ok := m.Vocab[*m.UnkToken]
		if !ok {
			return nil, fmt.Errorf("unk_token %q is not in the vocab", *m.UnkToken)
		}
		unk = int32(id)
		types[unk] = TokenTypeUnknown
	}
	scores, err := spScores(tokens, types, m.Merges)
	if err != nil {
		return nil, err
	}
	lookup := func(s string) (int32, bool) {
		for i, t := range tokens {
			if t == s {
				return int32(i), true
			}
		}
		return -1, false
	}
	bos, inTemplate, err := spTemplateBOS(f.PostProcessor, lookup)
	if err != nil {
		return nil, fmt.Errorf("post_processor: %w", err)
	}
	if bos < 0 {
		bos = firstOf(lookup, "<s>", "<bos>")
	}
	eos := firstOf(lookup, "</s>", "<eos>")
	return NewSentencePiece(SentencePieceConfig{
		Tokens: tokens, Scores: scores, Types: types,
		BOS: bos, EOS: eos, UNK: unk,
		AddSpacePrefix: steps.prefix,
		OmitBOS:        !inTemplate,
	})
}

func firstOf(lookup func(string) (int32, bool), names ...string) int32 {
	for _, s := range names {
		if id, ok := lookup(s); ok {
			return id
		}
	}
	return -1
}

// spScores turns merge ranks into scores (see ParseHFSentencePiece).
func spScores(tokens []string, types []int32, merges []json.RawMessage) ([]float32, error) {
	id := make(map[string]int, len(tokens))
	for i, t := range tokens {
		if _, dup := id[t]; !dup && types[i] == TokenTypeNormal {
			id[t] = i
		}
	}
	rank := make([]int, len(tokens)) // rank+1 of the first merge making token i; 0: none
	for r, raw := range merges {
		a, b, err := parseMerge(raw)
		if err != nil {
			return nil, fmt.Errorf("merges[%d]: %w", r, err)
		}
		i, ok := id[a+b]
		if !ok {
			return nil, fmt.Errorf("merges[%d]: %q + %q makes %q, which is not a normal token of the vocab", r, a, b, a+b)
		}
		if rank[i] == 0 {
			rank[i] = r + 1
		}
	}
	first := -1
	for i, t := range types {
		if t == TokenTypeNormal {
			first = i
			break
		}
	}
	// Is the vocabulary in merge order? Then ids are the scores.
	inOrder, last := true, -1
	byRank := make([]int, 0, len(tokens))
	for i, r := range rank {
		if r > 0 {
			byRank = append(byRank, i)
		}
	}
	sort.Slice(byRank, func(x, y int) bool { return rank[byRank[x]] < rank[byRank[y]] })
	for _, i := range byRank {
		if i < last {
			inOrder = false
			break
		}
		last = i
	}
	scores := make([]float32, len(tokens))
	for i, t := range types {
		switch {
		case t != TokenTypeNormal:
		case inOrder:
			scores[i] = -float32(i - first)
		case rank[i] > 0:
			scores[i] = -float32(rank[i] - 1)
		default:
			// Pieces no merge makes (single characters) are never looked
			// up as merge results; keep them below every merged piece.
			scores[i] = -float32(len(merges) + i)
		}
	}
	return scores, nil
}

// spTemplateBOS reads a TemplateProcessing post-processor: the special
// token before $A is the BOS transformers adds.
func spTemplateBOS(raw json.RawMessage, lookup func(string) (int32, bool)) (bos int32, added bool, err error) {
	if isNull(raw) {
		return -1, false, nil
	}
	c, err := parseComponent(raw, 0)
	if err != nil {
		return -1, false, err
	}
	switch c.Type {
	case "TemplateProcessing":
	case "ByteLevel":
		return -1, false, nil
	default:
		return -1, false, fmt.Errorf("type %q is not supported (supported: TemplateProcessing)", c.Type)
	}
	for _, p := range c.Single {
		if p.Sequence != nil {
			break
		}
		if p.SpecialToken != nil {
			if st, ok := c.SpecialTokens[p.SpecialToken.ID]; ok && len(st.IDs) == 1 {
				return int32(st.IDs[0]), true, nil
			}
			if id, ok := lookup(p.SpecialToken.ID); ok {
				return id, true, nil
			}
			return -1, false, fmt.Errorf("special token %q is not in the vocabulary", p.SpecialToken.ID)
		}
	}
	return -1, false, nil
}

func (s *spSteps) normalizer(raw json.RawMessage, depth int) error {
	if isNull(raw) {
		return nil
	}
	c, err := parseSPComponent(raw, depth)
	if err != nil {
		return err
	}
	switch c.Type {
	case "Sequence":
		for _, n := range c.Normalizers {
			if err := s.normalizer(n, depth+1); err != nil {
				return err
			}
		}
		return nil
	case "Prepend":
		if c.Prepend == nil || *c.Prepend != spaceMarker {
			return fmt.Errorf("Prepend of %q is not supported (only %q)", deref(c.Prepend), spaceMarker)
		}
		if s.replace {
			return errors.New("Prepend after Replace is not supported")
		}
		s.prefix = true
		return nil
	case "Replace":
		if c.Pattern.String == nil || *c.Pattern.String != " " || c.Content == nil || *c.Content != spaceMarker {
			return fmt.Errorf("Replace of %q by %q is not supported (only \" \" by %q)", deref(c.Pattern.String), deref(c.Content), spaceMarker)
		}
		s.replace = true
		return nil
	}
	return fmt.Errorf("type %q is not supported (supported: Prepend, Replace, Sequence)", c.Type)
}

func (s *spSteps) preTokenizer(raw json.RawMessage, depth int) error {
	if isNull(raw) {
		return nil
	}
	c, err := parseSPComponent(raw, depth)
	if err != nil {
		return err
	}
	switch c.Type {
	case "Sequence":
		for _, p := range c.Pretokenizers {
			if err := s.preTokenizer(p, depth+1); err != nil {
				return err
			}
		}
		return nil
	case "Split":
		// Gemma's files split at " " after a normalizer that has already
		// written every space as '▁': nothing is left to split.
		if c.Pattern.String == nil || *c.Pattern.String != " " || !s.replace {
			return fmt.Errorf("Split is supported only at \" \" after a normalizer that writes spaces as '▁' (a no-op), not at %q", deref(c.Pattern.String))
		}
		return nil
	case "Metaspace":
		if c.Replacement != nil && *c.Replacement != spaceMarker {
			return fmt.Errorf("Metaspace replacement %q is not supported (only %q)", *c.Replacement, spaceMarker)
		}
		if c.Split != nil && *c.Split {
			return errors.New("Metaspace with split true is not supported (SentencePiece does not split at spaces)")
		}
		if s.replace {
			return errors.New("Metaspace after a normalizer that already writes '▁' is not supported")
		}
		s.replace = true
		switch {
		case c.PrependScheme != nil:
			switch *c.PrependScheme {
			case "first", "always":
				s.prefix = true
			case "never":
			default:
				return fmt.Errorf("Metaspace prepend_scheme %q is not supported (supported: first, always, never)", *c.PrependScheme)
			}
		case c.AddPrefixSpace != nil:
			s.prefix = *c.AddPrefixSpace
		default:
			s.prefix = true
		}
		return nil
	}
	return fmt.Errorf("type %q is not supported (supported: Metaspace, Split at \" \" after Replace, Sequence)", c.Type)
}

// checkSPDecoder accepts the decoders that undo SentencePiece's encoding;
// graft decodes from the token bytes, so they need no further reading.
func checkSPDecoder(raw json.RawMessage, depth int) error {
	if isNull(raw) {
		return nil
	}
	c, err := parseSPComponent(raw, depth)
	if err != nil {
		return err
	}
	switch c.Type {
	case "Sequence":
		for _, d := range c.Decoders {
			if err := checkSPDecoder(d, depth+1); err != nil {
				return err
			}
		}
		return nil
	case "Replace":
		if c.Pattern.String == nil || *c.Pattern.String != spaceMarker || c.Content == nil || *c.Content != " " {
			return fmt.Errorf("Replace of %q by %q is not supported (only %q by \" \")", deref(c.Pattern.String), deref(c.Content), spaceMarker)
		}
		return nil
	case "ByteFallback", "Fuse", "Metaspace":
		return nil
	case "Strip":
		if c.Content != nil && *c.Content != " " {
			return fmt.Errorf("Strip of %q is not supported (only \" \")", *c.Content)
		}
		return nil
	}
	return fmt.Errorf("type %q is not supported (supported: Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence)", c.Type)
}

func parseSPComponent(raw json.RawMessage, depth int) (hfSPComponent, error) {
	var c hfSPComponent
	if depth > maxComponents {
		return c, errors.New("components nested too deeply")
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, err
	}
	if len(c.Normalizers)+len(c.Pretokenizers)+len(c.Decoders) > maxComponents {
		return c, fmt.Errorf("more than %d components in a sequence", maxComponents)
	}
	return c, nil
}

func deref(s *string) string {
	if s == nil {
		return "<none>"
	}
	return *s
}

// HFTokenizerJSON returns sp as a Hugging Face tokenizer.json in the form
// transformers' converter writes for Llama 2 and Gemma, which
// ParseHFSentencePiece and transformers read: a BPE model with
// byte_fallback whose merges are every split of each multi-character
// piece into two mergeable pieces, best score first; control and unknown
// tokens as special added tokens and user-defined ones as added tokens that
// are not special; a normalizer writing spaces as '▁' (prefixed with one
// where sp adds a space prefix), a template post-processor that prepends
// BOS where sp adds it, and the matching decoder.
func (sp *SentencePiece) HFTokenizerJSON() ([]byte, error) {
	type added struct {
		ID         int32  `json:"id"`
		Content    string `json:"content"`
		SingleWord bool   `json:"single_word"`
		LStrip     bool   `json:"lstrip"`
		RStrip     bool   `json:"rstrip"`
		Normalized bool   `json:"normalized"`
		Special    bool   `json:"special"`
	}
	vocab := make(map[string]int32, len(sp.tokens))
	var adds []added
	for i, tok := range sp.tokens {
		id := int32(i)
		if _, dup := vocab[tok]; dup || tok == "" {
			return nil, fmt.Errorf("tokenizer.json: token %d %q is empty or repeats an earlier one, which tokenizer.json cannot hold", i, tok)
		}
		switch sp.types[i] {
		case TokenTypeNormal, TokenTypeByte, TokenTypeUnknown:
		case TokenTypeControl:
			adds = append(adds, added{ID: id, Content: tok, Special: true})
		case TokenTypeUserDefined:
			adds = append(adds, added{ID: id, Content: tok})
		default:
			return nil, fmt.Errorf("tokenizer.json: token %d %q has ggml type %d, which tokenizer.json cannot hold", i, tok, sp.types[i])
		}
		vocab[tok] = id
	}
	pairs := sp.mergePairs()
	var merges any = pairs
	if joined, ok := joinMerges(pairs); ok {
		merges = joined
	}
	normalizer := json.RawMessage(`{"type":"Replace","pattern":{"String":" "},"content":"▁"}`)
	decoder := `{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},{"type":"ByteFallback"},{"type":"Fuse"}]}`
	if sp.addSpacePrefix {
		normalizer = json.RawMessage(`{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]}`)
		decoder = `{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},{"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]}`
	}
	post := json.RawMessage("null")
	if sp.AddsBOS() {
		bos := jsonQuote(sp.tokens[sp.bos])
		post = json.RawMessage(fmt.Sprintf(`{"type":"TemplateProcessing",`+
			`"single":[{"SpecialToken":{"id":%[1]s,"type_id":0}},{"Sequence":{"id":"A","type_id":0}}],`+
			`"pair":[{"SpecialToken":{"id":%[1]s,"type_id":0}},{"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":%[1]s,"type_id":1}},{"Sequence":{"id":"B","type_id":1}}],`+
			`"special_tokens":{%[1]s:{"id":%[1]s,"ids":[%[2]d],"tokens":[%[1]s]}}}`, bos, sp.bos))
	}
	// tokenizer.json types a vocab entry as unknown only through
	// unk_token: name the first unknown-typed token where sp has no UNK id
	// (GGUF files may leave unknown_token_id out; llama.cpp then takes 0).
	var unk any
	for i, typ := range sp.types {
		if int32(i) == sp.unk || (sp.unk < 0 && typ == TokenTypeUnknown) {
			unk = sp.tokens[i]
			break
		}
	}
	doc := struct {
		Version       string          `json:"version"`
		Truncation    any             `json:"truncation"`
		Padding       any             `json:"padding"`
		AddedTokens   []added         `json:"added_tokens"`
		Normalizer    json.RawMessage `json:"normalizer"`
		PreTokenizer  any             `json:"pre_tokenizer"`
		PostProcessor json.RawMessage `json:"post_processor"`
		Decoder       json.RawMessage `json:"decoder"`
		Model         any             `json:"model"`
	}{
		Version: "1.0", AddedTokens: adds, Normalizer: normalizer, PostProcessor: post,
		Decoder: json.RawMessage(decoder),
		Model: map[string]any{
			"type": "BPE", "dropout": nil, "unk_token": unk, "continuing_subword_prefix": nil, "end_of_word_suffix": nil,
			"fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
			"vocab": vocab, "merges": merges,
		},
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	return buf.Bytes(), nil
}

// mergePairs lists, for each multi-character normal piece from the best
// score down (ties by id), its splits into two mergeable pieces, left part
// shortest first: the merges that let Hugging Face's BPE build every piece
// llama.cpp's SentencePiece tokenizer can.
func (sp *SentencePiece) mergePairs() [][2]string {
	var pieces []int32
	for _, id := range sp.mergeable.ids {
		if sp.types[id] == TokenTypeNormal && utf8.RuneCountInString(sp.tokens[id]) > 1 {
			pieces = append(pieces, id)
		}
	}
	sort.Slice(pieces, func(i, j int) bool {
		a, b := pieces[i], pieces[j]
		if sp.scores[a] != sp.scores[b] {
			return sp.scores[a] > sp.scores[b]
		}
		return a < b
	})
	var pairs [][2]string
	for _, id := range pieces {
		tok := sp.tokens[id]
		for i := range tok {
			if i == 0 {
				continue
			}
			l, r := tok[:i], tok[i:]
			if _, ok := sp.mergeable.lookup(l); !ok {
				continue
			}
			if _, ok := sp.mergeable.lookup(r); !ok {
				continue
			}
			pairs = append(pairs, [2]string{l, r})
		}
	}
	return pairs
}

// GGUFSentencePieceConfig is sp as GGUF's tokenizer.ggml.* keys hold it.
func (sp *SentencePiece) GGUFSentencePieceConfig() SentencePieceConfig {
	return SentencePieceConfig{
		Tokens: sp.tokens, Scores: sp.scores, Types: sp.types,
		BOS: sp.bos, EOS: sp.eos, UNK: sp.unk,
		AddSpacePrefix: sp.addSpacePrefix, OmitBOS: !sp.addBOS,
	}
}
