package guest

import (
	"context"
	"errors"
	"math"

	"github.com/graft-ml/graft/core/train"
	"github.com/graft-ml/graft/wasm/plugin/abi"
)

// defaultAdapter names a trained adapter when TrainArgs.Adapter is empty.
const defaultAdapter = "default"

// train runs args' train.Spec with train.Run and keeps the adapter loaded
// under args.Adapter. Progress goes to the host; a stop asked for by the
// host, or its deadline, ends the run after the current step with the
// result so far.
func (p *Plugin) train(args abi.TrainArgs) (*abi.TrainResult, error) {
	m, err := p.needModel()
	if err != nil {
		return nil, err
	}
	if args.Adapter == "" {
		args.Adapter = defaultAdapter
	}
	if err := p.checkNewName(args.Adapter); err != nil {
		return nil, err
	}
	spec, err := args.TrainSpec()
	if err != nil {
		return nil, errorf(abi.CodeBadRequest, "%v", err)
	}
	if err := p.checkInterrupted(); err != nil {
		return nil, err
	}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	every := max(args.ProgressEvery, 1)
	res := &abi.TrainResult{}
	// Losses are recorded before the host is asked anything, so a partial
	// result lists every step that ran.
	var interrupted bool
	onEvent := func(e train.Event) {
		if e.Kind == train.EventStep {
			res.Losses = append(res.Losses, e.Loss)
		}
		if p.checkInterrupted() != nil {
			interrupted = true
			stop()
			return
		}
		if e.Kind == train.EventStep && e.Step%every != 0 && e.Step != e.TotalSteps {
			return
		}
		if p.send(abi.Progress{Kind: e.Kind, Step: e.Step, TotalSteps: e.TotalSteps, Loss: e.Loss,
			EvalLoss: e.EvalLoss, LR: e.LR, GradNorm: e.GradNorm, Tokens: e.Tokens}) {
			stop()
		}
	}
	rr, err := train.Run(ctx, m, spec, onEvent)
	stopped := errors.Is(err, context.Canceled)
	switch {
	case err != nil && !stopped:
		if rr != nil && rr.Adapter != nil {
			rr.Adapter.Unload()
		}
		// Before the first step, Run refused the request (its method,
		// options, data or hyper-parameters); after it, the run failed.
		if len(res.Losses) > 0 {
			return nil, err
		}
		return nil, errorf(abi.CodeBadRequest, "%v", err)
	case rr == nil || rr.Adapter == nil: // stopped before the run began
		if interrupted {
			return nil, errInterrupted
		}
		return nil, errorf(abi.CodeStopped, "stopped by the host before the first step")
	}
	res.Steps, res.TotalSteps, res.Loss, res.Tokens = rr.Steps, rr.TotalSteps, rr.Loss, rr.Tokens
	if !math.IsNaN(rr.EvalBefore) {
		before := rr.EvalBefore
		res.EvalBefore = &before
	}
	if rr.Evaluated && !stopped { // a stopped run's latest eval may be the one before it
		after := rr.EvalLoss
		res.EvalAfter = &after
	}
	eff := rr.Spec
	eff.Records, eff.EvalRecords = nil, nil
	res.Spec = &eff
	res.Adapter = p.keep(args.Adapter, rr.Adapter, nil)
	switch {
	case stopped && interrupted:
		return res, errorf(abi.CodeInterrupted, "interrupted by the host's deadline after step %d of %d", rr.Steps, rr.TotalSteps)
	case stopped:
		return res, errorf(abi.CodeStopped, "stopped by the host after step %d of %d", rr.Steps, rr.TotalSteps)
	}
	return res, nil
}

// send reports progress to the host and returns whether it asked to stop.
func (p *Plugin) send(pr abi.Progress) bool {
	if p.progress == nil {
		return false
	}
	msg, err := abi.Encode(&pr)
	if err != nil {
		return false // a struct of numbers always encodes
	}
	return p.progress(msg)
}
