package peft_test

import (
	"context"
	"errors"

	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
	"github.com/graft-ml/graft/core/train"
)

func init() {
	peft.FitForTest = func(m *model.Model, a peft.Adapter, trainL, evalL *data.Loader, args peft.FitArgs) (before, after float64, err error) {
		eval := train.EvalBatches(evalL)
		if args.MaxEval > 0 && len(eval) > args.MaxEval {
			eval = eval[:args.MaxEval]
		}
		cfg := train.DefaultConfig()
		cfg.LR, cfg.Steps, cfg.Warmup, cfg.Seed = args.LR, args.Steps, args.Warmup, args.Seed
		tr, err := train.New(&train.LM{Model: m, Trainable: a.Params(), Mode: a.SetTraining}, m.Backend, train.LoaderSource(trainL), eval, cfg)
		if err != nil {
			return 0, 0, err
		}
		if before, err = tr.Evaluate(); err != nil {
			return 0, 0, err
		}
		res, err := tr.Fit(context.Background(), nil)
		if err != nil {
			return 0, 0, err
		}
		if !res.Evaluated {
			return 0, 0, errors.New("Fit did not evaluate")
		}
		return before, res.EvalLoss, nil
	}
}
