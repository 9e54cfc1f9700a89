// Command bpegolden builds internal/bpefixture, the byte-level BPE test
// vocabulary, and records llama.cpp's tokenization of its cases.
//
//	go run ./tools/bpegolden vocab -gpt2 ../shared/tokenizers/gpt2   # writes vocab.json
//	go run ./tools/bpegolden golden                                   # writes llamacpp.json
//
// "vocab" takes GPT-2's byte alphabet and first 3000 merges from OpenAI's
// encoder.json and vocab.bpe and adds the special, added and whole-word
// tokens below. "golden" writes, for each pre-tokenizer in cases.json, a
// random-weight Llama GGUF carrying the vocabulary with that pre-tokenizer's
// settings, and asks llama.cpp (node-llama-cpp, tools/llamacpp/tokenize.mjs;
// `make llamacpp` installs it) for its ids. Run both from the module root.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/graft-ml/graft/core/atomicfile"
	"github.com/graft-ml/graft/core/tokenizer"
	"github.com/graft-ml/graft/internal/bpefixture"
	"github.com/graft-ml/graft/internal/randgguf"
)

const (
	fixtureDir  = "internal/bpefixture"
	llamaCppDir = "tools/llamacpp"
	// nodeLlamaCpp names the oracle in llamacpp.json; tools/llamacpp's
	// package.json pins it.
	nodeLlamaCpp = "node-llama-cpp 3.21.1 (llama.cpp 80fb11ac)"
)

// extraTokens follow GPT-2's: whole words that no merge of the truncated
// vocabulary reaches (so Llama 3's whole-word lookup shows), the special
// tokens of Llama 3, Qwen2 and SmolLM chat formats, and added tokens that
// are not special, two of which overlap ("<ab>" and "b><c>") so that the
// order in which special tokens are cut out of text matters.
var extraTokens = []struct {
	text string
	typ  int32
}{
	{"Ġtokenization", tokenizer.TokenTypeNormal},
	{"Ġunbelievable", tokenizer.TokenTypeNormal},
	{"ĠHello", tokenizer.TokenTypeNormal},
	{"<|endoftext|>", tokenizer.TokenTypeControl},
	{"<|begin_of_text|>", tokenizer.TokenTypeControl},
	{"<|end_of_text|>", tokenizer.TokenTypeControl},
	{"<|start_header_id|>", tokenizer.TokenTypeControl},
	{"<|end_header_id|>", tokenizer.TokenTypeControl},
	{"<|eot_id|>", tokenizer.TokenTypeControl},
	{"<|eom_id|>", tokenizer.TokenTypeControl},
	{"<|im_start|>", tokenizer.TokenTypeControl},
	{"<|im_end|>", tokenizer.TokenTypeControl},
	{"<tool_call>", tokenizer.TokenTypeUserDefined},
	{"</tool_call>", tokenizer.TokenTypeUserDefined},
	{"<ab>", tokenizer.TokenTypeUserDefined},
	{"b><c>", tokenizer.TokenTypeUserDefined},
}

const gpt2Merges = 3000

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bpegolden vocab -gpt2 DIR | bpegolden golden")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "vocab":
		fs := flag.NewFlagSet("vocab", flag.ExitOnError)
		dir := fs.String("gpt2", "../shared/tokenizers/gpt2", "folder with OpenAI's encoder.json and vocab.bpe")
		_ = fs.Parse(os.Args[2:])
		err = writeVocab(*dir)
	case "golden":
		err = writeGolden()
	default:
		err = fmt.Errorf("unknown command %q (vocab, golden)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bpegolden:", err)
		os.Exit(1)
	}
}

