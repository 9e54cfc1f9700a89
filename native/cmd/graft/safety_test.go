package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/peft"
	"github.com/graft-ml/graft/core/train"
)

// The tests of this file check that graft never replaces or mixes files
// without being told to (issue 15, item 6), and that train's eval and
// graft eval measure the same thing (item 5).

// shortArgs is a 4-step run of trainArgs with a checkpoint every 2 steps.
func shortArgs(out string, extra ...string) []string {
	return append([]string{"train"}, trainArgs(out, append([]string{"--steps", "4", "--save-every", "2"}, extra...)...)...)
}

func mustTrain(t *testing.T, args ...string) string {
	t.Helper()
	_, stderr, code := graft(t, args...)
	if code != 0 {
		t.Fatalf("graft %v: exit %d: %s", args, code, stderr)
	}
	return stderr
}

func TestEvalMatchesTrainEval(t *testing.T) {
	out := t.TempDir()
	var sum struct {
		EvalLoss float64 `json:"eval_loss"`
		SeqLen   int     `json:"seq_len"`
		Pack     bool    `json:"pack"`
	}
	graftJSON(t, &sum, append([]string{"train"}, trainArgs(out, "--steps", "3")...)...)
	if sum.SeqLen != 64 || !sum.Pack {
		t.Fatalf("train summary says seq_len %d pack %v, want 64 true", sum.SeqLen, sum.Pack)
	}
	var ev struct {
		Loss   float64 `json:"loss"`
		SeqLen int     `json:"seq_len"`
		Pack   bool    `json:"pack"`
	}
	// The same rows in the same batches: the same sum, bit for bit.
	graftJSON(t, &ev, "eval", "--model", modelPath, "--adapter", out, "--data", evalData, "--seq-len", "64", "--pack", "--batch", "2")
	if ev.Loss != sum.EvalLoss || ev.SeqLen != 64 || !ev.Pack {
		t.Fatalf("graft eval: loss %v (seq_len %d, pack %v), train's eval loss %v", ev.Loss, ev.SeqLen, ev.Pack, sum.EvalLoss)
	}
	// Other batches only change the order of the sum.
	graftJSON(t, &ev, "eval", "--model", modelPath, "--adapter", out, "--data", evalData, "--seq-len", "64", "--pack")
	if math.Abs(ev.Loss-sum.EvalLoss) > 1e-5*sum.EvalLoss {
		t.Fatalf("graft eval --batch 4: loss %v, train's eval loss %v", ev.Loss, sum.EvalLoss)
	}
	// Both print the rows they scored.
	stdout, _, code := graft(t, "eval", "--model", modelPath, "--adapter", out, "--data", evalData)
	if code != 0 || !strings.Contains(stdout, "seq_len 256, padded") {
		t.Fatalf("graft eval printed %q, want the rows it scored", stdout)
	}
	stdout, _, code = graft(t, append([]string{"train"}, trainArgs(t.TempDir(), "--steps", "1")...)...)
	if code != 0 || !strings.Contains(stdout, "seq_len 64, packed") {
		t.Fatalf("graft train printed %q, want the rows of its eval", stdout)
	}
}

func TestTrainRefusesAnotherRunsOut(t *testing.T) {
	out := t.TempDir()
	mustTrain(t, shortArgs(out)...)
	before, err := os.ReadFile(filepath.Join(out, peft.WeightsFileName))
	if err != nil {
		t.Fatal(err)
	}
	// Another run into the same directory is refused before any work.
	_, stderr, code := graft(t, shortArgs(out, "--seed", "12")...)
	if code == 0 || !strings.Contains(stderr, "holds another run") || !strings.Contains(stderr, "--overwrite") {
		t.Fatalf("exit %d, stderr %q: want a refusal naming --overwrite", code, stderr)
	}
	after, err := os.ReadFile(filepath.Join(out, peft.WeightsFileName))
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("the refused run changed the adapter (%v)", err)
	}
	// An empty directory is fine.
	empty := t.TempDir()
	mustTrain(t, append([]string{"train"}, trainArgs(empty, "--steps", "1")...)...)

	// --overwrite replaces the run and leaves none of its checkpoints.
	mustTrain(t, append([]string{"train"}, trainArgs(out, "--steps", "3", "--overwrite")...)...)
	for _, old := range []string{"checkpoint-2", "checkpoint-4"} {
		if _, err := os.Stat(filepath.Join(out, old)); err == nil {
			t.Errorf("--overwrite left the other run's %s", old)
		}
	}
}

