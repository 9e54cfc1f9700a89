package peft

import (
	"math"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/model"
)

// stackedPair attaches LoRA (random A, B) and (IA)³ (random vectors) to
// v_proj and down_proj of a tiny model, in the order given: the second
// wraps the first on each layer.
func stackedPair(t *testing.T, iaFirst bool) (*model.Model, *Manager, Adapter) {
	t.Helper()
	m := tinyModel(t, 71)
	targets := TargetNames("v_proj", "down_proj")
	var mg *Manager
	addLoRA := func() {
		mg = attach(t, m, LoraConfig{R: 3, LoraAlpha: 6, TargetConfig: TargetConfig{TargetModules: targets}}, 72)
	}
	var ia Adapter
	addIA3 := func() {
		cfg := DefaultConfig[IA3Config]()
		cfg.TargetModules = targets
		var err error
		if ia, err = NewIA3(m, cfg, nil); err != nil {
			t.Fatal(err)
		}
		rng := seeded(73)
		for _, p := range ia.Params() {
			vals := randVals(rng, int(p.Value.Shape().Numel()), 0.5)
			for i := range vals {
				vals[i] += 1
			}
			if err := m.Backend.Write(p.Value, 0, vals); err != nil {
				t.Fatal(err)
			}
		}
	}
	if iaFirst {
		addIA3()
		addLoRA()
	} else {
		addLoRA()
		addIA3()
	}
	return m, mg, ia
}

