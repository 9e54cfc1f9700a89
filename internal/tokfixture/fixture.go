// Package tokfixture holds the test vocabularies for graft's GGUF
// tokenizers and llama.cpp's ids for them:
//
//   - bpe_vocab.json: GPT-2's byte alphabet and first 3000 merges (MIT, see
//     LICENSE.gpt2) plus the special, added and whole-word tokens that
//     Llama 3, Qwen2 and SmolLM vocabularies have;
//   - spm_vocab.json: stories260K's 512-piece SentencePiece vocabulary
//     (MIT, see LICENSE.stories260K) plus Gemma's turn tokens and an added
//     token;
//   - cases.json: the strings to tokenize and the GGUF settings of each
//     byte-level pre-tokenizer and SentencePiece variant;
//   - llamacpp.json: what llama.cpp makes of them, written by
//     `go run ./tools/tokgolden golden`.
//
// Tests give the vocabularies to graft as GGUF metadata, and the
// byte-level one from there as a Hugging Face tokenizer.json, and check
// both paths against llama.cpp and against each other.
package tokfixture

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"

	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/tokenizer"
)

var (
	//go:embed bpe_vocab.json
	bpeVocabJSON []byte
	//go:embed spm_vocab.json
	spmVocabJSON []byte
	//go:embed cases.json
	casesJSON []byte
	//go:embed llamacpp.json
	goldenJSON []byte
)

// Fixture is everything in the package's files.
type Fixture struct {
	BPE    *Vocab
	SPM    *SPMVocab
	Cases  *Cases
	Golden *Golden
}

// Vocab is a byte-level BPE vocabulary as GGUF stores one.
type Vocab struct {
	Tokens []string `json:"tokens"`
	Types  []int32  `json:"types"`  // tokenizer.TokenTypeNormal ...
	Merges []string `json:"merges"` // "left right", best first
}

// Pre is one pre-tokenizer's GGUF settings. Tokens are named by text; ""
// leaves the key out of the file.
type Pre struct {
	Pre    string `json:"pre"`
	BOS    string `json:"bos,omitempty"`
	EOS    string `json:"eos,omitempty"`
	EOT    string `json:"eot,omitempty"`
	AddBOS *bool  `json:"add_bos,omitempty"`
}

// SPMSettings are one SentencePiece variant's GGUF settings (BOS 1, EOS
// 2 and unknown 0 throughout): Llama 2's adds a space prefix, Gemma's not.
type SPMSettings struct {
	Name           string `json:"name"`
	AddSpacePrefix bool   `json:"add_space_prefix"`
	AddBOS         *bool  `json:"add_bos,omitempty"`
}

// Cases are the strings to tokenize and the vocabularies' settings to do
// it with.
type Cases struct {
	Strings []string `json:"strings"`
	// HFDivergent are strings on which Hugging Face's tokenizers and
	// llama.cpp legitimately disagree (see their "why" in cases.json).
	HFDivergent    []string      `json:"hf_divergent"`
	WhyHFDivergent string        `json:"why_hf_divergent"`
	Pres           []Pre         `json:"pres"` // byte-level BPE
	SPM            []SPMSettings `json:"spm"`  // SentencePiece
}

// Golden is what llama.cpp makes of Cases: one entry per Pre, then per
// SPMSettings, in order.
type Golden struct {
	Source string      `json:"source"` // the llama.cpp that produced it
	Pres   []GoldenPre `json:"pres"`
	SPM    []GoldenPre `json:"spm"`
}

// GoldenPre is llama.cpp's reading of one GGUF file.
type GoldenPre struct {
	Pre     string    `json:"pre"`     // Pre.Pre or SPMSettings.Name
	Strings []string  `json:"strings"` // Cases.Strings when written
	IDs     [][]int32 `json:"ids"`     // llama_tokenize(s, add_special=false, parse_special=true)
	BOS     int32     `json:"bos"`     // -1 for none
	EOS     int32     `json:"eos"`
	EOT     int32     `json:"eot"`
	AddBOS  bool      `json:"add_bos"`
	EOG     []int32   `json:"eog"` // ascending
}

