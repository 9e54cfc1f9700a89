package peft

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/model"
)

// newBottleneck attaches a bottleneck adapter or fails the test.
func newBottleneck(t testing.TB, m *model.Model, cfg BottleneckConfig, seed uint64) *bottleneckAdapter {
	t.Helper()
	a, err := NewBottleneck(m, cfg, seeded(seed))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if ad := a.(*bottleneckAdapter); !ad.unloaded {
			ad.Unload()
		}
	})
	return a.(*bottleneckAdapter)
}

// bnRandomize overwrites every parameter with uniform values in ±scale,
// so that all gradients are non-zero and the adapter changes the output.
func bnRandomize(t testing.TB, ad *bottleneckAdapter, scale float64, seed uint64) {
	t.Helper()
	rng := seeded(seed)
	for _, p := range ad.Params() {
		if err := ad.m.Backend.Write(p.Value, 0, randVals(rng, int(p.Value.Shape().Numel()), scale)); err != nil {
			t.Fatal(err)
		}
	}
}

func bnZeroGrads(t testing.TB, ad *bottleneckAdapter) {
	t.Helper()
	for _, p := range ad.Params() {
		ad.m.Backend.Scale(p.Grad, p.Grad, 0)
	}
}

func TestBottleneckSites(t *testing.T) {
	for _, c := range []struct {
		cfg               BottleneckConfig
		attn, ffn         []bool // per layer of the tiny model
		width, params     int
		nonLinearity, out string
	}{
		{BottleneckConfig{}, []bool{true, true}, []bool{true, true}, 1, 16, "swish", ""},
		{BottleneckConfig{Kind: "pfeiffer", ReductionFactor: 4}, []bool{false, false}, []bool{true, true}, 4, 8, "relu", ""},
		{BottleneckConfig{Kind: "double_seq_bn", ReductionFactor: 3, LeaveOut: []int{0}, NonLinearity: "Identity"}, []bool{false, true}, []bool{false, true}, 5, 8, "linear", ""},
		{BottleneckConfig{Kind: "seq_bn", ReductionFactor: 0.5, NonLinearity: "GELU"}, []bool{false, false}, []bool{true, true}, 32, 8, "gelu", ""},
	} {
		t.Run(fmt.Sprintf("%+v", c.cfg), func(t *testing.T) {
			m := tinyModel(t, 1)
			ad := newBottleneck(t, m, c.cfg, 1)
			for i, l := range m.Layers {
				if got := l.AttnOut != nil; got != c.attn[i] {
					t.Errorf("layer %d attention hook %v, want %v", i, got, c.attn[i])
				}
				if got := l.FFNOut != nil; got != c.ffn[i] {
					t.Errorf("layer %d feed-forward hook %v, want %v", i, got, c.ffn[i])
				}
			}
			if ad.width != c.width || len(ad.Params()) != c.params || ad.cfg.NonLinearity != c.nonLinearity {
				t.Errorf("width %d, %d params, activation %q; want %d, %d, %q", ad.width, len(ad.Params()), ad.cfg.NonLinearity, c.width, c.params, c.nonLinearity)
			}
			if err := ad.Unload(); err != nil {
				t.Fatal(err)
			}
			for i, l := range m.Layers {
				if l.AttnOut != nil || l.FFNOut != nil {
					t.Errorf("layer %d keeps a hook after Unload", i)
				}
			}
		})
	}
}

