// Command tokgolden builds internal/tokfixture, the test vocabularies of
// graft's GGUF tokenizers, and records llama.cpp's tokenization of its
// cases.
//
//	go run ./tools/tokgolden vocab     # reads testdata/gpt2; writes bpe_vocab.json and spm_vocab.json
//	go run ./tools/tokgolden golden    # writes llamacpp.json
//
// "vocab" takes GPT-2's byte alphabet and first 3000 merges from OpenAI's
// encoder.json and vocab.bpe and adds the special, added and whole-word
// tokens below; and it takes stories260K's SentencePiece vocabulary from
// models/stories260K and adds Gemma's turn tokens. "golden" writes, for
// each byte-level pre-tokenizer and SentencePiece variant in cases.json, a
// random-weight Llama GGUF carrying the vocabulary with those settings, and
// asks llama.cpp (node-llama-cpp, tools/llamacpp/tokenize.mjs; `make
// llamacpp` installs it) for its ids. Run both from the module root.
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
	"slices"
	"strings"
	"time"

	"github.com/graft-ml/graft/core/atomicfile"
	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/tokenizer"
	"github.com/graft-ml/graft/internal/randgguf"
	"github.com/graft-ml/graft/internal/tokfixture"
)

const (
	fixtureDir  = "internal/tokfixture"
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

// storiesGGUF is where "vocab" reads the SentencePiece vocabulary.
const storiesGGUF = "models/stories260K/stories260K.gguf"

// spmExtraTokens follow stories260K's 512: Gemma's turn tokens (control)
// and an added token (user-defined), which llama.cpp cuts out of text.
var spmExtraTokens = []struct {
	text string
	typ  int32
}{
	{"<start_of_turn>", tokenizer.TokenTypeControl},
	{"<end_of_turn>", tokenizer.TokenTypeControl},
	{"<tool>", tokenizer.TokenTypeUserDefined},
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: tokgolden vocab -gpt2 DIR | tokgolden golden")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "vocab":
		fs := flag.NewFlagSet("vocab", flag.ExitOnError)
		dir := fs.String("gpt2", "testdata/gpt2", "folder with OpenAI's encoder.json and vocab.bpe")
		_ = fs.Parse(os.Args[2:])
		if err = writeVocab(*dir); err == nil {
			err = writeSPMVocab(storiesGGUF)
		}
	case "golden":
		err = writeGolden()
	default:
		err = fmt.Errorf("unknown command %q (vocab, golden)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tokgolden:", err)
		os.Exit(1)
	}
}

// buildVocab is GPT-2's first gpt2Merges merges and the tokens they make,
// then extraTokens.
func buildVocab(encoderJSON, vocabBPE []byte) (*tokfixture.Vocab, error) {
	var enc map[string]int
	if err := json.Unmarshal(encoderJSON, &enc); err != nil {
		return nil, fmt.Errorf("encoder.json: %w", err)
	}
	n := 256 + gpt2Merges // GPT-2 gives merge k the id 256+k
	v := &tokfixture.Vocab{Tokens: make([]string, n), Types: make([]int32, n)}
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
	return atomicfile.WriteFile(filepath.Join(fixtureDir, "bpe_vocab.json"), buf.Bytes(), 0o644)
}

// writeSPMVocab writes spm_vocab.json: the SentencePiece vocabulary of
// the GGUF at path, then spmExtraTokens.
func writeSPMVocab(path string) error {
	f, err := gguf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tokens, ok1 := f.Strings("tokenizer.ggml.tokens")
	scores, ok2 := f.Float32s("tokenizer.ggml.scores")
	types, ok3 := f.Int32s("tokenizer.ggml.token_type")
	if !ok1 || !ok2 || !ok3 {
		return fmt.Errorf("%s: no SentencePiece tokens, scores and types", path)
	}
	v := tokfixture.SPMVocab{Tokens: slices.Clone(tokens), Scores: slices.Clone(scores), Types: slices.Clone(types)}
	for _, e := range spmExtraTokens {
		v.Tokens = append(v.Tokens, e.text)
		v.Scores = append(v.Scores, 0)
		v.Types = append(v.Types, e.typ)
	}
	var buf bytes.Buffer
	buf.WriteString("{\n\"tokens\": [\n")
	for i, t := range v.Tokens {
		buf.WriteString(jsonText(t) + sep(i, len(v.Tokens)))
	}
	buf.WriteString("],\n\"scores\": ")
	b, err := json.Marshal(v.Scores)
	if err != nil {
		return err
	}
	buf.Write(b)
	buf.WriteString(",\n\"types\": ")
	if b, err = json.Marshal(v.Types); err != nil {
		return err
	}
	buf.Write(b)
	buf.WriteString("\n}\n")
	return atomicfile.WriteFile(filepath.Join(fixtureDir, "spm_vocab.json"), buf.Bytes(), 0o644)
}

