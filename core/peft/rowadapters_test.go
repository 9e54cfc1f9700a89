package peft

import (
	"fmt"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/model"
)

func rowSetup(t *testing.T) (*model.Model, *Manager) {
	t.Helper()
	m := tinyModel(t, 14)
	mg := AttachLoRA(m)
	if err := mg.AddAdapter("a", LoraConfig{R: 2, LoraAlpha: 4, InitLoraWeights: InitRandom, TargetConfig: TargetConfig{TargetModules: TargetNames("q_proj", "v_proj")}}, seeded(1)); err != nil {
		t.Fatal(err)
	}
	if err := mg.AddAdapter("b", LoraConfig{R: 3, LoraAlpha: 3, InitLoraWeights: InitRandom, TargetConfig: TargetConfig{TargetModules: TargetAllLinear()}}, seeded(2)); err != nil {
		t.Fatal(err)
	}
	return m, mg
}

func tokenBatch(rows, T int, seed uint64, vocab int) model.TokenBatch {
	rng := seeded(seed)
	tb := model.TokenBatch{B: rows, T: T}
	for range rows * T {
		tb.IDs = append(tb.IDs, int32(rng.IntN(vocab)))
		tb.Targets = append(tb.Targets, int32(rng.IntN(vocab)))
	}
	return tb
}

func rowOf(tb model.TokenBatch, i int) model.TokenBatch {
	T := tb.T
	return model.TokenBatch{B: 1, T: T, IDs: tb.IDs[i*T : (i+1)*T], Targets: tb.Targets[i*T : (i+1)*T]}
}

// TestRowAdaptersMatchSeparateRows runs a batch whose rows use adapter a,
// the base model, adapter b and a again, and compares the loss and the
// gradients of both adapters with running each row on its own.
func TestRowAdaptersMatchSeparateRows(t *testing.T) {
	m, mg := rowSetup(t)
	names := []string{"a", BaseAdapterName, "b", "a"}
	tb := tokenBatch(len(names), 5, 3, m.Config.Vocab)

	if err := mg.SetRowAdapters(names); err != nil {
		t.Fatal(err)
	}
	if err := mg.ZeroGrad(); err != nil {
		t.Fatal(err)
	}
	mixed, err := m.LossAndGrad(tb, 1)
	if err != nil {
		t.Fatal(err)
	}
	grads := func() map[string][]float32 {
		out := map[string][]float32{}
		for _, n := range []string{"a", "b"} {
			ps, _ := mg.Params(n)
			for _, p := range ps {
				out[p.Name+"@"+n] = read(t, m.Backend, p.Grad)
			}
		}
		return out
	}
	mixedGrads := grads()

	if err := mg.SetRowAdapters(nil); err != nil {
		t.Fatal(err)
	}
	if err := mg.ZeroGrad(); err != nil {
		t.Fatal(err)
	}
	var separate float64
	for i, n := range names {
		var loss float64
		run := func() error {
			var err error
			loss, err = m.LossAndGrad(rowOf(tb, i), 1)
			return err
		}
		if n == BaseAdapterName {
			err = mg.WithDisabled(run)
		} else {
			if err := mg.SetActive(n); err != nil {
				t.Fatal(err)
			}
			err = run()
		}
		if err != nil {
			t.Fatal(err)
		}
		separate += loss
	}
	if d := relDiff([]float32{float32(mixed)}, []float32{float32(separate)}); d > 1e-6 {
		t.Errorf("mixed batch loss %g, rows one by one %g", mixed, separate)
	}
	for name, want := range grads() {
		if d := relDiff(mixedGrads[name], want); d > 1e-5 {
			t.Errorf("%s: mixed-batch gradient differs by %g", name, d)
		}
	}
}

// TestRowAdaptersLayer compares one layer's rows with the layer run once
// per adapter.
func TestRowAdaptersLayer(t *testing.T) {
	lc := newLayerCase(t, map[string]LoraConfig{"one": {R: 4, LoraAlpha: 8}, "two": {R: 2, LoraAlpha: 3}}, "one", "two")
	names := []string{"two", BaseAdapterName, "one", "two", "one"} // 5 batch rows of 1 token
	if err := lc.mg.SetRowAdapters(names); err != nil {
		t.Fatal(err)
	}
	got := lc.forward(t)
	if err := lc.mg.SetRowAdapters(nil); err != nil {
		t.Fatal(err)
	}
	out := lc.lin.Out
	for i, n := range names {
		var want []float32
		if n == BaseAdapterName {
			lc.mg.WithDisabled(func() error { want = lc.forward(t); return nil })
		} else {
			if err := lc.mg.SetActive(n); err != nil {
				t.Fatal(err)
			}
			want = lc.forward(t)
		}
		if d := relDiff(got[i*out:(i+1)*out], want[i*out:(i+1)*out]); d > 1e-6 {
			t.Errorf("row %d (%s): differs by %g", i, n, d)
		}
	}
}

func TestRowAdaptersErrors(t *testing.T) {
	m, mg := rowSetup(t)
	if err := mg.AddAdapter("d", LoraConfig{R: 2, LoraAlpha: 2, UseDoRA: true}, seeded(3)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		names []string
		want  string
	}{
		{[]string{"a", "nope"}, `row 1: lora: no adapter "nope"`},
		{[]string{"d"}, "DoRA"},
	} {
		if err := mg.SetRowAdapters(c.names); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err = %v, want one containing %q", c.names, err, c.want)
		}
	}
	if err := mg.Merge("a"); err != nil {
		t.Fatal(err)
	}
	if err := mg.SetRowAdapters([]string{"a", "b"}); err == nil || !strings.Contains(err.Error(), "merged") {
		t.Errorf("with a merged adapter: err = %v", err)
	}
	if err := mg.Unmerge(); err != nil {
		t.Fatal(err)
	}
	if err := mg.SetRowAdapters([]string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	if err := mg.Merge("a"); err == nil {
		t.Error("Merge during mixed batches succeeded")
	}
	// A pass whose rows do not split into the named batch rows panics
	// with both numbers.
	func() {
		defer func() {
			r := recover()
			if r == nil || !strings.Contains(fmt.Sprint(r), "2 batch rows") {
				t.Errorf("panic %v, want one naming the row counts", r)
			}
		}()
		m.BatchLoss(tokenBatch(1, 3, 1, m.Config.Vocab))
	}()
	if got := mg.RowAdapters(); len(got) != 2 {
		t.Errorf("RowAdapters = %q", got)
	}
}