// paramOf returns the named parameter of a list.
func paramOf(t *testing.T, params []model.Param, name string) model.Param {
	t.Helper()
	for _, p := range params {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no parameter %s", name)
	return model.Param{}
}

// TestStackedLayerOutput checks what a layer with LoRA and (IA)³ computes,
// against a host transcription of PEFT's nesting: the adapter added later
// sees the earlier one's output as its base layer. (IA)³ scales outputs
// (v_proj) or inputs (down_proj, a feedforward module).
func TestStackedLayerOutput(t *testing.T) {
	for _, c := range []struct {
		name    string
		iaFirst bool
	}{{"lora then ia3", false}, {"ia3 then lora", true}} {
		t.Run(c.name, func(t *testing.T) {
			m, mg, ia := stackedPair(t, c.iaFirst)
			b := m.Backend
			lp, _ := mg.Params("a")
			for _, lin := range []*model.Linear{m.Layers[1].V, m.Layers[1].Down} {
				ff := lin == m.Layers[1].Down
				const rows, r, s = 5, 3, 2.0
				x := randVals(seeded(74), rows*lin.In, 1)
				w := read(t, b, lin.Weight)
				av := read(t, b, paramOf(t, lp, tensorName(lin.Name, "lora_A")).Value)
				bv := read(t, b, paramOf(t, lp, tensorName(lin.Name, "lora_B")).Value)
				lv := read(t, b, paramOf(t, ia.Params(), vectorName(lin.Name, "ia3_l")).Value)
				// Host reference in float64.
				want := make([]float64, rows*lin.Out)
				for i := range rows {
					xi := make([]float64, lin.In) // the input the inner layers see
					xl := make([]float64, lin.In) // the input LoRA sees
					for k := range lin.In {
						xi[k], xl[k] = float64(x[i*lin.In+k]), float64(x[i*lin.In+k])
						if ff {
							xi[k] *= float64(lv[k])
							if !c.iaFirst {
								xl[k] = xi[k] // LoRA is inside the scaling
							}
						}
					}
					ax := make([]float64, r)
					for j := range r {
						for k := range lin.In {
							ax[j] += float64(av[j*lin.In+k]) * xl[k]
						}
					}
					for o := range lin.Out {
						var base, delta float64
						for k := range lin.In {
							base += float64(w[o*lin.In+k]) * xi[k]
						}
						for j := range r {
							delta += s * float64(bv[o*r+j]) * ax[j]
						}
						y := base + delta
						if !ff {
							if c.iaFirst {
								y = base*float64(lv[o]) + delta
							} else {
								y = (base + delta) * float64(lv[o])
							}
						}
						want[i*lin.Out+o] = y
					}
				}
				xb := loadF32(t, b, x, rows, lin.In)
				dst := b.Zeros(rows, lin.Out)
				lin.Forward(b, dst, xb)
				got := read(t, b, dst)
				b.Free(xb)
				b.Free(dst)
				for i := range want {
					if d := math.Abs(float64(got[i]) - want[i]); d > 1e-5*(1+math.Abs(want[i])) {
						t.Fatalf("%s[%d] = %v, want %v", lin.Name, i, got[i], want[i])
					}
				}
			}
		})
	}
}

// TestStackedLayerGradients checks a stacked layer's Backward entry by
// entry against central differences of its Forward: the input gradient
// and every LoRA and (IA)³ parameter gradient. The output is linear in
// each single entry, so the difference quotient is exact up to float32
// rounding.
func TestStackedLayerGradients(t *testing.T) {
	for _, c := range []struct {
		name    string
		iaFirst bool
	}{{"lora then ia3", false}, {"ia3 then lora", true}} {
		t.Run(c.name, func(t *testing.T) {
			m, mg, ia := stackedPair(t, c.iaFirst)
			b := m.Backend
			lp, _ := mg.Params("a")
			params := append(lp, ia.Params()...)
			for _, lin := range []*model.Linear{m.Layers[0].V, m.Layers[0].Down} {
				const rows = 4
				x := loadF32(t, b, randVals(seeded(75), rows*lin.In, 1), rows, lin.In)
				g := randVals(seeded(76), rows*lin.Out, 1)
				dy := loadF32(t, b, g, rows, lin.Out)
				y := b.Zeros(rows, lin.Out)
				loss := func() float64 {
					lin.Forward(b, y, x)
					var l float64
					for i, v := range read(t, b, y) {
						l += float64(v) * float64(g[i])
					}
					return l
				}
				var mine []model.Param
				for _, p := range params {
					if strings.Contains(p.Name, "."+lin.Name+".") {
						mine = append(mine, p)
						if err := b.Write(p.Grad, 0, make([]float32, p.Grad.Shape().Numel())); err != nil {
							t.Fatal(err)
						}
					}
				}
				if len(mine) != 3 {
					t.Fatalf("%s: %d parameters, want lora_A, lora_B and ia3_l", lin.Name, len(mine))
				}
				dx := b.Zeros(rows, lin.In)
				loss()
				lin.Backward(b, dx, dy, x)
				check := func(name string, buf backend.Buffer, analytic []float32) {
					vals := read(t, b, buf)
					var scale float64
					for _, a := range analytic {
						scale = max(scale, math.Abs(float64(a)))
					}
					for i := range vals {
						const h = 1e-2
						set := func(v float32) {
							if err := b.Write(buf, i, []float32{v}); err != nil {
								t.Fatal(err)
							}
						}
						set(vals[i] + h)
						up := loss()
						set(vals[i] - h)
						down := loss()
						set(vals[i])
						numeric := (up - down) / (2 * h)
						if d := math.Abs(numeric - float64(analytic[i])); d > 1e-3*scale {
							t.Errorf("%s[%d]: Backward gives %v, finite difference %v", name, i, analytic[i], numeric)
							return
						}
					}
				}
				for _, p := range mine {
					check(p.Name, p.Value, read(t, b, p.Grad))
				}
				check(lin.Name+" input", x, read(t, b, dx))
				for _, buf := range []backend.Buffer{x, dy, y, dx} {
					b.Free(buf)
				}
			}
		})
	}
}

// TestStackedMergeOrder merges and unmerges LoRA and (IA)³ on the same
// layers: innermost first, outermost first back, anything else refused
// with nothing changed.
func TestStackedMergeOrder(t *testing.T) {
	m, mg, ia := stackedPair(t, false)
	adapted := logits(t, m, tinyIDs)
	wantErr := func(what string, err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want one containing %q", what, err, want)
		}
		if d := relDiff(logits(t, m, tinyIDs), adapted); d > 1e-5 {
			t.Errorf("%s: the logits moved by %g", what, d)
		}
	}
	wantErr("ia3 merged over unmerged lora", ia.Merge(), "the LoRA adapter beneath this IA3 adapter is not merged")
	if err := mg.Merge(); err != nil {
		t.Fatal(err)
	}
	if err := ia.Merge(); err != nil {
		t.Fatal(err)
	}
	if d := relDiff(logits(t, m, tinyIDs), adapted); d > 1e-5 {
		t.Errorf("merged logits differ by %g", d)
	}
	wantErr("lora unmerged under merged ia3", mg.Unmerge(), "while the IA3 adapter added after it, on the same layer, is merged")
	lora, err := mg.AsAdapter("a")
	if err != nil {
		t.Fatal(err)
	}
	wantErr("lora unloaded under merged ia3", lora.Unload(), "while the IA3 adapter added after it, on the same layer, is merged")
	if err := mg.AddAdapter("b", LoraConfig{R: 2, LoraAlpha: 2, TargetConfig: TargetConfig{TargetModules: TargetNames("v_proj")}}, seeded(1)); err == nil ||
		!strings.Contains(err.Error(), "cannot add to this LoRA adapter while the IA3 adapter") {
		t.Errorf("a LoRA adapter added beneath a merged IA3 one: %v", err)
	}
	// Outermost first: IA3 out (unmerged and unloaded), then LoRA.
	if err := ia.Unload(); err != nil {
		t.Fatal(err)
	}
	if err := mg.Unmerge(); err != nil {
		t.Fatal(err)
	}
	if err := mg.Unload(); err != nil {
		t.Fatal(err)
	}
	fresh := tinyModel(t, 71)
	if d := relDiff(logits(t, m, tinyIDs), logits(t, fresh, tinyIDs)); d > 1e-6 {
		t.Errorf("after unloading both the logits differ from the base by %g", d)
	}
	for _, lin := range m.Linears() {
		if len(lin.Hooks()) > 0 {
			t.Errorf("%s still has hooks", lin.Name)
		}
	}
}

