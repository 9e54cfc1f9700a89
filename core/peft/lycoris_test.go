package peft

import (
	"encoding/json"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/model"
)

// lycoGolden is testdata/lycoris_golden.json, written by
// tools/golden/lycoris_reference.py: PEFT's LoHa and LoKr formulas
// transcribed into PyTorch, evaluated in float64 on small random matrices.
type lycoGolden struct {
	Cases []lycoGoldenCase `json:"cases"`
	// Factorization rows are [dimension, factor, m, n]: PEFT's
	// factorization(dimension, factor) = (m, n).
	Factorization [][4]int `json:"factorization"`
}

type lycoGoldenCase struct {
	Name            string  `json:"name"`
	Method          string  `json:"method"`
	Out             int     `json:"out"`
	In              int     `json:"in"`
	Rows            int     `json:"rows"`
	R               int     `json:"r"`
	Alpha           float64 `json:"alpha"`
	DecomposeBoth   bool    `json:"decompose_both"`
	DecomposeFactor int     `json:"decompose_factor"`
	Weight          []float32
	X, Dy           []float32
	Params          map[string]struct {
		Shape  []int     `json:"shape"`
		Values []float32 `json:"values"`
	}
	Delta, Y, Dx []float32
	Grads        map[string][]float32
}

func readLycoGolden(t *testing.T) lycoGolden {
	t.Helper()
	data, err := os.ReadFile("testdata/lycoris_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g lycoGolden
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Cases) == 0 {
		t.Fatal("no golden cases")
	}
	return g
}

// lycoDiff returns max|a-b| and max|b|, failing on a length mismatch.
func lycoDiff(t *testing.T, what string, a, b []float32) (diff, scale float64) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d values, want %d", what, len(a), len(b))
	}
	for i := range a {
		diff = math.Max(diff, math.Abs(float64(a[i])-float64(b[i])))
		scale = math.Max(scale, math.Abs(float64(b[i])))
	}
	return diff, scale
}

// checkLycoGolden runs one golden case through a LoHa or LoKr layer built
// by plan and newAdapter on a standalone linear layer: its plan must have
// the golden factor shapes; ΔW, the forward output, the gradients of
// Σ dy ⊙ y with respect to x and every factor, and the merged layer's
// output must match. It returns the largest absolute difference seen.
func checkLycoGolden(t *testing.T, c lycoGoldenCase, plan func(lin *model.Linear) lycoPlan,
	newAdapter func(m *model.Model) (*lycoAdapter, func(*lycoLayer) (deltaMethod, error))) float64 {
	t.Helper()
	b := cpu.New()
	lin := &model.Linear{Name: "model.layers.0.self_attn.q_proj", In: c.In, Out: c.Out, Weight: loadF32(t, b, c.Weight, c.Out, c.In)}
	m := &model.Model{Backend: b}
	p := plan(lin)
	if len(p.factors) != len(c.Params) {
		t.Fatalf("plan has %d factors, PEFT %d", len(p.factors), len(c.Params))
	}
	for _, f := range p.factors {
		want, ok := c.Params[f.suffix]
		if !ok || len(want.Shape) != 2 || want.Shape[0] != f.rows || want.Shape[1] != f.cols {
			t.Fatalf("factor %s [%d %d]; PEFT has %v", f.suffix, f.rows, f.cols, want.Shape)
		}
	}
	ad, newDelta := newAdapter(m)
	a, err := buildLyco(ad, []lycoPlan{p}, func(_ lycoPlan, f lycoShape) []float32 { return c.Params[f.suffix].Values }, newDelta)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Unload()
	l := ad.layers[0]

	var worst float64
	check := func(what string, got, want []float32) {
		t.Helper()
		diff, scale := lycoDiff(t, what, got, want)
		worst = math.Max(worst, diff)
		if diff > 1e-5*math.Max(scale, 1) {
			t.Errorf("%s: max |graft - PEFT| = %g (scale %g)", what, diff, scale)
		}
	}
	delta := b.Zeros(c.Out, c.In)
	defer b.Free(delta)
	l.delta.addDelta(b, delta)
	check("ΔW", read(t, b, delta), c.Delta)

	x := loadF32(t, b, c.X, c.Rows, c.In)
	dy := loadF32(t, b, c.Dy, c.Rows, c.Out)
	y, dx := b.Zeros(c.Rows, c.Out), b.Zeros(c.Rows, c.In)
	defer freeAll(b, x, dy, y, dx)
	lin.Forward(b, y, x)
	check("y", read(t, b, y), c.Y)
	lin.Backward(b, dx, dy, x)
	check("dx", read(t, b, dx), c.Dx)
	for _, lp := range l.params {
		check("∂"+lp.suffix, read(t, b, lp.grad), c.Grads[lp.suffix])
	}

	if err := a.Merge(); err != nil {
		t.Fatal(err)
	}
	lin.Forward(b, y, x)
	check("merged y", read(t, b, y), c.Y)
	return worst
}