func TestBottleneckErrors(t *testing.T) {
	m := tinyModel(t, 1)
	for _, c := range []struct {
		cfg  BottleneckConfig
		want string
	}{
		{BottleneckConfig{Kind: "lora"}, "kind"},
		{BottleneckConfig{ReductionFactor: -2}, "reduction_factor"},
		{BottleneckConfig{ReductionFactor: math.Inf(1)}, "reduction_factor"},
		{BottleneckConfig{NonLinearity: "softplus"}, "non_linearity"},
		{BottleneckConfig{InitWeights: "xavier"}, "init_weights"},
		{BottleneckConfig{Dropout: 1}, "dropout"},
		{BottleneckConfig{Scaling: math.NaN()}, "scaling"},
		{BottleneckConfig{LeaveOut: []int{-1}}, "leave_out"},
		{BottleneckConfig{LeaveOut: []int{2}}, "outside"},
		{BottleneckConfig{LeaveOut: []int{0, 1}}, "none of"},
		{BottleneckConfig{Name: "a.b"}, "dots"},
	} {
		if _, err := NewBottleneck(m, c.cfg, seeded(1)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one mentioning %q", c.cfg, err, c.want)
		}
	}
	if _, err := NewBottleneck(m, BottleneckConfig{}, nil); err == nil {
		t.Error("a nil random source was accepted")
	}
	for i, l := range m.Layers {
		if l.AttnOut != nil || l.FFNOut != nil {
			t.Fatalf("a failed NewBottleneck left a hook on layer %d", i)
		}
	}
	// One adapter per block output.
	ad := newBottleneck(t, m, BottleneckConfig{Kind: BottleneckPfeiffer}, 1)
	if _, err := NewBottleneck(m, BottleneckConfig{}, seeded(2)); err == nil || !strings.Contains(err.Error(), "already has a block hook") {
		t.Errorf("second adapter on the same outputs: %v", err)
	}
	if m.Layers[0].AttnOut != nil {
		t.Error("the refused Houlsby adapter left its attention hook")
	}
	if err := ad.Merge(); !errors.Is(err, ErrNotMergeable) {
		t.Errorf("Merge: %v, want ErrNotMergeable", err)
	}
	if err := ad.Unload(); err != nil {
		t.Fatal(err)
	}
	if err := ad.Unload(); err == nil {
		t.Error("a second Unload succeeded")
	}
	if _, err := ad.Files(); err == nil {
		t.Error("Files of an unloaded adapter succeeded")
	}
}

func TestBottleneckInitialValues(t *testing.T) {
	const width, dim = 32, 256
	wd, bd, wu, bu := bnInitialValues(BottleneckInitMAM, width, dim, seeded(3))
	bound := 1 / math.Sqrt(dim)
	if mean, std, maxAbs := stats(wd); maxAbs > bound || maxAbs < 0.95*bound || math.Abs(mean) > 0.05*bound || math.Abs(std-bound/math.Sqrt(3)) > 0.05*bound {
		t.Errorf("mam_adapter down: mean %g std %g max %g, want U(±%g)", mean, std, maxAbs, bound)
	}
	for name, v := range map[string][]float32{"down bias": bd, "up": wu, "up bias": bu} {
		if _, _, m := stats(v); m != 0 {
			t.Errorf("mam_adapter %s is not zero (max %g)", name, m)
		}
	}
	wd, bd, wu, bu = bnInitialValues(BottleneckInitBERT, width, dim, seeded(4))
	for name, v := range map[string][]float32{"down": wd, "up": wu} {
		if mean, std, _ := stats(v); math.Abs(std-0.02) > 0.001 || math.Abs(mean) > 0.001 {
			t.Errorf("bert %s: mean %g std %g, want N(0, 0.02²)", name, mean, std)
		}
	}
	if _, _, m := stats(append(bd, bu...)); m != 0 {
		t.Errorf("bert biases are not zero (max %g)", m)
	}
	wd, _, wu, _ = bnInitialValues(BottleneckInitHoulsby, width, dim, seeded(5))
	for name, v := range map[string][]float32{"down": wd, "up": wu} {
		// N(0, 0.01²) truncated at two standard deviations has std 0.0088.
		if mean, std, maxAbs := stats(v); maxAbs > 0.02 || math.Abs(std-0.0088) > 0.0005 || math.Abs(mean) > 0.0005 {
			t.Errorf("houlsby %s: mean %g std %g max %g, want N(0, 0.01²) truncated to ±0.02", name, mean, std, maxAbs)
		}
	}
}

// TestBottleneckActivations checks each activation and derivative against
// values computed independently.
func TestBottleneckActivations(t *testing.T) {
	for _, c := range []struct {
		name    string
		x, f, d float64
	}{
		{"relu", -0.5, 0, 0},
		{"relu", 0.7, 0.7, 1},
		{"gelu", 1, 0.8413447460685429, 1.0833154705876864},
		{"gelu", -2, -0.04550026389635842, -0.08523180107819692},
		{"gelu_new", 1, 0.8411919906082768, 1.0829640838457826},
		{"tanh", 0.5, 0.46211715726000974, 0.7864477329659274},
		{"sigmoid", 0, 0.5, 0.25},
	} {
		act, err := lookupActivation(c.name)
		if err != nil {
			t.Fatal(err)
		}
		if f, d := act.f(c.x), act.df(c.x); math.Abs(f-c.f) > 1e-12 || math.Abs(d-c.d) > 1e-12 {
			t.Errorf("%s(%g) = %.16g, derivative %.16g; want %.16g, %.16g", c.name, c.x, f, d, c.f, c.d)
		}
	}
	// Every host derivative matches a central difference of its function.
	for name, act := range bnActivations {
		if act.kind != bnActHost {
			continue
		}
		for _, x := range []float64{-3.1, -1, -0.3, 0.2, 0.9, 2.5} {
			const h = 1e-6
			if fd := (act.f(x+h) - act.f(x-h)) / (2 * h); math.Abs(fd-act.df(x)) > 1e-8 {
				t.Errorf("%s'(%g) = %g, central difference %g", name, x, act.df(x), fd)
			}
		}
	}
}

