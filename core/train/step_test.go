package train

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/data"
)

func TestClipCoef(t *testing.T) {
	tests := []struct{ norm, max, want float64 }{
		{0.5, 1, 1},            // under the limit: unchanged
		{1, 1, 1 / (1 + 1e-6)}, // at the limit torch still scales, by a hair
		{4, 1, 1 / (4 + 1e-6)}, // over: scaled to norm ~1
		{10, 2.5, 2.5 / 10.000001},
		{1e9, 0, 1}, // 0 disables clipping
	}
	for _, tt := range tests {
		if got := clipCoef(tt.norm, tt.max); math.Abs(got-tt.want) > 1e-15 {
			t.Errorf("clipCoef(%v, %v) = %v, want %v", tt.norm, tt.max, got, tt.want)
		}
	}
}

// oneStep trains a fresh regression for one step and returns the trainer,
// objective and step event.
func oneStep(t *testing.T, cfg Config) (*Trainer, *regression, Event) {
	t.Helper()
	be := newBackend()
	obj := newRegression(t, be, 4, 3)
	tr, err := New(obj, be, LoaderSource(newLoader(t, 8, 2, false)), nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var step Event
	if _, err := tr.Fit(context.Background(), func(e Event) {
		if e.Kind == EventStep {
			step = e
		}
	}); err != nil {
		t.Fatal(err)
	}
	return tr, obj, step
}

func TestClippingScalesGradientsToMaxNorm(t *testing.T) {
	cfg := testConfig(1)
	cfg.MaxGradNorm = 0.25
	tr, obj, step := oneStep(t, cfg)
	if step.GradNorm <= cfg.MaxGradNorm {
		t.Fatalf("pre-clip norm %v is not above the limit; the test needs a larger gradient", step.GradNorm)
	}
	// The gradients left in the buffers are the clipped ones.
	after := math.Sqrt(tr.be.SumSquares(obj.w.Grad, obj.b.Grad))
	want := step.GradNorm * cfg.MaxGradNorm / (step.GradNorm + 1e-6)
	if math.Abs(after-want) > 1e-6 {
		t.Errorf("clipped norm = %v, want %v", after, want)
	}

	cfg.MaxGradNorm = 0
	tr, obj, step = oneStep(t, cfg)
	after = math.Sqrt(tr.be.SumSquares(obj.w.Grad, obj.b.Grad))
	if math.Abs(after-step.GradNorm) > 1e-6*step.GradNorm {
		t.Errorf("with clipping off the norm changed from %v to %v", step.GradNorm, after)
	}
}

func TestFirstStepIsAdamW(t *testing.T) {
	// On step 1 AdamW's bias-corrected moments are g and g^2, so each
	// element moves by lr*g/(|g|+eps) after decay p*(1-lr*wd); the bias is
	// NoDecay.
	cfg := testConfig(1)
	cfg.WeightDecay, cfg.MaxGradNorm = 0.1, 0
	be := newBackend()
	obj := newRegression(t, be, 4, 3)
	loader := newLoader(t, 8, 2, false)
	first := cloneBatch(newLoader(t, 8, 2, false).Next(nil))
	w0, b0 := obj.read(obj.w), obj.read(obj.b)
	_, gw, gb := obj.forward(first, nil)
	tokens := lossTokens(first)

	tr, err := New(obj, be, LoaderSource(loader), nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Fit(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	lr := cfg.LR
	move := func(p, g float64, wd float64) float64 {
		g = float64(float32(g / tokens))
		return p*(1-lr*wd) - lr*g/(math.Abs(g)+cfg.Eps)
	}
	w1, b1 := obj.read(obj.w), obj.read(obj.b)
	for j := range w1 {
		if want := move(float64(w0[j]), gw[j], cfg.WeightDecay); math.Abs(float64(w1[j])-want) > 1e-5 {
			t.Errorf("w[%d] = %v, want %v", j, w1[j], want)
		}
	}
	if want := move(float64(b0[0]), gb, 0); math.Abs(float64(b1[0])-want) > 1e-5 {
		t.Errorf("bias = %v, want %v (no decay)", b1[0], want)
	}
}

func TestAdamWFitsRegression(t *testing.T) {
	be := newBackend()
	obj := newRegression(t, be, 4, 0)
	cfg := testConfig(150)
	cfg.LR, cfg.Warmup, cfg.EvalEvery = 0.1, 10, 50
	tr, err := New(obj, be, LoaderSource(newLoader(t, 12, 3, true)), evalBatches(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	before, err := tr.Evaluate()
	if err != nil {
		t.Fatal(err)
	}
	var evals []float64
	res, err := tr.Fit(context.Background(), func(e Event) {
		if e.Kind == EventEval {
			evals = append(evals, e.EvalLoss)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(evals) != 3 {
		t.Fatalf("got %d evaluations, want 3 (steps 50, 100, 150)", len(evals))
	}
	if res.EvalLoss > before/100 {
		t.Errorf("eval loss went from %v to %v; want at least a 100x drop", before, res.EvalLoss)
	}
	if res.BestEvalLoss != min(evals[0], evals[1], evals[2]) {
		t.Errorf("best eval %v is not the lowest of %v", res.BestEvalLoss, evals)
	}
	if res.Steps != 150 || res.Tokens != 150*3*8 {
		t.Errorf("result %+v: want 150 steps of 24 tokens", res)
	}
}

// TestAccumulationMatchesLargerBatch checks that two accumulated
// micro-batches of one row train exactly like one batch of two rows: the
// step's loss is the mean over all loss tokens, not a mean of per-batch
// means (the rows hold different numbers of loss tokens).
func TestAccumulationMatchesLargerBatch(t *testing.T) {
	run := func(batch, accum int) ([]float64, map[string][]float32) {
		be := newBackend()
		obj := newRegression(t, be, 4, 1)
		cfg := testConfig(6)
		cfg.GradAccum, cfg.WeightDecay = accum, 0.01
		tr, err := New(obj, be, LoaderSource(newLoader(t, 12, batch, false)), nil, cfg)
		if err != nil {
			t.Fatal(err)
		}
		var losses []float64
		if _, err := tr.Fit(context.Background(), func(e Event) {
			if e.Kind == EventStep {
				losses = append(losses, e.Loss)
			}
		}); err != nil {
			t.Fatal(err)
		}
		return losses, map[string][]float32{"w": obj.read(obj.w), "b": obj.read(obj.b)}
	}
	lossA, paramsA := run(1, 2)
	lossB, paramsB := run(2, 1)
	for i := range lossA {
		if math.Abs(lossA[i]-lossB[i]) > 1e-6*math.Abs(lossB[i]) {
			t.Errorf("step %d: loss %v with accumulation, %v with the larger batch", i+1, lossA[i], lossB[i])
		}
	}
	for name := range paramsA {
		for j := range paramsA[name] {
			if d := math.Abs(float64(paramsA[name][j] - paramsB[name][j])); d > 1e-6 {
				t.Errorf("%s[%d]: %v with accumulation, %v with the larger batch", name, j, paramsA[name][j], paramsB[name][j])
			}
		}
	}
}

// fixedSource serves the same batch forever.
type fixedSource struct{ b data.Batch }

func (s *fixedSource) Next(*rand.Rand) (data.Batch, error)      { return s.b, nil }
func (s *fixedSource) BatchesPerEpoch() int                     { return 0 }
func (s *fixedSource) MarshalState() (json.RawMessage, error)   { return json.RawMessage("null"), nil }
func (s *fixedSource) UnmarshalState(raw json.RawMessage) error { return nil }

func TestStepWithoutLossTokensFails(t *testing.T) {
	be := newBackend()
	src := &fixedSource{data.Batch{B: 1, T: 2, IDs: []int32{1, 2}, Targets: []int32{2, 3}, Weights: []float32{0, 0}}}
	tr, err := New(newRegression(t, be, 2, 0), be, src, nil, testConfig(3))
	if err != nil {
		t.Fatal(err)
	}
	_, err = tr.Fit(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "step 1: its 1 micro-batches hold no loss tokens") {
		t.Errorf("Fit = %v", err)
	}
}
