package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
	"github.com/graft-ml/graft/core/tokenizer"
	"github.com/graft-ml/graft/core/train"
)

const (
	trainData = "../../../examples/lora/data/train.jsonl"
	evalData  = "../../../examples/lora/data/eval.jsonl"
)

// trainArgs is a small but real LoRA run on the demo data.
func trainArgs(out string, extra ...string) []string {
	return append([]string{"--model", modelPath, "--data", trainData, "--eval", evalData,
		"--method", "lora", "--r", "4", "--alpha", "8", "--target", "q_proj,k_proj,v_proj,o_proj",
		"--batch", "2", "--seq-len", "64", "--pack", "--lr", "5e-3", "--seed", "11", "--quiet", "--out", out}, extra...)
}

func TestTrainWritesAdapterMetricsAndPlot(t *testing.T) {
	out := t.TempDir()
	stdout, stderr, code := graft(t, append([]string{"train"}, trainArgs(out, "--steps", "30", "--eval-every", "15")...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "adapter saved to") {
		t.Errorf("stdout %q", stdout)
	}
	for _, f := range []string{peft.ConfigFileName, peft.WeightsFileName, train.MetricsFile, train.LossCurveFile} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	// metrics.jsonl: one JSON object per line; eval loss falls from step 0.
	data, err := os.ReadFile(filepath.Join(out, train.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	var evals []float64
	steps := 0
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var e struct {
			Kind     string  `json:"kind"`
			EvalLoss float64 `json:"eval_loss"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		switch e.Kind {
		case "eval":
			evals = append(evals, e.EvalLoss)
		case "step":
			steps++
		}
	}
	if steps != 30 || len(evals) != 3 || !(evals[2] < 0.8*evals[0]) {
		t.Fatalf("%d steps, eval losses %v: want 30 steps and a falling eval loss", steps, evals)
	}
	svg, err := os.ReadFile(filepath.Join(out, train.LossCurveFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(svg, new(struct{})); err != nil {
		t.Fatalf("loss curve is not XML: %v", err)
	}
	// The adapter is usable by generate and eval.
	var ev struct {
		Loss float64 `json:"loss"`
	}
	graftJSON(t, &ev, "eval", "--model", modelPath, "--adapter", out, "--data", evalData)
	var base struct {
		Loss float64 `json:"loss"`
	}
	graftJSON(t, &base, "eval", "--model", modelPath, "--data", evalData)
	if !(ev.Loss < base.Loss) {
		t.Fatalf("eval loss with adapter %.4f, without %.4f", ev.Loss, base.Loss)
	}
}

// TestTrainResumeIsBitIdentical stops a run after step 5 (as Ctrl-C does),
// resumes it from its checkpoint and compares the final adapter with an
// uninterrupted run, byte for byte.
func TestTrainResumeIsBitIdentical(t *testing.T) {
	args := func(out string) []string {
		return trainArgs(out, "--steps", "10", "--save-every", "5", "--dropout", "0.1")
	}
	straight := t.TempDir()
	if _, stderr, code := graft(t, append([]string{"train"}, args(straight)...)...); code != 0 {
		t.Fatalf("straight run: exit %d: %s", code, stderr)
	}

	stopped := t.TempDir()
	f, err := parseTrainFlags(args(stopped), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.observe = func(e train.Event) {
		if e.Kind == train.EventCheckpoint && e.Step == 5 {
			cancel()
		}
	}
	if err := f.run(ctx, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Fatalf("stopped run: err %v, want a cancellation", err)
	}
	if _, err := os.Stat(filepath.Join(stopped, peft.WeightsFileName)); err == nil {
		t.Fatal("a stopped run wrote a final adapter")
	}
	if _, stderr, code := graft(t, append([]string{"train"}, append(args(stopped), "--resume", stopped)...)...); code != 0 {
		t.Fatalf("resumed run: exit %d: %s", code, stderr)
	}
	want, err := os.ReadFile(filepath.Join(straight, peft.WeightsFileName))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(stopped, peft.WeightsFileName))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the resumed run's adapter differs from the uninterrupted run's")
	}
}

// TestTrainCheckpointingIsBitIdentical trains with and without
// --checkpointing and compares the adapters byte for byte: recomputing
// the layers in backward changes the memory a step holds, not its
// arithmetic.
func TestTrainCheckpointingIsBitIdentical(t *testing.T) {
	for _, c := range []struct {
		weights string
		method  []string
	}{
		{peft.WeightsFileName, []string{"--method", "lora"}},
		{peft.BottleneckWeightsFileName, []string{"--method", "houlsby", "--non-linearity", "gelu"}},
		{peft.WeightsFileName, []string{"--method", "prefix-tuning", "--virtual-tokens", "4"}},
	} {
		method := c.method
		t.Run(method[1], func(t *testing.T) {
			adapters := make([][]byte, 2)
			for i, extra := range [][]string{nil, {"--checkpointing"}} {
				out := t.TempDir()
				var res trainSummary
				graftJSON(t, &res, append([]string{"train"}, trainArgs(out, append(append([]string{"--steps", "4"}, method...), extra...)...)...)...)
				if res.Checkpointing != (extra != nil) {
					t.Errorf("summary says checkpointing %v", res.Checkpointing)
				}
				var err error
				if adapters[i], err = os.ReadFile(filepath.Join(out, c.weights)); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(adapters[0], adapters[1]) {
				t.Fatal("the adapter trained with --checkpointing differs from the one trained without")
			}
		})
	}
}

// TestTrainCheckpointingRefusesUnreplayedDropout checks that
// --checkpointing with dropout is refused while an adapter cannot repeat
// its dropout masks in the recomputation, rather than training on
// mismatched gradients.
func TestTrainCheckpointingRefusesUnreplayedDropout(t *testing.T) {
	m, err := model.Load(modelPath, cpu.New())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	a, err := peft.NewAdapter(m, []byte(`{"peft_type": "LORA", "r": 4, "lora_dropout": 0.1, "target_modules": ["q_proj"]}`), rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	_, replays := m.Layers[0].Q.Hooks()[0].(model.ForwardReplayer)
	a.Unload()
	_, stderr, code := graft(t, append([]string{"train"}, trainArgs(t.TempDir(), "--steps", "1", "--dropout", "0.1", "--checkpointing")...)...)
	switch {
	case replays && code != 0:
		t.Fatalf("LoRA replays its masks, yet: exit %d, stderr %q", code, stderr)
	case !replays && (code != 2 || !strings.Contains(stderr, "checkpointing with lora_dropout 0.1") || !strings.Contains(stderr, "q_proj")):
		t.Fatalf("exit %d, stderr %q; want a usage error naming the dropout and q_proj", code, stderr)
	}
}

func TestTrainStopsOnNaN(t *testing.T) {
	out := t.TempDir()
	// A huge learning rate without clipping overflows the weights.
	_, stderr, code := graft(t, append([]string{"train"}, trainArgs(out, "--steps", "20", "--save-every", "1", "--lr", "1e30", "--max-grad-norm", "0")...)...)
	if code != 1 || !strings.Contains(stderr, "last good checkpoint") || !(strings.Contains(stderr, "NaN") || strings.Contains(stderr, "Inf")) {
		t.Fatalf("exit %d, stderr %q: want a NaN/Inf error naming the last good checkpoint", code, stderr)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || e.Name() == peft.WeightsFileName {
			t.Errorf("left %s behind after the NaN stop", e.Name())
		}
	}
}

func TestTrainRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(bad, []byte("{\"text\": \"Pip the owl.\"}\n{\"text\": \"Pip\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad jsonl line", []string{"--model", modelPath, "--data", bad, "--steps", "2", "--out", out}, 1, "bad.jsonl:2"},
		{"no steps", []string{"--model", modelPath, "--data", bad, "--out", out}, 2, "set steps or epochs"},
		{"no data", []string{"--model", modelPath, "--steps", "2", "--out", out}, 2, "no training data"},
		{"no out", []string{"--model", modelPath, "--data", trainData, "--steps", "2"}, 2, "--out is required"},
		{"bad flag value", []string{"--model", modelPath, "--data", trainData, "--steps", "2", "--r", "four", "--out", out}, 2, "--r"},
		{"seq-len beyond the context", []string{"--model", modelPath, "--data", trainData, "--steps", "2", "--seq-len", "4096", "--out", out}, 2, "exceeds the model's context"},
		{"method twice in a stack", []string{"--model", modelPath, "--data", trainData, "--steps", "2", "--method", "lora+ia3+lora", "--out", out}, 2, "method lora is already in the stack"},
		{"bad rank", []string{"--model", modelPath, "--data", trainData, "--steps", "2", "--r", "0", "--out", out}, 2, "r"},
		{"unknown method", []string{"--model", modelPath, "--data", trainData, "--steps", "2", "--method", "magic", "--out", out}, 2, "magic"},
		{"bad schedule", []string{"--model", modelPath, "--data", trainData, "--steps", "2", "--schedule", "zigzag", "--out", out}, 2, "zigzag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := graft(t, append([]string{"train"}, tt.args...)...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d mentioning %q", code, stderr, tt.code, tt.want)
			}
			if _, err := os.Stat(filepath.Join(out, peft.WeightsFileName)); err == nil {
				t.Fatal("an adapter was written")
			}
		})
	}
}

func TestCorruptAdapterIsRefused(t *testing.T) {
	out := t.TempDir()
	if _, stderr, code := graft(t, append([]string{"train"}, trainArgs(out, "--steps", "2")...)...); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	weights := filepath.Join(out, peft.WeightsFileName)
	data, err := os.ReadFile(weights)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(weights, data[:len(data)-7], 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := graft(t, "generate", "--model", modelPath, "--adapter", out, "--max-tokens", "3")
	if code != 1 || !strings.Contains(stderr, peft.WeightsFileName) {
		t.Fatalf("exit %d, stderr %q: want an error naming the adapter file", code, stderr)
	}
}

// TestMergeMatchesAdapter merges an adapter into GGUF and Hugging Face
// copies of the base and checks their logits against base + adapter.
func TestMergeMatchesAdapter(t *testing.T) {
	dir := t.TempDir()
	adapter := filepath.Join(dir, "adapter")
	if _, stderr, code := graft(t, append([]string{"train"}, trainArgs(adapter, "--steps", "10", "--lr", "2e-2")...)...); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	ggufOut, hfOut := filepath.Join(dir, "merged.gguf"), filepath.Join(dir, "merged-hf")
	for _, out := range []string{ggufOut, hfOut} {
		_, stderr, code := graft(t, "merge", "--model", modelPath, "--adapter", adapter, "--out", out)
		if code != 0 {
			t.Fatalf("merge to %s: exit %d: %s", out, code, stderr)
		}
		if strings.Contains(stderr, "tokenizer") {
			t.Errorf("merge to %s warns about the tokenizer: %s", out, stderr)
		}
	}
	logits := func(path string, adapters ...string) []float32 {
		mf := &modelFlags{path: path, device: "cpu", adapters: adapters}
		m, err := mf.load()
		if err != nil {
			t.Fatal(err)
		}
		defer m.Free()
		ids := []int32{1, 403, 407, 261, 378, 29, 11, 85}
		out, err := m.Forward(m.NewCache(0), ids, true)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	want := logits(modelPath, adapter)
	base := logits(modelPath)
	if maxRelDiff(base, want) < 1e-3 {
		t.Fatal("the adapter does not change the logits; the test would prove nothing")
	}
	for _, out := range []string{ggufOut, hfOut} {
		if d := maxRelDiff(logits(out), want); d > 1e-5 {
			t.Errorf("%s: merged logits differ from base+adapter by %.3g (relative)", out, d)
		}
	}
	// The merged GGUF keeps the tokenizer and needs no adapter.
	m, err := model.Load(ggufOut, cpu.New())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	if m.Tokenizer == nil || m.Tokenizer.VocabSize() != 512 {
		t.Fatal("merged GGUF lost its tokenizer")
	}
	checkMergedSentencePiece(t, m, hfOut, adapter)
}

// checkMergedSentencePiece: the Hugging Face directory graft merge wrote
// from stories260K's GGUF holds a SentencePiece-style tokenizer.json that
// encodes as the GGUF vocabulary does, and merging from that directory
// back to GGUF writes the original tokens, scores and token types.
func checkMergedSentencePiece(t *testing.T, src *model.Model, hfOut, adapter string) {
	t.Helper()
	hf, err := model.Load(hfOut, cpu.New())
	if err != nil {
		t.Fatal(err)
	}
	defer hf.Free()
	if hf.Tokenizer == nil || hf.Tokenizer.Kind() != tokenizer.KindSentencePiece {
		t.Fatalf("%s: tokenizer %v, want a SentencePiece one from tokenizer.json", hfOut, hf.Tokenizer)
	}
	for _, s := range []string{"Once upon a time, there was a little girl.", "  Lily said \"hi!\"\n\nThe end", "über 42 ☃", ""} {
		if a, b := hf.Tokenizer.Encode(s, true), src.Tokenizer.Encode(s, true); !slices.Equal(a, b) {
			t.Errorf("Encode(%q): HF dir %v, GGUF %v", s, a, b)
		}
	}
	back := filepath.Join(t.TempDir(), "back.gguf")
	if _, stderr, code := graft(t, "merge", "--model", hfOut, "--adapter", adapter, "--out", back); code != 0 || strings.Contains(stderr, "tokenizer") {
		t.Fatalf("merge %s to GGUF: exit %d: %s", hfOut, code, stderr)
	}
	want, err := gguf.Open(modelPath)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	got, err := gguf.Open(back)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	wt, _ := want.Strings("tokenizer.ggml.tokens")
	gt, _ := got.Strings("tokenizer.ggml.tokens")
	ws, _ := want.Float32s("tokenizer.ggml.scores")
	gs, _ := got.Float32s("tokenizer.ggml.scores")
	wy, _ := want.Int32s("tokenizer.ggml.token_type")
	gy, _ := got.Int32s("tokenizer.ggml.token_type")
	if len(wt) != 512 || !slices.Equal(gt, wt) || !slices.Equal(gs, ws) || !slices.Equal(gy, wy) {
		t.Errorf("%s: tokenizer.ggml.tokens/scores/token_type differ from %s's", back, modelPath)
	}
	if m, _ := got.String("tokenizer.ggml.model"); m != "llama" {
		t.Errorf("%s: tokenizer.ggml.model = %q, want llama", back, m)
	}
}

// maxRelDiff is max |a-b| / max |b|.
func maxRelDiff(a, b []float32) float64 {
	var d, scale float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
		scale = math.Max(scale, math.Abs(float64(b[i])))
	}
	return d / scale
}

func TestTrainJSONSummary(t *testing.T) {
	out := t.TempDir()
	var res trainSummary
	graftJSON(t, &res, append([]string{"train"}, trainArgs(out, "--steps", "3")...)...)
	if res.Method != "lora" || res.Steps != 3 || res.EvalLoss == nil || res.EvalLossBefore == nil ||
		res.TrainableParams <= 0 || res.TotalParams != 292800 || res.Out != out {
		t.Fatalf("summary %+v", res)
	}
}

// TestTrainPiSSAConvertedLoRA trains from a PiSSA initialisation and checks
// that the converted adapter, applied to the original base, reproduces the
// trained model's loss.
func TestTrainPiSSAConvertedLoRA(t *testing.T) {
	dir := t.TempDir()
	plain, converted := filepath.Join(dir, "pissa"), filepath.Join(dir, "converted")
	args := func(out string, extra ...string) []string {
		return append([]string{"train"}, trainArgs(out, append([]string{"--steps", "5", "--init", "pissa"}, extra...)...)...)
	}
	for _, run := range [][]string{args(plain), args(converted, "--convert-lora")} {
		if _, stderr, code := graft(t, run...); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
	}
	var a, b struct {
		Loss float64 `json:"loss"`
	}
	graftJSON(t, &a, "eval", "--model", modelPath, "--adapter", plain, "--data", evalData)
	graftJSON(t, &b, "eval", "--model", modelPath, "--adapter", converted, "--data", evalData)
	if math.Abs(a.Loss-b.Loss) > 1e-4 {
		t.Fatalf("eval loss %.6f with the PiSSA adapter, %.6f with its LoRA conversion", a.Loss, b.Loss)
	}
	cfg, err := os.ReadFile(filepath.Join(converted, peft.ConfigFileName))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), `"r": 8`) {
		t.Fatalf("converted config is not rank 2r=8:\n%s", cfg)
	}
}

// TestTrainMethodFlags checks that a method flag reaches the adapter
// config under the method's key, converted by that key, and that a flag
// of another method is ignored with a word on stderr.
func TestTrainMethodFlags(t *testing.T) {
	out := t.TempDir()
	_, stderr, code := graft(t, "train", "--model", modelPath, "--data", trainData, "--steps", "1", "--seq-len", "32", "--quiet",
		"--method", "ia3", "--target", "k_proj,up_proj", "--feedforward", "up_proj", "--r", "4", "--out", out)
	if code != 0 || !strings.Contains(stderr, "--r does not apply to --method ia3") {
		t.Fatalf("exit %d, stderr %q: want a run and a note that --r is ignored", code, stderr)
	}
	raw, err := os.ReadFile(filepath.Join(out, peft.ConfigFileName))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Target      []string `json:"target_modules"`
		Feedforward []string `json:"feedforward_modules"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Target, ",") != "k_proj,up_proj" || strings.Join(cfg.Feedforward, ",") != "up_proj" {
		t.Fatalf("adapter config %s", raw)
	}
}
