package guest

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"math"
	"strings"

	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/peft"
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
	spec, err := specOf(args)
	if err != nil {
		return nil, err
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

// specOf is the train.Spec that args stand for: args.Spec with the older
// fields, where set, over it.
func specOf(args abi.TrainArgs) (train.Spec, error) {
	var s train.Spec
	if args.Spec != nil {
		s = *args.Spec
	}
	if s.Data != "" || s.Eval != "" || s.Out != "" || s.Resume != "" {
		return s, errorf(abi.CodeBadRequest, "spec: the plugin has no file system: give records and eval_records (or data and eval_data), not data, eval, out or resume paths")
	}
	switch {
	case len(args.Config) > 0 && args.Method != "":
		return s, errorf(abi.CodeBadRequest, "give config or method, not both")
	case len(args.Config) > 0:
		s.Config, s.Method, s.Options, s.Stack = args.Config, "", nil, nil
	case args.Method != "":
		name, err := methodName(args.Method)
		if err != nil {
			return s, err
		}
		s.Method, s.Config, s.Stack = name, nil, nil
	case s.Method == "" && len(s.Config) == 0 && len(s.Stack) == 0:
		return s, errorf(abi.CodeBadRequest, "give config (an adapter_config.json) or method, or a spec with one")
	}
	if len(args.Options) > 0 {
		opts := maps.Clone(s.Options)
		if opts == nil {
			opts = map[string]any{}
		}
		maps.Copy(opts, args.Options)
		s.Options = opts
	}
	var err error
	if len(args.Data) > 0 {
		if s.Records, err = readRecords(args.Data, "train data"); err != nil {
			return s, err
		}
	}
	if len(args.EvalData) > 0 {
		if s.EvalRecords, err = readRecords(args.EvalData, "eval data"); err != nil {
			return s, err
		}
	}
	if len(s.Records) == 0 {
		return s, errorf(abi.CodeBadRequest, "train data is empty: give data (JSONL) or spec records")
	}
	if args.ChatTemplate != "" {
		s.ChatTemplate = args.ChatTemplate
	}
	setInt(&s.Steps, args.Steps)
	setInt(&s.Batch, args.Batch)
	setInt(&s.SeqLen, args.SeqLen)
	setInt(&s.Warmup, args.Warmup)
	setInt(&s.GradAccum, args.GradAccum)
	setInt(&s.EvalEvery, args.EvalEvery)
	s.Pack = s.Pack || args.Pack
	if args.LR != 0 {
		s.LR = args.LR
	}
	if args.Schedule != "" {
		s.Schedule = args.Schedule
	}
	if args.WeightDecay != 0 {
		s.WeightDecay = args.WeightDecay
	}
	if args.MaxGradNorm != nil {
		s.MaxGradNorm = args.MaxGradNorm
	}
	if args.Seed != 0 {
		s.Seed = args.Seed
	}
	return s, nil
}

// methodName returns the registry name of a method, given as the registry
// spells it ("prompt-tuning") or, as this ABI's first version did, as its
// peft_type ("PROMPT_TUNING", "prompt_tuning"); each part of a mixed stack
// ("lora+prefix-tuning") likewise.
func methodName(method string) (string, error) {
	parts := strings.Split(method, "+")
	for i, part := range parts {
		m, err := peft.LookupMethod(part)
		if err != nil {
			if m, err = peft.LookupMethod(strings.ReplaceAll(part, "_", "-")); err != nil {
				return "", errorf(abi.CodeBadRequest, "method %q is not supported (supported: %s, or several joined by +)",
					part, strings.Join(peft.MethodNames(), ", "))
			}
		}
		parts[i] = m.Name
	}
	return strings.Join(parts, "+"), nil
}

// readRecords parses JSONL training records.
func readRecords(jsonl []byte, name string) ([]data.Record, error) {
	recs, err := data.ReadJSONL(bytes.NewReader(jsonl), name)
	if err != nil {
		return nil, errorf(abi.CodeBadRequest, "%v", err)
	}
	if len(recs) == 0 {
		return nil, errorf(abi.CodeBadRequest, "%s holds no records", name)
	}
	return recs, nil
}

func setInt(dst *int, v int) {
	if v != 0 {
		*dst = v
	}
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
