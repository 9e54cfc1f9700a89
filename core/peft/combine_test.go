package peft

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/model"
)

// deltaOf returns s·B·A of adapter name on lin in float64 ([out, in]), or
// nil when the adapter does not target the layer.
func deltaOf(t *testing.T, mg *Manager, lin *model.Linear, name string) []float64 {
	t.Helper()
	h := mg.layerOf(lin)
	if h == nil || h.weights[name] == nil {
		return nil
	}
	w := h.weights[name]
	d := matMul(toFloat64(read(t, mg.b, w.B)), toFloat64(read(t, mg.b, w.A)), lin.Out, w.r, lin.In)
	for i := range d {
		d[i] *= w.scaling
	}
	return d
}

func factors(t *testing.T, mg *Manager, lin *model.Linear, name string) (a, b []float64, r int, s float64) {
	t.Helper()
	w := mg.layerOf(lin).weights[name]
	return toFloat64(read(t, mg.b, w.A)), toFloat64(read(t, mg.b, w.B)), w.r, w.scaling
}

func frob2(x []float64) float64 { return dot64(x, x) }

func combineSetup(t *testing.T) (*model.Model, *Manager) {
	t.Helper()
	m := tinyModel(t, 12)
	mg := AttachLoRA(m)
	for _, a := range []struct {
		name string
		cfg  LoraConfig
	}{
		{"x", LoraConfig{R: 2, LoraAlpha: 4, TargetConfig: TargetConfig{TargetModules: TargetNames("q_proj", "v_proj")}}},
		{"y", LoraConfig{R: 2, LoraAlpha: 3, TargetConfig: TargetConfig{TargetModules: TargetNames("v_proj", "up_proj")}}},
		{"z", LoraConfig{R: 3, LoraAlpha: 6, TargetConfig: TargetConfig{TargetModules: TargetNames("q_proj")}}},
	} {
		a.cfg.InitLoraWeights = InitRandom
		if err := mg.AddAdapter(a.name, a.cfg, seeded(uint64(a.name[0]))); err != nil {
			t.Fatal(err)
		}
	}
	return m, mg
}

func TestCombineCat(t *testing.T) {
	m, mg := combineSetup(t)
	weights := []float64{0.7, -1.3, 0.4}
	if err := mg.AddWeightedAdapter([]string{"x", "y", "z"}, weights, "cat", CombineCat, 0); err != nil {
		t.Fatal(err)
	}
	cfg, _ := mg.Config("cat")
	if cfg.R != 7 || cfg.LoraAlpha != 7 || !slices.Equal(cfg.TargetModules.Names, []string{"q_proj", "up_proj", "v_proj"}) {
		t.Errorf("cat config: r %d alpha %g targets %q", cfg.R, cfg.LoraAlpha, cfg.TargetModules.Names)
	}
	for _, lin := range m.Linears() {
		got := deltaOf(t, mg, lin, "cat")
		targeted := slices.ContainsFunc([]string{"q_proj", "up_proj", "v_proj"}, func(s string) bool { return strings.HasSuffix(lin.Name, s) })
		if (got != nil) != targeted {
			t.Fatalf("%s: cat adapter present %v, want %v", lin.Name, got != nil, targeted)
		}
		if got == nil {
			continue
		}
		// ΔW = Σ w_i s_i B_i A_i = Σ w_i ΔW_i.
		want := make([]float64, len(got))
		for i, n := range []string{"x", "y", "z"} {
			for j, v := range deltaOf(t, mg, lin, n) {
				want[j] += weights[i] * v
			}
		}
		if d := maxAbsDiff(got, want); d > 1e-5*math.Sqrt(frob2(want)) {
			t.Errorf("%s: cat ΔW differs from Σ w_i ΔW_i by %g", lin.Name, d)
		}
	}
	// With unit weights the cat adapter is the sum of the adapters.
	if err := mg.AddWeightedAdapter([]string{"x", "y"}, []float64{1, 1}, "sum", CombineCat, 0); err != nil {
		t.Fatal(err)
	}
	if err := mg.SetActive("x", "y"); err != nil {
		t.Fatal(err)
	}
	both := logits(t, m, tinyIDs)
	if err := mg.SetActive("sum"); err != nil {
		t.Fatal(err)
	}
	if d := relDiff(logits(t, m, tinyIDs), both); d > 1e-5 {
		t.Errorf("cat of x and y vs x and y active: logits differ by %g", d)
	}
}

func TestCombineLinear(t *testing.T) {
	m, mg := combineSetup(t)
	weights := []float64{0.7, -1.3}
	if err := mg.AddWeightedAdapter([]string{"x", "y"}, weights, "lin", CombineLinear, 0); err != nil {
		t.Fatal(err)
	}
	cfg, _ := mg.Config("lin")
	if cfg.R != 2 || cfg.LoraAlpha != 2 {
		t.Errorf("linear config: r %d alpha %g, want 2, 2", cfg.R, cfg.LoraAlpha)
	}
	for _, lin := range m.Linears() {
		if mg.layerOf(lin) == nil || mg.layerOf(lin).weights["lin"] == nil {
			continue
		}
		// PEFT: B·A = (Σ √|w s| B_i)(Σ sign(w s)√|w s| A_i), new scaling 1.
		in, out := lin.In, lin.Out
		sa, sb := make([]float64, 2*in), make([]float64, out*2)
		for i, n := range []string{"x", "y"} {
			if mg.layerOf(lin).weights[n] == nil {
				continue
			}
			a, b, _, s := factors(t, mg, lin, n)
			ws := weights[i] * s
			c := math.Sqrt(math.Abs(ws))
			for j := range a {
				sa[j] += math.Copysign(c, ws) * a[j]
			}
			for j := range b {
				sb[j] += c * b[j]
			}
		}
		want := matMul(sb, sa, out, 2, in)
		got := deltaOf(t, mg, lin, "lin")
		if d := maxAbsDiff(got, want); d > 1e-5*math.Sqrt(frob2(want)) {
			t.Errorf("%s: linear ΔW differs from the host computation by %g", lin.Name, d)
		}
	}
	// Ranks must agree.
	if err := mg.AddWeightedAdapter([]string{"x", "z"}, []float64{1, 1}, "bad", CombineLinear, 0); err == nil || !strings.Contains(err.Error(), "one rank") {
		t.Errorf("linear of ranks 2 and 3: err = %v", err)
	}
}

