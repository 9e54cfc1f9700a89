package train

import (
	"fmt"
	"math/rand/v2"

	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/model"
)

// LM is the Objective of causal language modelling: next-token
// cross-entropy of a model whose trainable parameters belong to adapters.
type LM struct {
	Model *model.Model
	// Trainable are the parameters the optimizer updates.
	Trainable []model.Param
	// Mode switches the adapters between training (dropout drawn from rng)
	// and evaluation; nil when they have no training-only behaviour.
	Mode func(training bool, rng *rand.Rand) error

	training bool
}

// Params returns the trainable parameters.
func (o *LM) Params() []model.Param { return o.Trainable }

// SetTraining records the mode; the adapters are switched at each pass,
// when the RNG for dropout is known.
func (o *LM) SetTraining(on bool) { o.training = on }

func tokenBatch(b data.Batch) model.TokenBatch {
	return model.TokenBatch{B: b.B, T: b.T, IDs: b.IDs, Targets: b.Targets, Weights: b.Weights}
}

// LossAndGrad runs forward and backward on one micro-batch.
func (o *LM) LossAndGrad(b data.Batch, gradScale float32, rng *rand.Rand) (float64, error) {
	if o.Mode != nil {
		if err := o.Mode(o.training, rng); err != nil {
			return 0, fmt.Errorf("adapter mode: %w", err)
		}
	}
	return o.Model.LossAndGrad(tokenBatch(b), gradScale)
}

// Loss evaluates one batch without gradients and without dropout.
func (o *LM) Loss(b data.Batch) (float64, error) {
	if o.Mode != nil {
		if err := o.Mode(false, nil); err != nil {
			return 0, fmt.Errorf("adapter mode: %w", err)
		}
	}
	return o.Model.BatchLoss(tokenBatch(b))
}
