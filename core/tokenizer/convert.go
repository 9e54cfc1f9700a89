package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// A byte-level BPE vocabulary moves between GGUF metadata and a Hugging
// Face tokenizer.json when its pre-tokenizer is one llama.cpp knows: the
// GGUF side names it (tokenizer.ggml.pre), the tokenizer.json side spells
// it out (ggmlPre.hf). Tokens, merges and special ids carry over as they
// are; a GGUF control token is a special added token, a user-defined one an
// added token that is not special.

// ggmlPreOfHF names the llama.cpp pre-tokenizer that splits text as the
// tokenizer.json pre-tokenizer pre does (with its BPE model's
// ignore_merges), or "" when llama.cpp has none.
func ggmlPreOfHF(pre preTokenizer, ignoreMerges bool) string {
	for _, row := range ggmlPres {
		if row.ignoreMerges != ignoreMerges {
			continue
		}
		rowPre, _, err := parsePreTokenizer(json.RawMessage(row.hf), 0)
		if err == nil && reflect.DeepEqual(rowPre, pre) {
			return row.names[0]
		}
	}
	return ""
}

// GGMLPre is the tokenizer.ggml.pre value of t's pre-tokenizer, or "" when
// t comes from a tokenizer.json whose pre-tokenizer llama.cpp lacks.
func (t *ByteLevelBPE) GGMLPre() string { return t.ggmlPre }

// GGUFConfig returns t as GGUF metadata holds it (tokenizer.ggml.* with
// model "gpt2"), ready to write: NewGGUFBPE of the result encodes as
// llama.cpp does with that file. Ids that no token has become unused
// "[PAD<id>]" tokens, as llama.cpp's converter writes them.
func (t *ByteLevelBPE) GGUFConfig() (GGUFBPEConfig, error) {
	if t.ggmlPre == "" {
		return GGUFBPEConfig{}, errors.New("the tokenizer.json pre-tokenizer is not one llama.cpp implements, so there is no tokenizer.ggml.pre for it")
	}
	merges, ok := joinMerges(t.mergePairs())
	if !ok {
		// llama.cpp splits a merge at its first space after the first byte.
		return GGUFBPEConfig{}, errors.New("a merge has a token with a space in it, which tokenizer.ggml.merges cannot hold")
	}
	n := len(t.tokens)
	c := GGUFBPEConfig{
		Tokens: make([]string, n), Types: make([]int32, n), Merges: merges,
		Pre: t.ggmlPre, IDs: map[string]uint32{}, AddBOS: new(bool),
	}
	*c.AddBOS = t.addBOS
	for i, tok := range t.tokens {
		c.Tokens[i], c.Types[i] = tok, t.types[i]
		if tok == "" {
			c.Tokens[i], c.Types[i] = fmt.Sprintf("[PAD%d]", i), TokenTypeUnused
		}
	}
	// BOS and EOS only, as llama.cpp's converter writes: end-of-turn and
	// the like llama.cpp finds by their text, which here may name several
	// candidates it chooses among in its own order.
	if t.bos >= 0 {
		c.IDs["bos"] = uint32(t.bos)
	}
	if t.eos >= 0 {
		c.IDs["eos"] = uint32(t.eos)
	}
	return c, nil
}

// mergePairs is the merges as (left, right) token texts, best first.
func (t *ByteLevelBPE) mergePairs() [][2]string {
	type ranked struct {
		rank int32
		key  uint64
	}
	all := make([]ranked, 0, len(t.merges))
	for key, m := range t.merges {
		all = append(all, ranked{m.rank, key})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].rank < all[j].rank })
	out := make([][2]string, len(all))
	for i, r := range all {
		out[i] = [2]string{t.tokens[int32(r.key>>32)], t.tokens[int32(uint32(r.key))]}
	}
	return out
}

// joinMerges writes merges as GGUF and older tokenizer.json files do,
// "left right"; ok is false when a token holds a space, which that form
// cannot carry.
func joinMerges(pairs [][2]string) (merges []string, ok bool) {
	merges = make([]string, len(pairs))
	for i, p := range pairs {
		if strings.Contains(p[0], " ") || strings.Contains(p[1], " ") {
			return nil, false
		}
		merges[i] = p[0] + " " + p[1]
	}
	return merges, true
}

// HFTokenizerJSON returns t as a Hugging Face tokenizer.json that
// ParseHFTokenizer and transformers read: its pre-tokenizer spelled out,
// normal tokens in the BPE vocab, control and unknown tokens as special
// added tokens, user-defined ones as added tokens that are not special,
// and a template post-processor that prepends BOS where t adds it.
func (t *ByteLevelBPE) HFTokenizerJSON() ([]byte, error) {
	row, err := lookupGGMLPre(t.ggmlPre)
	if err != nil {
		return nil, err
	}
	type added struct {
		ID         int32  `json:"id"`
		Content    string `json:"content"`
		SingleWord bool   `json:"single_word"`
		LStrip     bool   `json:"lstrip"`
		RStrip     bool   `json:"rstrip"`
		Normalized bool   `json:"normalized"`
		Special    bool   `json:"special"`
	}
	vocab := map[string]int32{}
	var adds []added
	for i, tok := range t.tokens {
		id := int32(i)
		switch t.types[i] {
		case TokenTypeControl, TokenTypeUnknown:
			adds = append(adds, added{ID: id, Content: tok, Special: true})
		case TokenTypeUserDefined:
			adds = append(adds, added{ID: id, Content: tok, Normalized: true})
		default:
			if tok != "" {
				vocab[tok] = id
			}
		}
	}
	// Merges as "a b" unless a token holds a space, which needs the newer
	// [a, b] form (for the whole list: tokenizers reads one form or the
	// other).
	pairs := t.mergePairs()
	var merges any = pairs
	if joined, ok := joinMerges(pairs); ok {
		merges = joined
	}
	post := json.RawMessage(`{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":false,"use_regex":false}`)
	if t.AddsBOS() {
		bos := jsonQuote(t.tokens[t.bos])
		post = json.RawMessage(fmt.Sprintf(`{"type":"TemplateProcessing",`+
			`"single":[{"SpecialToken":{"id":%[1]s,"type_id":0}},{"Sequence":{"id":"A","type_id":0}}],`+
			`"pair":[{"SpecialToken":{"id":%[1]s,"type_id":0}},{"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":%[1]s,"type_id":1}},{"Sequence":{"id":"B","type_id":1}}],`+
			`"special_tokens":{%[1]s:{"id":%[1]s,"ids":[%[2]d],"tokens":[%[1]s]}}}`, bos, t.bos))
	}
	doc := struct {
		Version       string          `json:"version"`
		Truncation    any             `json:"truncation"`
		Padding       any             `json:"padding"`
		AddedTokens   []added         `json:"added_tokens"`
		Normalizer    any             `json:"normalizer"`
		PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
		PostProcessor json.RawMessage `json:"post_processor"`
		Decoder       json.RawMessage `json:"decoder"`
		Model         any             `json:"model"`
	}{
		Version: "1.0", AddedTokens: adds, PreTokenizer: json.RawMessage(row.hf), PostProcessor: post,
		Decoder: json.RawMessage(`{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true}`),
		Model: map[string]any{
			"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": nil, "end_of_word_suffix": nil,
			"fuse_unk": false, "byte_fallback": false, "ignore_merges": row.ignoreMerges,
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
