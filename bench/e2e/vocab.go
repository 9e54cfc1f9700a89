package main

import (
	"fmt"

	"github.com/graft-ml/graft/core/formats/gguf"
)

// SentencePiece token types as llama.cpp's GGUF files record them.
const (
	tokenNormal  int32 = 1
	tokenUnknown int32 = 2
	tokenControl int32 = 3
	tokenByte    int32 = 6
)

// vocab is a SentencePiece-style ("llama") tokenizer vocabulary.
type vocab struct {
	tokens []string
	scores []float32
	types  []int32
}

// syntheticVocab returns n tokens laid out as Llama 2's: <unk>, <s>, </s>,
// the 256 byte tokens <0x00>..<0xFF>, then distinct word pieces. Benchmarks
// feed token ids, so the pieces only have to make a vocabulary llama.cpp
// and graft accept (llama.cpp needs the byte tokens, <0x0A> above all).
func syntheticVocab(n int) (*vocab, error) {
	const fixed = 3 + 256
	if n < fixed {
		return nil, fmt.Errorf("synthetic vocabulary of %d tokens: need at least %d for the special and byte tokens", n, fixed)
	}
	v := &vocab{tokens: make([]string, 0, n), scores: make([]float32, 0, n), types: make([]int32, 0, n)}
	add := func(tok string, score float32, typ int32) {
		v.tokens = append(v.tokens, tok)
		v.scores = append(v.scores, score)
		v.types = append(v.types, typ)
	}
	add("<unk>", 0, tokenUnknown)
	add("<s>", 0, tokenControl)
	add("</s>", 0, tokenControl)
	for b := range 256 {
		add(fmt.Sprintf("<0x%02X>", b), 0, tokenByte)
	}
	for i := 0; len(v.tokens) < n; i++ {
		// Every other piece starts a word, as SentencePiece's "▁" marks.
		piece := letters(i / 2)
		if i%2 == 0 {
			piece = "▁" + piece
		}
		add(piece, -float32(i), tokenNormal)
	}
	return v, nil
}

// letters writes i in bijective base 26 ("a", ..., "z", "aa", "ab", ...),
// so distinct i give distinct strings.
func letters(i int) string {
	var out []byte
	for i++; i > 0; i = (i - 1) / 26 {
		out = append(out, byte('a'+(i-1)%26))
	}
	for l, r := 0, len(out)-1; l < r; l, r = l+1, r-1 {
		out[l], out[r] = out[r], out[l]
	}
	return string(out)
}

func (v *vocab) kvs() []gguf.KV {
	return []gguf.KV{
		{Key: "tokenizer.ggml.model", Value: "llama"},
		{Key: "tokenizer.ggml.tokens", Value: v.tokens},
		{Key: "tokenizer.ggml.scores", Value: v.scores},
		{Key: "tokenizer.ggml.token_type", Value: v.types},
		{Key: "tokenizer.ggml.bos_token_id", Value: uint32(1)},
		{Key: "tokenizer.ggml.eos_token_id", Value: uint32(2)},
		{Key: "tokenizer.ggml.unknown_token_id", Value: uint32(0)},
		{Key: "tokenizer.ggml.add_bos_token", Value: true},
		{Key: "tokenizer.ggml.add_eos_token", Value: false},
	}
}
