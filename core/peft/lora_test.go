package peft

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/model"
)

func stats(v []float32) (mean, std, maxAbs float64) {
	for _, x := range v {
		mean += float64(x)
		maxAbs = math.Max(maxAbs, math.Abs(float64(x)))
	}
	mean /= float64(len(v))
	for _, x := range v {
		std += (float64(x) - mean) * (float64(x) - mean)
	}
	return mean, math.Sqrt(std / float64(len(v))), maxAbs
}

func TestInitialValues(t *testing.T) {
	const r, in, out = 8, 256, 512
	rng := seeded(3)
	bound := 1 / math.Sqrt(in) // kaiming_uniform(a=√5)
	a, b := initialValues(InitDefault, r, in, out, rng)
	mean, std, maxAbs := stats(a)
	if maxAbs > bound || maxAbs < 0.95*bound || math.Abs(mean) > 0.01*bound*10 || math.Abs(std-bound/math.Sqrt(3)) > 0.05*bound {
		t.Errorf("default A: mean %g std %g max %g, want U(-%g, %g)", mean, std, maxAbs, bound, bound)
	}
	if _, _, m := stats(b); m != 0 {
		t.Errorf("default B is not zero (max %g)", m)
	}
	a, b = initialValues(InitGaussian, r, in, out, rng)
	if mean, std, _ := stats(a); math.Abs(std-1.0/r) > 0.05/r || math.Abs(mean) > 0.05/r {
		t.Errorf("gaussian A: mean %g std %g, want N(0, (1/%d)²)", mean, std, r)
	}
	if _, _, m := stats(b); m != 0 {
		t.Errorf("gaussian B is not zero (max %g)", m)
	}
	_, b = initialValues(InitRandom, r, in, out, rng)
	bBound := 1 / math.Sqrt(r)
	if _, std, m := stats(b); m > bBound || m < 0.95*bBound || math.Abs(std-bBound/math.Sqrt(3)) > 0.05*bBound {
		t.Errorf("random B: std %g max %g, want U(-%g, %g)", std, m, bBound, bBound)
	}
}

// layerCase is one Linear of the tiny model with adapters on it, an input
// x and an output gradient dy.
type layerCase struct {
	m    *model.Model
	mg   *Manager
	b    backend.Backend
	lin  *model.Linear
	rows int
	x    []float32
	xBuf backend.Buffer
}

func newLayerCase(t *testing.T, adapters map[string]LoraConfig, active ...string) *layerCase {
	t.Helper()
	m := tinyModel(t, 5)
	lc := &layerCase{m: m, mg: AttachLoRA(m), b: m.Backend, lin: m.Layers[0].Up, rows: 5}
	for _, name := range active {
		cfg := adapters[name]
		cfg.TargetModules = TargetNames("model.layers.0.mlp.up_proj")
		cfg.InitLoraWeights = InitRandom
		if err := lc.mg.AddAdapter(name, cfg, seeded(uint64(name[0]))); err != nil {
			t.Fatal(err)
		}
	}
	if err := lc.mg.SetActive(active...); err != nil {
		t.Fatal(err)
	}
	lc.x = randVals(seeded(11), lc.rows*lc.lin.In, 1)
	lc.xBuf = loadF32(t, lc.b, lc.x, lc.rows, lc.lin.In)
	return lc
}

func (lc *layerCase) forward(t *testing.T) []float32 {
	t.Helper()
	if err := lc.b.Write(lc.xBuf, 0, lc.x); err != nil {
		t.Fatal(err)
	}
	y := lc.b.Zeros(lc.rows, lc.lin.Out)
	defer lc.b.Free(y)
	lc.lin.Forward(lc.b, y, lc.xBuf)
	return read(t, lc.b, y)
}

