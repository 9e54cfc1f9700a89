package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/peft"
)

// runExport runs graft export and returns stdout, stderr and the error
// that decides graft's exit status.
func runExport(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	_, _, err := execute(append([]string{"export"}, args...), &out, &errOut)
	return out.String(), errOut.String(), err
}

// trainedAdapter trains a small LoRA on every projection and the output
// head, so that the export's naming, q/k permutation and scaling all
// matter.
func trainedAdapter(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "adapter")
	args := append([]string{"train"}, trainArgs(dir, "--steps", "10", "--lr", "2e-2",
		"--target", "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj,lm_head")...)
	if _, stderr, code := graft(t, args...); code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	return dir
}

// adapterLogits returns the logits of the base with the adapter at path
// (a directory or a bundle), or of the base alone when path is "".
func adapterLogits(t *testing.T, path string, ids []int32) []float32 {
	t.Helper()
	mf := &modelFlags{path: modelPath, device: "cpu"}
	m, err := mf.load()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	if path != "" {
		src, err := peft.OpenAdapterPath(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := peft.LoadAdapter(m, src); err != nil {
			t.Fatal(err)
		}
	}
	out, err := m.Forward(m.NewCache(0), ids, true)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var exportIDs = []int32{1, 403, 407, 261, 378, 29, 11, 85, 269, 343, 260, 378, 285, 292, 416, 11}

func TestExportMsgpackRoundTrips(t *testing.T) {
	adapter := trainedAdapter(t)
	out := filepath.Join(t.TempDir(), "adapter.msgpack")
	stdout, stderr, err := runExport(t, "--adapter", adapter, "--out", out, "--json")
	if err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	var res struct {
		Format string `json:"format"`
		Bytes  int64  `json:"bytes"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || res.Format != "msgpack" || res.Bytes == 0 {
		t.Fatalf("stdout %q (%v)", stdout, err)
	}
	want := adapterLogits(t, adapter, exportIDs)
	if got := adapterLogits(t, out, exportIDs); !slices.Equal(got, want) {
		t.Fatal("the bundle's logits differ from the directory's")
	}
	// A bundle exports again, to GGUF as well as to msgpack.
	for _, again := range []string{"again.msgpack", "again.gguf"} {
		if _, stderr, err := runExport(t, "--adapter", out, "--model", modelPath, "--out", filepath.Join(t.TempDir(), again)); err != nil {
			t.Fatalf("%s: %v: %s", again, err, stderr)
		}
	}
}

func TestExportGGUFLoRAFile(t *testing.T) {
	adapter := trainedAdapter(t)
	out := filepath.Join(t.TempDir(), "adapter.gguf")
	stdout, stderr, err := runExport(t, "--adapter", adapter, "--format", "gguf-lora", "--model", modelPath, "--out", out)
	if err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	if !strings.Contains(stdout, "gguf-lora") {
		t.Errorf("stdout %q", stdout)
	}
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if typ, _ := f.String("general.type"); typ != "adapter" {
		t.Errorf("general.type %q", typ)
	}
	// 5 layers x 7 projections + the output head, two tensors each.
	if len(f.Tensors) != 2*(5*7+1) {
		t.Errorf("%d tensors, want %d", len(f.Tensors), 2*(5*7+1))
	}
	if _, ok := f.Tensor("output.weight.lora_b"); !ok {
		t.Error("no output.weight.lora_b")
	}
}

func TestExportRejectsBadInput(t *testing.T) {
	adapter := trainedAdapter(t)
	tmp := t.TempDir()
	for _, tc := range []struct {
		name  string
		args  []string
		usage bool
		want  string
	}{
		{"no adapter", []string{"--out", "x.gguf"}, true, "--adapter is required"},
		{"no out", []string{"--adapter", adapter}, true, "--out is required"},
		{"no model", []string{"--adapter", adapter, "--out", filepath.Join(tmp, "x.gguf")}, true, "--model is required for gguf-lora"},
		{"unknown format", []string{"--adapter", adapter, "--format", "onnx", "--out", filepath.Join(tmp, "x")}, true, `--format "onnx"`},
		{"no extension", []string{"--adapter", adapter, "--out", filepath.Join(tmp, "x")}, true, "--format is required"},
		{"missing adapter", []string{"--adapter", filepath.Join(tmp, "none"), "--out", filepath.Join(tmp, "x.msgpack")}, false, "none"},
		{"gguf as adapter", []string{"--adapter", modelPath, "--out", filepath.Join(tmp, "x.msgpack")}, false, "llama.cpp's export format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runExport(t, tc.args...)
			if err == nil {
				t.Fatal("accepted")
			}
			if isUsage := errors.As(err, new(usageError)); isUsage != tc.usage {
				t.Errorf("usage error %v, want %v: %v", isUsage, tc.usage, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("failed exports left %d files behind", len(entries))
	}
}

// llamaCppDir holds tools/llamacpp: package.json, package-lock.json and
// logits.mjs; `make llamacpp` installs node-llama-cpp there.
const llamaCppDir = "../../../tools/llamacpp"

// TestExportGGUFLoRARunsInLlamaCpp is the acceptance check of the GGUF
// LoRA export: llama.cpp (node-llama-cpp's prebuilt binary) loads the base
// and the exported adapter, and the adapter shifts llama.cpp's next-token
// log-probabilities as graft's adapter shifts graft's.
func TestExportGGUFLoRARunsInLlamaCpp(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the llama.cpp check runs where Node.js is present")
	}
	if _, err := os.Stat(filepath.Join(llamaCppDir, "node_modules", "node-llama-cpp", "package.json")); err != nil {
		t.Fatalf("node is present but node-llama-cpp is not installed in tools/llamacpp: run `make llamacpp` (%v)", err)
	}
	adapter := trainedAdapter(t)
	out := filepath.Join(t.TempDir(), "adapter.gguf")
	if _, stderr, err := runExport(t, "--adapter", adapter, "--model", modelPath, "--out", out); err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	llama := runLlamaCpp(t, node, out, exportIDs)

	vocab := 512
	graftBase := logSoftmax(adapterLogits(t, "", exportIDs), vocab)
	graftLoRA := logSoftmax(adapterLogits(t, adapter, exportIDs), vocab)
	var shiftScale, shiftErr, baseErr float64
	for p := range exportIDs {
		for v := range vocab {
			lb, ll := llama.Base[p][v], llama.LoRA[p][v]
			if lb == nil || ll == nil {
				t.Fatalf("llama.cpp gave probability 0 at position %d, token %d", p, v)
			}
			i := p*vocab + v
			graftShift := graftLoRA[i] - graftBase[i]
			shiftScale = math.Max(shiftScale, math.Abs(graftShift))
			shiftErr = math.Max(shiftErr, math.Abs((*ll-*lb)-graftShift))
			baseErr = math.Max(baseErr, math.Abs(*lb-graftBase[i]))
		}
	}
	t.Logf("log-prob shift: max |graft| %.4g, max |llama.cpp - graft| %.3g (relative %.3g); base log-probs agree within %.3g",
		shiftScale, shiftErr, shiftErr/shiftScale, baseErr)
	if shiftScale < 0.1 {
		t.Fatalf("the adapter shifts log-probabilities by only %.3g; the check would prove nothing", shiftScale)
	}
	// Both sides compute in f32 with different kernels and summation
	// orders; their base log-probabilities differ by ~1e-5. A wrong name,
	// layout, q/k row order or scale moves the shift by a sizeable
	// fraction of itself.
	if rel := shiftErr / shiftScale; rel > 1e-3 {
		t.Fatalf("llama.cpp's shift differs from graft's by %.3g relative to the shift (max |shift| %.3g)", rel, shiftScale)
	}
}

type llamaCppLogProbs struct {
	Vocab int          `json:"vocab"`
	Base  [][]*float64 `json:"base"`
	LoRA  [][]*float64 `json:"lora"`
}

func runLlamaCpp(t *testing.T, node, adapter string, ids []int32) llamaCppLogProbs {
	t.Helper()
	toks := make([]string, len(ids))
	for i, id := range ids {
		toks[i] = strconv.Itoa(int(id))
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
	cmd := exec.CommandContext(ctx, node, "logits.mjs", "--model", abs(modelPath), "--lora", abs(adapter), "--tokens", strings.Join(toks, ","))
	cmd.Dir = llamaCppDir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == 3 {
			t.Fatalf("node-llama-cpp does not load: run `make llamacpp`\n%s", stderr.String())
		}
		t.Fatalf("node logits.mjs: %v\n%s", err, stderr.String())
	}
	var res llamaCppLogProbs
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("node logits.mjs printed no JSON: %v\n%.500s\n%s", err, stdout.String(), stderr.String())
	}
	if res.Vocab != 512 || len(res.Base) != len(ids) || len(res.LoRA) != len(ids) {
		t.Fatalf("llama.cpp returned vocab %d, %d and %d positions; want 512 and %d", res.Vocab, len(res.Base), len(res.LoRA), len(ids))
	}
	for p := range ids {
		if len(res.Base[p]) != res.Vocab || len(res.LoRA[p]) != res.Vocab {
			t.Fatalf("position %d: %d and %d entries, want %d", p, len(res.Base[p]), len(res.LoRA[p]), res.Vocab)
		}
	}
	return res
}

// logSoftmax applies log-softmax to each row of vocab logits, in float64.
func logSoftmax(logits []float32, vocab int) []float64 {
	out := make([]float64, len(logits))
	for start := 0; start < len(logits); start += vocab {
		row := logits[start : start+vocab]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = math.Max(mx, float64(v))
		}
		var sum float64
		for _, v := range row {
			sum += math.Exp(float64(v) - mx)
		}
		lse := mx + math.Log(sum)
		for i, v := range row {
			out[start+i] = float64(v) - lse
		}
	}
	return out
}
