package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/internal/tokfixture"
)

// TestMergedSentencePieceRunsInLlamaCpp: stories260K's SentencePiece
// vocabulary, carried by graft merge from GGUF to a Hugging Face directory
// (tokenizer.json) and from there back to GGUF (tokenizer.ggml.*), loads
// in llama.cpp and tokenizes every fixture string as llama.cpp does with
// the original file, and as graft does with the Hugging Face directory.
func TestMergedSentencePieceRunsInLlamaCpp(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the llama.cpp check runs where Node.js is present")
	}
	if _, err := os.Stat(filepath.Join(llamaCppDir, "node_modules", "node-llama-cpp", "package.json")); err != nil {
		t.Fatalf("node is present but node-llama-cpp is not installed in tools/llamacpp: run `make llamacpp` (%v)", err)
	}
	fix, err := tokfixture.Load()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	adapter := trainedAdapter(t)
	hfOut, back := filepath.Join(dir, "hf"), filepath.Join(dir, "back.gguf")
	for _, step := range [][2]string{{modelPath, hfOut}, {hfOut, back}} {
		if _, stderr, code := graft(t, "merge", "--model", step[0], "--adapter", adapter, "--out", step[1]); code != 0 {
			t.Fatalf("merge %s to %s: exit %d: %s", step[0], step[1], code, stderr)
		}
	}
	strs := filepath.Join(dir, "strings.json")
	data, _ := json.Marshal(fix.Cases.Strings) // a []string always encodes
	if err := os.WriteFile(strs, data, 0o644); err != nil {
		t.Fatal(err)
	}
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "tokenize.mjs", "--strings", strs, "--model", abs(modelPath), "--model", abs(back))
	cmd.Dir = llamaCppDir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node tokenize.mjs: %v\n%s", err, stderr.String())
	}
	var res []struct {
		IDs    [][]int32 `json:"ids"`
		BOS    int32     `json:"bos"`
		EOS    int32     `json:"eos"`
		AddBOS bool      `json:"add_bos"`
		EOG    []int32   `json:"eog"`
		Vocab  int       `json:"vocab"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || len(res) != 2 {
		t.Fatalf("node tokenize.mjs printed %d answers (%v)\n%.500s", len(res), err, stdout.String())
	}
	orig, got := res[0], res[1]
	if got.BOS != orig.BOS || got.EOS != orig.EOS || got.AddBOS != orig.AddBOS || !slices.Equal(got.EOG, orig.EOG) || got.Vocab != orig.Vocab {
		t.Errorf("llama.cpp reads %s as BOS %d EOS %d add_bos %v eog %v vocab %d; the original as %d %d %v %v %d",
			back, got.BOS, got.EOS, got.AddBOS, got.EOG, got.Vocab, orig.BOS, orig.EOS, orig.AddBOS, orig.EOG, orig.Vocab)
	}
	hf, err := model.Load(hfOut, cpu.New())
	if err != nil {
		t.Fatal(err)
	}
	defer hf.Free()
	same := 0
	for i, s := range fix.Cases.Strings {
		if !slices.Equal(got.IDs[i], orig.IDs[i]) {
			t.Errorf("llama.cpp: %q is %v with %s, %v with the original", s, got.IDs[i], back, orig.IDs[i])
		}
		if ids := hf.Tokenizer.Encode(s, false); !slices.Equal(ids, orig.IDs[i]) {
			t.Errorf("graft (tokenizer.json): %q is %v, llama.cpp %v", s, ids, orig.IDs[i])
		} else {
			same++
		}
	}
	t.Logf("%d/%d strings: llama.cpp on the re-written GGUF = llama.cpp on the original = graft on tokenizer.json", same, len(fix.Cases.Strings))
}
