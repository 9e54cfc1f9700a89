package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
)

// ggmlPre is one of the pre-tokenizers llama.cpp selects by a GGUF file's
// tokenizer.ggml.pre (llm_tokenizer_bpe in src/llama-vocab.cpp), with the
// flags llama.cpp sets along with it.
type ggmlPre struct {
	// names are the tokenizer.ggml.pre values llama.cpp treats alike.
	names []string
	// split is llama.cpp's list of regexes, each applied to the pieces the
	// previous one produced, matches and the text between them alike.
	split preTokenizer
	// ignoreMerges: a pre-token that is itself a vocabulary entry becomes
	// that token without running the merges (Llama 3).
	ignoreMerges bool
	// addBOS is llama.cpp's default where tokenizer.ggml.add_bos_token is
	// absent.
	addBOS bool
	// hf is the tokenizer.json pre_tokenizer that splits text the same
	// way: the one the models behind these names ship (for "default",
	// llama.cpp's regexes as Split steps).
	hf string
}

// The tokenizer.json pre_tokenizer objects of ggmlPres.
var (
	hfGPT2 = `{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}`
	// hfSplitThenBytes is a Split by one regex, then the byte-level
	// spelling without its own regex (Llama 3, Qwen2).
	hfSplitThenBytes = func(regex string) string {
		return `{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":` + jsonQuote(regex) +
			`},"behavior":"Isolated","invert":false},{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":false}]}`
	}
	hfDigitsThenGPT2 = `{"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":true},` + hfGPT2 + `]}`
	hfDefault        = `{"type":"Sequence","pretokenizers":[` +
		`{"type":"Split","pattern":{"Regex":` + jsonQuote(`[\p{P}\$\+<=>\^~\|]+`) + `},"behavior":"Isolated","invert":false},` +
		`{"type":"Split","pattern":{"Regex":` + jsonQuote(GPT2Pattern) + `},"behavior":"Isolated","invert":false},` +
		`{"type":"Digits","individual_digits":false},` +
		`{"type":"Split","pattern":{"Regex":"[0-9][0-9][0-9]"},"behavior":"Isolated","invert":false},` +
		`{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":false}]}`
)

// The regexes behind the splitters, as llama.cpp writes them:
//
//	gpt2:    's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
//	llama3:  (?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//	qwen2:   as llama3 with \p{N} for \p{N}{1,3}
//
// llama.cpp runs these three through hand-written scanners (unicode.cpp),
// which behave as the scanners in scanners.go do; its scanners also end
// the gpt2 pattern with \s+, as GPT2Pattern does. Its scanners compare a
// contraction's letters by their lowercase mapping (caseLower).
var (
	ggmlGPT2   = splitPre{m: gpt2Scanner{}}
	ggmlLlama3 = splitPre{m: llama3Scanner{maxDigits: 3, contract: caseLower}}
	ggmlQwen2  = splitPre{m: llama3Scanner{maxDigits: 1, contract: caseLower}}
)

// ggmlPres are the pre-tokenizers graft implements. Each row lists only
// names for which llama.cpp sets no other per-name behaviour that concerns
// encoding (such as lstrip on a mask token).
var ggmlPres = []ggmlPre{
	{
		// llama.cpp's fallback: [\p{P}\$\+<=>\^~\|]+, the gpt2 regex,
		// \p{N}+ and [0-9][0-9][0-9].
		names: []string{"default"},
		split: sequencePre{
			splitPre{m: runMatcher(isDefaultPunct)},
			ggmlGPT2,
			splitPre{m: digitsMatcher{}},
			splitPre{m: asciiDigitTriples{}},
		},
		hf: hfDefault,
	},
	{names: []string{"gpt-2", "phi-2", "mpt", "olmo", "jais", "exaone4", "gigachat", "a.x-4.0", "mellum", "trillion", "granite-docling"},
		split: ggmlGPT2, hf: hfGPT2},
	{
		// \p{N} then the gpt2 regex: single digits.
		names: []string{"smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b", "mellum2"},
		split: sequencePre{splitPre{m: digitsMatcher{individual: true}}, ggmlGPT2},
		hf:    hfDigitsThenGPT2,
	},
	{names: []string{"llama-bpe", "llama3", "llama-v3", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"},
		split: ggmlLlama3, ignoreMerges: true, addBOS: true, hf: hfSplitThenBytes(Llama3Pattern)},
	{names: []string{"dbrx", "smaug-bpe"}, split: ggmlLlama3, hf: hfSplitThenBytes(Llama3Pattern)},
	{names: []string{"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "stablelm2", "hunyuan", "solar-open"},
		split: ggmlQwen2, hf: hfSplitThenBytes(Qwen2Pattern)},
}

// lookupGGMLPre finds the pre-tokenizer for a tokenizer.ggml.pre value;
// "" (the key is absent) means "default", as in llama.cpp.
func lookupGGMLPre(name string) (*ggmlPre, error) {
	if name == "" {
		name = "default"
	}
	for i := range ggmlPres {
		for _, n := range ggmlPres[i].names {
			if n == name {
				return &ggmlPres[i], nil
			}
		}
	}
	return nil, fmt.Errorf("tokenizer.ggml.pre %q is not supported (supported: %s)", name, strings.Join(GGMLPreTokenizers(), ", "))
}

// GGMLPreTokenizers lists the tokenizer.ggml.pre values graft supports.
func GGMLPreTokenizers() []string {
	var names []string
	for _, p := range ggmlPres {
		names = append(names, p.names...)
	}
	return names
}

// isDefaultPunct is the class [\p{P}\$\+<=>\^~\|] of llama.cpp's default
// pre-tokenizer; for ASCII, \p{P} is !"#%&'()*,-./:;?@[\]_{}.
func isDefaultPunct(r rune) bool {
	switch r {
	case '$', '+', '<', '=', '>', '^', '~', '|':
		return true
	}
	return unicode.IsPunct(r)
}

// runMatcher matches a run of one or more characters in its class.
type runMatcher func(rune) bool

func (m runMatcher) matchAt(s string, i int) int {
	j := i
	for j < len(s) {
		r, w := runeAt(s, j)
		if !m(r) {
			break
		}
		j += w
	}
	if j == i {
		return -1
	}
	return j
}

// asciiDigitTriples matches [0-9][0-9][0-9].
type asciiDigitTriples struct{}

func (asciiDigitTriples) matchAt(s string, i int) int {
	if len(s)-i < 3 {
		return -1
	}
	for _, c := range []byte(s[i : i+3]) {
		if c < '0' || c > '9' {
			return -1
		}
	}
	return i + 3
}

// jsonQuote is s as a JSON string, with <, > and & as themselves.
func jsonQuote(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(buf.String(), "\n")
}