// lycoCheckDropout checks PEFT's dropouts on q_proj of a tiny model with an
// adapter of config (rank_dropout 0.5, module_dropout 0.3): a training
// forward zeroes whole output rows of the update and scales the kept ones
// by out/kept when scaled (or leaves them when not); module dropout leaves
// the update out of about 30% of the passes; evaluation applies neither.
func lycoCheckDropout(t *testing.T, config string, scaled bool) {
	t.Helper()
	m := tinyModel(t, 34)
	b := m.Backend
	lin := m.Layers[0].Q
	a := newLyco(t, m, config, 0.5)
	const rows = 3
	x := loadF32(t, b, randVals(seeded(5), rows*lin.In, 1), rows, lin.In)
	y := b.Zeros(rows, lin.Out)
	defer freeAll(b, x, y)
	run := func() []float32 {
		lin.Forward(b, y, x)
		return read(t, b, y)
	}
	if err := a.SetTraining(false, nil); err != nil {
		t.Fatal(err)
	}
	full := run()
	lin.Base(b, y, x)
	base := read(t, b, y)
	if err := a.SetTraining(true, seeded(6)); err != nil {
		t.Fatal(err)
	}
	skipped, masked := 0, 0
	const passes = 400
	for range passes {
		got := run()
		if relDiff(got, base) == 0 {
			skipped++
			continue
		}
		masked++
		var kept []int
		for o := range lin.Out {
			if got[o] != base[o] || got[lin.Out+o] != base[lin.Out+o] {
				kept = append(kept, o)
			}
		}
		s := 1.0
		if scaled {
			s = float64(lin.Out) / float64(len(kept))
		}
		for i := range rows {
			for o := range lin.Out {
				k := i*lin.Out + o
				want := float64(base[k])
				if slices.Contains(kept, o) {
					want += s * float64(full[k]-base[k])
				}
				if math.Abs(float64(got[k])-want) > 1e-5*(1+math.Abs(want)) {
					t.Fatalf("row %d, output %d: %g, want %g (kept %d of %d rows)", i, o, got[k], want, len(kept), lin.Out)
				}
			}
		}
	}
	if frac := float64(skipped) / passes; frac < 0.2 || frac > 0.4 {
		t.Errorf("module_dropout 0.3 skipped %d of %d passes", skipped, passes)
	}
	if err := a.SetTraining(false, nil); err != nil {
		t.Fatal(err)
	}
	if d := relDiff(run(), full); d != 0 {
		t.Errorf("evaluation after training differs by %g", d)
	}
	if err := a.Unload(); err != nil {
		t.Fatal(err)
	}
}

