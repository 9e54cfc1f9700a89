package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const modelPath = "../../../models/stories260K/stories260K.gguf"

// graft runs one command line and returns stdout, stderr and the status.
func graft(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return out.String(), errOut.String(), code
}

// graftJSON runs a --json command and decodes its single JSON object.
func graftJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out, errOut, code := graft(t, append(args, "--json")...)
	if code != 0 {
		t.Fatalf("graft %v: exit %d: %s", args, code, errOut)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("graft %v: stdout is not JSON: %v\n%s", args, err, out)
	}
	if dec.More() {
		t.Fatalf("graft %v: stdout holds more than one JSON value:\n%s", args, out)
	}
}

func TestGenerateGreedyStory(t *testing.T) {
	var res struct {
		Text string  `json:"text"`
		IDs  []int32 `json:"ids"`
	}
	graftJSON(t, &res, "generate", "--model", modelPath, "--prompt", "", "--max-tokens", "256", "--temperature", "0")
	if !strings.HasPrefix(res.Text, "Once upon a time, there was a little girl named Lily.") {
		t.Fatalf("text = %q", res.Text)
	}
	if len(res.IDs) != 256 {
		t.Fatalf("got %d ids, want 256", len(res.IDs))
	}
	// Without --json the same story streams to stdout.
	out, _, code := graft(t, "generate", "--model", modelPath, "--prompt", "", "--max-tokens", "256", "--temperature", "0")
	if code != 0 || strings.TrimSpace(out) != strings.TrimSpace(res.Text) {
		t.Fatalf("streamed %q (exit %d), want %q", out, code, res.Text)
	}
}

func TestGeneratePromptIsContinued(t *testing.T) {
	out, _, code := graft(t, "generate", "--model", modelPath, "--prompt", "Once upon a time", "--max-tokens", "20", "--seed", "3")
	if code != 0 || len(out) <= len("Once upon a time")+5 {
		t.Fatalf("exit %d, output %q", code, out)
	}
	// The streamed text is the prompt followed by the --json text.
	var res struct {
		Text string `json:"text"`
	}
	graftJSON(t, &res, "generate", "--model", modelPath, "--prompt", "Once upon a time", "--max-tokens", "20", "--seed", "3")
	if strings.TrimRight(out, "\n") != "Once upon a time"+res.Text {
		t.Fatalf("streamed %q, want the prompt + %q", out, res.Text)
	}
}

func TestTokenize(t *testing.T) {
	var res struct {
		IDs []int32 `json:"ids"`
	}
	graftJSON(t, &res, "tokenize", "--model", modelPath, "--text", "Once upon a time")
	if len(res.IDs) < 2 || res.IDs[0] != 1 {
		t.Fatalf("ids = %v, want BOS (1) first", res.IDs)
	}
}

func TestEval(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "d.jsonl")
	lines := `{"text": "Once upon a time, there was a little girl named Lily."}
{"text": "She loved to play outside in the park."}
`
	if err := os.WriteFile(data, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	var res struct {
		Loss       float64 `json:"loss"`
		Tokens     int     `json:"tokens"`
		Perplexity float64 `json:"perplexity"`
	}
	graftJSON(t, &res, "eval", "--model", modelPath, "--data", data)
	if res.Tokens < 10 || !(res.Loss > 0 && res.Loss < 3) || math.Abs(res.Perplexity-math.Exp(res.Loss)) > 1e-9*res.Perplexity {
		t.Fatalf("eval = %+v", res)
	}
	// --seq-len 4, as graft train's rows: each line is one row of 4
	// positions (its first 5 tokens), all 4 scored.
	graftJSON(t, &res, "eval", "--model", modelPath, "--data", data, "--seq-len", "4")
	if res.Tokens != 8 {
		t.Fatalf("--seq-len 4 scored %d tokens, want 8", res.Tokens)
	}
}

func TestInspect(t *testing.T) {
	var info struct {
		Format       string `json:"format"`
		Version      int    `json:"version"`
		Architecture string `json:"architecture"`
		Tensors      []struct {
			Name string `json:"name"`
		} `json:"tensors"`
		Tokenizer struct {
			Vocab int `json:"vocab"`
		} `json:"tokenizer"`
	}
	graftJSON(t, &info, "inspect", modelPath)
	if info.Format != "gguf" || info.Version != 3 || info.Architecture != "llama" || len(info.Tensors) != 48 || info.Tokenizer.Vocab != 512 {
		t.Fatalf("inspect = %+v", info)
	}
	out, _, code := graft(t, "inspect", modelPath)
	if code != 0 || !strings.Contains(out, "blk.0.attn_q.weight") || !strings.Contains(out, "hidden 64") {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(bad, []byte("{\"text\": \"ok\"}\n{oops\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"nope"}, 2, "unknown command"},
		{[]string{"generate", "--prompt", "x"}, 2, "--model is required"},
		{[]string{"generate", "--model", modelPath, "--temperature", "-1"}, 2, "temperature"},
		{[]string{"generate", "--model", filepath.Join(dir, "missing.gguf")}, 1, "missing.gguf"},
		{[]string{"eval", "--model", modelPath, "--data", bad}, 1, "bad.jsonl:2"},
		{[]string{"inspect"}, 2, "PATH"},
	}
	for _, tt := range tests {
		_, errOut, code := graft(t, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Errorf("graft %v: exit %d, stderr %q; want exit %d mentioning %q", tt.args, code, errOut, tt.code, tt.want)
		}
	}
}
