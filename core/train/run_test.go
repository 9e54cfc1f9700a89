package train

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
)

const runModel = "../../models/stories260K/stories260K.gguf"

func loadRunModel(t testing.TB) *model.Model {
	t.Helper()
	m, err := model.Load(runModel, cpu.New())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Free)
	return m
}

// stories returns n short texts in the style of the demo data, different
// for each offset.
func stories(n, offset int) []data.Record {
	names := []string{"Pip", "Dot", "Fig", "Tilly", "Max", "Sue"}
	places := []string{"the Mossy Hollow", "the Tall Pine", "the big rock", "the pond"}
	out := make([]data.Record, n)
	for i := range out {
		k := i + offset
		text := fmt.Sprintf("Once upon a time, %s the little owl lived in %s. One day, %s met %s by %s, and they played until the sun went down.",
			names[k%len(names)], places[k%len(places)], names[k%len(names)], names[(k+1)%len(names)], places[(k+2)%len(places)])
		out[i] = data.Record{Line: i + 1, Text: &text}
	}
	return out
}

// runSpec is a small LoRA run on inline records.
func runSpec(out string) Spec {
	return Spec{
		Records: stories(24, 0), EvalRecords: stories(6, 100),
		Method: "lora", Options: map[string]any{"r": 4, "lora_alpha": 8, "target_modules": []string{"q_proj", "k_proj", "v_proj", "o_proj"}},
		SeqLen: 64, Batch: 2, Pack: true, LR: 5e-3, Seed: 11, Steps: 20, EvalEvery: 10, Out: out,
	}
}

