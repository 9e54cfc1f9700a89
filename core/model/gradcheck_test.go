package model_test

// This is an external test package because it attaches LoRA adapters, and
// core/peft imports core/model.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
)

const gradCheckModel = "../../models/stories260K/stories260K.gguf"

// gradCheckBatch is two rows of twelve random tokens predicting the next
// token, with a few positions excluded (weight 0, target an ignore marker)
// and a few down-weighted, so the weights reach the gradient.
func gradCheckBatch(vocab int, rng *rand.Rand) model.TokenBatch {
	const B, T = 2, 12
	tb := model.TokenBatch{B: B, T: T, IDs: make([]int32, B*T), Targets: make([]int32, B*T), Weights: make([]float32, B*T)}
	for b := range B {
		seq := make([]int32, T+1)
		for i := range seq {
			seq[i] = int32(3 + rng.IntN(vocab-3)) // skip the special tokens
		}
		copy(tb.IDs[b*T:], seq[:T])
		copy(tb.Targets[b*T:], seq[1:])
	}
	for i := range tb.Weights {
		tb.Weights[i] = 1
	}
	for _, i := range []int{0, 1, 2, 11, 22, 23} { // a prompt and padding
		tb.Weights[i], tb.Targets[i] = 0, -100
	}
	tb.Weights[5], tb.Weights[17] = 0.5, 2
	return tb
}