// reference computes the layer on the host in float64: x Wᵀ plus each
// adapter's scaling · ((x ⊙ mask) Aᵀ) Bᵀ, drawing masks from rng in the
// order the hook does when rng is non-nil.
func (lc *layerCase) reference(t *testing.T, rng *rand.Rand) []float64 {
	t.Helper()
	in, out, rows := lc.lin.In, lc.lin.Out, lc.rows
	w := read(t, lc.b, lc.lin.Weight)
	y := make([]float64, rows*out)
	for i := range rows {
		for o := range out {
			for k := range in {
				y[i*out+o] += float64(lc.x[i*in+k]) * float64(w[o*in+k])
			}
		}
	}
	for _, name := range lc.mg.Active() {
		lw := lc.mg.layerOf(lc.lin).weights[name]
		a, b := read(t, lc.b, lw.A), read(t, lc.b, lw.B)
		xd := make([]float64, rows*in)
		for i := range xd {
			xd[i] = float64(lc.x[i])
			if rng != nil && lw.dropout > 0 {
				if rng.Float64() < lw.dropout {
					xd[i] = 0
				} else {
					xd[i] *= float64(float32(1 / (1 - lw.dropout)))
				}
			}
		}
		for i := range rows {
			ax := make([]float64, lw.r)
			for j := range lw.r {
				for k := range in {
					ax[j] += xd[i*in+k] * float64(a[j*in+k])
				}
			}
			for o := range out {
				var s float64
				for j := range lw.r {
					s += ax[j] * float64(b[o*lw.r+j])
				}
				y[i*out+o] += lw.scaling * s
			}
		}
	}
	return y
}

func maxDiff64(got []float32, want []float64) (diff, scale float64) {
	for i := range got {
		diff = math.Max(diff, math.Abs(float64(got[i])-want[i]))
		scale = math.Max(scale, math.Abs(want[i]))
	}
	return diff, scale
}

func TestForwardMatchesReference(t *testing.T) {
	cfgs := map[string]LoraConfig{
		"one": {R: 4, LoraAlpha: 8},
		"two": {R: 3, LoraAlpha: 5, UseRSLoRA: true},
	}
	lc := newLayerCase(t, cfgs, "one", "two")
	for _, active := range [][]string{{"one"}, {"two"}, {"one", "two"}, {"two", "one"}} {
		if err := lc.mg.SetActive(active...); err != nil {
			t.Fatal(err)
		}
		got := lc.forward(t)
		want := lc.reference(t, nil)
		if d, s := maxDiff64(got, want); d > 1e-5*s {
			t.Errorf("active %q: max diff %g (scale %g)", active, d, s)
		}
	}
	// The adapters change the output: the check above is not vacuous.
	var base []float32
	lc.mg.WithDisabled(func() error { base = lc.forward(t); return nil })
	if relDiff(lc.forward(t), base) < 1e-3 {
		t.Error("adapters do not change the layer's output")
	}
}

func TestDropout(t *testing.T) {
	cfgs := map[string]LoraConfig{
		"one": {R: 4, LoraAlpha: 8, LoraDropout: 0.5},
		"two": {R: 2, LoraAlpha: 2, LoraDropout: 0.25},
	}
	lc := newLayerCase(t, cfgs, "one", "two")
	// Not training: no dropout.
	if d, s := maxDiff64(lc.forward(t), lc.reference(t, nil)); d > 1e-5*s {
		t.Errorf("inference applied dropout: diff %g", d)
	}
	// Training: the masks come from the caller's generator, in order.
	if err := lc.mg.SetTraining(true, seeded(42)); err != nil {
		t.Fatal(err)
	}
	got := lc.forward(t)
	if d, s := maxDiff64(got, lc.reference(t, seeded(42))); d > 1e-5*s {
		t.Errorf("training forward differs from the reference with the same masks: diff %g", d)
	}
	if d, s := maxDiff64(got, lc.reference(t, nil)); d < 1e-3*s {
		t.Error("training forward equals the forward without dropout")
	}
	// Mask statistics of adapter "one": about half zero, the rest 2.
	lw := lc.mg.layerOf(lc.lin).weights["one"]
	zeros := 0
	for _, v := range lw.hostMsk {
		switch v {
		case 0:
			zeros++
		case 2:
		default:
			t.Fatalf("mask value %g, want 0 or 1/(1-p) = 2", v)
		}
	}
	if frac := float64(zeros) / float64(len(lw.hostMsk)); frac < 0.35 || frac > 0.65 {
		t.Errorf("dropped fraction %g, want about 0.5", frac)
	}
	if err := lc.mg.SetTraining(true, nil); err == nil {
		t.Error("training without a random source accepted")
	}
}