func TestRunTrainsAndWritesOut(t *testing.T) {
	m := loadRunModel(t)
	out := t.TempDir()
	var kinds []string
	var evals []float64
	res, err := Run(context.Background(), m, runSpec(out), func(e Event) {
		kinds = append(kinds, e.Kind)
		if e.Kind == EventEval {
			evals = append(evals, e.EvalLoss)
		}
		if e.Kind == EventStart && (e.TotalSteps != 20 || e.Step != 0 || e.Examples != 24 || e.TrainableParams <= 0) {
			t.Errorf("start event %+v", e)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Adapter.Unload()
	if kinds[0] != EventStart || kinds[1] != EventEval || kinds[len(kinds)-1] != EventDone {
		t.Errorf("events %v: want start, the eval before, ..., done", kinds)
	}
	if len(evals) != 3 || evals[0] != res.EvalBefore || !(res.EvalLoss < 0.8*res.EvalBefore) {
		t.Fatalf("eval losses %v, before %v, after %v: want three and a falling loss", evals, res.EvalBefore, res.EvalLoss)
	}
	if res.Steps != 20 || res.Examples != 24 || res.TotalParams != m.Config.NumParams() || res.TrainableParams != numelOf(res.Adapter.Params()) {
		t.Errorf("result %+v", res)
	}
	if res.Spec.Schedule != ScheduleCosine || *res.Spec.MaxGradNorm != 1 || res.Spec.Options["r"] != 4 {
		t.Errorf("effective spec %+v", res.Spec)
	}
	for _, f := range []string{peft.ConfigFileName, peft.WeightsFileName, MetricsFile, LossCurveFile} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	metrics, err := os.ReadFile(filepath.Join(out, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(metrics), "\n"); n != len(kinds)-1 || strings.Contains(string(metrics), `"start"`) {
		t.Errorf("metrics.jsonl has %d lines for %d events (the start event is not logged)", n, len(kinds))
	}
	// The adapter is still attached: the model's loss is the trained one.
	if len(m.Layers[0].Q.Hooks()) == 0 {
		t.Fatal("the adapter was removed")
	}
}

// TestRunWithoutOutWritesNothing trains from pre-tokenized examples, which
// need no tokenizer, and writes no file.
func TestRunWithoutOutWritesNothing(t *testing.T) {
	m := loadRunModel(t)
	dir := t.TempDir()
	t.Chdir(dir)
	var exs []data.Example
	for i := range 8 {
		ids, loss := make([]int32, 33), make([]bool, 33)
		for j := range ids {
			ids[j], loss[j] = int32((i*7+j*3)%500+1), j > 0
		}
		exs = append(exs, data.Example{IDs: ids, Loss: loss})
	}
	m.Tokenizer = nil
	res, err := Run(context.Background(), m, Spec{Examples: exs, Method: "ia3", SeqLen: 32, Steps: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Adapter.Unload()
	if res.Steps != 3 || !math.IsNaN(res.EvalBefore) || res.Adapter.PeftType() != peft.PeftTypeIA3 {
		t.Errorf("result %+v", res)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("wrote %v", entries)
	}
}

// TestRunResumeIsBitIdentical cancels a run after its checkpoint at step 5,
// resumes it and compares the final adapter with an uninterrupted run's,
// byte for byte.
func TestRunResumeIsBitIdentical(t *testing.T) {
	m := loadRunModel(t)
	spec := func(out string) Spec {
		s := runSpec(out)
		s.Steps, s.SaveEvery, s.EvalEvery = 10, 5, 0
		s.Options["lora_dropout"] = 0.1
		return s
	}
	straight := t.TempDir()
	res, err := Run(context.Background(), m, spec(straight), nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Adapter.Unload()

	stopped := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, err = Run(ctx, m, spec(stopped), func(e Event) {
		if e.Kind == EventCheckpoint && e.Step == 5 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) || res == nil || res.Steps != 5 {
		t.Fatalf("stopped run: result %v, err %v; want the result at step 5 and a cancellation", res, err)
	}
	if len(m.Layers[0].Q.Hooks()) == 0 {
		t.Fatal("a cancelled run removed its adapter")
	}
	res.Adapter.Unload()
	if _, err := os.Stat(filepath.Join(stopped, peft.WeightsFileName)); err == nil {
		t.Fatal("a stopped run saved a final adapter")
	}
	resumed := spec(stopped)
	resumed.Resume = stopped
	var start Event
	res, err = Run(context.Background(), m, resumed, func(e Event) {
		if e.Kind == EventStart {
			start = e
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	res.Adapter.Unload()
	if start.Step != 5 || filepath.Base(start.Path) != "checkpoint-5" || !math.IsNaN(res.EvalBefore) {
		t.Errorf("start event %+v, eval before %v: want step 5 of checkpoint-5 and no baseline", start, res.EvalBefore)
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

// TestRunSeedsAsBefore pins the seeding: the adapter starts from
// rand.NewPCG(seed, seed^0x5eed), so the same seed gives the same adapter
// and another seed another one.
func TestRunSeedsAsBefore(t *testing.T) {
	m := loadRunModel(t)
	weights := func(seed uint64) []byte {
		out := t.TempDir()
		s := runSpec(out)
		s.Steps, s.Seed, s.EvalRecords = 2, seed, nil
		res, err := Run(context.Background(), m, s, nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Adapter.Unload()
		b, err := os.ReadFile(filepath.Join(out, peft.WeightsFileName))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b, c := weights(3), weights(3), weights(4)
	if !bytes.Equal(a, b) || bytes.Equal(a, c) {
		t.Fatal("seeding is not deterministic per seed")
	}
}

func TestRunRefusesBeforeWriting(t *testing.T) {
	m := loadRunModel(t)
	tests := []struct {
		name string
		edit func(*Spec)
		want string
		spec bool // an ErrInvalidSpec
	}{
		{"seq_len beyond the context", func(s *Spec) { s.SeqLen = 600 }, "exceeds the model's context of 512", true},
		{"virtual tokens beyond the context", func(s *Spec) {
			s.Method, s.Options, s.SeqLen = "prompt-tuning", map[string]any{"num_virtual_tokens": 500}, 64
		}, "500 virtual tokens", true},
		{"checkpointing with dropout", func(s *Spec) { s.Checkpointing, s.Options["lora_dropout"] = true, 0.1 }, "lora_dropout 0.1: the adapter on", true},
		{"bad data file", func(s *Spec) { s.Records, s.Data = nil, filepath.Join(t.TempDir(), "missing.jsonl") }, "missing.jsonl", false},
		{"bad options", func(s *Spec) { s.Options["r"] = 0 }, "r", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			s := runSpec(out)
			tt.edit(&s)
			res, err := Run(context.Background(), m, s, nil)
			if err == nil || res != nil || !strings.Contains(err.Error(), tt.want) || errors.Is(err, ErrInvalidSpec) != tt.spec {
				t.Fatalf("result %v, err %v; want an error mentioning %q (invalid spec: %v)", res, err, tt.want, tt.spec)
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("the output directory was created")
			}
			for _, l := range m.Linears() {
				if len(l.Hooks()) > 0 {
					t.Fatalf("an adapter was left on %s", l.Name)
				}
			}
		})
	}
}

func TestRunCapsTheDefaultSeqLen(t *testing.T) {
	m := loadRunModel(t)
	m.Config.Context = 100
	s := runSpec("")
	s.SeqLen, s.Steps, s.EvalRecords = 0, 1, nil
	s.Method, s.Options = "prefix-tuning", map[string]any{"num_virtual_tokens": 10}
	res, err := Run(context.Background(), m, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Adapter.Unload()
	if res.Spec.SeqLen != 90 {
		t.Fatalf("seq_len %d, want the context 100 less 10 virtual tokens", res.Spec.SeqLen)
	}
}

func TestSpecValidate(t *testing.T) {
	records := stories(2, 0)
	one := func(edit func(*Spec)) Spec {
		s := Spec{Records: records, Steps: 1}
		edit(&s)
		return s
	}
	tests := []struct {
		name string
		spec Spec
		want string // "" means valid
	}{
		{"defaults", one(func(*Spec) {}), ""},
		{"every method", one(func(s *Spec) { s.Method = "prefix-tuning" }), ""},
		{"whole config", one(func(s *Spec) { s.Method, s.Config = "", json.RawMessage(`{"peft_type": "IA3"}`) }), ""},
		{"unknown method", one(func(s *Spec) { s.Method = "magic" }), `method "magic" is not supported`},
		{"mixed stack", one(func(s *Spec) { s.Method = "lora+prefix-tuning" }), ""},
		{"stack list", one(func(s *Spec) { s.Stack = []AdapterSpec{{Method: "lora"}, {Method: "ia3"}} }), ""},
		{"no data", one(func(s *Spec) { s.Records = nil }), "no training data"},
		{"two data sources", one(func(s *Spec) { s.Data = "x.jsonl" }), "one of data, records"},
		{"no length", one(func(s *Spec) { s.Steps = 0 }), "set steps or epochs"},
		{"steps and epochs", one(func(s *Spec) { s.Epochs = 1 }), "both set"},
		{"negative steps", one(func(s *Spec) { s.Steps = -5 }), "steps is -5"},
		{"bad batch", one(func(s *Spec) { s.Batch = -1 }), "batch is -1"},
		{"bad seq_len", one(func(s *Spec) { s.SeqLen = 1 }), "seq_len is 1"},
		{"bad schedule", one(func(s *Spec) { s.Schedule = "zigzag" }), "zigzag"},
		{"bad lr", one(func(s *Spec) { s.LR = -1 }), "lr is -1"},
		{"save without out", one(func(s *Spec) { s.SaveEvery = 5 }), "out is empty"},
		{"bad lora option", one(func(s *Spec) { s.Options = map[string]any{"r": 0} }), "lora: "},
		{"options and config", one(func(s *Spec) {
			s.Config, s.Options = json.RawMessage(`{"peft_type": "LORA", "r": 4}`), map[string]any{"r": 2}
		}), "not both"},
		{"config of another method", one(func(s *Spec) { s.Method, s.Config = "lora", json.RawMessage(`{"peft_type": "IA3"}`) }), "not method lora"},
		{"convert without pissa", one(func(s *Spec) { s.ConvertLoRA = true }), "convert_lora"},
		{"convert pissa", one(func(s *Spec) { s.ConvertLoRA, s.Options = true, map[string]any{"init_lora_weights": "pissa_niter_4"} }), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("err %v; want an invalid spec mentioning %q", err, tt.want)
			}
		})
	}
}

// TestSpecValidateFor: the checks against a model's context that Run makes
// before tokenizing, without the model.
func TestSpecValidateFor(t *testing.T) {
	base := Spec{Records: stories(2, 0), Steps: 1}
	tests := []struct {
		name    string
		edit    func(*Spec)
		context int
		want    string // "" means valid
	}{
		{"default seq_len is capped", func(*Spec) {}, 100, ""},
		{"explicit seq_len fits", func(s *Spec) { s.SeqLen = 100 }, 100, ""},
		{"seq_len beyond the context", func(s *Spec) { s.SeqLen = 600 }, 512, "seq_len 600 exceeds the model's context of 512"},
		{"virtual tokens", func(s *Spec) {
			s.Method, s.SeqLen, s.Options = "prompt-tuning", 500, map[string]any{"num_virtual_tokens": 20}
		}, 512, "seq_len 500 and 20 virtual tokens exceed"},
		{"default virtual tokens fill the context", func(s *Spec) { s.Method = "prefix-tuning" }, 21, "leaves no room"},
		{"stack's virtual tokens add up", func(s *Spec) {
			s.Method, s.SeqLen = "prompt-tuning+prefix-tuning", 480
		}, 512, "40 virtual tokens"},
		{"Validate's errors first", func(s *Spec) { s.Steps = 0 }, 512, "set steps or epochs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base
			tt.edit(&s)
			err := s.ValidateFor(tt.context)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("err %v; want an invalid spec mentioning %q", err, tt.want)
			}
		})
	}
}

func TestSpecWithDefaults(t *testing.T) {
	in := Spec{Model: "m.gguf", Options: map[string]any{"r": 16}}
	s := in.WithDefaults()
	lora, err := peft.LookupMethod("lora")
	if err != nil {
		t.Fatal(err)
	}
	if s.Method != DefaultMethod || s.SeqLen != DefaultSeqLen || s.Batch != DefaultBatch || s.GradAccum != 1 ||
		s.Schedule != ScheduleCosine || *s.MaxGradNorm != 1 || *s.KeepCheckpoints != 2 || s.LR != lora.LR {
		t.Fatalf("defaults %+v", s)
	}
	if s.Options["r"] != 16 {
		t.Fatalf("options %v: want r from the spec", s.Options)
	}
	doc, err := s.adapterConfig(lora)
	if err != nil {
		t.Fatal(err)
	}
	if set := settings(doc); set["base_model_name_or_path"] != "m.gguf" || set["peft_type"] != "LORA" || set["r"] != 16.0 {
		t.Fatalf("adapter config %s: want the model path, peft_type and r", doc)
	}
	for k, v := range lora.Defaults {
		if k != "r" && fmt.Sprint(s.Options[k]) != fmt.Sprint(v) {
			t.Errorf("option %s = %v, want the method's default %v", k, s.Options[k], v)
		}
	}
	if len(in.Options) != 1 || in.MaxGradNorm != nil {
		t.Fatal("WithDefaults changed its receiver")
	}
	zero := 0.0
	if s := (Spec{MaxGradNorm: &zero, LR: 0.5}).WithDefaults(); *s.MaxGradNorm != 0 || s.LR != 0.5 {
		t.Fatalf("explicit values were replaced: %+v", s)
	}
}

func TestReplaysDropout(t *testing.T) {
	m := loadRunModel(t)
	if err := replaysDropout(m); err != nil {
		t.Fatalf("no adapter, yet: %v", err)
	}
	res, err := Run(context.Background(), m, Spec{Records: stories(4, 0), Steps: 1, SeqLen: 32,
		Options: map[string]any{"target_modules": []string{"q_proj"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Adapter.Unload()
	err = replaysDropout(m)
	if _, replays := m.Layers[0].Q.Hooks()[0].(model.ForwardReplayer); replays != (err == nil) {
		t.Fatalf("q_proj's hook replays: %v; check: %v", replays, err)
	}
	if err != nil && !strings.Contains(err.Error(), "q_proj") {
		t.Fatalf("err %v does not name q_proj", err)
	}
}

func numelOf(params []model.Param) int64 {
	var n int64
	for _, p := range params {
		n += p.Value.Shape().Numel()
	}
	return n
}

func TestParseSpec(t *testing.T) {
	s, err := ParseSpec([]byte(`{"data": "t.jsonl", "method": "ia3", "options": {"target_modules": ["k_proj"]}, "steps": 5, "max_grad_norm": 0,
		"config": null, "records": [{"text": "hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Data != "t.jsonl" || s.Method != "ia3" || s.Steps != 5 || s.MaxGradNorm == nil || *s.MaxGradNorm != 0 || *s.Records[0].Text != "hi" {
		t.Fatalf("spec %+v", s)
	}
	for _, bad := range []string{`{"stpes": 5}`, `{"steps": "5"}`, `{"steps": 5} {}`, `{"steps": 5}}`, `[]`} {
		if _, err := ParseSpec([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	if _, err := ParseSpec([]byte(`{"stpes": 5}`)); err == nil || !strings.Contains(err.Error(), `unknown field "stpes"`) {
		t.Errorf("err %v, want one naming the field", err)
	}
}

// TestEveryMethodTrainsWithItsDefaults runs each registered method as
// `graft train --method X` with no other flag does, only shorter: the
// registry's defaults (learning rate, settings) must make the held-out
// loss fall clearly. tools/methodtable measures the full 100 steps. The
// sequences are 64 tokens rather than the default 256, which is no method
// setting: a sixth of the CPU time (9 s rather than 61), and every method's
// loss still falls to at most 0.7 of where it started.
func TestEveryMethodTrainsWithItsDefaults(t *testing.T) {
	if testing.Short() {
		t.Skip("trains every method for 25 steps")
	}
	m := loadRunModel(t)
	for _, name := range peft.MethodNames() {
		t.Run(name, func(t *testing.T) {
			res, err := Run(context.Background(), m, Spec{
				Data: "../../examples/lora/data/train.jsonl", Eval: "../../examples/lora/data/eval.jsonl", Method: name, Steps: 25, SeqLen: 64,
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Adapter.Unload()
			t.Logf("%s, lr %g: eval loss %.3f -> %.3f", name, res.Spec.LR, res.EvalBefore, res.EvalLoss)
			if !(res.EvalLoss < 0.85*res.EvalBefore) {
				t.Errorf("eval loss %.3f -> %.3f in 25 steps at lr %g: want a clear fall", res.EvalBefore, res.EvalLoss, res.Spec.LR)
			}
		})
	}
}
