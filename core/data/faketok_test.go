package data

import (
	"github.com/graft-ml/graft/core/tokenizer"
)

// byteTok is a test tokenizer with one token per byte: byte b is id b+3,
// UNK is 0, BOS 1, EOS 2, and the named specials follow the bytes. Its
// specials are only found by scanning TokenString, which is the path
// tokenizers without a TokenID method take.
type byteTok struct {
	bos, eos int32
	specials []string // ids 259, 260, ...
}

const byteOffset = 3

func newByteTok(specials ...string) *byteTok { return &byteTok{bos: 1, eos: 2, specials: specials} }

func (t *byteTok) Encode(text string, addBOS bool) []int32 {
	var out []int32
	if addBOS && t.bos >= 0 {
		out = append(out, t.bos)
	}
	for i := 0; i < len(text); i++ {
		out = append(out, int32(text[i])+byteOffset)
	}
	return out
}

func (t *byteTok) Decode(ids []int32) string {
	var out []byte
	for _, id := range ids {
		out = append(out, t.TokenBytes(id)...)
	}
	return string(out)
}

func (t *byteTok) TokenBytes(id int32) []byte {
	if id >= byteOffset && id < 256+byteOffset {
		return []byte{byte(id - byteOffset)}
	}
	return nil
}

func (t *byteTok) TokenString(id int32) string {
	switch {
	case id == 0:
		return "<unk>"
	case id == 1:
		return "<s>"
	case id == 2:
		return "</s>"
	case id >= byteOffset && id < 256+byteOffset:
		return string(rune(id - byteOffset))
	case int(id) >= 256+byteOffset && int(id) < t.VocabSize():
		return t.specials[id-256-byteOffset]
	}
	return ""
}

func (t *byteTok) VocabSize() int { return 256 + byteOffset + len(t.specials) }
func (t *byteTok) BOS() int32     { return t.bos }
func (t *byteTok) EOS() int32     { return t.eos }
func (t *byteTok) Kind() string   { return "test-bytes" }

// special returns the id of a special token the test tokenizer was built
// with.
func (t *byteTok) special(s string) int32 {
	for i, sp := range t.specials {
		if sp == s {
			return int32(256 + byteOffset + i)
		}
	}
	panic("test tokenizer has no special " + s)
}

// prefixTok is byteTok with a SentencePiece-style space prefix: every
// encoded text gets a leading ' '.
type prefixTok struct{ *byteTok }

func (t prefixTok) Encode(text string, addBOS bool) []int32 {
	ids := t.byteTok.Encode("", addBOS)
	if text == "" {
		return ids
	}
	return append(ids, t.byteTok.Encode(" "+text, false)...)
}

func (prefixTok) AddSpacePrefix() bool { return true }

var (
	_ tokenizer.Tokenizer = (*byteTok)(nil)
	_ tokenizer.Tokenizer = prefixTok{}
)

// part is one piece of an expected example: text (one id per byte) or a
// single id, with its loss flag.
type part struct {
	text string
	id   int32
	loss bool
}

func txt(s string, loss bool) part   { return part{text: s, id: -1, loss: loss} }
func tokID(id int32, loss bool) part { return part{id: id, loss: loss} }

// build spells out the example the parts describe.
func build(parts ...part) Example {
	var ex Example
	for _, p := range parts {
		if p.id >= 0 {
			ex.IDs = append(ex.IDs, p.id)
			ex.Loss = append(ex.Loss, p.loss)
			continue
		}
		for i := 0; i < len(p.text); i++ {
			ex.IDs = append(ex.IDs, int32(p.text[i])+byteOffset)
			ex.Loss = append(ex.Loss, p.loss)
		}
	}
	return ex
}