// bnHookCase is one site of a tiny model's adapter with an input x and an
// output gradient dy.
type bnHookCase struct {
	ad   *bottleneckAdapter
	site *bnSite
	b    backend.Backend
	rows int
	x    []float32
	xBuf backend.Buffer
}

func newBnHookCase(t *testing.T, cfg BottleneckConfig) *bnHookCase {
	t.Helper()
	m := tinyModel(t, 7)
	ad := newBottleneck(t, m, cfg, 7)
	bnRandomize(t, ad, 0.6, 8)
	hc := &bnHookCase{ad: ad, site: m.Layers[1].FFNOut.(*bnSite), b: m.Backend, rows: 5}
	hc.x = randVals(seeded(9), hc.rows*m.Config.Dim, 1.5)
	hc.xBuf = loadF32(t, hc.b, hc.x, hc.rows, m.Config.Dim)
	return hc
}

// forward runs the hook on hc.x and returns its output.
func (hc *bnHookCase) forward(t *testing.T) []float32 {
	t.Helper()
	if err := hc.b.Write(hc.xBuf, 0, hc.x); err != nil {
		t.Fatal(err)
	}
	y := hc.b.Zeros(hc.rows, hc.ad.m.Config.Dim)
	defer hc.b.Free(y)
	hc.site.Forward(hc.b, y, hc.xBuf)
	return read(t, hc.b, y)
}

// reference computes the site on the host in float64.
func (hc *bnHookCase) reference(t *testing.T) []float64 {
	t.Helper()
	s, dim, w := hc.site, hc.ad.m.Config.Dim, hc.ad.width
	wd, bd, wu, bu := read(t, hc.b, s.wd), read(t, hc.b, s.bd), read(t, hc.b, s.wu), read(t, hc.b, s.bu)
	act := hc.ad.act
	y := make([]float64, hc.rows*dim)
	for r := range hc.rows {
		a := make([]float64, w)
		for j := range w {
			pre := float64(bd[j])
			for k := range dim {
				pre += float64(wd[j*dim+k]) * float64(hc.x[r*dim+k])
			}
			switch act.kind {
			case bnActIdentity:
				a[j] = pre
			case bnActSiLU:
				a[j] = pre / (1 + math.Exp(-pre))
			default:
				a[j] = act.f(pre)
			}
		}
		for o := range dim {
			up := float64(bu[o])
			for j := range w {
				up += float64(wu[o*w+j]) * a[j]
			}
			y[r*dim+o] = float64(hc.x[r*dim+o]) + hc.ad.cfg.Scaling*up
		}
	}
	return y
}

func bnAllActivations() []string {
	return []string{"swish", "silu", "relu", "gelu", "gelu_new", "tanh", "sigmoid", "linear"}
}

func TestBottleneckForwardMatchesReference(t *testing.T) {
	for _, act := range bnAllActivations() {
		t.Run(act, func(t *testing.T) {
			hc := newBnHookCase(t, BottleneckConfig{ReductionFactor: 4, NonLinearity: act, Scaling: 0.7})
			got, want := hc.forward(t), hc.reference(t)
			if d, s := maxDiff64(got, want); d > 1e-5*s {
				t.Errorf("max diff %g (scale %g)", d, s)
			}
			var moved float64
			for i := range got {
				moved = math.Max(moved, math.Abs(float64(got[i]-hc.x[i])))
			}
			if moved < 0.1 {
				t.Errorf("the adapter moves the output by at most %g", moved)
			}
		})
	}
}

