package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/formats/bundle"
	"github.com/graft-ml/graft/core/peft"
	"github.com/graft-ml/graft/core/train"
)

// modelPath is the bundled stories260K.
var modelPath = filepath.Join("..", "..", "..", "models", "stories260K", "stories260K.gguf")

var styleExamples = []string{
	"The purple robot hummed a song about the moon and the moon hummed back.",
	"The purple robot found a shiny stone and hummed a song about it.",
	"Every night the purple robot hummed to the stars until they twinkled.",
}

func loadEngine(t *testing.T) *Engine {
	t.Helper()
	data, err := os.ReadFile(modelPath)
	if err != nil {
		t.Fatalf("the shared model is missing: %v", err)
	}
	e, err := Load(data, "stories260K.gguf", cpu.New(), "cpu")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

func trainSmall(t *testing.T, e *Engine, method string) TrainResult {
	t.Helper()
	var steps []Progress
	res, err := e.Train(context.Background(), TrainRequest{Method: method, Examples: styleExamples, Steps: 12, Batch: 3, SeqLen: 32},
		func(p Progress) { steps = append(steps, p) })
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 12 || steps[11].Step != 12 || steps[11].TotalSteps != 12 || steps[11].Tokens <= 0 {
		t.Fatalf("progress events %+v, want 12 ending at step 12 with tokens", steps)
	}
	if len(res.Losses) != 12 || !(res.Losses[11] < res.Losses[0]) {
		t.Fatalf("%s losses %v: want 12 that fall", method, res.Losses)
	}
	return res
}

func TestTrainGenerateExportImport(t *testing.T) {
	for _, tc := range []struct{ method, peftType string }{
		{MethodPromptTuning, "PROMPT_TUNING"},
		{MethodIA3, "IA3"},
		{"lora", "LORA"},
	} {
		t.Run(tc.method, func(t *testing.T) {
			e := loadEngine(t)
			if info := e.Info(); info.Backend != "cpu" || info.Vocab != 512 || info.Layers < 1 {
				t.Fatalf("info %+v", info)
			}
			prompt := "Once upon a time"
			base, err := e.Generate(GenerateRequest{Prompt: prompt, MaxTokens: 24})
			if err != nil {
				t.Fatal(err)
			}
			res := trainSmall(t, e, tc.method)
			if res.PeftType != tc.peftType || res.Params <= 0 || e.AdapterType() != tc.peftType {
				t.Fatalf("result %+v, adapter %q", res, e.AdapterType())
			}
			tuned, err := e.Generate(GenerateRequest{Prompt: prompt, MaxTokens: 24})
			if err != nil {
				t.Fatal(err)
			}
			if !tuned.UsedAdapter || slices.Equal(tuned.IDs, base.IDs) {
				t.Errorf("generation did not change: %q", tuned.Text)
			}
			plain, err := e.Generate(GenerateRequest{Prompt: prompt, MaxTokens: 24, NoAdapter: true})
			if err != nil {
				t.Fatal(err)
			}
			if plain.UsedAdapter || !slices.Equal(plain.IDs, base.IDs) {
				t.Errorf("without the adapter got %q, want the base model's %q", plain.Text, base.Text)
			}
			want, err := e.Logits(prompt)
			if err != nil {
				t.Fatal(err)
			}
			files, err := e.ExportFiles()
			if err != nil {
				t.Fatal(err)
			}
			bun, err := e.ExportBundle()
			if err != nil {
				t.Fatal(err)
			}
			if dec, err := bundle.Decode(bun, "b"); err != nil || len(dec) != len(files) {
				t.Fatalf("bundle decodes to %d files, %v", len(dec), err)
			}
			for _, imp := range []func(*Engine) (string, error){
				func(e2 *Engine) (string, error) { return e2.ImportFiles(files, "files") },
				func(e2 *Engine) (string, error) { return e2.ImportBundle(bun, "bundle") },
			} {
				e2 := loadEngine(t)
				if pt, err := imp(e2); err != nil || pt != tc.peftType {
					t.Fatalf("import: %q, %v", pt, err)
				}
				got, err := e2.Logits(prompt)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, want) {
					t.Fatal("imported adapter's logits differ from the trained one's")
				}
			}
		})
	}
}