// lycoCheckReplay trains one step of stories260K with rank and module
// dropout on every projection, with and without activation checkpointing
// from the same generator: the recomputed blocks must replay the draws, so
// the loss and the gradients agree bit for bit.
func lycoCheckReplay(t *testing.T, config string) {
	t.Helper()
	m := loadModel(t, storiesGGUF)
	b := m.Backend
	a := newLyco(t, m, config, 0.2)
	tb := model.TokenBatch{B: 2, T: 8, IDs: make([]int32, 16), Targets: make([]int32, 16)}
	for i := range tb.IDs {
		tb.IDs[i], tb.Targets[i] = storyIDs[i%len(storyIDs)], storyIDs[(i+1)%len(storyIDs)]
	}
	step := func(checkpointing bool) (float64, [][]float32) {
		for _, p := range a.Params() {
			if err := b.Write(p.Grad, 0, make([]float32, p.Grad.Shape().Numel())); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.SetTraining(true, seeded(8)); err != nil {
			t.Fatal(err)
		}
		m.Checkpointing = checkpointing
		loss, err := m.LossAndGrad(tb, 1)
		if err != nil {
			t.Fatal(err)
		}
		var grads [][]float32
		for _, p := range a.Params() {
			grads = append(grads, read(t, b, p.Grad))
		}
		return loss, grads
	}
	l1, g1 := step(false)
	l2, g2 := step(true)
	if l1 != l2 {
		t.Errorf("loss %v without checkpointing, %v with", l1, l2)
	}
	for i, p := range a.Params() {
		if !vecSameFloats(g1[i], g2[i]) {
			t.Errorf("%s: checkpointing changes the gradient", p.Name)
		}
	}
	// And the draws differ between layers: not every layer kept or
	// skipped alike.
	skipped := 0
	for _, l := range a.(*lycoAdapter).layers {
		if l.skipped {
			skipped++
		}
	}
	if n := len(a.(*lycoAdapter).layers); skipped == 0 || skipped == n {
		t.Errorf("module dropout skipped %d of %d layers", skipped, n)
	}
}

// lycoCheckNoGGUFExport checks that converting a LoHa or LoKr adapter to
// llama.cpp's GGUF LoRA fails with a message naming its type and the
// alternative (its update is not a B·A product).
func lycoCheckNoGGUFExport(t *testing.T, config, peftType string) {
	t.Helper()
	m := loadModel(t, storiesGGUF)
	a := newLyco(t, m, config, 0.3)
	files, err := a.Files()
	if err != nil {
		t.Fatal(err)
	}
	_, err = ConvertGGUFLoRA(InMemory("mem", files), GGUFBaseOf(m))
	if err == nil || !strings.Contains(err.Error(), `"`+peftType+`" cannot be exported`) || !strings.Contains(err.Error(), "graft merge") {
		t.Errorf("exporting a %s adapter as GGUF LoRA: %v", peftType, err)
	}
}

// lycoCheckStack puts an adapter of config (targeting q_proj) on a tiny
// model's layers over a LoRA adapter on q_proj and v_proj, as PEFT's mixed
// model nests them: q_proj then computes the LoRA layer's output plus
// x ΔWᵀ, its gradients hold, merging goes innermost first, and unloading
// both restores the base bit for bit.
func lycoCheckStack(t *testing.T, config string) {
	t.Helper()
	m := tinyModel(t, 35)
	b := m.Backend
	base := logits(t, m, tinyIDs)
	mg := attach(t, m, LoraConfig{R: 2, LoraAlpha: 4, TargetConfig: TargetConfig{TargetModules: TargetNames("q_proj", "v_proj")}}, 36)
	lin := m.Layers[0].Q
	const rows = 3
	xv := randVals(seeded(37), rows*lin.In, 1)
	x := loadF32(t, b, xv, rows, lin.In)
	y := b.Zeros(rows, lin.Out)
	delta := b.Zeros(lin.Out, lin.In)
	defer freeAll(b, x, y, delta)
	lin.Forward(b, y, x)
	withLoRA := read(t, b, y)

	a := newLyco(t, m, config, 0.4)
	if n := len(lin.Hooks()); n != 2 {
		t.Fatalf("%d hooks on %s, want 2", n, lin.Name)
	}
	lin.Forward(b, y, x)
	got := read(t, b, y)
	lin.Hooks()[1].(*lycoLayer).delta.addDelta(b, delta)
	dw := read(t, b, delta)
	for i := range rows {
		for o := range lin.Out {
			want := float64(withLoRA[i*lin.Out+o])
			for k := range lin.In {
				want += float64(xv[i*lin.In+k]) * float64(dw[o*lin.In+k])
			}
			if d := math.Abs(float64(got[i*lin.Out+o]) - want); d > 1e-5*(1+math.Abs(want)) {
				t.Fatalf("stacked output [%d, %d] = %g, want LoRA's layer plus x ΔWᵀ = %g", i, o, got[i*lin.Out+o], want)
			}
		}
	}
	vecGradCheck(t, m, a, lin, func() {})

	both := logits(t, m, tinyIDs)
	lora, err := mg.AsAdapter("a")
	if err != nil {
		t.Fatal(err)
	}
	st, err := NewStack(lora, a)
	if err != nil {
		t.Fatal(err)
	}
	stackFiles, err := st.Files()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Merge(); err == nil || !strings.Contains(err.Error(), "order they were added") {
		t.Errorf("merging the outer adapter first: %v", err)
	}
	if err := mg.Merge("a"); err != nil {
		t.Fatal(err)
	}
	if err := a.Merge(); err != nil {
		t.Fatal(err)
	}
	if d := relDiff(logits(t, m, tinyIDs), both); d > 1e-5 {
		t.Errorf("merged logits differ by %g", d)
	}
	if err := mg.Unmerge(); err == nil {
		t.Error("unmerged LoRA beneath a merged adapter")
	}
	if err := a.Unload(); err != nil {
		t.Fatal(err)
	}
	if err := mg.Unmerge(); err != nil {
		t.Fatal(err)
	}
	if err := mg.DeleteAdapter("a"); err != nil {
		t.Fatal(err)
	}
	// LoRA merges into an F32 weight in place and subtracts on unmerge,
	// which restores it up to rounding.
	if d := relDiff(logits(t, m, tinyIDs), base); d > 1e-6 {
		t.Errorf("after unloading both the logits differ from the base by %g", d)
	}
	// Saved as a mixed stack, the pair loads back in the same order.
	back, _, err := LoadAdapter(m, InMemory("stack", stackFiles))
	if err != nil {
		t.Fatal(err)
	}
	if d := relDiff(logits(t, m, tinyIDs), both); d > 1e-5 {
		t.Errorf("the stack loaded back gives logits %g away", d)
	}
	if err := back.Unload(); err != nil {
		t.Fatal(err)
	}
}