// bnHookGradCheck compares the site's parameter gradients and dx with
// central differences of L = Σ dy ⊙ y, with the same dropout mask on every
// pass when training.
func bnHookGradCheck(t *testing.T, hc *bnHookCase, training bool) {
	t.Helper()
	b, ad, s := hc.b, hc.ad, hc.site
	dim := ad.m.Config.Dim
	dy := randVals(seeded(13), hc.rows*dim, 1)
	setMode := func() {
		if err := ad.SetTraining(training, seeded(99)); err != nil {
			t.Fatal(err)
		}
	}
	loss := func() float64 {
		setMode()
		y := hc.forward(t)
		var l float64
		for i := range y {
			l += float64(dy[i]) * float64(y[i])
		}
		return l
	}
	bnZeroGrads(t, ad)
	setMode()
	y := b.Zeros(hc.rows, dim)
	defer b.Free(y)
	if err := b.Write(hc.xBuf, 0, hc.x); err != nil {
		t.Fatal(err)
	}
	s.Forward(b, y, hc.xBuf)
	dyBuf := loadF32(t, b, dy, hc.rows, dim)
	dx := b.Zeros(hc.rows, dim)
	defer b.Free(dx)
	s.Backward(b, dx, dyBuf, hc.xBuf)
	if training && ad.cfg.Dropout > 0 && !s.dropped {
		t.Fatal("no dropout in training mode")
	}

	const h = 1e-2
	check := func(what string, analytic, vals []float32, set func()) {
		t.Helper()
		var worst, scale float64
		for i := range vals {
			orig := vals[i]
			vals[i] = orig + h
			set()
			up := loss()
			vals[i] = orig - h
			set()
			down := loss()
			vals[i] = orig
			set()
			fd := (up - down) / (2 * h)
			worst = math.Max(worst, math.Abs(fd-float64(analytic[i])))
			scale = math.Max(scale, math.Abs(fd))
		}
		if scale == 0 || worst > 3e-3*scale {
			t.Errorf("%s: max |finite difference - analytic| = %g, scale %g", what, worst, scale)
		}
	}
	for _, p := range []struct {
		name       string
		value, grd backend.Buffer
	}{{"down weight", s.wd, s.dwd}, {"down bias", s.bd, s.dbd}, {"up weight", s.wu, s.dwu}, {"up bias", s.bu, s.dbu}} {
		vals := read(t, b, p.value)
		check(p.name, read(t, b, p.grd), vals, func() {
			if err := b.Write(p.value, 0, vals); err != nil {
				t.Fatal(err)
			}
		})
	}
	check("dx", read(t, b, dx), hc.x, func() {})
}

func TestBottleneckHookGradients(t *testing.T) {
	for _, act := range bnAllActivations() {
		t.Run(act, func(t *testing.T) {
			bnHookGradCheck(t, newBnHookCase(t, BottleneckConfig{ReductionFactor: 4, NonLinearity: act}), true)
		})
	}
	t.Run("scaling and dropout", func(t *testing.T) {
		hc := newBnHookCase(t, BottleneckConfig{ReductionFactor: 4, NonLinearity: "gelu", Scaling: 0.5, Dropout: 0.3})
		bnHookGradCheck(t, hc, true)
		zeros := 0
		for _, v := range hc.ad.hostMsk {
			switch v {
			case 0:
				zeros++
			case float32(1 / 0.7):
			default:
				t.Fatalf("mask value %g, want 0 or 1/(1-p)", v)
			}
		}
		if frac := float64(zeros) / float64(len(hc.ad.hostMsk)); frac < 0.15 || frac > 0.45 {
			t.Errorf("dropped fraction %g, want about 0.3", frac)
		}
		if err := hc.ad.SetTraining(true, nil); err == nil {
			t.Error("training with dropout and no random source accepted")
		}
	})
	t.Run("dropout off when evaluating", func(t *testing.T) {
		hc := newBnHookCase(t, BottleneckConfig{ReductionFactor: 4, Dropout: 0.5})
		if err := hc.ad.SetTraining(false, nil); err != nil {
			t.Fatal(err)
		}
		if d, s := maxDiff64(hc.forward(t), hc.reference(t)); d > 1e-5*s {
			t.Errorf("evaluation applied dropout: diff %g", d)
		}
	})
}

// bnDerivative returns the derivative at 0 of the cubic through the four
// points (steps[k], losses[k]).
func bnDerivative(steps, losses [4]float64) float64 {
	var d float64
	for k := range 4 {
		denom, num := 1.0, 0.0
		for j := range 4 {
			if j != k {
				denom *= steps[k] - steps[j]
			}
		}
		for m := range 4 { // d/ds of Π_{j≠k} (s - s_j) at s = 0
			if m == k {
				continue
			}
			prod := 1.0
			for j := range 4 {
				if j != k && j != m {
					prod *= -steps[j]
				}
			}
			num += prod
		}
		d += losses[k] * num / denom
	}
	return d
}

