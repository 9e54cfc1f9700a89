package train

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
)

// shortSpec is runSpec cut to 4 steps with a checkpoint every 2.
func shortSpec(out string) Spec {
	s := runSpec(out)
	s.Steps, s.SaveEvery, s.EvalEvery = 4, 2, 2
	return s
}

func TestEvaluateIsRunsEval(t *testing.T) {
	m := loadRunModel(t)
	s := shortSpec("")
	s.SaveEvery = 0
	res, err := Run(context.Background(), m, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Adapter.Unload()
	// The adapter is still attached: Evaluate under the run's rows and
	// batch gives its final eval loss exactly.
	ev, err := Evaluate(m, Spec{EvalRecords: s.EvalRecords, SeqLen: s.SeqLen, Pack: s.Pack, Batch: s.Batch}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Loss != res.EvalLoss || ev.SeqLen != 64 || !ev.Pack || ev.Examples != 6 || ev.Tokens == 0 {
		t.Fatalf("Evaluate = %+v, Run's eval loss %v", ev, res.EvalLoss)
	}
	if got := ev.Settings(); got != "seq_len 64, packed" {
		t.Errorf("Settings() = %q", got)
	}
	// Padded rows are another measure, and say so.
	pad, err := Evaluate(m, Spec{EvalRecords: s.EvalRecords, SeqLen: 64}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pad.Pack || !strings.Contains(pad.Settings(), "padded") || math.IsNaN(pad.Loss) {
		t.Fatalf("padded Evaluate = %+v", pad)
	}
	// The default length is Run's, capped to the context.
	def, err := Evaluate(m, Spec{EvalRecords: s.EvalRecords}, nil)
	if err != nil || def.SeqLen != DefaultSeqLen {
		t.Fatalf("default Evaluate = %+v, %v", def, err)
	}
	if _, err := Evaluate(m, Spec{EvalRecords: s.EvalRecords, SeqLen: 4096}, nil); !errors.Is(err, ErrInvalidSpec) {
		t.Fatalf("seq_len past the context: %v", err)
	}
	if _, err := Evaluate(m, Spec{}, nil); !errors.Is(err, ErrInvalidSpec) {
		t.Fatalf("no data: %v", err)
	}
}

func TestRunRefusesAnotherRunsOut(t *testing.T) {
	m := loadRunModel(t)
	out := t.TempDir()
	mustRun(t, m, shortSpec(out))
	s := shortSpec(out)
	s.Seed = 12
	_, err := Run(context.Background(), m, s, nil)
	if !errors.Is(err, ErrOtherRun) || !strings.Contains(err.Error(), "checkpoint-4") || !strings.Contains(err.Error(), peft.WeightsFileName) {
		t.Fatalf("err %v, want ErrOtherRun naming the files", err)
	}
	// Overwrite removes the other run's checkpoints before training.
	s.Overwrite, s.SaveEvery, s.Steps = true, 0, 2
	mustRun(t, m, s)
	if _, err := os.Stat(filepath.Join(out, "checkpoint-2")); err == nil {
		t.Fatal("Overwrite left the other run's checkpoint-2")
	}
	if _, err := os.Stat(filepath.Join(out, RunFile)); err != nil {
		t.Fatalf("the run's record: %v", err)
	}
	// A mixed stack's parts go with its manifest.
	stack := t.TempDir()
	ss := shortSpec(stack)
	ss.Method, ss.Options, ss.SaveEvery = "lora+prefix-tuning", nil, 0
	mustRun(t, m, ss)
	parts := stackParts(stack)
	if len(parts) != 2 {
		t.Fatalf("stack parts %v", parts)
	}
	s = shortSpec(stack)
	s.Overwrite, s.SaveEvery, s.Steps = true, 0, 1
	mustRun(t, m, s)
	for _, p := range parts {
		if _, err := os.Stat(filepath.Join(stack, p)); err == nil {
			t.Errorf("Overwrite left the stack's part %s", p)
		}
	}
	// Out as a file is refused.
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o644)
	if _, err := Run(context.Background(), m, shortSpec(file), nil); err == nil || !strings.Contains(err.Error(), "is a file") {
		t.Fatalf("out is a file: %v", err)
	}
}

// mustRun runs s and takes its adapter off m again.
func mustRun(t *testing.T, m *model.Model, s Spec) {
	t.Helper()
	res, err := Run(context.Background(), m, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Adapter.Unload()
}

func TestResumeChecksRunRecord(t *testing.T) {
	m := loadRunModel(t)
	out := t.TempDir()
	mustRun(t, m, shortSpec(out))
	ckpt := filepath.Join(out, "checkpoint-2")
	for _, c := range []struct {
		name string
		edit func(*Spec)
		want []string
	}{
		{"lr", func(s *Spec) { s.LR = 1e-2 }, []string{"lr: 0.005 → 0.01"}},
		{"seed", func(s *Spec) { s.Seed = 3 }, []string{"seed: 11 → 3"}},
		{"rank", func(s *Spec) { s.Options["r"] = 8 }, []string{"lora.r: 4 → 8"}},
		{"pack", func(s *Spec) { s.Pack = false }, []string{"pack: true → false"}},
		{"steps", func(s *Spec) { s.Steps = 8 }, []string{"steps: 4 → 8", "cosine schedule is laid over 8 steps instead of 4", "step 3's learning rate"}},
		{"data", func(s *Spec) { s.Records = stories(24, 7) }, []string{"data: records (24 examples"}},
		{"method", func(s *Spec) { s.Method, s.Options = "ia3", nil; s.LR = 5e-3 }, []string{"method: \"lora\" → \"ia3\"", "lora.r: 4 → (unset)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := shortSpec(out)
			s.Options = map[string]any{"r": 4, "lora_alpha": 8, "target_modules": []string{"q_proj", "k_proj", "v_proj", "o_proj"}}
			s.Resume = ckpt
			c.edit(&s)
			_, err := Run(context.Background(), m, s, nil)
			if !errors.Is(err, ErrOtherRun) {
				t.Fatalf("err %v, want ErrOtherRun", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if len(m.Linears()[0].Hooks()) != 0 {
				t.Error("the refused Run left its adapter attached")
			}
		})
	}
	// Force resumes, with every difference in a warning.
	s := shortSpec(out)
	s.Resume, s.Force, s.Steps = ckpt, true, 6
	var warnings []string
	res, err := Run(context.Background(), m, s, func(e Event) {
		if e.Kind == EventWarning {
			warnings = append(warnings, e.Message)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	res.Adapter.Unload()
	if len(warnings) != 1 || !strings.Contains(warnings[0], "steps: 4 → 6") || res.Steps != 6 {
		t.Fatalf("warnings %q, %d steps", warnings, res.Steps)
	}
	// A checkpoint of an older graft, without a record, resumes with a
	// warning.
	os.Remove(filepath.Join(out, "checkpoint-6", RunFile))
	s = shortSpec(out)
	s.Steps, s.Resume = 6, filepath.Join(out, "checkpoint-6")
	warnings = nil
	res, err = Run(context.Background(), m, s, func(e Event) {
		if e.Kind == EventWarning {
			warnings = append(warnings, e.Message)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	res.Adapter.Unload()
	if len(warnings) != 1 || !strings.Contains(warnings[0], "cannot be compared") {
		t.Fatalf("warnings %q", warnings)
	}
}

func TestKeptMetrics(t *testing.T) {
	path := filepath.Join(t.TempDir(), MetricsFile)
	lines := `{"kind":"eval","step":0,"total_steps":4,"epoch":0,"eval_loss":2.5,"elapsed_s":0}
{"kind":"step","step":1,"total_steps":4,"epoch":0.5,"loss":2.4,"lr":0.01,"grad_norm":1,"elapsed_s":1}
{"kind":"step","step":2,"total_steps":4,"epoch":1,"loss":"NaN","lr":0.01,"grad_norm":1,"elapsed_s":2}
{"kind":"eval","step":2,"total_steps":4,"epoch":1,"eval_loss":2.2,"elapsed_s":2}
{"kind":"checkpoint","step":2,"total_steps":4,"epoch":1,"path":"out/checkpoint-2","elapsed_s":2}
{"kind":"step","step":3,"total_steps":4,"epoch":1.5,"loss":2.1,"lr":0.01,"grad_norm":1,"elapsed_s":3}
not json
{"kind":"done","step":2,"total_steps":4,"epoch":1,"loss":2.3,"elapsed_s":3}
`
	if err := os.WriteFile(path, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	kept, events, err := keptMetrics(path, 2)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Split(lines, "\n")
	want := strings.Join(append(all[:5:5], "not json", ""), "\n")
	if string(kept) != want {
		t.Fatalf("kept:\n%s\nwant:\n%s", kept, want)
	}
	if len(events) != 5 || events[1].Loss != 2.4 || !math.IsNaN(events[2].Loss) || events[3].EvalLoss != 2.2 || events[4].Path != "out/checkpoint-2" {
		t.Fatalf("events %+v", events)
	}
	if kept, events, err := keptMetrics(filepath.Join(t.TempDir(), "none"), 2); err != nil || kept != nil || events != nil {
		t.Fatalf("missing file: %q %v %v", kept, events, err)
	}
}

func TestRunDiffAndFingerprint(t *testing.T) {
	a := fingerprint("a.jsonl", []data.Example{{IDs: []int32{1, 2, 3}, Loss: []bool{false, true, true}}})
	b := fingerprint("b.jsonl", []data.Example{{IDs: []int32{1, 2, 3}, Loss: []bool{false, true, true}}})
	c := fingerprint("a.jsonl", []data.Example{{IDs: []int32{1, 2, 3}, Loss: []bool{false, false, true}}})
	// Split differently, the same ids are other data.
	d := fingerprint("a.jsonl", []data.Example{{IDs: []int32{1, 2}, Loss: []bool{false, true}}, {IDs: []int32{3}, Loss: []bool{false}}})
	if a.SHA256 != b.SHA256 || a.SHA256 == c.SHA256 || a.SHA256 == d.SHA256 || a.Tokens != 3 || d.Examples != 2 {
		t.Fatalf("fingerprints %v %v %v %v", a, b, c, d)
	}
	old := &runRecord{Settings: map[string]json.RawMessage{"lr": []byte("0.01"), "seed": []byte("1"), "gone": []byte(`"x"`)}, Data: a}
	cur := &runRecord{Settings: map[string]json.RawMessage{"lr": []byte("0.02"), "seed": []byte("1"), "new": []byte(`[1, 2]`)}, Data: c}
	var got []string
	for _, d := range cur.diff(old) {
		got = append(got, d.String())
	}
	want := []string{`gone: "x" → (unset)`, "lr: 0.01 → 0.02", "new: (unset) → [1,2]", "data: a.jsonl (1 examples, 3 tokens, sha256 " + a.SHA256[:12] + ") → a.jsonl (1 examples, 3 tokens, sha256 " + c.SHA256[:12] + ")"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("diff:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(cur.diff(cur)) != 0 {
		t.Fatal("a record differs from itself")
	}
}
