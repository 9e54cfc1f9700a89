// Package bpefixture is the test vocabulary for graft's byte-level BPE
// tokenizers and llama.cpp's ids for it: GPT-2's byte alphabet and first
// 3000 merges (vocab.json, MIT, see LICENSE.gpt2) plus the special, added
// and whole-word tokens that Llama 3, Qwen2 and SmolLM vocabularies have;
// the strings to tokenize and the GGUF settings of each pre-tokenizer
// (cases.json); and what llama.cpp makes of them (llamacpp.json, written by
// `go run ./tools/bpegolden golden`).
//
// The same vocabulary is given to graft as GGUF metadata (GGUFKVs) and as a
// Hugging Face tokenizer.json (TokenizerJSON), so that tests check both
// paths against llama.cpp and against each other.
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

// hfPreTokenizers are the tokenizer.json pre_tokenizer objects of the
// models whose GGUF pre names these are (for "default", the regexes
// llama.cpp uses, written as Split steps).
var hfPreTokenizers = map[string]string{
	"gpt-2":     `{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}`,
	"llama-bpe": `{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":` + jsonString(tokenizer.Llama3Pattern) + `},"behavior":"Isolated","invert":false},{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":false}]}`,
	"qwen2":     `{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":` + jsonString(tokenizer.Qwen2Pattern) + `},"behavior":"Isolated","invert":false},{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":false,"use_regex":false}]}`,
	"smollm":    `{"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":true},{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}]}`,
	"default": `{"type":"Sequence","pretokenizers":[` +
		`{"type":"Split","pattern":{"Regex":` + jsonString(`[\p{P}\$\+<=>\^~\|]+`) + `},"behavior":"Isolated","invert":false},` +
		`{"type":"Split","pattern":{"Regex":` + jsonString(tokenizer.GPT2Pattern) + `},"behavior":"Isolated","invert":false},` +
		`{"type":"Digits","individual_digits":false},` +
		`{"type":"Split","pattern":{"Regex":"[0-9][0-9][0-9]"},"behavior":"Isolated","invert":false},` +
		`{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":false}]}`,
}

// ignoresMerges are the pre-tokenizers whose models set BPE ignore_merges.
var ignoresMerges = map[string]bool{"llama-bpe": true}

// TokenizerJSON is v with p's settings as a Hugging Face tokenizer.json:
// normal tokens in model.vocab, control tokens as special added tokens,
// user-defined ones as added tokens that are not special, and a
// TemplateProcessing post-processor that adds BOS where the GGUF file
// (or llama.cpp's default for its pre-tokenizer) says to.
func (v *Vocab) TokenizerJSON(p Pre, addBOS bool) ([]byte, error) {
	pre, ok := hfPreTokenizers[p.Pre]
	if !ok {
		return nil, fmt.Errorf("bpefixture: no tokenizer.json pre_tokenizer for %q", p.Pre)
	}
	type added struct {
		ID      int    `json:"id"`
		Content string `json:"content"`
		Special bool   `json:"special"`
	}
	vocab := map[string]int{}
	var adds []added
	for i, t := range v.Tokens {
		switch v.Types[i] {
		case tokenizer.TokenTypeControl:
			adds = append(adds, added{i, t, true})
		case tokenizer.TokenTypeUserDefined:
			adds = append(adds, added{i, t, false})
		default:
			vocab[t] = i
		}
	}
	post := json.RawMessage(`{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":false,"use_regex":false}`)
	if addBOS && p.BOS != "" {
		post = json.RawMessage(fmt.Sprintf(`{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":%s,"type_id":0}},{"Sequence":{"id":"A","type_id":0}}],"special_tokens":{%s:{"id":%s,"ids":[%d],"tokens":[%s]}}}`,
			jsonString(p.BOS), jsonString(p.BOS), jsonString(p.BOS), v.ID(p.BOS), jsonString(p.BOS)))
	}
	doc := map[string]any{
		"version":        "1.0",
		"added_tokens":   adds,
		"normalizer":     nil,
		"pre_tokenizer":  json.RawMessage(pre),
		"post_processor": post,
		"decoder":        json.RawMessage(`{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true}`),
		"model": map[string]any{
			"type": "BPE", "unk_token": nil, "byte_fallback": false,
			"ignore_merges": ignoresMerges[p.Pre], "vocab": vocab, "merges": v.Merges,
		},
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("bpefixture tokenizer.json: %w", err)
	}
	return buf.Bytes(), nil
}

func jsonString(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return string(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}
