// Package bpefixture is the test vocabulary for graft's byte-level BPE
// tokenizers and llama.cpp's ids for it: GPT-2's byte alphabet and first
// 3000 merges (vocab.json, MIT, see LICENSE.gpt2) plus the special, added
// and whole-word tokens that Llama 3, Qwen2 and SmolLM vocabularies have;
// the strings to tokenize and the GGUF settings of each pre-tokenizer
// (cases.json); and what llama.cpp makes of them (llamacpp.json, written by
// `go run ./tools/bpegolden golden`).
//
// Tests give the vocabulary to graft as GGUF metadata (GGUFKVs,
// GGUFConfig), and from there as a Hugging Face tokenizer.json, and check
// both paths against llama.cpp and against each other.
package bpefixture

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"

	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/tokenizer"
)

var (
	//go:embed vocab.json
	vocabJSON []byte
	//go:embed cases.json
	casesJSON []byte
	//go:embed llamacpp.json
	goldenJSON []byte
)

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

// Cases are the strings to tokenize and the pre-tokenizers to do it with.
type Cases struct {
	Strings []string `json:"strings"`
	// HFDivergent are strings on which Hugging Face's tokenizers and
	// llama.cpp legitimately disagree (see their "why" in cases.json).
	HFDivergent    []string `json:"hf_divergent"`
	WhyHFDivergent string   `json:"why_hf_divergent"`
	Pres           []Pre    `json:"pres"`
}

// Golden is what llama.cpp makes of Cases, one entry per Pre in order.
type Golden struct {
	Source string      `json:"source"` // the llama.cpp that produced it
	Pres   []GoldenPre `json:"pres"`
}

// GoldenPre is llama.cpp's reading of one Pre's GGUF file.
type GoldenPre struct {
	Pre     string    `json:"pre"`
	Strings []string  `json:"strings"` // Cases.Strings when written
	IDs     [][]int32 `json:"ids"`     // llama_tokenize(s, add_special=false, parse_special=true)
	BOS     int32     `json:"bos"`     // -1 for none
	EOS     int32     `json:"eos"`
	EOT     int32     `json:"eot"`
	AddBOS  bool      `json:"add_bos"`
	EOG     []int32   `json:"eog"` // ascending
}

// Load returns the embedded vocabulary, cases and llama.cpp's ids.
func Load() (*Vocab, *Cases, *Golden, error) {
	var v Vocab
	var c Cases
	var g Golden
	for _, f := range []struct {
		name string
		data []byte
		dst  any
	}{{"vocab.json", vocabJSON, &v}, {"cases.json", casesJSON, &c}, {"llamacpp.json", goldenJSON, &g}} {
		dec := json.NewDecoder(bytes.NewReader(f.data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(f.dst); err != nil {
			return nil, nil, nil, fmt.Errorf("bpefixture %s: %w", f.name, err)
		}
	}
	if len(v.Types) != len(v.Tokens) {
		return nil, nil, nil, fmt.Errorf("bpefixture vocab.json: %d types for %d tokens", len(v.Types), len(v.Tokens))
	}
	for _, p := range c.Pres {
		for _, name := range []string{p.BOS, p.EOS, p.EOT} {
			if name != "" && v.ID(name) < 0 {
				return nil, nil, nil, fmt.Errorf("bpefixture cases.json: pre %q names %q, which is not a token", p.Pre, name)
			}
		}
	}
	return &v, &c, &g, nil
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
