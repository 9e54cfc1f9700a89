package train_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/train"
)

// meanFinder is a toy Objective: one scalar θ and the loss
// 0.5*(θ - target)^2 for each target token that counts in the loss, so the
// best θ is the mean of those token ids.
type meanFinder struct {
	be    backend.Backend
	theta model.Param
}

func (m *meanFinder) Params() []model.Param { return []model.Param{m.theta} }
func (m *meanFinder) SetTraining(bool)      {}

func (m *meanFinder) lossAndGrad(b data.Batch) (loss, grad float64) {
	var theta [1]float32
	if err := m.be.Read(m.theta.Value, 0, theta[:]); err != nil {
		panic(err)
	}
	for i, id := range b.Targets {
		d := float64(theta[0]) - float64(id)
		loss += float64(b.Weights[i]) * 0.5 * d * d
		grad += float64(b.Weights[i]) * d
	}
	return loss, grad
}

func (m *meanFinder) LossAndGrad(b data.Batch, gradScale float32, _ *rand.Rand) (float64, error) {
	loss, grad := m.lossAndGrad(b)
	var g [1]float32
	if err := m.be.Read(m.theta.Grad, 0, g[:]); err != nil {
		return 0, err
	}
	g[0] += gradScale * float32(grad)
	return loss, m.be.Write(m.theta.Grad, 0, g[:])
}

func (m *meanFinder) Loss(b data.Batch) (float64, error) {
	loss, _ := m.lossAndGrad(b)
	return loss, nil
}

func Example() {
	be := cpu.New()
	obj := &meanFinder{be: be, theta: model.Param{Name: "theta", Value: be.Zeros(1), Grad: be.Zeros(1)}}

	// Examples whose loss targets are ids 2, 4, 3, 4, 2: θ should become 3.
	examples := []data.Example{
		{IDs: []int32{0, 2, 4}, Loss: []bool{false, true, true}},
		{IDs: []int32{0, 3}, Loss: []bool{false, true}},
		{IDs: []int32{0, 4, 2}, Loss: []bool{false, true, true}},
	}
	loader, err := data.NewLoader(examples, data.LoaderOptions{Batch: 1, SeqLen: 2, Shuffle: true})
	if err != nil {
		panic(err)
	}

	dir, err := os.MkdirTemp("", "graft-train-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	cfg := train.DefaultConfig()
	cfg.Steps, cfg.LR, cfg.Warmup = 300, 0.1, 10
	cfg.GradAccum = 3 // one step sees all three examples
	cfg.SaveEvery, cfg.KeepCheckpoints, cfg.CheckpointDir = 100, 1, dir

	tr, err := train.New(obj, be, train.LoaderSource(loader), nil, cfg)
	if err != nil {
		panic(err)
	}
	var metrics bytes.Buffer
	logEvent, logErr := train.MetricsWriter(&metrics)
	var steps []train.Event
	res, err := tr.Fit(context.Background(), func(e train.Event) {
		logEvent(e)
		steps = append(steps, e)
	})
	if err != nil {
		panic(err)
	}
	if err := logErr(); err != nil {
		panic(err)
	}
	if err := train.PlotSVG(&bytes.Buffer{}, steps); err != nil {
		panic(err)
	}

	var theta [1]float32
	if err := be.Read(obj.theta.Value, 0, theta[:]); err != nil {
		panic(err)
	}
	fmt.Printf("steps: %d\n", res.Steps)
	fmt.Printf("theta: %.2f\n", theta[0])
	fmt.Printf("checkpoint: %s\n", filepath.Base(res.Checkpoint))
	// Output:
	// steps: 300
	// theta: 3.00
	// checkpoint: checkpoint-300
}

func ExampleMultiplier() {
	// A cosine schedule over 10 steps with 2 of warmup.
	for s := range 10 {
		fmt.Printf("%.3f ", train.Multiplier(train.ScheduleCosine, s, 2, 10, 0))
	}
	fmt.Println()
	// Output:
	// 0.000 0.500 1.000 0.962 0.854 0.691 0.500 0.309 0.146 0.038
}