func writeGolden() error {
	node, err := exec.LookPath("node")
	if err != nil {
		return errors.New("node is not installed: llama.cpp runs through node-llama-cpp")
	}
	f, err := tokfixture.Load()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "tokgolden")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	g, err := askLlamaCpp(context.Background(), node, llamaCppDir, tmp, f)
	if err != nil {
		return err
	}
	data, err := marshalGolden(g)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(fixtureDir, "llamacpp.json"), data, 0o644)
}

// askLlamaCpp writes one GGUF per byte-level pre-tokenizer and
// SentencePiece variant of f into dir and returns llama.cpp's tokenization
// of f's strings with each.
func askLlamaCpp(ctx context.Context, node, llamaCppDir, dir string, f *tokfixture.Fixture) (*tokfixture.Golden, error) {
	var bpe, spm []string
	for i, p := range f.Cases.Pres {
		path := filepath.Join(dir, fmt.Sprintf("bpe-%d.gguf", i))
		if err := writeFixtureModel(path, p.Pre, len(f.BPE.Tokens), f.BPE.GGUFKVs(p)); err != nil {
			return nil, err
		}
		bpe = append(bpe, path)
	}
	for i, s := range f.Cases.SPM {
		path := filepath.Join(dir, fmt.Sprintf("spm-%d.gguf", i))
		if err := writeFixtureModel(path, s.Name, len(f.SPM.Tokens), f.SPM.GGUFKVs(s)); err != nil {
			return nil, err
		}
		spm = append(spm, path)
	}
	outs, err := runTokenize(ctx, node, llamaCppDir, dir, f.Cases.Strings, append(bpe, spm...))
	if err != nil {
		return nil, err
	}
	g := &tokfixture.Golden{Source: nodeLlamaCpp}
	for i, p := range f.Cases.Pres {
		gp, err := goldenPre(p.Pre, outs[i], f.Cases.Strings, len(f.BPE.Tokens))
		if err != nil {
			return nil, err
		}
		g.Pres = append(g.Pres, gp)
	}
	for i, s := range f.Cases.SPM {
		gp, err := goldenPre(s.Name, outs[len(bpe)+i], f.Cases.Strings, len(f.SPM.Tokens))
		if err != nil {
			return nil, err
		}
		g.SPM = append(g.SPM, gp)
	}
	return g, nil
}

// writeFixtureModel writes a tiny random-weight Llama carrying the
// tokenizer metadata kvs of a vocabulary of n tokens.
func writeFixtureModel(path, name string, n int, kvs []gguf.KV) error {
	shape := randgguf.Shape{Name: "tokfixture-" + name, Dim: 8, FFN: 16, Layers: 1, Heads: 2, KVHeads: 1,
		Vocab: n, Ctx: 64, NormEps: 1e-5, RopeTheta: 10000}
	return randgguf.WriteLlama(path, shape, 1, kvs)
}

// goldenPre checks one of tokenize.mjs's answers and records it.
func goldenPre(name string, out tokenizeOutput, strs []string, vocab int) (tokfixture.GoldenPre, error) {
	if len(out.IDs) != len(strs) || out.Vocab != vocab {
		return tokfixture.GoldenPre{}, fmt.Errorf("%q: llama.cpp gave %d tokenizations of %d strings and a vocabulary of %d (want %d)",
			name, len(out.IDs), len(strs), out.Vocab, vocab)
	}
	return tokfixture.GoldenPre{
		Pre: name, Strings: strs, IDs: out.IDs,
		BOS: out.BOS, EOS: out.EOS, EOT: out.EOT, AddBOS: out.AddBOS, EOG: out.EOG,
	}, nil
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

// runTokenize runs tokenize.mjs on models, one answer per model.
func runTokenize(ctx context.Context, node, llamaCppDir, dir string, strings []string, models []string) ([]tokenizeOutput, error) {
	strs := filepath.Join(dir, "strings.json")
	data, err := json.Marshal(strings)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(strs, data, 0o644); err != nil {
		return nil, err
	}
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
	if len(out) != len(models) {
		return nil, fmt.Errorf("node tokenize.mjs answered for %d of %d models", len(out), len(models))
	}
	return out, nil
}

// marshalGolden writes one tokenization per line.
func marshalGolden(g *tokfixture.Golden) ([]byte, error) {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "{\n\"source\": %s,\n", jsonText(g.Source))
	for k, list := range []struct {
		name string
		pres []tokfixture.GoldenPre
	}{{"pres", g.Pres}, {"spm", g.SPM}} {
		fmt.Fprintf(&buf, "%q: [\n", list.name)
		for i, p := range list.pres {
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
				buf.WriteString(jsonText(s) + sep(j, len(p.Strings)))
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
			buf.WriteString("]}" + sep(i, len(list.pres)))
		}
		if k == 0 {
			buf.WriteString("],\n")
		} else {
			buf.WriteString("]\n")
		}
	}
	buf.WriteString("}\n")
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
