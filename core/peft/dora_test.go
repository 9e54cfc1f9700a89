package peft

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/tensor"
)

// doraCase is one DoRA adapter on one layer of the tiny model, with
// magnitudes moved away from the norms so that f = m/‖·‖ is not 1.
type doraCase struct {
	*layerCase
	w *loraWeights
}

func newDoRACase(t *testing.T, dropout float64, bias bool) *doraCase {
	t.Helper()
	lc := newLayerCase(t, map[string]LoraConfig{"d": {R: 3, LoraAlpha: 6, LoraDropout: dropout, UseDoRA: true}}, "d")
	if bias {
		lc.lin.Bias = loadF32(t, lc.b, randVals(seeded(21), lc.lin.Out, 1), lc.lin.Out)
	}
	w := lc.mg.layerOf(lc.lin).weights["d"]
	mag := read(t, lc.b, w.dora.m)
	rng := seeded(22)
	for i := range mag {
		mag[i] *= float32(0.5 + rng.Float64())
	}
	if err := lc.b.Write(w.dora.m, 0, mag); err != nil {
		t.Fatal(err)
	}
	return &doraCase{lc, w}
}

// doraParams are the values the reference is computed from.
type doraParams struct {
	w, a, b, m, x, bias []float64
}

func (dc *doraCase) params(t *testing.T) doraParams {
	t.Helper()
	p := doraParams{
		w: toFloat64(read(t, dc.b, dc.lin.Weight)),
		a: toFloat64(read(t, dc.b, dc.w.A)),
		b: toFloat64(read(t, dc.b, dc.w.B)),
		m: toFloat64(read(t, dc.b, dc.w.dora.m)),
		x: toFloat64(dc.x),
	}
	if dc.lin.Bias != nil {
		p.bias = toFloat64(read(t, dc.b, dc.lin.Bias))
	}
	return p
}

// norms returns ‖W + s·B·A‖ per row in float64.
func (dc *doraCase) norms(p doraParams) []float64 {
	in, out, r, s := dc.lin.In, dc.lin.Out, dc.w.r, dc.w.scaling
	n := make([]float64, out)
	for o := range out {
		var ss float64
		for k := range in {
			v := p.w[o*in+k]
			for j := range r {
				v += s * p.b[o*r+j] * p.a[j*in+k]
			}
			ss += v * v
		}
		n[o] = math.Sqrt(ss)
	}
	return n
}

// reference is PEFT's DoRA layer in float64 with the norms n held fixed
// (detached) and dropout masks drawn from rng in the hook's order.
func (dc *doraCase) reference(p doraParams, n []float64, rng *rand.Rand) []float64 {
	in, out, r, s, rows := dc.lin.In, dc.lin.Out, dc.w.r, dc.w.scaling, dc.rows
	xd := append([]float64(nil), p.x...)
	dropped := rng != nil && dc.w.dropout > 0
	if dropped {
		keep := float64(float32(1 / (1 - dc.w.dropout)))
		for i := range xd {
			if rng.Float64() < dc.w.dropout {
				xd[i] = 0
			} else {
				xd[i] *= keep
			}
		}
	}
	y := make([]float64, rows*out)
	for i := range rows {
		ax := make([]float64, r)
		for j := range r {
			for k := range in {
				ax[j] += xd[i*in+k] * p.a[j*in+k]
			}
		}
		for o := range out {
			var base, baseD, lora float64
			for k := range in {
				base += p.x[i*in+k] * p.w[o*in+k]
				baseD += xd[i*in+k] * p.w[o*in+k]
			}
			for j := range r {
				lora += s * ax[j] * p.b[o*r+j]
			}
			f := p.m[o] / n[o]
			v := base + (f-1)*baseD + f*lora
			if p.bias != nil {
				v += p.bias[o]
			}
			y[i*out+o] = v
		}
	}
	return y
}

func TestDoRAForwardMatchesReference(t *testing.T) {
	for _, c := range []struct {
		name     string
		dropout  float64
		training bool
		bias     bool
	}{
		{"plain", 0, false, false},
		{"bias", 0, false, true},
		{"dropout inference", 0.4, false, true},
		{"dropout training", 0.4, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dc := newDoRACase(t, c.dropout, c.bias)
			var rng *rand.Rand
			if c.training {
				rng = seeded(31)
			}
			if err := dc.mg.SetTraining(c.training, rng); err != nil {
				t.Fatal(err)
			}
			got := dc.forward(t)
			p := dc.params(t)
			var refRng *rand.Rand
			if c.training {
				refRng = seeded(31)
			}
			want := dc.reference(p, dc.norms(p), refRng)
			if d, s := maxDiff64(got, want); d > 2e-5*s {
				t.Errorf("max diff %g (scale %g)", d, s)
			}
			// The magnitudes matter: the output is not plain LoRA's.
			lora := dc.layerCase.reference(t, nil)
			if d, s := maxDiff64(got, lora); !c.training && d < 1e-3*s {
				t.Error("DoRA output equals LoRA's")
			}
		})
	}
}