// readAll copies a whole buffer to the host.
func readAll(t *testing.T, b backend.Backend, buf backend.Buffer) []float32 {
	t.Helper()
	out := make([]float32, buf.Shape().Numel())
	if err := b.Read(buf, 0, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// baseWeights snapshots every frozen tensor of the model.
func baseWeights(t *testing.T, m *model.Model) map[string][]float32 {
	t.Helper()
	out := map[string][]float32{
		"embed":    readAll(t, m.Backend, m.Embed),
		"out_norm": readAll(t, m.Backend, m.OutNorm),
		"lm_head":  readAll(t, m.Backend, m.Output.Weight),
	}
	for i, l := range m.Layers {
		for name, n := range map[string]backend.Buffer{"attn_norm": l.AttnNorm, "ffn_norm": l.FFNNorm,
			"q_norm": l.QNorm, "k_norm": l.KNorm, "post_attn_norm": l.PostAttnNorm, "post_ffn_norm": l.PostFFNNorm} {
			if n != nil {
				out[fmt.Sprintf("layers.%d.%s", i, name)] = readAll(t, m.Backend, n)
			}
		}
		for _, lin := range l.Linears() {
			out[lin.Name] = readAll(t, m.Backend, lin.Weight)
			if lin.Bias != nil {
				out[lin.Name+".bias"] = readAll(t, m.Backend, lin.Bias)
			}
		}
	}
	return out
}

// sameBits reports whether two snapshots hold bit-identical values.
func sameBits(t *testing.T, before, after map[string][]float32) {
	t.Helper()
	if len(before) != len(after) {
		t.Fatalf("%d base tensors before, %d after", len(before), len(after))
	}
	for name, b := range before {
		a := after[name]
		if len(a) != len(b) {
			t.Errorf("base weight %s: %d values before, %d after", name, len(b), len(a))
			continue
		}
		for i := range b {
			if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
				t.Errorf("base weight %s[%d] changed from %v to %v", name, i, b[i], a[i])
				break
			}
		}
	}
}

// TestLoRAGradientsMatchFiniteDifferences checks the whole training
// backward (cross-entropy with loss weights, head, norms, SwiGLU,
// attention, RoPE and the LoRA hooks of all seven projections) end to end:
// the gradient LossAndGrad gives each of a sample of LoRA parameter
// entries must match a finite difference of BatchLoss. It also checks that
// training never writes a base weight and that gradients accumulate.
//
// Step and tolerance. The forward runs in float32, so the loss (about 100
// nats here, summed in float64 from float32 logits) carries rounding noise
// of about 1e-5 that a difference quotient divides by the step h. The loss
// is also far from quadratic in some entries (layer-0 A entries move it by
// 1 nat per 0.01), so a plain central difference at h = 1e-3 is off by
// ~1e-2 absolute from noise, and at 1e-2 by several percent from
// curvature where the gradient is ~100. So the difference is the
// fourth-order stencil over ±h, ±2h (error ~h⁴), and h is chosen per entry
// so the loss moves by about 0.1 nat: 0.1/|gradient|, kept within
// [1e-3, 1e-2]. Then the noise term is at most ~1e-2 of the smallest
// gradients' scale and the truncation term is negligible; measured over
// eleven seeds the worst |difference| was 0.3 of the tolerance
// 1e-2·|numeric| + 1e-2, while a missing factor, a wrong sign or a dropped
// term (errors of 10% or more on entries that are mostly above 0.1) fails.
// Perturbed values are rounded to float32, so the derivative is fitted
// through the steps actually taken.
//
// It runs with and without activation checkpointing and with the head's
// logits in chunks of 7 rows (not dividing the batch) as well as whole.
func TestLoRAGradientsMatchFiniteDifferences(t *testing.T) {
	for _, c := range []struct {
		name           string
		checkpointing  bool
		logitChunkRows int
	}{
		{"plain", false, 0},
		{"checkpointing", true, 0},
		{"checkpointing+chunks7", true, 7},
		{"chunks7", false, 7},
	} {
		t.Run(c.name, func(t *testing.T) { checkGradients(t, c.checkpointing, c.logitChunkRows, attachLoRA) })
	}
}

// attachLoRA attaches a LoRA adapter with random A and B to all seven
// projections of every layer and returns its parameters.
func attachLoRA(t *testing.T, m *model.Model, rng *rand.Rand) []model.Param {
	t.Helper()
	mg := peft.AttachLoRA(m)
	cfg := peft.LoraConfig{
		R: 4, LoraAlpha: 8, InitLoraWeights: peft.InitRandom, // B != 0, so dA != 0 too
		TargetConfig: peft.TargetConfig{TargetModules: peft.TargetNames("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")},
	}
	if err := mg.AddAdapter("check", cfg, rng); err != nil {
		t.Fatal(err)
	}
	params, err := mg.Params("check")
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 * 7 * m.Config.Layers; len(params) != want {
		t.Fatalf("%d LoRA tensors, want %d", len(params), want)
	}
	return params
}

// TestStackedGradientsMatchFiniteDifferences runs the same check through
// layers where two adapters' hooks are stacked (see Linear.AddHook):
// LoRA on all seven projections and (IA)³ on k_proj, v_proj and down_proj
// (whose input it scales), added in either order, so that Base and
// BaseBackward run the other adapter's hook, layer 0's input gradient
// (which the model skips) included.
func TestStackedGradientsMatchFiniteDifferences(t *testing.T) {
	for _, iaFirst := range []bool{false, true} {
		name := map[bool]string{false: "lora+ia3", true: "ia3+lora"}[iaFirst]
		t.Run(name, func(t *testing.T) {
			checkGradients(t, true, 0, func(t *testing.T, m *model.Model, rng *rand.Rand) []model.Param {
				ia := func() []model.Param {
					a, err := peft.NewIA3(m, peft.DefaultConfig[peft.IA3Config](), nil)
					if err != nil {
						t.Fatal(err)
					}
					// Move the vectors off 1, so each adapter changes what
					// the other's gradient sees.
					for _, p := range a.Params() {
						vals := make([]float32, p.Value.Shape().Numel())
						for i := range vals {
							vals[i] = float32(0.5 + rng.Float64())
						}
						if err := m.Backend.Write(p.Value, 0, vals); err != nil {
							t.Fatal(err)
						}
					}
					return a.Params()
				}
				if iaFirst {
					first := ia()
					return append(first, attachLoRA(t, m, rng)...)
				}
				first := attachLoRA(t, m, rng)
				return append(first, ia()...)
			})
		})
	}
}

// TestLyCORISGradientsMatchFiniteDifferences runs the same check on LoHa
// and LoKr adapters, created from adapter_config.json documents with every
// factor drawn at random (init_weights false), so that no gradient is
// structurally zero, and a large alpha, so that most sampled gradients are
// well above the check's absolute tolerance.
func TestLyCORISGradientsMatchFiniteDifferences(t *testing.T) {
	for _, c := range []struct {
		name, config string
	}{
		{"LoHa", `{"peft_type": "LOHA", "r": 4, "alpha": 256, "init_weights": false, "target_modules": "all-linear"}`},
		{"LoKr", `{"peft_type": "LOKR", "r": 4, "alpha": 16, "init_weights": false, "target_modules": "all-linear"}`},
	} {
		for _, checkpointing := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/checkpointing=%v", c.name, checkpointing), func(t *testing.T) {
				checkGradients(t, checkpointing, 0, func(t *testing.T, m *model.Model, rng *rand.Rand) []model.Param {
					a, err := peft.NewAdapter(m, []byte(c.config), rng)
					if err != nil {
						t.Fatal(err)
					}
					return a.Params()
				})
			})
		}
	}
}