// TestStackedUnloadInner unloads the inner adapter of a stacked layer
// while the outer one stays: the outer then wraps the base, and the model
// computes what it computes with the outer adapter alone.
func TestStackedUnloadInner(t *testing.T) {
	m, mg, ia := stackedPair(t, false)
	if err := mg.Unload(); err != nil {
		t.Fatal(err)
	}
	alone := tinyModel(t, 71)
	cfg := DefaultConfig[IA3Config]()
	cfg.TargetModules = TargetNames("v_proj", "down_proj")
	ia2, err := NewIA3(alone, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range ia.Params() {
		if err := alone.Backend.Write(ia2.Params()[i].Value, 0, read(t, m.Backend, p.Value)); err != nil {
			t.Fatal(err)
		}
	}
	if d := relDiff(logits(t, m, tinyIDs), logits(t, alone, tinyIDs)); d != 0 {
		t.Errorf("IA3 left alone differs from IA3 attached alone by %g", d)
	}
	// And the other way round: the outer unloaded, the inner stays.
	m2, mg2, ia3 := stackedPair(t, false)
	if err := ia3.Unload(); err != nil {
		t.Fatal(err)
	}
	loraOnly := tinyModel(t, 71)
	mg3 := attach(t, loraOnly, LoraConfig{R: 3, LoraAlpha: 6, TargetConfig: TargetConfig{TargetModules: TargetNames("v_proj", "down_proj")}}, 72)
	if d := relDiff(logits(t, m2, tinyIDs), logits(t, loraOnly, tinyIDs)); d != 0 {
		t.Errorf("LoRA left alone differs from LoRA attached alone by %g", d)
	}
	_, _ = mg2, mg3
}

// TestStackedDoRAAndPiSSARefused: DoRA cannot wrap another adapter and
// PiSSA cannot replace a weight another adapter uses; nothing is
// installed.
func TestStackedDoRAAndPiSSARefused(t *testing.T) {
	m := tinyModel(t, 81)
	cfg := DefaultConfig[IA3Config]()
	cfg.TargetModules = TargetNames("v_proj")
	if _, err := NewIA3(m, cfg, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cfg  LoraConfig
		want string
	}{
		{LoraConfig{R: 2, LoraAlpha: 2, UseDoRA: true, TargetConfig: TargetConfig{TargetModules: TargetNames("v_proj")}}, "DoRA needs the plain projection beneath it, but the layer's IA3 adapter was added before it"},
		{LoraConfig{R: 2, LoraAlpha: 2, InitLoraWeights: InitPiSSA, TargetConfig: TargetConfig{TargetModules: TargetNames("v_proj")}}, `init_lora_weights "pissa" changes the base weight, which the layer's IA3 adapter uses too`},
	} {
		mg := AttachLoRA(m)
		err := mg.AddAdapter("x", c.cfg, seeded(2))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err = %v, want one containing %q", err, c.want)
		}
		if n := len(m.Layers[0].V.Hooks()); n != 1 {
			t.Errorf("a refused adapter left %d hooks on v_proj", n)
		}
	}
}
