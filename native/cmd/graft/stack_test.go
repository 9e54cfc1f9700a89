package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/peft"
)

// TestTrainMixedStack trains LoRA with prefix tuning, and LoRA with (IA)³,
// from the command line; the saved stacks work with --adapter in eval,
// generate and merge (where every part merges).
func TestTrainMixedStack(t *testing.T) {
	var base struct {
		Loss float64 `json:"loss"`
	}
	graftJSON(t, &base, "eval", "--model", modelPath, "--data", evalData)
	for _, c := range []struct {
		method    string
		flags     []string
		mergeable bool
	}{
		{"lora+prefix-tuning", []string{"--r", "4", "--virtual-tokens", "6", "--target", "q_proj,v_proj"}, false},
		{"lora+ia3", []string{"--r", "4", "--target", "v_proj,down_proj", "--feedforward", "down_proj"}, true},
	} {
		t.Run(c.method, func(t *testing.T) {
			out := t.TempDir()
			args := append([]string{"train", "--model", modelPath, "--data", trainData, "--eval", evalData,
				"--method", c.method, "--batch", "2", "--seq-len", "64", "--pack", "--lr", "1e-2", "--seed", "3",
				"--steps", "20", "--out", out, "--prompt-init", "random"}, c.flags...)
			var res trainSummary
			stdout, stderr, code := graft(t, append(args, "--json")...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if err := json.Unmarshal([]byte(stdout), &res); err != nil {
				t.Fatalf("stdout %q: %v", stdout, err)
			}
			t.Logf("%s: eval loss %.4f -> %.4f, %d trainable parameters", c.method, *res.EvalLossBefore, *res.EvalLoss, res.TrainableParams)
			if res.Method != c.method || !(*res.EvalLoss < *res.EvalLossBefore) {
				t.Errorf("summary %+v", res)
			}
			// --prompt-init applies to no part: said and ignored.
			if !strings.Contains(stderr, "--prompt-init applies to no method of --method "+c.method) {
				t.Errorf("stderr does not say --prompt-init is ignored: %s", stderr)
			}
			// The log names each part with its settings.
			if !strings.Contains(stderr, " + ") || !strings.Contains(stderr, "r=4") {
				t.Errorf("stderr does not describe the parts: %s", stderr)
			}
			if _, err := os.Stat(filepath.Join(out, peft.StackManifestFileName)); err != nil {
				t.Fatal(err)
			}
			lora, err := os.ReadFile(filepath.Join(out, "lora", peft.ConfigFileName))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(lora), `"r": 4`) {
				t.Errorf("lora part config lacks r 4: %s", lora)
			}

			var ev struct {
				Loss float64 `json:"loss"`
			}
			graftJSON(t, &ev, "eval", "--model", modelPath, "--adapter", out, "--data", evalData)
			// graft eval scores each record alone, unlike training's packed
			// rows, so the losses differ from the summary's. LoRA and (IA)³
			// start as the identity, so training beats the base; a random
			// prefix starts far above it (the summary's before) and 20 steps
			// do not make up for all of that.
			t.Logf("graft eval: %.4f with the stack, %.4f without", ev.Loss, base.Loss)
			if d := ev.Loss - base.Loss; d > -1e-3 && d < 1e-3 || (c.mergeable && !(ev.Loss < base.Loss)) {
				t.Errorf("eval with --adapter: loss %.4f; base %.4f", ev.Loss, base.Loss)
			}
			var gen struct {
				Text string `json:"text"`
			}
			graftJSON(t, &gen, "generate", "--model", modelPath, "--adapter", out, "--prompt", "Once upon a time", "--max-tokens", "12", "--temperature", "0")
			if strings.TrimSpace(gen.Text) == "" {
				t.Error("generate with the stack gave no text")
			}

			merged := filepath.Join(t.TempDir(), "merged.gguf")
			_, stderr, code = graft(t, "merge", "--model", modelPath, "--adapter", out, "--out", merged)
			if !c.mergeable {
				if code == 0 || !strings.Contains(stderr, peft.ErrNotMergeable.Error()) {
					t.Errorf("merge of a stack with prefix tuning: exit %d, %s", code, stderr)
				}
				return
			}
			if code != 0 {
				t.Fatalf("merge: exit %d: %s", code, stderr)
			}
			var mergedEval struct {
				Loss float64 `json:"loss"`
			}
			graftJSON(t, &mergedEval, "eval", "--model", merged, "--data", evalData)
			if d := mergedEval.Loss - ev.Loss; d > 1e-4 || d < -1e-4 {
				t.Errorf("merged model's eval loss %.5f, with the adapter %.5f", mergedEval.Loss, ev.Loss)
			}
		})
	}
}

// TestStackFlagsSpec checks how method flags spread over a stack's parts.
func TestStackFlagsSpec(t *testing.T) {
	f, err := parseTrainFlags([]string{"--model", modelPath, "--data", trainData, "--out", t.TempDir(), "--steps", "1",
		"--method", "lora+prefix-tuning", "--r", "8", "--dropout", "0.1", "--virtual-tokens", "5", "--prefix-projection"}, new(strings.Builder))
	if err != nil {
		t.Fatal(err)
	}
	s := f.spec
	if s.Method != "" || len(s.Stack) != 2 || s.Stack[0].Method != "lora" || s.Stack[1].Method != "prefix-tuning" {
		t.Fatalf("spec %+v", s)
	}
	if got, want := fmt.Sprint(s.Stack[0].Options), "map[lora_dropout:0.1 r:8]"; got != want {
		t.Errorf("lora options %v, want %v", got, want)
	}
	if got, want := fmt.Sprint(s.Stack[1].Options), "map[num_virtual_tokens:5 prefix_projection:true]"; got != want {
		t.Errorf("prefix-tuning options %v, want %v", got, want)
	}
	_, err = parseTrainFlags([]string{"--model", modelPath, "--data", trainData, "--out", t.TempDir(), "--steps", "1",
		"--method", "lora+magic", "--r", "8"}, new(strings.Builder))
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), `"magic" is not supported`) {
		t.Errorf("unknown method in a stack: %v", err)
	}
}
