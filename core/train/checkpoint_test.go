package train

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/data"
)

// resumeConfig exercises everything a resume must restore: shuffled data,
// dropout drawn from the shared generator, accumulation, warmup and decay,
// weight decay and periodic evaluation.
func resumeConfig(dir string) Config {
	c := testConfig(10)
	c.Warmup, c.GradAccum, c.WeightDecay, c.MinLRRatio = 3, 2, 0.05, 0.1
	c.EvalEvery, c.SaveEvery, c.CheckpointDir = 3, 5, dir
	return c
}

type resumeRun struct {
	tr     *Trainer
	obj    *regression
	events []Event
}

func newResumeRun(t *testing.T, dir string, init float32) *resumeRun {
	t.Helper()
	be := newBackend()
	obj := newRegression(t, be, 5, init)
	obj.dropout = 0.2
	tr, err := New(obj, be, LoaderSource(newLoader(t, 9, 2, true)), evalBatches(t), resumeConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	return &resumeRun{tr: tr, obj: obj}
}

func (r *resumeRun) record(e Event) { r.events = append(r.events, e) }

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestResumeIsBitIdentical(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()

	straight := newResumeRun(t, dirA, 0.5)
	resA, err := straight.tr.Fit(context.Background(), straight.record)
	if err != nil {
		t.Fatal(err)
	}

	// Run B is cancelled during step 5; it finishes the step, writes
	// checkpoint-5 and stops.
	ctx, cancel := context.WithCancel(context.Background())
	first := newResumeRun(t, dirB, 0.5)
	_, err = first.tr.Fit(ctx, func(e Event) {
		if e.Kind == EventStep && e.Step == 5 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Fit returned %v, want an error wrapping context.Canceled", err)
	}
	if first.tr.Step() != 5 {
		t.Fatalf("cancelled run stopped after step %d, want 5", first.tr.Step())
	}
	if got := dirNames(t, dirB); !slices.Equal(got, []string{"checkpoint-5"}) {
		t.Fatalf("after cancelling, %s holds %v, want only checkpoint-5", dirB, got)
	}

	// A new trainer, with different initial parameters, resumes from it.
	second := newResumeRun(t, dirB, -2)
	if err := second.tr.Resume(filepath.Join(dirB, "checkpoint-5")); err != nil {
		t.Fatal(err)
	}
	resB, err := second.tr.Fit(context.Background(), second.record)
	if err != nil {
		t.Fatal(err)
	}

	a := paramBits(t, straight.tr.be, straight.obj.Params())
	b := paramBits(t, second.tr.be, second.obj.Params())
	if !reflect.DeepEqual(a, b) {
		t.Errorf("resumed parameters differ from an uninterrupted run:\n%v\n%v", a, b)
	}
	for _, name := range []string{ParamsFile, OptimizerFile} {
		fa, err := os.ReadFile(filepath.Join(dirA, "checkpoint-10", name))
		if err != nil {
			t.Fatal(err)
		}
		fb, err := os.ReadFile(filepath.Join(dirB, "checkpoint-10", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fa, fb) {
			t.Errorf("checkpoint-10/%s differs between the runs", name)
		}
	}
	// The resumed run's step events continue the straight run's exactly.
	steps := func(evs []Event, from int) []Event {
		var out []Event
		for _, e := range evs {
			if e.Kind == EventStep && e.Step >= from {
				e.Elapsed, e.ETA, e.TokensPerSec = 0, 0, 0
				out = append(out, e)
			}
		}
		return out
	}
	if sa, sb := steps(straight.events, 6), steps(second.events, 6); !reflect.DeepEqual(sa, sb) {
		t.Errorf("step events differ after the resume:\n%+v\n%+v", sa, sb)
	}
	resA.Elapsed, resB.Elapsed = 0, 0
	resA.Checkpoint, resB.Checkpoint = "", ""
	if resA != resB {
		t.Errorf("results differ:\n%+v\n%+v", resA, resB)
	}
}

func TestNonFiniteStepStopsWithoutSaving(t *testing.T) {
	for _, tt := range []struct {
		name string
		set  func(*regression)
		want string
	}{
		// GradAccum is 2: call 9 is the first micro-batch of step 5.
		{"loss", func(r *regression) { r.nanAt = 9 }, "step 5: loss is NaN; last good checkpoint: "},
		{"gradient", func(r *regression) { r.infGradAt = 10 }, "step 5: gradient norm is +Inf; last good checkpoint: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			be := newBackend()
			obj := newRegression(t, be, 3, 1)
			tt.set(obj)
			cfg := testConfig(10)
			cfg.GradAccum, cfg.SaveEvery, cfg.CheckpointDir = 2, 2, dir
			tr, err := New(obj, be, LoaderSource(newLoader(t, 9, 2, true)), nil, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			res, err := tr.Fit(context.Background(), func(e Event) { kinds = append(kinds, e.Kind) })
			last := filepath.Join(dir, "checkpoint-4")
			if err == nil || err.Error() != "train: "+tt.want+last {
				t.Fatalf("Fit error = %v, want %q", err, "train: "+tt.want+last)
			}
			if res.Steps != 4 || res.Checkpoint != last {
				t.Errorf("result %+v: want 4 steps and checkpoint %s", res, last)
			}
			if got := dirNames(t, dir); !slices.Equal(got, []string{"checkpoint-2", "checkpoint-4"}) {
				t.Errorf("checkpoint dir holds %v, want checkpoint-2 and checkpoint-4 only", got)
			}
			if n := strings.Count(strings.Join(kinds, " "), EventStep); n != 4 {
				t.Errorf("%d step events, want 4", n)
			}
			// The bad update was not applied: the parameters are those saved
			// at step 4.
			saved := newRegression(t, be, 3, 7)
			tr2, err := New(saved, be, LoaderSource(newLoader(t, 9, 2, true)), nil, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := tr2.Resume(last); err != nil {
				t.Fatal(err)
			}
			if a, b := paramBits(t, be, obj.Params()), paramBits(t, be, saved.Params()); !reflect.DeepEqual(a, b) {
				t.Errorf("parameters changed by the diverged step: %v, saved %v", a, b)
			}
		})
	}
}

func TestNonFiniteWithoutCheckpoint(t *testing.T) {
	be := newBackend()
	obj := newRegression(t, be, 3, 1)
	obj.nanAt = 1
	tr, err := New(obj, be, LoaderSource(newLoader(t, 9, 2, false)), nil, testConfig(3))
	if err != nil {
		t.Fatal(err)
	}
	_, err = tr.Fit(context.Background(), nil)
	if err == nil || err.Error() != "train: step 1: loss is NaN; no checkpoint has been written" {
		t.Errorf("Fit = %v", err)
	}
}

func TestKeepCheckpoints(t *testing.T) {
	dir := t.TempDir()
	be := newBackend()
	cfg := testConfig(5)
	cfg.SaveEvery, cfg.KeepCheckpoints, cfg.CheckpointDir = 1, 2, dir
	tr, err := New(newRegression(t, be, 3, 1), be, LoaderSource(newLoader(t, 9, 2, false)), nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var saved []string
	if _, err := tr.Fit(context.Background(), func(e Event) {
		if e.Kind == EventCheckpoint {
			saved = append(saved, filepath.Base(e.Path))
		}
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"checkpoint-1", "checkpoint-2", "checkpoint-3", "checkpoint-4", "checkpoint-5"}; !slices.Equal(saved, want) {
		t.Errorf("checkpoint events %v, want %v", saved, want)
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{"checkpoint-4", "checkpoint-5"}) {
		t.Errorf("kept %v, want the newest two", got)
	}
	latest, err := LatestCheckpoint(dir)
	if err != nil || latest != filepath.Join(dir, "checkpoint-5") {
		t.Errorf("LatestCheckpoint = %q, %v", latest, err)
	}
	if _, err := LatestCheckpoint(t.TempDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LatestCheckpoint of an empty dir = %v, want ErrNotExist", err)
	}
}

func TestOnSaveAddsFilesAtomically(t *testing.T) {
	dir := t.TempDir()
	be := newBackend()
	cfg := testConfig(2)
	cfg.SaveEvery, cfg.CheckpointDir = 1, dir
	tr, err := New(newRegression(t, be, 3, 1), be, LoaderSource(newLoader(t, 9, 2, false)), nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tr.OnSave = func(tmp string) error {
		if !strings.HasPrefix(filepath.Base(tmp), ".checkpoint-") {
			t.Errorf("OnSave got %s, want the temporary directory", tmp)
		}
		if tr.Step() == 2 {
			return errors.New("disk full")
		}
		return os.WriteFile(filepath.Join(tmp, "adapter_config.json"), []byte("{}"), 0o644)
	}
	_, err = tr.Fit(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "OnSave: disk full") {
		t.Fatalf("Fit = %v, want the OnSave error", err)
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{"checkpoint-1"}) {
		t.Errorf("checkpoint dir holds %v, want checkpoint-1 only (no partial checkpoint-2)", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "checkpoint-1", "adapter_config.json")); err != nil {
		t.Error(err)
	}
}

func TestResumeRejectsMismatches(t *testing.T) {
	dir := t.TempDir()
	be := newBackend()
	cfg := testConfig(4)
	cfg.SaveEvery, cfg.CheckpointDir = 2, dir
	tr, err := New(newRegression(t, be, 3, 1), be, LoaderSource(newLoader(t, 9, 2, false)), nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Fit(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(dir, "checkpoint-2")

	fresh := func(dim int) (*Trainer, *regression) {
		obj := newRegression(t, be, dim, 1)
		tr, err := New(obj, be, LoaderSource(newLoader(t, 9, 2, false)), nil, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return tr, obj
	}
	tr4, obj4 := fresh(4)
	before := paramBits(t, be, obj4.Params())
	err = tr4.Resume(ckpt)
	if err == nil || !strings.Contains(err.Error(), `parameter "model.w.weight" has shape [1 3] in the checkpoint, [1 4] here`) {
		t.Errorf("Resume with another shape = %v", err)
	}
	if tr4.Step() != 0 || !reflect.DeepEqual(before, paramBits(t, be, obj4.Params())) {
		t.Error("a failed Resume changed the trainer")
	}

	short := cfg
	short.Steps = 1
	trShort, err := New(newRegression(t, be, 3, 1), be, LoaderSource(newLoader(t, 9, 2, false)), nil, short)
	if err != nil {
		t.Fatal(err)
	}
	if err := trShort.Resume(ckpt); err == nil || !strings.Contains(err.Error(), "past this run's 1 steps") {
		t.Errorf("Resume past the end = %v", err)
	}

	other, err := data.NewLoader(testExamples(5), data.LoaderOptions{Batch: 2, SeqLen: 8})
	if err != nil {
		t.Fatal(err)
	}
	trData, err := New(newRegression(t, be, 3, 1), be, LoaderSource(other), nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := trData.Resume(ckpt); err == nil || !strings.Contains(err.Error(), "data source state") {
		t.Errorf("Resume with other data = %v", err)
	}

	tr3, _ := fresh(3)
	state := filepath.Join(ckpt, StateFile)
	if err := os.WriteFile(state, []byte(`{"format": "graft-trainer-state", "version": 1, "step": 2`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := tr3.Resume(ckpt); err == nil || !strings.Contains(err.Error(), state) {
		t.Errorf("Resume with a truncated state file = %v, want an error naming it", err)
	}
	if err := tr3.Resume(filepath.Join(dir, "checkpoint-3")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Resume of a missing checkpoint = %v", err)
	}
}