// Load returns the embedded vocabularies, cases and llama.cpp's ids.
func Load() (*Fixture, error) {
	f := &Fixture{BPE: &Vocab{}, SPM: &SPMVocab{}, Cases: &Cases{}, Golden: &Golden{}}
	for _, file := range []struct {
		name string
		data []byte
		dst  any
	}{{"bpe_vocab.json", bpeVocabJSON, f.BPE}, {"spm_vocab.json", spmVocabJSON, f.SPM}, {"cases.json", casesJSON, f.Cases}, {"llamacpp.json", goldenJSON, f.Golden}} {
		dec := json.NewDecoder(bytes.NewReader(file.data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(file.dst); err != nil {
			return nil, fmt.Errorf("tokfixture %s: %w", file.name, err)
		}
	}
	if len(f.BPE.Types) != len(f.BPE.Tokens) {
		return nil, fmt.Errorf("tokfixture bpe_vocab.json: %d types for %d tokens", len(f.BPE.Types), len(f.BPE.Tokens))
	}
	if len(f.SPM.Types) != len(f.SPM.Tokens) || len(f.SPM.Scores) != len(f.SPM.Tokens) {
		return nil, fmt.Errorf("tokfixture spm_vocab.json: %d types and %d scores for %d tokens", len(f.SPM.Types), len(f.SPM.Scores), len(f.SPM.Tokens))
	}
	for _, p := range f.Cases.Pres {
		for _, name := range []string{p.BOS, p.EOS, p.EOT} {
			if name != "" && f.BPE.ID(name) < 0 {
				return nil, fmt.Errorf("tokfixture cases.json: pre %q names %q, which is not a token", p.Pre, name)
			}
		}
	}
	return f, nil
}

// ID is the id of a token text, or -1.
func (v *Vocab) ID(text string) int32 {
	for i, t := range v.Tokens {
		if t == text {
			return int32(i)
		}
	}
	return -1
}

// GGUFKVs is the tokenizer.ggml.* metadata of v with p's settings, as
// llama.cpp's converter writes it.
func (v *Vocab) GGUFKVs(p Pre) []gguf.KV {
	kvs := []gguf.KV{
		{Key: "tokenizer.ggml.model", Value: "gpt2"},
		{Key: "tokenizer.ggml.pre", Value: p.Pre},
		{Key: "tokenizer.ggml.tokens", Value: v.Tokens},
		{Key: "tokenizer.ggml.token_type", Value: v.Types},
		{Key: "tokenizer.ggml.merges", Value: v.Merges},
	}
	for _, id := range []struct{ key, name string }{{"bos", p.BOS}, {"eos", p.EOS}, {"eot", p.EOT}} {
		if id.name != "" {
			kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml." + id.key + "_token_id", Value: uint32(v.ID(id.name))})
		}
	}
	if p.AddBOS != nil {
		kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml.add_bos_token", Value: *p.AddBOS})
	}
	return kvs
}

// GGUFConfig is GGUFKVs as tokenizer.NewGGUFBPE takes it.
func (v *Vocab) GGUFConfig(p Pre) tokenizer.GGUFBPEConfig {
	c := tokenizer.GGUFBPEConfig{Tokens: v.Tokens, Types: v.Types, Merges: v.Merges, Pre: p.Pre, IDs: map[string]uint32{}, AddBOS: p.AddBOS}
	for _, id := range []struct{ key, name string }{{"bos", p.BOS}, {"eos", p.EOS}, {"eot", p.EOT}} {
		if id.name != "" {
			c.IDs[id.key] = uint32(v.ID(id.name))
		}
	}
	return c
}

// SPMVocab is a SentencePiece vocabulary as GGUF stores one.
type SPMVocab struct {
	Tokens []string  `json:"tokens"`
	Scores []float32 `json:"scores"`
	Types  []int32   `json:"types"`
}

// GGUFKVs is the tokenizer.ggml.* metadata of v with s's settings.
func (v *SPMVocab) GGUFKVs(s SPMSettings) []gguf.KV {
	kvs := []gguf.KV{
		{Key: "tokenizer.ggml.model", Value: "llama"},
		{Key: "tokenizer.ggml.pre", Value: "default"},
		{Key: "tokenizer.ggml.tokens", Value: v.Tokens},
		{Key: "tokenizer.ggml.scores", Value: v.Scores},
		{Key: "tokenizer.ggml.token_type", Value: v.Types},
		{Key: "tokenizer.ggml.bos_token_id", Value: uint32(1)},
		{Key: "tokenizer.ggml.eos_token_id", Value: uint32(2)},
		{Key: "tokenizer.ggml.unknown_token_id", Value: uint32(0)},
		{Key: "tokenizer.ggml.add_space_prefix", Value: s.AddSpacePrefix},
	}
	if s.AddBOS != nil {
		kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml.add_bos_token", Value: *s.AddBOS})
	}
	return kvs
}

// Config is GGUFKVs as tokenizer.NewSentencePiece takes it.
func (v *SPMVocab) Config(s SPMSettings) tokenizer.SentencePieceConfig {
	return tokenizer.SentencePieceConfig{
		Tokens: v.Tokens, Scores: v.Scores, Types: v.Types, BOS: 1, EOS: 2, UNK: 0,
		AddSpacePrefix: s.AddSpacePrefix, OmitBOS: s.AddBOS != nil && !*s.AddBOS,
	}
}