// buildVocab is GPT-2's first gpt2Merges merges and the tokens they make,
// then extraTokens.
func buildVocab(encoderJSON, vocabBPE []byte) (*bpefixture.Vocab, error) {
	var enc map[string]int
	if err := json.Unmarshal(encoderJSON, &enc); err != nil {
		return nil, fmt.Errorf("encoder.json: %w", err)
	}
	n := 256 + gpt2Merges // GPT-2 gives merge k the id 256+k
	v := &bpefixture.Vocab{Tokens: make([]string, n), Types: make([]int32, n)}
	for tok, id := range enc {
		if id < n {
			v.Tokens[id] = tok
			v.Types[id] = tokenizer.TokenTypeNormal
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(vocabBPE))
	for sc.Scan() && len(v.Merges) < gpt2Merges {
		if line := sc.Text(); line != "" && !strings.HasPrefix(line, "#version") {
			v.Merges = append(v.Merges, line)
		}
	}
	for i, tok := range v.Tokens {
		if tok == "" {
			return nil, fmt.Errorf("encoder.json has no token %d", i)
		}
	}
	for _, e := range extraTokens {
		v.Tokens = append(v.Tokens, e.text)
		v.Types = append(v.Types, e.typ)
	}
	return v, nil
}

func writeVocab(dir string) error {
	enc, err := os.ReadFile(filepath.Join(dir, "encoder.json"))
	if err != nil {
		return err
	}
	bpe, err := os.ReadFile(filepath.Join(dir, "vocab.bpe"))
	if err != nil {
		return err
	}
	v, err := buildVocab(enc, bpe)
	if err != nil {
		return err
	}
	// One entry per line keeps diffs of the fixture readable.
	var buf bytes.Buffer
	buf.WriteString("{\n")
	list := func(name string, n int, item func(int) string, last bool) {
		fmt.Fprintf(&buf, "%q: [\n", name)
		for i := range n {
			sep := ","
			if i == n-1 {
				sep = ""
			}
			fmt.Fprintf(&buf, "%s%s\n", item(i), sep)
		}
		if last {
			buf.WriteString("]\n")
		} else {
			buf.WriteString("],\n")
		}
	}
	list("tokens", len(v.Tokens), func(i int) string { return jsonText(v.Tokens[i]) }, false)
	list("types", len(v.Types), func(i int) string { return fmt.Sprint(v.Types[i]) }, false)
	list("merges", len(v.Merges), func(i int) string { return jsonText(v.Merges[i]) }, true)
	buf.WriteString("}\n")
	return atomicfile.WriteFile(filepath.Join(fixtureDir, "vocab.json"), buf.Bytes(), 0o644)
}

func writeGolden() error {
	node, err := exec.LookPath("node")
	if err != nil {
		return errors.New("node is not installed: llama.cpp runs through node-llama-cpp")
	}
	v, c, _, err := bpefixture.Load()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "bpegolden")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	g, err := askLlamaCpp(context.Background(), node, llamaCppDir, tmp, v, c)
	if err != nil {
		return err
	}
	data, err := marshalGolden(g)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(fixtureDir, "llamacpp.json"), data, 0o644)
}

// askLlamaCpp writes one GGUF per pre-tokenizer of c into dir and returns
// llama.cpp's tokenization of c's strings with each.
func askLlamaCpp(ctx context.Context, node, llamaCppDir, dir string, v *bpefixture.Vocab, c *bpefixture.Cases) (*bpefixture.Golden, error) {
	var models []string
	for i, p := range c.Pres {
		path := filepath.Join(dir, fmt.Sprintf("vocab-%d.gguf", i))
		if err := writeFixtureModel(path, v, p); err != nil {
			return nil, err
		}
		models = append(models, path)
	}
	return llamaCppGolden(ctx, node, llamaCppDir, dir, models, v, c)
}

// writeFixtureModel writes a tiny random-weight Llama carrying v with p's
// settings.
func writeFixtureModel(path string, v *bpefixture.Vocab, p bpefixture.Pre) error {
	shape := randgguf.Shape{Name: "bpefixture-" + p.Pre, Dim: 8, FFN: 16, Layers: 1, Heads: 2, KVHeads: 1,
		Vocab: len(v.Tokens), Ctx: 64, NormEps: 1e-5, RopeTheta: 10000}
	return randgguf.WriteLlama(path, shape, 1, v.GGUFKVs(p))
}

