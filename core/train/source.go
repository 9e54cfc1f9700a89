package train

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/graft-ml/graft/core/data"
)

// LoaderSource adapts a data.Loader to Source; its state is the
// data.LoaderState as JSON.
func LoaderSource(l *data.Loader) Source { return loaderSource{l} }

type loaderSource struct{ l *data.Loader }

func (s loaderSource) Next(rng *rand.Rand) (data.Batch, error) { return s.l.Next(rng), nil }

func (s loaderSource) BatchesPerEpoch() int { return s.l.StepsPerEpoch() }

func (s loaderSource) MarshalState() (json.RawMessage, error) { return json.Marshal(s.l.State()) }

func (s loaderSource) UnmarshalState(raw json.RawMessage) error {
	var st data.LoaderState
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("loader state: %w", err)
	}
	return s.l.SetState(st)
}

// cloneBatch copies a batch out of buffers its source may reuse: a step
// draws all of its micro-batches before running any of them.
func cloneBatch(b data.Batch) data.Batch {
	b.IDs, b.Targets, b.Weights = slices.Clone(b.IDs), slices.Clone(b.Targets), slices.Clone(b.Weights)
	return b
}

// EvalBatches returns one epoch of a loader's batches, each with its own
// copy of the data (Loader.Next reuses its buffers), for New's eval
// argument. Build the loader without Shuffle so the epoch needs no random
// generator.
func EvalBatches(l *data.Loader) []data.Batch {
	out := make([]data.Batch, l.StepsPerEpoch())
	for i := range out {
		out[i] = cloneBatch(l.Next(nil))
	}
	return out
}