func TestTrainResumeRefusesOtherSettings(t *testing.T) {
	out := t.TempDir()
	mustTrain(t, shortArgs(out)...)
	otherData := filepath.Join(t.TempDir(), "other.jsonl")
	if err := os.WriteFile(otherData, []byte(`{"text": "A different story about a cat."}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		extra []string
		want  []string
	}{
		{"seed and lr", []string{"--seed", "12", "--lr", "1e-2"}, []string{"seed: 11 → 12", "lr: 0.005 → 0.01"}},
		{"rank", []string{"--r", "8"}, []string{"lora.r: 4 → 8"}},
		{"steps", []string{"--steps", "8"}, []string{"steps: 4 → 8", "schedule is laid over 8 steps instead of 4"}},
		{"data", []string{"--data", otherData}, []string{"data: " + trainData, otherData}},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append(shortArgs(out, "--resume", filepath.Join(out, "checkpoint-2")), c.extra...)
			_, stderr, code := graft(t, args...)
			if code == 0 {
				t.Fatalf("resume with other settings succeeded")
			}
			for _, w := range append(c.want, "other settings or data", "--force") {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
	// --force continues and says what differs.
	stderr := mustTrain(t, append(shortArgs(out, "--resume", filepath.Join(out, "checkpoint-2"), "--force"), "--steps", "6")...)
	if !strings.Contains(stderr, "warning") || !strings.Contains(stderr, "steps: 4 → 6") {
		t.Fatalf("--force resumed without saying what differs:\n%s", stderr)
	}
}

// TestTrainResumeLogsEachStepOnce resumes a finished run from its first
// checkpoint: metrics.jsonl keeps the lines up to it and the resumed run
// logs the rest, each step once.
func TestTrainResumeLogsEachStepOnce(t *testing.T) {
	out := t.TempDir()
	mustTrain(t, shortArgs(out, "--eval-every", "2")...)
	mustTrain(t, shortArgs(out, "--eval-every", "2", "--resume", filepath.Join(out, "checkpoint-2"))...)
	raw, err := os.ReadFile(filepath.Join(out, train.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	var steps []int
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var e struct {
			Kind string `json:"kind"`
			Step int    `json:"step"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		key := fmt.Sprintf("%s@%d", e.Kind, e.Step)
		if seen[key]++; seen[key] > 1 {
			t.Errorf("%s at step %d logged twice", e.Kind, e.Step)
		}
		if e.Kind == "step" {
			steps = append(steps, e.Step)
		}
	}
	if !slices.Equal(steps, []int{1, 2, 3, 4}) || seen["done@4"] != 1 || seen["eval@0"] != 1 || seen["eval@4"] != 1 {
		t.Fatalf("metrics.jsonl has steps %v and %v", steps, seen)
	}
}

func TestTrainSeqLenCheckedBeforeWriting(t *testing.T) {
	for _, method := range []string{"lora", "prompt-tuning"} {
		out := filepath.Join(t.TempDir(), "new")
		_, stderr, code := graft(t, "train", "--model", modelPath, "--data", trainData, "--method", method,
			"--steps", "1", "--batch", "1", "--seq-len", "510", "--out", out)
		if method == "lora" {
			// 510 fits lora in stories260K's context of 512; 600 does not.
			if code != 0 {
				t.Fatalf("lora --seq-len 510: exit %d: %s", code, stderr)
			}
			out = filepath.Join(t.TempDir(), "new")
			_, stderr, code = graft(t, "train", "--model", modelPath, "--data", trainData, "--steps", "2", "--seq-len", "600", "--out", out)
		}
		if code != 2 || !strings.Contains(stderr, "exceed") || !strings.Contains(stderr, "context of 512") {
			t.Fatalf("%s: exit %d, stderr %q: want a usage error naming the context", method, code, stderr)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%s: the refused run created %s", method, out)
		}
	}
}

func TestInvalidUTF8Data(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "latin1.jsonl")
	lines := "{\"text\": \"Once upon a time there was a cat.\"}\n{\"text\": \"The caf\xe9 was open.\"}\n"
	if err := os.WriteFile(data, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{
		{"train", "--model", modelPath, "--data", data, "--steps", "1", "--quiet", "--out", filepath.Join(dir, "out")},
		{"eval", "--model", modelPath, "--data", data},
	} {
		_, stderr, code := graft(t, cmd...)
		if code == 0 || !strings.Contains(stderr, data+":2:") || !strings.Contains(stderr, "invalid UTF-8") ||
			!strings.Contains(stderr, "--allow-invalid-utf8") {
			t.Fatalf("%s: exit %d, stderr %q: want an error naming the line", cmd[0], code, stderr)
		}
		_, stderr, code = graft(t, append(cmd, "--allow-invalid-utf8")...)
		if code != 0 || !strings.Contains(stderr, "warning") || !strings.Contains(stderr, data+":2:") {
			t.Fatalf("%s --allow-invalid-utf8: exit %d, stderr %q: want a warning naming the line", cmd[0], code, stderr)
		}
	}
}

func TestMergeAndExportRefuseExistingOut(t *testing.T) {
	adapter := t.TempDir()
	mustTrain(t, append([]string{"train"}, trainArgs(adapter, "--steps", "1")...)...)
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		args []string
	}{
		{"merge.gguf", []string{"merge", "--model", modelPath, "--adapter", adapter}},
		{"export.msgpack", []string{"export", "--adapter", adapter}},
		{"export.gguf", []string{"export", "--adapter", adapter, "--model", modelPath}},
	} {
		out := filepath.Join(dir, c.name)
		if err := os.WriteFile(out, []byte("precious"), 0o644); err != nil {
			t.Fatal(err)
		}
		args := append(c.args, "--out", out)
		_, stderr, code := graft(t, args...)
		if code != 2 || !strings.Contains(stderr, out) || !strings.Contains(stderr, "--overwrite") {
			t.Fatalf("%s: exit %d, stderr %q: want a refusal naming --overwrite", c.name, code, stderr)
		}
		if got, _ := os.ReadFile(out); string(got) != "precious" {
			t.Fatalf("%s: the refused command changed the file", c.name)
		}
		if _, stderr, code := graft(t, append(args, "--overwrite")...); code != 0 {
			t.Fatalf("%s --overwrite: exit %d: %s", c.name, code, stderr)
		}
		if got, _ := os.ReadFile(out); string(got) == "precious" {
			t.Fatalf("%s --overwrite left the file", c.name)
		}
	}
	// A Hugging Face directory that holds files is refused too.
	hf := filepath.Join(dir, "hf")
	if err := os.MkdirAll(hf, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hf, "config.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := graft(t, "merge", "--model", modelPath, "--adapter", adapter, "--out", hf); code != 2 || !strings.Contains(stderr, "--overwrite") {
		t.Fatalf("merge into a full directory: exit %d, stderr %q", code, stderr)
	}
}