// TestDoRAGradients checks dA, dB, dm and dx against central differences
// of the float64 reference with the norms held at their unperturbed values,
// which is the gradient PEFT computes (the norm is detached).
func TestDoRAGradients(t *testing.T) {
	for _, c := range []struct {
		name     string
		dropout  float64
		training bool
	}{
		{"no dropout", 0, true},
		{"dropout", 0.3, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dc := newDoRACase(t, c.dropout, true)
			b := dc.b
			dy := toFloat64(randVals(seeded(13), dc.rows*dc.lin.Out, 1))
			if err := dc.mg.SetTraining(c.training, seeded(99)); err != nil {
				t.Fatal(err)
			}
			y := b.Zeros(dc.rows, dc.lin.Out)
			defer b.Free(y)
			dc.lin.Forward(b, y, dc.xBuf)
			dyBuf := loadF32(t, b, toFloat32(dy), dc.rows, dc.lin.Out)
			dx := b.Zeros(dc.rows, dc.lin.In)
			defer b.Free(dx)
			dc.lin.Backward(b, dx, dyBuf, dc.xBuf)

			p := dc.params(t)
			n := dc.norms(p) // detached: fixed while perturbing
			loss := func() float64 {
				y := dc.reference(p, n, seeded(99))
				var l float64
				for i := range y {
					l += dy[i] * y[i]
				}
				return l
			}
			const h = 1e-3
			check := func(what string, analytic []float32, vals []float64) {
				t.Helper()
				var worst, scale float64
				for i := range vals {
					orig := vals[i]
					vals[i] = orig + h
					up := loss()
					vals[i] = orig - h
					down := loss()
					vals[i] = orig
					fd := (up - down) / (2 * h)
					worst = math.Max(worst, math.Abs(fd-float64(analytic[i])))
					scale = math.Max(scale, math.Abs(fd))
				}
				if scale == 0 || worst > 1e-4*scale {
					t.Errorf("%s: max |finite difference − analytic| = %g, scale %g", what, worst, scale)
				}
			}
			check("dA", read(t, b, dc.w.dA), p.a)
			check("dB", read(t, b, dc.w.dB), p.b)
			check("dm", read(t, b, dc.w.dora.dm), p.m)
			check("dx", read(t, b, dx), p.x)
		})
	}
}

// TestDoRAMagnitudeInit checks m = ‖W‖_row at PEFT's default init (B = 0),
// on a quantized model whose weights are dequantized for the norm.
func TestDoRAMagnitudeInit(t *testing.T) {
	m := loadModel(t, storiesQ8)
	mg := AttachLoRA(m)
	if err := mg.AddAdapter("d", LoraConfig{R: 4, LoraAlpha: 8, UseDoRA: true, TargetConfig: TargetConfig{TargetModules: TargetNames("q_proj", "down_proj")}}, seeded(1)); err != nil {
		t.Fatal(err)
	}
	quantized := 0
	for _, h := range mg.layers {
		w := h.weights["d"]
		if h.lin.Weight.DType().Quantized() {
			quantized++
		}
		wv := read(t, m.Backend, h.lin.Weight)
		got := read(t, m.Backend, w.dora.m)
		for o := range h.lin.Out {
			var ss float64
			for _, v := range wv[o*h.lin.In : (o+1)*h.lin.In] {
				ss += float64(v) * float64(v)
			}
			if want := math.Sqrt(ss); math.Abs(float64(got[o])-want) > 1e-5*want {
				t.Fatalf("%s: m[%d] = %g, want ‖W_row‖ = %g", h.lin.Name, o, got[o], want)
			}
		}
	}
	if quantized == 0 {
		t.Error("no quantized weight among the targets: the test checks nothing about dequantizing")
	}
	// With B = 0 and m = ‖W‖ the adapter does not change the model yet.
	var base []float32
	mg.WithDisabled(func() error { base = logits(t, m, storyIDs); return nil })
	if d := relDiff(logits(t, m, storyIDs), base); d > 1e-5 {
		t.Errorf("fresh DoRA adapter changes the logits by %g", d)
	}
}

