package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/internal/tokfixture"
)

// nodeLlamaCppOrSkip returns node and tools/llamacpp, skipping where Node.js
// is absent and failing where node-llama-cpp is not installed.
func nodeLlamaCppOrSkip(t *testing.T) (node, dir string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the llama.cpp check runs where Node.js is present")
	}
	dir = filepath.Join("..", "llamacpp")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "node-llama-cpp", "package.json")); err != nil {
		t.Fatalf("node is present but node-llama-cpp is not installed in tools/llamacpp: run `make llamacpp` (%v)", err)
	}
	return node, dir
}

// TestGoldenIsLlamaCppToday asks llama.cpp (node-llama-cpp) again and
// checks that the committed llamacpp.json is what it says, so the golden
// ids that graft's tests use without Node stay llama.cpp's. It runs where
// Node.js is present, as the GGUF LoRA export check does.
func TestGoldenIsLlamaCppToday(t *testing.T) {
	node, dir := nodeLlamaCppOrSkip(t)
	f, err := tokfixture.Load()
	if err != nil {
		t.Fatal(err)
	}
	got, err := askLlamaCpp(context.Background(), node, dir, t.TempDir(), f)
	if errors.Is(err, errNotInstalled) {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	want := f.Golden
	if len(got.Pres) != len(want.Pres) || len(got.SPM) != len(want.SPM) {
		t.Fatalf("llama.cpp answered for %d+%d vocabularies, llamacpp.json has %d+%d: run `go run ./tools/tokgolden golden`", len(got.Pres), len(got.SPM), len(want.Pres), len(want.SPM))
	}
	for i := range got.Pres {
		if !reflect.DeepEqual(got.Pres[i], want.Pres[i]) {
			t.Errorf("pre %q: llama.cpp's answer differs from llamacpp.json (run `go run ./tools/tokgolden golden` and review the diff)", got.Pres[i].Pre)
		}
	}
	for i := range got.SPM {
		if !reflect.DeepEqual(got.SPM[i], want.SPM[i]) {
			t.Errorf("%q: llama.cpp's answer differs from llamacpp.json (run `go run ./tools/tokgolden golden` and review the diff)", got.SPM[i].Pre)
		}
	}
	// The file as the generator would write it, byte for byte.
	data, err := marshalGolden(got)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile(filepath.Join("..", "..", fixtureDir, "llamacpp.json"))
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != string(committed) {
		t.Error("llamacpp.json is not formatted as `go run ./tools/tokgolden golden` writes it")
	}
}

// TestLlamaCppReadsGraftsFiles: for every pre-tokenizer, the fixture's GGUF
// goes through graft twice (GGUF -> Hugging Face directory -> GGUF, as
// `graft merge` writes them) and llama.cpp tokenizes with the result
// exactly as with the original file.
func TestLlamaCppReadsGraftsFiles(t *testing.T) {
	node, dir := nodeLlamaCppOrSkip(t)
	f, err := tokfixture.Load()
	if err != nil {
		t.Fatal(err)
	}
	v, c, want := f.BPE, f.Cases, f.Golden
	tmp := t.TempDir()
	var models []string
	for i, p := range c.Pres {
		src := filepath.Join(tmp, fmt.Sprintf("src-%d.gguf", i))
		if err := writeFixtureModel(src, p.Pre, len(v.Tokens), v.GGUFKVs(p)); err != nil {
			t.Fatal(err)
		}
		m, err := model.Load(src, cpu.New())
		if err != nil {
			t.Fatal(err)
		}
		hfDir := filepath.Join(tmp, fmt.Sprintf("hf-%d", i))
		opt := model.SaveOptions{Warn: func(s string) { t.Errorf("%s: %s", p.Pre, s) }}
		if err := m.SaveHF(hfDir, opt); err != nil {
			t.Fatal(err)
		}
		if m, err = model.Load(hfDir, cpu.New()); err != nil {
			t.Fatal(err)
		}
		back := filepath.Join(tmp, fmt.Sprintf("back-%d.gguf", i))
		if err := m.SaveGGUF(back, opt); err != nil {
			t.Fatal(err)
		}
		models = append(models, back)
	}
	outs, err := runTokenize(context.Background(), node, dir, tmp, c.Strings, models)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range c.Pres {
		g, err := goldenPre(p.Pre, outs[i], c.Strings, len(v.Tokens))
		if err != nil {
			t.Fatal(err)
		}
		w := want.Pres[i]
		if p.EOT != "" {
			// tokenizer.json has no place for an end-of-turn id, so the
			// one the original file named is not carried over; llama.cpp
			// then picks one of the end-of-turn tokens by name, and the
			// tokens that end generation stay the same.
			g.EOT = w.EOT
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("pre %q: llama.cpp reads graft's GGUF otherwise than the original:\n got %+v\nwant %+v", p.Pre, g, w)
		}
	}
}

// TestBuildVocab builds the fixture's vocabulary from a miniature of
// OpenAI's files and checks the layout of both vocabularies: byte tokens,
// merges in order, then the extra tokens.
func TestBuildVocab(t *testing.T) {
	enc := []byte(`{"!": 0, "\"": 1}`)
	if _, err := buildVocab(enc, []byte("#version: 0.2\n")); err == nil {
		t.Error("buildVocab accepted an encoder.json without the 256 byte tokens")
	}
	if _, err := buildVocab([]byte(`[`), nil); err == nil {
		t.Error("buildVocab accepted a malformed encoder.json")
	}
	f, err := tokfixture.Load()
	if err != nil {
		t.Fatal(err)
	}
	v := f.BPE
	n := 256 + gpt2Merges
	if len(v.Merges) != gpt2Merges || len(v.Tokens) != n+len(extraTokens) || v.Merges[0] != "Ġ t" || v.Tokens[256] != "Ġt" {
		t.Errorf("bpe_vocab.json: %d merges, %d tokens, first merge %q, token 256 %q", len(v.Merges), len(v.Tokens), v.Merges[0], v.Tokens[256])
	}
	for i, e := range extraTokens {
		if v.Tokens[n+i] != e.text || v.Types[n+i] != e.typ {
			t.Errorf("token %d = %q type %d, want %q type %d", n+i, v.Tokens[n+i], v.Types[n+i], e.text, e.typ)
		}
	}
	spm := f.SPM
	if len(spm.Tokens) != 512+len(spmExtraTokens) || spm.Tokens[1] != "<s>" || spm.Tokens[13] != "<0x0A>" {
		t.Errorf("spm_vocab.json: %d tokens, token 1 %q, token 13 %q", len(spm.Tokens), spm.Tokens[1], spm.Tokens[13])
	}
	for i, e := range spmExtraTokens {
		if spm.Tokens[512+i] != e.text || spm.Types[512+i] != e.typ {
			t.Errorf("spm token %d = %q type %d, want %q type %d", 512+i, spm.Tokens[512+i], spm.Types[512+i], e.text, e.typ)
		}
	}
}