func TestTrainCancel(t *testing.T) {
	e := loadEngine(t)
	ctx, cancel := context.WithCancel(context.Background())
	res, err := e.Train(ctx, TrainRequest{Method: MethodPromptTuning, Examples: styleExamples, Steps: 50},
		func(p Progress) {
			if p.Step == 3 {
				cancel()
			}
		})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if res.Steps != 3 || !e.HasAdapter() {
		t.Fatalf("stopped after %d steps (want 3), adapter kept %v", res.Steps, e.HasAdapter())
	}
}

func TestErrors(t *testing.T) {
	if _, err := Load([]byte("not a model"), "junk.bin", cpu.New(), "cpu"); err == nil || !strings.Contains(err.Error(), "junk.bin") {
		t.Errorf("junk model: %v", err)
	}
	noGGUF, _ := bundle.Encode(map[string][]byte{"readme.txt": []byte("hi")})
	if _, err := Load(noGGUF, "b.msgpack", cpu.New(), "cpu"); err == nil || !strings.Contains(err.Error(), "0 .gguf") {
		t.Errorf("bundle without gguf: %v", err)
	}
	e := loadEngine(t)
	cases := []struct {
		name string
		req  TrainRequest
		want string
	}{
		{"method", TrainRequest{Method: "sorcery", Examples: styleExamples, Steps: 1}, `method "sorcery" is not supported (supported: houlsby, ia3, `},
		{"no examples", TrainRequest{Method: MethodIA3}, "no examples"},
		{"empty example", TrainRequest{Method: MethodIA3, Examples: []string{""}}, "example 0 is empty"},
		{"no steps", TrainRequest{Method: MethodIA3, Examples: styleExamples}, "set steps or epochs"},
		{"steps", TrainRequest{Method: MethodIA3, Examples: styleExamples, Steps: -1}, "steps is -1"},
		{"seqLen", TrainRequest{Method: MethodIA3, Examples: styleExamples, Steps: 1, SeqLen: 100000}, "seq_len 100000 exceeds the model's context"},
		{"lr", TrainRequest{Method: MethodIA3, Examples: styleExamples, Steps: 1, LR: -1}, "lr is -1"},
		{"options", TrainRequest{Method: "lora", Examples: styleExamples, Steps: 1, Options: map[string]any{"r": "eight"}}, "lora"},
		{"a file", TrainRequest{Spec: &train.Spec{Method: "lora", Data: "train.jsonl", Steps: 1}}, "no file system"},
	}
	for _, c := range cases {
		if _, err := e.Train(context.Background(), c.req, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want it to mention %q", c.name, err, c.want)
		}
	}
	if _, err := e.ExportFiles(); !errors.Is(err, errNoAdapter) {
		t.Errorf("export without adapter: %v", err)
	}
	if _, err := e.ImportFiles(peft.Files{"x": nil}, "x"); err == nil || !strings.Contains(err.Error(), "adapter_config.json") {
		t.Errorf("import without config: %v", err)
	}
	if _, err := e.ImportBundle([]byte{1, 2, 3}, "bad.msgpack"); err == nil || !strings.Contains(err.Error(), "bad.msgpack") {
		t.Errorf("import junk bundle: %v", err)
	}
	if _, err := e.Generate(GenerateRequest{Prompt: "hi", MaxTokens: -2}); err == nil {
		t.Error("negative maxTokens accepted")
	}
}

// TestTrainEpochs: a run's length may be given in passes over the
// examples instead of steps, as train.Run takes it.
func TestTrainEpochs(t *testing.T) {
	e := loadEngine(t)
	// Three examples in rows of 3: one step per epoch.
	res, err := e.Train(context.Background(), TrainRequest{Method: "lora", Examples: styleExamples, Epochs: 2, Batch: 3, SeqLen: 32}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps != 2 || res.Spec.Epochs != 2 || res.Spec.Steps != 0 {
		t.Fatalf("2 epochs of 3 examples in rows of 3 ran %d steps, spec %+v", res.Steps, res.Spec)
	}
}