// perturbDoRA moves every parameter of a DoRA adapter so that tests see a
// trained-looking adapter.
func perturbDoRA(t *testing.T, mg *Manager, name string, seed uint64) {
	t.Helper()
	params, err := mg.Params(name)
	if err != nil {
		t.Fatal(err)
	}
	rng := seeded(seed)
	for _, p := range params {
		v := read(t, mg.b, p.Value)
		for i := range v {
			v[i] += float32(0.05 * rng.NormFloat64())
		}
		if err := mg.b.Write(p.Value, 0, v); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDoRASaveLoadRoundTrip(t *testing.T) {
	for _, path := range []string{storiesGGUF, storiesQ8} {
		t.Run(path, func(t *testing.T) {
			m := loadModel(t, path)
			mg := AttachLoRA(m)
			cfg := LoraConfig{R: 4, LoraAlpha: 8, UseDoRA: true, TargetConfig: TargetConfig{TargetModules: TargetNames("q_proj", "k_proj", "v_proj", "up_proj")}}
			if err := mg.AddAdapter("d", cfg, seeded(3)); err != nil {
				t.Fatal(err)
			}
			perturbDoRA(t, mg, "d", 4)
			want := logits(t, m, storyIDs)
			files, err := mg.Files("d")
			if err != nil {
				t.Fatal(err)
			}
			// PEFT's keys and shapes.
			params, _ := mg.Params("d")
			if got := params[2].Name; got != "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector" {
				t.Errorf("magnitude key %q", got)
			}
			if s := params[2].Value.Shape(); !s.Equal(tensor.Shape{m.Config.Dim}) {
				t.Errorf("magnitude shape %v", s)
			}
			fresh := loadModel(t, path)
			a, _, err := LoadAdapter(fresh, InMemory("mem", files))
			if err != nil {
				t.Fatal(err)
			}
			if d := relDiff(logits(t, fresh, storyIDs), want); d != 0 {
				t.Errorf("reloaded DoRA adapter: logits differ by %g", d)
			}
			// Files written after a reload are the same bytes.
			again, err := a.Files()
			if err != nil {
				t.Fatal(err)
			}
			if string(again[WeightsFileName]) != string(files[WeightsFileName]) {
				t.Error("re-encoded weights differ")
			}
		})
	}
}

func TestDoRAMerge(t *testing.T) {
	for _, path := range []string{storiesGGUF, storiesQ8} {
		t.Run(path, func(t *testing.T) {
			m := loadModel(t, path)
			base := logits(t, m, storyIDs)
			mg := AttachLoRA(m)
			if err := mg.AddAdapter("d", LoraConfig{R: 4, LoraAlpha: 8, UseDoRA: true, TargetConfig: TargetConfig{TargetModules: TargetAllLinear()}}, seeded(5)); err != nil {
				t.Fatal(err)
			}
			perturbDoRA(t, mg, "d", 6)
			unmerged := logits(t, m, storyIDs)
			if relDiff(unmerged, base) < 1e-3 {
				t.Fatal("the perturbed adapter does not change the logits")
			}
			if err := mg.Merge(); err != nil {
				t.Fatal(err)
			}
			if d := relDiff(logits(t, m, storyIDs), unmerged); d > 1e-5 {
				t.Errorf("merged logits differ from unmerged by %g relative", d)
			}
			if err := mg.Unmerge(); err != nil {
				t.Fatal(err)
			}
			if d := relDiff(logits(t, m, storyIDs), unmerged); d != 0 {
				t.Errorf("after Unmerge logits differ by %g", d)
			}
			if err := mg.MergeAndUnload(); err != nil {
				t.Fatal(err)
			}
			if d := relDiff(logits(t, m, storyIDs), unmerged); d > 1e-5 {
				t.Errorf("after MergeAndUnload logits differ by %g", d)
			}
		})
	}
}

func TestDoRATrainingLowersEvalLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("training in -short mode") // before loading the model
	}
	m := loadModel(t, storiesGGUF)
	mg := AttachLoRA(m)
	if err := mg.AddAdapter("d", LoraConfig{R: 4, LoraAlpha: 8, UseDoRA: true, TargetConfig: TargetConfig{TargetModules: TargetAllLinear()}}, seeded(7)); err != nil {
		t.Fatal(err)
	}
	before, after := trainEval(t, m, mg, "d", 3e-3, 40)
	if !(after < before-0.01) {
		t.Errorf("eval loss %g before, %g after 40 DoRA steps", before, after)
	}
	// The magnitudes were trained.
	w := mg.layers[0].weights["d"]
	if _, _, g := stats(read(t, m.Backend, w.dora.dm)); g == 0 {
		t.Error("the magnitude received no gradient")
	}
}

// trainEval trains adapter name of mg for steps steps on the example data
// and returns the held-out loss before and after.
func trainEval(t *testing.T, m *model.Model, mg *Manager, name string, lr float64, steps int) (before, after float64) {
	t.Helper()
	if testing.Short() {
		t.Skip("training in -short mode")
	}
	load := func(file string, shuffle bool) *data.Loader {
		ex, err := data.Load("../../examples/lora/data/"+file, m.Tokenizer, data.DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		l, err := data.NewLoader(ex, data.LoaderOptions{Batch: 4, SeqLen: 32, Pack: true, Shuffle: shuffle})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	a, err := mg.AsAdapter(name)
	if err != nil {
		t.Fatal(err)
	}
	return fit(t, m, a, load("train.jsonl", true), load("eval.jsonl", false), FitArgs{LR: lr, Steps: steps, Seed: 1, MaxEval: 4})
}
