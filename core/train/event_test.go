package train

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestFitEvents(t *testing.T) {
	dir := t.TempDir()
	be := newBackend()
	cfg := testConfig(5)
	cfg.EvalEvery, cfg.SaveEvery, cfg.CheckpointDir, cfg.Warmup = 2, 3, dir, 1
	tr, err := New(newRegression(t, be, 3, 1), be, LoaderSource(newLoader(t, 6, 2, false)), evalBatches(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var events []Event
	res, err := tr.Fit(context.Background(), func(e Event) {
		got = append(got, e.Kind+":"+strconv.Itoa(e.Step))
		events = append(events, e)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"step:1", "step:2", "eval:2", "step:3", "checkpoint:3", "step:4", "eval:4",
		"step:5", "eval:5", "checkpoint:5", "done:5",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events %v\nwant %v", got, want)
	}
	for _, e := range events {
		if e.TotalSteps != 5 {
			t.Errorf("%s event: TotalSteps %d", e.Kind, e.TotalSteps)
		}
		switch e.Kind {
		case EventStep:
			if e.Tokens != e.Step*2*8 || e.Loss <= 0 || e.GradNorm <= 0 || e.Elapsed <= 0 {
				t.Errorf("step event %+v", e)
			}
			// 6 examples in batches of 2: 3 batches an epoch.
			if want := float64(e.Step) / 3; math.Abs(e.Epoch-want) > 1e-12 {
				t.Errorf("step %d: epoch %v, want %v", e.Step, e.Epoch, want)
			}
			if want := cfg.lrAt(e.Step-1, 5); e.LR != want {
				t.Errorf("step %d: lr %v, want %v", e.Step, e.LR, want)
			}
		case EventCheckpoint:
			if want := filepath.Join(dir, "checkpoint-"+strconv.Itoa(e.Step)); e.Path != want {
				t.Errorf("checkpoint path %s, want %s", e.Path, want)
			}
		case EventDone:
			if e.Loss != res.Loss || e.EvalLoss != res.EvalLoss || !res.Evaluated {
				t.Errorf("done event %+v, result %+v", e, res)
			}
		}
	}
	if events[0].LR != 0 {
		t.Errorf("first step with warmup ran at lr %v, want 0 as transformers does", events[0].LR)
	}
}

func TestFitHonoursCancelledContext(t *testing.T) {
	be := newBackend()
	tr, err := New(newRegression(t, be, 3, 1), be, LoaderSource(newLoader(t, 6, 2, false)), nil, testConfig(5))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := tr.Fit(ctx, nil)
	if !errors.Is(err, context.Canceled) || res.Steps != 0 {
		t.Errorf("Fit with a cancelled context = %+v, %v", res, err)
	}
}

func TestMetricsWriter(t *testing.T) {
	var buf bytes.Buffer
	onEvent, errFn := MetricsWriter(&buf)
	onEvent(Event{Kind: EventStep, Step: 1, TotalSteps: 2, Loss: 2.5, LR: 1e-4, GradNorm: 0.7,
		Tokens: 64, TokensPerSec: 100, Elapsed: 1500 * time.Millisecond, ETA: 2 * time.Second})
	onEvent(Event{Kind: EventEval, Step: 1, TotalSteps: 2, EvalLoss: math.Inf(1)})
	onEvent(Event{Kind: EventCheckpoint, Step: 1, TotalSteps: 2, Path: "out/checkpoint-1"})
	if err := errFn(); err != nil {
		t.Fatal(err)
	}
	var lines []map[string]any
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3", len(lines))
	}
	step := lines[0]
	for key, want := range map[string]any{"kind": "step", "step": 1.0, "loss": 2.5, "lr": 1e-4, "grad_norm": 0.7,
		"tokens": 64.0, "elapsed_s": 1.5, "eta_s": 2.0} {
		if step[key] != want {
			t.Errorf("step line %s = %v, want %v", key, step[key], want)
		}
	}
	if _, ok := step["eval_loss"]; ok {
		t.Error("step line has an eval_loss")
	}
	if lines[1]["eval_loss"] != "+Inf" {
		t.Errorf("eval line eval_loss = %v, want the string +Inf", lines[1]["eval_loss"])
	}
	if lines[2]["path"] != "out/checkpoint-1" {
		t.Errorf("checkpoint line %v", lines[2])
	}
}

type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	w.n++
	return 0, errors.New("disk full")
}

func TestMetricsWriterKeepsFirstError(t *testing.T) {
	w := &failingWriter{}
	onEvent, errFn := MetricsWriter(w)
	onEvent(Event{Kind: EventStep})
	onEvent(Event{Kind: EventStep})
	if err := errFn(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("errFn() = %v", err)
	}
	if w.n != 1 {
		t.Errorf("%d writes after an error, want 1", w.n)
	}
}