func TestCombineSVD(t *testing.T) {
	m, mg := combineSetup(t)
	weights := []float64{0.7, -1.3, 0.4}
	// Full rank (2+2+3): exact; truncated to 2: the best rank-2 approximation.
	if err := mg.AddWeightedAdapter([]string{"x", "y", "z"}, weights, "full", CombineSVD, 7); err != nil {
		t.Fatal(err)
	}
	if err := mg.AddWeightedAdapter([]string{"x", "y", "z"}, weights, "trunc", CombineSVD, 2); err != nil {
		t.Fatal(err)
	}
	if err := mg.AddWeightedAdapter([]string{"x", "y", "z"}, weights, "default", CombineSVD, 0); err != nil {
		t.Fatal(err)
	}
	if cfg, _ := mg.Config("default"); cfg.R != 3 {
		t.Errorf("default svd rank %d, want the largest rank 3", cfg.R)
	}
	for _, lin := range m.Linears() {
		if mg.layerOf(lin) == nil || mg.layerOf(lin).weights["full"] == nil {
			continue
		}
		// PEFT's target: Σ (w_i s_i)·ΔW_i with ΔW_i = s_i B_i A_i.
		want := make([]float64, lin.Out*lin.In)
		for i, n := range []string{"x", "y", "z"} {
			if mg.layerOf(lin).weights[n] == nil {
				continue
			}
			s := mg.layerOf(lin).weights[n].scaling
			for j, v := range deltaOf(t, mg, lin, n) {
				want[j] += weights[i] * s * v
			}
		}
		if d := maxAbsDiff(deltaOf(t, mg, lin, "full"), want); d > 1e-5*math.Sqrt(frob2(want)) {
			t.Errorf("%s: full-rank svd ΔW differs by %g", lin.Name, d)
		}
		// Eckart–Young: the rank-2 truncation keeps the two largest
		// singular values (computed here by a full Jacobi SVD of ΔW) and
		// its error is orthogonal to it.
		trunc := deltaOf(t, mg, lin, "trunc")
		_, sv, _ := svdJacobi(want, lin.Out, lin.In)
		kept := sv[0]*sv[0] + sv[1]*sv[1]
		if got := frob2(trunc); math.Abs(got-kept) > 1e-4*kept {
			t.Errorf("%s: ‖ΔW₂‖² = %g, want σ₁²+σ₂² = %g", lin.Name, got, kept)
		}
		resid := make([]float64, len(want))
		for i := range want {
			resid[i] = want[i] - trunc[i]
		}
		if got, w := frob2(resid), frob2(want)-kept; math.Abs(got-w) > 1e-4*frob2(want) {
			t.Errorf("%s: ‖ΔW − ΔW₂‖² = %g, want %g", lin.Name, got, w)
		}
	}
}

func TestCombineErrors(t *testing.T) {
	m, mg := combineSetup(t)
	if err := mg.AddAdapter("d", LoraConfig{R: 2, LoraAlpha: 2, UseDoRA: true, TargetConfig: TargetConfig{TargetModules: TargetNames("q_proj")}}, seeded(1)); err != nil {
		t.Fatal(err)
	}
	if err := mg.AddAdapter("p", LoraConfig{R: 2, LoraAlpha: 2, TargetConfig: TargetConfig{TargetModules: TargetPattern(`.*\.k_proj`)}}, seeded(1)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		adapters []string
		weights  []float64
		typ      string
		rank     int
		want     string
	}{
		{"none", nil, nil, CombineCat, 0, "no adapters"},
		{"weights", []string{"x", "y"}, []float64{1}, CombineCat, 0, "1 weights for 2"},
		{"unknown adapter", []string{"x", "nope"}, []float64{1, 1}, CombineCat, 0, `no adapter "nope"`},
		{"unknown type", []string{"x", "y"}, []float64{1, 1}, "ties", 0, `"ties" is not supported`},
		{"dora", []string{"x", "d"}, []float64{1, 1}, CombineCat, 0, "DoRA"},
		{"mixed targets", []string{"x", "p"}, []float64{1, 1}, CombineCat, 0, "pattern and as names"},
		{"nan weight", []string{"x", "y"}, []float64{1, math.NaN()}, CombineCat, 0, "not finite"},
		{"rank too high", []string{"x", "y"}, []float64{1, 1}, CombineSVD, 40, "exceeds"},
		{"duplicate", []string{"x", "y"}, []float64{1, 1}, CombineCat, 0, "already exists"},
	} {
		newName := "new"
		if c.name == "duplicate" {
			newName = "x"
		}
		err := mg.AddWeightedAdapter(c.adapters, c.weights, newName, c.typ, c.rank)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one containing %q", c.name, err, c.want)
		}
	}
	if got := mg.Adapters(); len(got) != 5 {
		t.Errorf("failed combinations left adapters behind: %q", got)
	}
	_ = m
}