func TestLegacyGGJTModelNamed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "llama-7b.ggmlv3.q4_0.bin")
	b := binary.LittleEndian.AppendUint32(nil, 0x67676a74) // 'ggjt', as llama.cpp wrote it
	b = binary.LittleEndian.AppendUint32(b, 3)
	if err := os.WriteFile(path, append(b, make([]byte, 256)...), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := graft(t, "inspect", "--model", path)
	if code == 0 || !strings.Contains(stderr, "GGJT") || !strings.Contains(stderr, "convert_llama_ggml_to_gguf.py") {
		t.Fatalf("exit %d, stderr %q: want the format named with the way to convert it", code, stderr)
	}
}

func TestQuantizeQuantizedBaseIsSaid(t *testing.T) {
	q8 := "../../../models/stories260K/stories260K-q8_0-v2.gguf"
	_, stderr, code := graft(t, "eval", "--model", q8, "--quantize", "nf4", "--data", evalData, "--seq-len", "32")
	if code != 0 || !strings.Contains(stderr, "are Q8_0") || !strings.Contains(stderr, "trains on them as stored") {
		t.Fatalf("exit %d, stderr %q: want a note that the Q8_0 weights are kept", code, stderr)
	}
	// An F32 base is quantized without a note.
	_, stderr, code = graft(t, "eval", "--model", modelPath, "--quantize", "nf4", "--data", evalData, "--seq-len", "32")
	if code != 0 || strings.Contains(stderr, "as stored") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}