// gradCheck compares the hook's dA, dB (every adapter) and dx with central
// differences of L = Σ dy ⊙ y, computed in float64 from the outputs.
func gradCheck(t *testing.T, lc *layerCase, training bool) {
	t.Helper()
	b := lc.b
	dy := randVals(seeded(13), lc.rows*lc.lin.Out, 1)
	reset := func() {
		if err := lc.mg.SetTraining(training, seeded(99)); err != nil { // the same masks every pass
			t.Fatal(err)
		}
	}
	loss := func() float64 {
		reset()
		y := lc.forward(t)
		var l float64
		for i := range y {
			l += float64(dy[i]) * float64(y[i])
		}
		return l
	}
	// Analytic gradients.
	if err := lc.mg.ZeroGrad(); err != nil {
		t.Fatal(err)
	}
	reset()
	y := b.Zeros(lc.rows, lc.lin.Out)
	defer b.Free(y)
	lc.lin.Forward(b, y, lc.xBuf)
	dyBuf := loadF32(t, b, dy, lc.rows, lc.lin.Out)
	dx := b.Zeros(lc.rows, lc.lin.In)
	defer b.Free(dx)
	lc.lin.Backward(b, dx, dyBuf, lc.xBuf)

	const h = 1e-2
	check := func(what string, analytic []float32, vals []float32, set func()) {
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
		if scale == 0 || worst > 2e-3*scale {
			t.Errorf("%s: max |finite difference - analytic| = %g, scale %g", what, worst, scale)
		}
	}
	for _, name := range lc.mg.Active() {
		lw := lc.mg.layerOf(lc.lin).weights[name]
		a, bv := read(t, b, lw.A), read(t, b, lw.B)
		check(name+" dA", read(t, b, lw.dA), a, func() { b.Write(lw.A, 0, a) })
		check(name+" dB", read(t, b, lw.dB), bv, func() { b.Write(lw.B, 0, bv) })
	}
	check("dx", read(t, b, dx), lc.x, func() {})
}

func TestGradients(t *testing.T) {
	for _, c := range []struct {
		name     string
		dropout  float64
		training bool
	}{
		{"no dropout", 0, true},
		{"dropout inference", 0.3, false},
		{"dropout fixed mask", 0.3, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfgs := map[string]LoraConfig{
				"one": {R: 4, LoraAlpha: 8, LoraDropout: c.dropout},
				"two": {R: 2, LoraAlpha: 3, LoraDropout: c.dropout / 2},
			}
			gradCheck(t, newLayerCase(t, cfgs, "one", "two"), c.training)
		})
	}
}

// TestGradientsAccumulate checks that Backward adds to dA and dB rather
// than overwriting them, and that dx gets the base term too.
func TestGradientsAccumulate(t *testing.T) {
	lc := newLayerCase(t, map[string]LoraConfig{"one": {R: 4, LoraAlpha: 8}}, "one")
	b := lc.b
	lw := lc.mg.layerOf(lc.lin).weights["one"]
	dyBuf := loadF32(t, b, randVals(seeded(4), lc.rows*lc.lin.Out, 1), lc.rows, lc.lin.Out)
	y := b.Zeros(lc.rows, lc.lin.Out)
	lc.lin.Forward(b, y, lc.xBuf)
	lc.lin.Backward(b, nil, dyBuf, lc.xBuf) // dx nil: parameter gradients only
	once := read(t, b, lw.dA)
	lc.lin.Backward(b, nil, dyBuf, lc.xBuf)
	twice := read(t, b, lw.dA)
	for i := range once {
		if math.Abs(float64(twice[i]-2*once[i])) > 1e-5*math.Abs(float64(once[i]))+1e-7 {
			t.Fatalf("dA[%d]: %g after two passes, %g after one", i, twice[i], once[i])
		}
	}
	if err := lc.mg.ZeroGrad("one"); err != nil {
		t.Fatal(err)
	}
	if _, _, m := stats(read(t, b, lw.dA)); m != 0 {
		t.Error("ZeroGrad left a non-zero gradient")
	}
}
