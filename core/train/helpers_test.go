package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/model"
)

// regression is a fake Objective: linear regression y = w.x + b, where
// x = feature(id) of each input token and y the value of a hidden true
// model, with per-token loss 0.5*weight*e^2 summed over the batch. It keeps
// its parameters on a real backend and does the arithmetic on the host.
type regression struct {
	be       backend.Backend
	dim      int
	w, b     model.Param // w [1, dim] decays, b [1] does not
	dropout  float64     // probability of dropping a token's residual while training
	training bool

	calls     int // LossAndGrad calls so far
	nanAt     int // call (1-based) whose loss is NaN; 0: never
	infGradAt int // call (1-based) that puts +Inf into a gradient; 0: never
}

func newRegression(t testing.TB, be backend.Backend, dim int, init float32) *regression {
	t.Helper()
	r := &regression{be: be, dim: dim}
	r.w = model.Param{Name: "model.w.weight", Value: be.Zeros(1, dim), Grad: be.Zeros(1, dim)}
	r.b = model.Param{Name: "model.w.bias", Value: be.Zeros(1), Grad: be.Zeros(1), NoDecay: true}
	ws := make([]float32, dim)
	for i := range ws {
		ws[i] = init * float32(i%3-1)
	}
	if err := be.Write(r.w.Value, 0, ws); err != nil {
		t.Fatal(err)
	}
	if err := be.Write(r.b.Value, 0, []float32{init}); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *regression) Params() []model.Param { return []model.Param{r.w, r.b} }
func (r *regression) SetTraining(on bool)   { r.training = on }

// feature is token id's input vector.
func feature(id int32, dim int) []float64 {
	x := make([]float64, dim)
	for j := range x {
		x[j] = math.Sin(float64(id+1) * float64(j+1) * 0.37)
	}
	return x
}

// truth is the value the regression should learn for token id.
func truth(id int32, dim int) float64 {
	y := 0.3
	for j, xj := range feature(id, dim) {
		y += (0.5*float64(j+1) - 1) * xj
	}
	return y
}

func (r *regression) read(p model.Param) []float32 {
	out := make([]float32, p.Value.Shape().Numel())
	if err := r.be.Read(p.Value, 0, out); err != nil {
		panic(err)
	}
	return out
}

// forward returns the summed loss and its gradient with respect to w and b.
func (r *regression) forward(bt data.Batch, rng *rand.Rand) (loss float64, gw []float64, gb float64) {
	w, b := r.read(r.w), r.read(r.b)
	gw = make([]float64, r.dim)
	for i, id := range bt.IDs {
		wt := float64(bt.Weights[i])
		if wt == 0 {
			continue
		}
		x := feature(id, r.dim)
		pred := float64(b[0])
		for j := range x {
			pred += float64(w[j]) * x[j]
		}
		mask := 1.0
		if r.training && r.dropout > 0 {
			if rng.Float64() < r.dropout {
				mask = 0
			} else {
				mask = 1 / (1 - r.dropout)
			}
		}
		e := mask * (pred - truth(id, r.dim))
		loss += 0.5 * wt * e * e
		for j := range x {
			gw[j] += wt * e * mask * x[j]
		}
		gb += wt * e * mask
	}
	return loss, gw, gb
}

func (r *regression) LossAndGrad(bt data.Batch, gradScale float32, rng *rand.Rand) (float64, error) {
	r.calls++
	loss, gw, gb := r.forward(bt, rng)
	addGrad := func(p model.Param, g []float64) {
		cur := make([]float32, len(g))
		if err := r.be.Read(p.Grad, 0, cur); err != nil {
			panic(err)
		}
		for i := range cur {
			cur[i] += gradScale * float32(g[i])
		}
		if r.calls == r.infGradAt {
			cur[0] = float32(math.Inf(1))
		}
		if err := r.be.Write(p.Grad, 0, cur); err != nil {
			panic(err)
		}
	}
	addGrad(r.w, gw)
	addGrad(r.b, []float64{gb})
	if r.calls == r.nanAt {
		return math.NaN(), nil
	}
	return loss, nil
}

func (r *regression) Loss(bt data.Batch) (float64, error) {
	loss, _, _ := r.forward(bt, nil)
	return loss, nil
}

// testExamples returns n sequences of varying lengths over a 50-token
// vocabulary, a prompt token or two (no loss) at the start of some.
func testExamples(n int) []data.Example {
	rng := rand.New(rand.NewPCG(7, 7))
	out := make([]data.Example, n)
	for i := range out {
		length := 3 + i%7
		ex := data.Example{IDs: make([]int32, length), Loss: make([]bool, length)}
		for j := range ex.IDs {
			ex.IDs[j] = int32(rng.IntN(50))
			ex.Loss[j] = j > i%3
		}
		ex.Loss[length-1] = true
		out[i] = ex
	}
	return out
}

func newLoader(t testing.TB, n, batch int, shuffle bool) *data.Loader {
	t.Helper()
	l, err := data.NewLoader(testExamples(n), data.LoaderOptions{Batch: batch, SeqLen: 8, Shuffle: shuffle})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// evalBatches returns one epoch of a non-shuffled loader over other data.
func evalBatches(t testing.TB) []data.Batch {
	t.Helper()
	l, err := data.NewLoader(testExamples(23)[13:], data.LoaderOptions{Batch: 4, SeqLen: 8})
	if err != nil {
		t.Fatal(err)
	}
	out := EvalBatches(l)
	if len(out) != 3 {
		t.Fatalf("EvalBatches returned %d batches, want 3", len(out))
	}
	if &out[0].IDs[0] == &out[1].IDs[0] {
		t.Fatal("EvalBatches returned batches sharing storage")
	}
	return out
}

func testConfig(steps int) Config {
	c := DefaultConfig()
	c.Steps = steps
	c.LR = 0.05
	c.Seed = 42
	return c
}

func newBackend() backend.Backend { return cpu.New() }

// paramBits returns every parameter's values as raw float32 bits.
func paramBits(t testing.TB, be backend.Backend, params []model.Param) map[string][]uint32 {
	t.Helper()
	out := map[string][]uint32{}
	for _, p := range params {
		vals := make([]float32, p.Value.Shape().Numel())
		if err := be.Read(p.Value, 0, vals); err != nil {
			t.Fatal(err)
		}
		bits := make([]uint32, len(vals))
		for i, v := range vals {
			bits[i] = math.Float32bits(v)
		}
		out[p.Name] = bits
	}
	return out
}