// bnTinyBatch is two rows of eight tokens of the tiny model, with one
// position excluded and one down-weighted.
func bnTinyBatch() model.TokenBatch {
	const B, T = 2, 8
	tb := model.TokenBatch{B: B, T: T, IDs: make([]int32, B*T), Targets: make([]int32, B*T), Weights: make([]float32, B*T)}
	rng := seeded(21)
	for i := range tb.IDs {
		tb.IDs[i], tb.Targets[i], tb.Weights[i] = int32(rng.IntN(32)), int32(rng.IntN(32)), 1
	}
	tb.Weights[3], tb.Weights[12] = 0, 0.5
	return tb
}

// TestBottleneckModelGradients checks LossAndGrad's gradients of every
// adapter tensor against a fourth-order finite difference of BatchLoss
// through the whole model, where the gradient of layer 0's adapters passes
// through layer 1's hooks (their dx) and the attention hooks too.
func TestBottleneckModelGradients(t *testing.T) {
	for _, cfg := range []BottleneckConfig{
		{Kind: BottleneckHoulsby, ReductionFactor: 4},
		{Kind: BottleneckPfeiffer, ReductionFactor: 2, NonLinearity: "gelu", Scaling: 2},
		{Kind: BottleneckHoulsby, ReductionFactor: 8, NonLinearity: "tanh"},
	} {
		t.Run(cfg.Kind+"-"+cfg.NonLinearity, func(t *testing.T) {
			m := tinyModel(t, 3)
			ad := newBottleneck(t, m, cfg, 3)
			bnRandomize(t, ad, 0.3, 4)
			b := m.Backend
			tb := bnTinyBatch()
			bnZeroGrads(t, ad)
			loss, err := m.LossAndGrad(tb, 1)
			if err != nil {
				t.Fatal(err)
			}
			if plain, err := m.BatchLoss(tb); err != nil || plain != loss {
				t.Fatalf("BatchLoss %v (%v), LossAndGrad %v", plain, err, loss)
			}
			const rtol, atol, h = 1e-2, 1e-3, 1e-2
			rng := seeded(5)
			checked := 0
			for _, p := range ad.Params() {
				grad := read(t, b, p.Grad)
				for range 3 {
					i := rng.IntN(len(grad))
					orig := read(t, b, p.Value)[i]
					var steps, losses [4]float64
					for k, off := range []float64{-2, -1, 1, 2} {
						v := float32(float64(orig) + off*h)
						steps[k] = float64(v) - float64(orig)
						if err := b.Write(p.Value, i, []float32{v}); err != nil {
							t.Fatal(err)
						}
						if losses[k], err = m.BatchLoss(tb); err != nil {
							t.Fatal(err)
						}
					}
					if err := b.Write(p.Value, i, []float32{orig}); err != nil {
						t.Fatal(err)
					}
					numeric := bnDerivative(steps, losses)
					if diff := math.Abs(numeric - float64(grad[i])); diff > rtol*math.Abs(numeric)+atol {
						t.Errorf("%s[%d]: LossAndGrad %.6g, finite difference %.6g", p.Name, i, grad[i], numeric)
					}
					if math.Abs(numeric) > 10*atol {
						checked++
					}
				}
			}
			if total := 3 * len(ad.Params()); checked < total*2/3 {
				t.Errorf("only %d of %d sampled gradients are well above the tolerance", checked, total)
			}
			if again, _ := m.BatchLoss(tb); again != loss {
				t.Errorf("loss after the check %v, want %v", again, loss)
			}
		})
	}
}

func TestBottleneckIdentityAtInit(t *testing.T) {
	m := loadModel(t, storiesGGUF)
	base := logits(t, m, storyIDs)
	for _, kind := range []string{BottleneckHoulsby, BottleneckPfeiffer} {
		ad := newBottleneck(t, m, BottleneckConfig{Kind: kind}, 1)
		if d := relDiff(logits(t, m, storyIDs), base); d > 1e-6 {
			t.Errorf("%s: a new adapter changes the logits by %g", kind, d)
		}
		// Not vacuous: once the up-projection is non-zero, the logits move.
		bnRandomize(t, ad, 0.1, 2)
		if d := relDiff(logits(t, m, storyIDs), base); d < 1e-3 {
			t.Errorf("%s: a random adapter changes the logits by only %g", kind, d)
		}
		if err := ad.Unload(); err != nil {
			t.Fatal(err)
		}
		if d := relDiff(logits(t, m, storyIDs), base); d != 0 {
			t.Errorf("%s: after Unload the logits differ from the base by %g", kind, d)
		}
	}
}

