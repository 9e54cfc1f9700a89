package train

import (
	"encoding/json"
	"math/rand/v2"

	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/model"
)

// Objective is what the trainer optimizes: a model with trainable
// parameters and a summed loss over the tokens of a batch.
type Objective interface {
	// Params returns the trainable parameters. The trainer reads this once,
	// in New; names must be unique (checkpoints store tensors by name).
	Params() []model.Param
	// SetTraining switches dropout and the like on or off.
	SetTraining(on bool)
	// LossAndGrad runs forward and backward on one micro-batch and returns
	// the loss summed over its tokens (each weighted by Batch.Weights). It
	// adds gradScale * d(sum loss)/dθ into each Param.Grad, so that the
	// gradients of several micro-batches accumulate. rng drives dropout.
	LossAndGrad(b data.Batch, gradScale float32, rng *rand.Rand) (sumLoss float64, err error)
	// Loss returns the summed loss of a batch without touching gradients.
	Loss(b data.Batch) (sumLoss float64, err error)
}

// Source supplies the training micro-batches and can save and restore its
// position, so a resumed run sees the same data in the same order.
// LoaderSource adapts a *data.Loader.
type Source interface {
	// Next returns the next micro-batch; rng shuffles the data.
	Next(rng *rand.Rand) (data.Batch, error)
	// BatchesPerEpoch returns how many micro-batches one pass over the data
	// takes, or 0 if unknown (then Config.Epochs cannot be used and events
	// report epoch 0).
	BatchesPerEpoch() int
	// MarshalState returns the position in the data as JSON.
	MarshalState() (json.RawMessage, error)
	// UnmarshalState restores a position returned by MarshalState.
	UnmarshalState(json.RawMessage) error
}

// lossTokens returns the number of tokens a batch's loss is summed over:
// the sum of its loss weights (0 for prompt and padding tokens), or every
// target when it has no weights. Dividing the summed loss by it gives the
// token-mean loss.
func lossTokens(b data.Batch) float64 {
	if b.Weights == nil {
		return float64(len(b.Targets))
	}
	var n float64
	for _, w := range b.Weights {
		n += float64(w)
	}
	return n
}