// llamaCppGolden asks llama.cpp to tokenize c's strings with models, one
// per pre-tokenizer of c in order.
func llamaCppGolden(ctx context.Context, node, llamaCppDir, dir string, models []string, v *bpefixture.Vocab, c *bpefixture.Cases) (*bpefixture.Golden, error) {
	strs := filepath.Join(dir, "strings.json")
	data, err := json.Marshal(c.Strings)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(strs, data, 0o644); err != nil {
		return nil, err
	}
	outs, err := runTokenize(ctx, node, llamaCppDir, strs, models)
	if err != nil {
		return nil, err
	}
	if len(outs) != len(c.Pres) {
		return nil, fmt.Errorf("llama.cpp answered for %d of %d models", len(outs), len(c.Pres))
	}
	g := &bpefixture.Golden{Source: nodeLlamaCpp}
	for i, p := range c.Pres {
		out := outs[i]
		if len(out.IDs) != len(c.Strings) || out.Vocab != len(v.Tokens) {
			return nil, fmt.Errorf("pre %q: llama.cpp gave %d tokenizations of %d strings and a vocabulary of %d (want %d)",
				p.Pre, len(out.IDs), len(c.Strings), out.Vocab, len(v.Tokens))
		}
		g.Pres = append(g.Pres, bpefixture.GoldenPre{
			Pre: p.Pre, Strings: c.Strings, IDs: out.IDs,
			BOS: out.BOS, EOS: out.EOS, EOT: out.EOT, AddBOS: out.AddBOS, EOG: out.EOG,
		})
	}
	return g, nil
}

// tokenizeOutput is tokenize.mjs's answer.
type tokenizeOutput struct {
	IDs    [][]int32 `json:"ids"`
	BOS    int32     `json:"bos"`
	EOS    int32     `json:"eos"`
	EOT    int32     `json:"eot"`
	AddBOS bool      `json:"add_bos"`
	EOG    []int32   `json:"eog"`
	Vocab  int       `json:"vocab"`
}

// errNotInstalled is tokenize.mjs's exit status 3.
var errNotInstalled = errors.New("node-llama-cpp is not installed in tools/llamacpp: run `make llamacpp`")

func runTokenize(ctx context.Context, node, llamaCppDir, strs string, models []string) ([]tokenizeOutput, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			return p
		}
		return a
	}
	args := []string{"tokenize.mjs", "--strings", abs(strs)}
	for _, m := range models {
		args = append(args, "--model", abs(m))
	}
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = llamaCppDir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 3 {
			return nil, errNotInstalled
		}
		return nil, fmt.Errorf("node tokenize.mjs: %w\n%s", err, stderr.String())
	}
	var out []tokenizeOutput
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return nil, fmt.Errorf("node tokenize.mjs printed no JSON: %w\n%.500s\n%s", err, stdout.String(), stderr.String())
	}
	return out, nil
}

// marshalGolden writes one tokenization per line.
func marshalGolden(g *bpefixture.Golden) ([]byte, error) {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "{\n\"source\": %s,\n\"pres\": [\n", jsonText(g.Source))
	for i, p := range g.Pres {
		head, err := json.Marshal(struct {
			Pre    string  `json:"pre"`
			BOS    int32   `json:"bos"`
			EOS    int32   `json:"eos"`
			EOT    int32   `json:"eot"`
			AddBOS bool    `json:"add_bos"`
			EOG    []int32 `json:"eog"`
		}{p.Pre, p.BOS, p.EOS, p.EOT, p.AddBOS, p.EOG})
		if err != nil {
			return nil, err
		}
		buf.Write(head[:len(head)-1])
		buf.WriteString(",\n\"strings\": [\n")
		for j, s := range p.Strings {
			buf.WriteString(jsonText(s))
			buf.WriteString(sep(j, len(p.Strings)))
		}
		buf.WriteString("],\n\"ids\": [\n")
		for j, ids := range p.IDs {
			b, err := json.Marshal(ids)
			if err != nil {
				return nil, err
			}
			buf.Write(b)
			buf.WriteString(sep(j, len(p.IDs)))
		}
		buf.WriteString("]}")
		buf.WriteString(sep(i, len(g.Pres)))
	}
	buf.WriteString("]\n}\n")
	return buf.Bytes(), nil
}

func sep(i, n int) string {
	if i == n-1 {
		return "\n"
	}
	return ",\n"
}

func jsonText(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(buf.String(), "\n")
}
