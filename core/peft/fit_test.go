package peft

import (
	"testing"

	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/model"
)

// FitArgs are the trainer settings of a test run.
type FitArgs struct {
	LR            float64
	Steps, Warmup int
	Seed          uint64
	// MaxEval keeps only the first so many eval batches (0: all).
	MaxEval int
}

// FitForTest trains a's parameters on m with core/train's Trainer and
// returns the held-out loss before and after. core/train imports this
// package, so this package's own tests cannot import it; fit_ext_test.go,
// an external test file linked into the same test binary, sets it.
var FitForTest func(m *model.Model, a Adapter, trainL, evalL *data.Loader, args FitArgs) (before, after float64, err error)

// fit trains a briefly and returns the held-out loss before and after.
func fit(t *testing.T, m *model.Model, a Adapter, trainL, evalL *data.Loader, args FitArgs) (before, after float64) {
	t.Helper()
	before, after, err := FitForTest(m, a, trainL, evalL, args)
	if err != nil {
		t.Fatal(err)
	}
	return before, after
}