func TestBottleneckSaveLoadRoundTrip(t *testing.T) {
	m := loadModel(t, storiesGGUF)
	base := logits(t, m, storyIDs)
	for _, cfg := range []BottleneckConfig{
		{Kind: BottleneckHoulsby, Name: "stories", InitWeights: BottleneckInitBERT},
		{Kind: BottleneckPfeiffer, ReductionFactor: 8, NonLinearity: "tanh", LeaveOut: []int{2}, Dropout: 0.1, Scaling: 1.5},
	} {
		t.Run(cfg.Kind, func(t *testing.T) {
			ad := newBottleneck(t, m, cfg, 3)
			bnRandomize(t, ad, 0.2, 4)
			want := logits(t, m, storyIDs)
			if relDiff(want, base) < 1e-3 {
				t.Fatal("the adapter does not change the logits")
			}
			dir := t.TempDir()
			if err := Save(ad, dir); err != nil {
				t.Fatal(err)
			}
			params := ad.Params()
			if err := ad.Unload(); err != nil {
				t.Fatal(err)
			}
			loaded, warnings, err := LoadAdapter(m, Dir(dir))
			if err != nil || len(warnings) > 0 {
				t.Fatalf("load: %v %q", err, warnings)
			}
			t.Cleanup(func() { loaded.Unload() })
			if loaded.PeftType() != PeftTypeBottleneck {
				t.Errorf("peft type %q", loaded.PeftType())
			}
			if d := relDiff(logits(t, m, storyIDs), want); d != 0 {
				t.Errorf("loaded adapter's logits differ by %g", d)
			}
			got := loaded.Params()
			if len(got) != len(params) {
				t.Fatalf("%d params loaded, %d saved", len(got), len(params))
			}
			for i := range got {
				if got[i].Name != params[i].Name || got[i].NoDecay != params[i].NoDecay {
					t.Errorf("param %d: %q (no decay %v), saved %q (%v)", i, got[i].Name, got[i].NoDecay, params[i].Name, params[i].NoDecay)
				}
			}
			if cfg := loaded.(*bottleneckAdapter).cfg; cfg.Dropout != ad.cfg.Dropout || cfg.Scaling != ad.cfg.Scaling || cfg.InitWeights != ad.cfg.InitWeights {
				t.Errorf("loaded config %+v, saved %+v", cfg, ad.cfg)
			}
			// The loaded adapter encodes to the same files.
			files, err := loaded.Files()
			if err != nil {
				t.Fatal(err)
			}
			again := t.TempDir()
			if err := WriteDir(again, files); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{ConfigFileName, BottleneckWeightsFileName} {
				a, _ := Dir(dir).ReadFile(name)
				b, _ := Dir(again).ReadFile(name)
				if string(a) != string(b) {
					t.Errorf("%s changed in a load and save", name)
				}
			}
		})
	}
}

// TestBottleneckTrainingLowersEvalLoss trains each kind briefly on the demo
// data and checks the held-out loss falls.
func TestBottleneckTrainingLowersEvalLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for 30 steps per kind")
	}
	for _, cfg := range []BottleneckConfig{
		{Kind: BottleneckHoulsby, ReductionFactor: 4},
		{Kind: BottleneckPfeiffer, ReductionFactor: 2, Dropout: 0.05},
	} {
		t.Run(cfg.Kind, func(t *testing.T) {
			m := loadModel(t, storiesGGUF)
			ad := newBottleneck(t, m, cfg, 1)
			trainLoader, evalLoader := bnLoaders(t, m)
			before, after := fit(t, m, ad, trainLoader, evalLoader, FitArgs{Steps: 30, LR: 1e-2, Warmup: 3, Seed: 1})
			t.Logf("%s: eval loss %.4f -> %.4f", cfg.Kind, before, after)
			if !(after < 0.9*before) {
				t.Errorf("eval loss %.4f -> %.4f: want a clear decrease", before, after)
			}
		})
	}
}

func bnLoaders(t *testing.T, m *model.Model) (trainL, evalL *data.Loader) {
	t.Helper()
	load := func(path string, shuffle bool) *data.Loader {
		ex, err := data.Load(path, m.Tokenizer, data.DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		l, err := data.NewLoader(ex, data.LoaderOptions{Batch: 4, SeqLen: 64, Pack: true, Shuffle: shuffle})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	return load("../../examples/lora/data/train.jsonl", true), load("../../examples/lora/data/eval.jsonl", false)
}
