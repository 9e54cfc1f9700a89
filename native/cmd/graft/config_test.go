package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/peft"
)

// runYAML is a LoRA run as a --config file; the same run as flags is
// runFlags.
const runYAML = `# A small LoRA run.
model: ../../../models/stories260K/stories260K.gguf
data: ../../../examples/lora/data/train.jsonl
eval: ../../../examples/lora/data/eval.jsonl
method: lora
options:
  r: 4
  lora_alpha: 8
  target_modules: [q_proj, k_proj, v_proj, o_proj]
seq_len: 64
batch: 2
pack: true
lr: 5e-3   # YAML 1.2 float, exponent without a point
seed: 11
steps: 4
`

func runFlags(out string, extra ...string) []string {
	return append(trainArgs(out, "--steps", "4"), extra...)
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func adapterWeights(t *testing.T, dir string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, peft.WeightsFileName))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTrainConfigFile trains from a YAML --config file and from the same
// settings as flags, and checks the adapters are the same byte for byte;
// then that flags given beside the file override it.
func TestTrainConfigFile(t *testing.T) {
	cfg := writeFile(t, "run.yaml", runYAML)
	fromFile, fromFlags := t.TempDir(), t.TempDir()
	var res trainSummary
	graftJSON(t, &res, "train", "--config", cfg, "--quiet", "--out", fromFile)
	if res.Steps != 4 || res.TrainableParams <= 0 {
		t.Fatalf("summary %+v", res)
	}
	if _, stderr, code := graft(t, append([]string{"train"}, runFlags(fromFlags)...)...); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !bytes.Equal(adapterWeights(t, fromFile), adapterWeights(t, fromFlags)) {
		t.Fatal("the run from the config file differs from the same run given as flags")
	}

	// Flags override the file, method flags included.
	var over trainSummary
	overridden := t.TempDir()
	graftJSON(t, &over, "train", "--config", cfg, "--steps", "2", "--r", "2", "--quiet", "--out", overridden)
	raw, err := os.ReadFile(filepath.Join(overridden, peft.ConfigFileName))
	if err != nil {
		t.Fatal(err)
	}
	if over.Steps != 2 || !strings.Contains(string(raw), `"r": 2,`) || !strings.Contains(string(raw), `"lora_alpha": 8`) {
		t.Fatalf("steps %d, config:\n%s\nwant --steps 2 and --r 2 over the file, lora_alpha 8 from it", over.Steps, raw)
	}
}

// TestTrainPrintConfig prints the effective run as YAML and as JSON, and
// trains from each printed file: the same adapter as the flags give.
func TestTrainPrintConfig(t *testing.T) {
	want := t.TempDir()
	if _, stderr, code := graft(t, append([]string{"train"}, runFlags(want)...)...); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, format := range []string{"yaml", "json"} {
		t.Run(format, func(t *testing.T) {
			args := append([]string{"train"}, runFlags("unused", "--print-config")...)
			if format == "json" {
				args = append(args, "--json")
			}
			printed, stderr, code := graft(t, args...)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			if _, err := os.Stat("unused"); err == nil {
				t.Fatal("--print-config wrote the output directory")
			}
			for _, s := range []string{"schedule", "cosine", "max_grad_norm", "keep_checkpoints", "lora_alpha", "target_modules", "q_proj"} {
				if !strings.Contains(printed, s) {
					t.Errorf("printed config lacks %q:\n%s", s, printed)
				}
			}
			if format == "json" && !json.Valid([]byte(printed)) {
				t.Fatalf("not JSON:\n%s", printed)
			}
			cfg := writeFile(t, "printed."+format, printed)
			got := t.TempDir()
			if _, stderr, code := graft(t, "train", "--config", cfg, "--quiet", "--out", got); code != 0 {
				t.Fatalf("training from the printed config: exit %d: %s", code, stderr)
			}
			if !bytes.Equal(adapterWeights(t, got), adapterWeights(t, want)) {
				t.Fatal("the printed config trains another adapter than the flags it was printed from")
			}
		})
	}
	// The format follows a .json --config file.
	cfg := writeFile(t, "run.json", `{"data": "x.jsonl", "steps": 3}`)
	printed, stderr, code := graft(t, "train", "--config", cfg, "--print-config")
	if code != 0 || !json.Valid([]byte(printed)) {
		t.Fatalf("exit %d, stderr %q, printed %q: want JSON", code, stderr, printed)
	}
}

func TestTrainConfigErrors(t *testing.T) {
	tests := []struct {
		name, file, text, want string
	}{
		{"unknown key", "run.yaml", "data: x.jsonl\nstpes: 5\n", `unknown field "stpes"`},
		{"yaml syntax", "run.yaml", "data: [x.jsonl\nsteps: 5\n", "run.yaml: [2:1] ',' or ']' must be specified"},
		{"json syntax", "run.json", `{"steps": 5,}`, "run.json"},
		{"wrong type", "run.json", `{"steps": "five"}`, "steps"},
		{"extension", "run.toml", "steps = 5\n", `unknown config extension ".toml"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.file, tt.text)
			_, stderr, code := graft(t, "train", "--config", path, "--print-config")
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 mentioning %q", code, stderr, tt.want)
			}
		})
	}
	_, stderr, code := graft(t, "train", "--config", filepath.Join(t.TempDir(), "missing.yaml"))
	if code != 2 || !strings.Contains(stderr, "missing.yaml") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestYAML12Floats(t *testing.T) {
	src := "lr: 1e-4\nname: \"2e3\"\nother: '3e5'\nlist: [1e3, -2E+2, x1e3]\nok: 1.5e-3\ntext: |\n  4e4\n"
	spec := strings.ReplaceAll(string(yaml12Floats([]byte(src))), "\n", "|")
	want := "lr: 1.0e-4|name: \"2e3\"|other: '3e5'|list: [1.0e3, -2.0E+2, x1e3]|ok: 1.5e-3|text: ||  4e4|"
	if spec != want {
		t.Fatalf("got  %s\nwant %s", spec, want)
	}
}