// checkGradients compares LossAndGrad's gradients of the parameters that
// attach installs with finite differences of BatchLoss.
func checkGradients(t *testing.T, checkpointing bool, logitChunkRows int, attach func(*testing.T, *model.Model, *rand.Rand) []model.Param) {
	checkGradientsOn(t, gradCheckModel, checkpointing, logitChunkRows, 0.75, attach)
}

// checkGradientsOn is checkGradients on the model at path, requiring a
// fraction sizable of the sampled gradients to be well above the absolute
// tolerance.
func checkGradientsOn(t *testing.T, path string, checkpointing bool, logitChunkRows int, sizableFrac float64, attach func(*testing.T, *model.Model, *rand.Rand) []model.Param) {
	const (
		samples  = 40
		minStep  = 1e-3
		maxStep  = 1e-2
		lossMove = 0.1 // nats the loss moves per step
		rtol     = 1e-2
		atol     = 1e-2
	)
	m, err := model.Load(path, cpu.New())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	m.Checkpointing, m.LogitChunkRows = checkpointing, logitChunkRows
	b := m.Backend
	rng := rand.New(rand.NewPCG(11, 12))
	params := attach(t, m, rng)
	for _, p := range params {
		if err := b.Write(p.Grad, 0, make([]float32, p.Grad.Shape().Numel())); err != nil {
			t.Fatal(err)
		}
	}
	tb := gradCheckBatch(m.Config.Vocab, rng)
	before := baseWeights(t, m)

	loss, err := m.LossAndGrad(tb, 1)
	if err != nil {
		t.Fatal(err)
	}
	grads := make([][]float32, len(params))
	for i, p := range params {
		grads[i] = readAll(t, b, p.Grad)
	}
	if plain, err := m.BatchLoss(tb); err != nil || plain != loss {
		t.Errorf("BatchLoss = %.9g (%v), LossAndGrad's loss = %.9g", plain, err, loss)
	}

	// One entry from each of 40 different tensors: stepping by 37, coprime
	// to the 70 tensors, spreads them over layers, modules, A and B.
	type entry struct {
		param, index int
		analytic     float64
	}
	picks := make([]entry, samples)
	sizable := 0
	for s := range picks {
		pi := (s * 37) % len(params)
		e := entry{param: pi, index: rng.IntN(len(grads[pi]))}
		e.analytic = float64(grads[pi][e.index])
		picks[s] = e
		if math.Abs(e.analytic) >= 10*atol {
			sizable++
		}
	}
	// Most entries must be well above atol, or the check would be weak.
	if float64(sizable) < sizableFrac*samples {
		t.Fatalf("only %d of %d sampled gradients exceed %g", sizable, samples, 10*atol)
	}

	lossAt := func(p model.Param, index int, v float32) float64 {
		t.Helper()
		if err := b.Write(p.Value, index, []float32{v}); err != nil {
			t.Fatal(err)
		}
		l, err := m.BatchLoss(tb)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	var worst float64
	bad := 0
	for _, e := range picks {
		p := params[e.param]
		orig := make([]float32, 1)
		if err := b.Read(p.Value, e.index, orig); err != nil {
			t.Fatal(err)
		}
		x := float64(orig[0])
		h := min(maxStep, max(minStep, lossMove/math.Abs(e.analytic)))
		var steps, losses [4]float64
		for k, off := range []float64{-2, -1, 1, 2} {
			v := float32(x + off*h)
			steps[k] = float64(v) - x
			losses[k] = lossAt(p, e.index, v)
		}
		lossAt(p, e.index, orig[0])
		numeric := derivative4(steps, losses)
		diff := math.Abs(numeric - e.analytic)
		tol := rtol*math.Abs(numeric) + atol
		worst = max(worst, diff/tol)
		if diff > tol {
			bad++
			t.Errorf("%s[%d]: LossAndGrad gives %.6g, finite difference %.6g (step %.2g, diff %.3g, tolerance %.3g)",
				p.Name, e.index, e.analytic, numeric, h, diff, tol)
		}
	}
	t.Logf("%d entries, worst |diff|/tolerance %.3f", len(picks), worst)
	if bad > 0 {
		t.Errorf("%d of %d sampled gradients disagree with finite differences", bad, len(picks))
	}

	// Every perturbation was undone.
	if again, err := m.BatchLoss(tb); err != nil || again != loss {
		t.Errorf("loss after the check = %.9g (%v), want %.9g", again, err, loss)
	}

	// A second LossAndGrad adds the same gradient again. Not bit for bit:
	// a product accumulated term by term onto the first gradient rounds
	// differently from one summed from zero (measured: 2e-7 of the
	// tensor's largest entry), so allow 1e-5 of it; an overwrite instead
	// of an add misses by the whole gradient.
	loss2, err := m.LossAndGrad(tb, 1)
	if err != nil {
		t.Fatal(err)
	}
	if loss2 != loss {
		t.Errorf("second LossAndGrad loss %.9g, first %.9g", loss2, loss)
	}
	for i, p := range params {
		g2 := readAll(t, b, p.Grad)
		var largest float64
		for _, g := range grads[i] {
			largest = max(largest, math.Abs(float64(g)))
		}
		for j, g := range grads[i] {
			if d := math.Abs(float64(g2[j]) - 2*float64(g)); d > 1e-5*2*largest {
				t.Errorf("%s[%d]: gradient after two passes %v, want %v (twice %v)", p.Name, j, g2[j], 2*g, g)
				break
			}
		}
	}

	sameBits(t, before, baseWeights(t, m))
}

func TestDerivative4(t *testing.T) {
	// Exact for cubics, with uneven steps like those rounding makes.
	f := func(x float64) float64 { return 2 - 3*x + 0.5*x*x + 7*x*x*x }
	steps := [4]float64{-0.021, -0.0098, 0.0102, 0.0199}
	var ys [4]float64
	for i, x := range steps {
		ys[i] = f(x)
	}
	if got := derivative4(steps, ys); math.Abs(got+3) > 1e-9 {
		t.Errorf("derivative4 = %v, want -3", got)
	}
}

// derivative4 returns the derivative at 0 of the cubic through the four
// points (xs[k], ys[k]): Lagrange interpolation, which for symmetric steps
// ±h, ±2h is the usual fourth-order stencil
// (8(f(h)-f(-h)) - (f(2h)-f(-2h))) / 12h.
func derivative4(xs, ys [4]float64) float64 {
	var d float64
	for i := range 4 {
		// d/dx of prod_{j!=i} (x - xj)/(xi - xj) at x = 0.
		denom, sum := 1.0, 0.0
		for j := range 4 {
			if j != i {
				denom *= xs[i] - xs[j]
			}
		}
		for j := range 4 {
			if j == i {
				continue
			}
			prod := 1.0
			for k := range 4 {
				if k != i && k != j {
					prod *= -xs[k]
				}
			}
			sum += prod
		}
		d += ys[i] * sum / denom
	}
	return d
}
