package guest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"

	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
	"github.com/graft-ml/graft/core/train"
	"github.com/graft-ml/graft/wasm/plugin/abi"
)

// Defaults of TrainArgs fields left zero.
const (
	defaultAdapter = "default"
	defaultBatch   = 4
	defaultSeqLen  = 128
)

// train creates an adapter from its config, trains it and keeps it loaded.
func (p *Plugin) train(args abi.TrainArgs) (*abi.TrainResult, error) {
	m, err := p.needModel()
	if err != nil {
		return nil, err
	}
	if m.Tokenizer == nil {
		return nil, errorf(abi.CodeBadRequest, "the model has no tokenizer to encode the training data")
	}
	if args.Adapter == "" {
		args.Adapter = defaultAdapter
	}
	if err := p.checkNewName(args.Adapter); err != nil {
		return nil, err
	}
	cfgJSON, err := adapterConfig(args)
	if err != nil {
		return nil, err
	}
	batch, seqLen := orDefault(args.Batch, defaultBatch), orDefault(args.SeqLen, defaultSeqLen)
	if batch < 1 || seqLen < 2 {
		return nil, errorf(abi.CodeBadRequest, "batch %d and seq_len %d must be at least 1 and 2", batch, seqLen)
	}
	opt := data.DefaultOptions()
	opt.ChatTemplate, opt.TextSeqLen = args.ChatTemplate, seqLen+1
	lopt := data.LoaderOptions{Batch: batch, SeqLen: seqLen, Pack: args.Pack, PadID: padID(m)}
	trainEx, err := examples(args.Data, "train data", m, opt)
	if err != nil {
		return nil, err
	}
	lopt.Shuffle = true
	loader, err := data.NewLoader(trainEx, lopt)
	if err != nil {
		return nil, errorf(abi.CodeBadRequest, "train data: %v", err)
	}
	lopt.Shuffle = false
	var evalBatches []data.Batch
	if len(args.EvalData) > 0 {
		evalEx, err := examples(args.EvalData, "eval data", m, opt)
		if err != nil {
			return nil, err
		}
		el, err := data.NewLoader(evalEx, lopt)
		if err != nil {
			return nil, errorf(abi.CodeBadRequest, "eval data: %v", err)
		}
		evalBatches = train.EvalBatches(el)
	}
	tc := train.DefaultConfig()
	tc.Steps, tc.LR, tc.Warmup, tc.Schedule, tc.Seed = args.Steps, args.LR, args.Warmup, args.Schedule, args.Seed
	tc.GradAccum, tc.WeightDecay, tc.EvalEvery = max(args.GradAccum, 1), args.WeightDecay, args.EvalEvery
	if args.MaxGradNorm != nil {
		tc.MaxGradNorm = *args.MaxGradNorm
	}
	if args.Steps <= 0 {
		return nil, errorf(abi.CodeBadRequest, "steps %d must be at least 1", args.Steps)
	}
	if err := tc.Validate(); err != nil {
		return nil, errorf(abi.CodeBadRequest, "%v", err)
	}

	// The same seeding as graft train, so a run here and one there start
	// from the same adapter.
	a, err := peft.NewAdapter(m, cfgJSON, rand.New(rand.NewPCG(args.Seed, args.Seed^0x5eed)))
	if err != nil {
		return nil, errorf(abi.CodeBadRequest, "%v", err)
	}
	res, err := p.fit(m, a, loader, evalBatches, tc, args.ProgressEvery)
	m.FreeTrainingState()
	if err != nil && res == nil {
		a.Unload()
		return nil, err
	}
	res.Adapter = p.keep(args.Adapter, a, nil)
	return res, err
}

// fit runs the trainer and streams progress to the host. A stop asked for
// by the host returns the result so far with a stopped error; any other
// failure returns no result.
func (p *Plugin) fit(m *model.Model, a peft.Adapter, loader *data.Loader, evalBatches []data.Batch, tc train.Config, every int) (*abi.TrainResult, error) {
	obj := &train.LM{Model: m, Trainable: a.Params(), Mode: a.SetTraining}
	tr, err := train.New(obj, m.Backend, train.LoaderSource(loader), evalBatches, tc)
	if err != nil {
		return nil, errorf(abi.CodeBadRequest, "%v", err)
	}
	res := &abi.TrainResult{}
	if err := p.checkInterrupted(); err != nil {
		return nil, err
	}
	if len(evalBatches) > 0 {
		before, err := tr.Evaluate()
		if err != nil {
			return nil, err
		}
		res.EvalBefore = &before
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	every = max(every, 1)
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
	r, err := tr.Fit(ctx, onEvent)
	res.Steps, res.Loss, res.Tokens = r.Steps, r.Loss, r.Tokens
	if len(evalBatches) > 0 && err == nil { // a stopped run's latest eval may be the one before it
		after := r.EvalLoss
		res.EvalAfter = &after
	}
	switch {
	case errors.Is(err, context.Canceled) && interrupted:
		return res, errorf(abi.CodeInterrupted, "interrupted by the host's deadline after step %d of %d", r.Steps, r.TotalSteps)
	case errors.Is(err, context.Canceled):
		return res, errorf(abi.CodeStopped, "stopped by the host after step %d of %d", r.Steps, r.TotalSteps)
	case err != nil:
		return nil, err
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

// adapterConfig returns args.Config, or builds adapter_config.json from
// args.Method and args.Options.
func adapterConfig(args abi.TrainArgs) ([]byte, error) {
	switch {
	case len(args.Config) > 0 && args.Method != "":
		return nil, errorf(abi.CodeBadRequest, "give config or method, not both")
	case len(args.Config) > 0:
		return args.Config, nil
	case args.Method == "":
		return nil, errorf(abi.CodeBadRequest, "give config (an adapter_config.json) or method")
	}
	doc := map[string]any{}
	for k, v := range args.Options {
		doc[k] = v
	}
	doc["peft_type"] = strings.ToUpper(strings.ReplaceAll(args.Method, "-", "_"))
	if _, ok := doc["task_type"]; !ok {
		doc["task_type"] = "CAUSAL_LM"
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, errorf(abi.CodeBadRequest, "options: %v", err)
	}
	return b, nil
}

// examples reads JSONL records and tokenizes them.
func examples(jsonl []byte, name string, m *model.Model, opt data.Options) ([]data.Example, error) {
	if len(jsonl) == 0 {
		return nil, errorf(abi.CodeBadRequest, "%s is empty", name)
	}
	recs, err := data.ReadJSONL(bytes.NewReader(jsonl), name)
	if err != nil {
		return nil, errorf(abi.CodeBadRequest, "%v", err)
	}
	opt.Name = name
	ex, err := data.Tokenize(recs, m.Tokenizer, opt)
	if err != nil {
		return nil, errorf(abi.CodeBadRequest, "%v", err)
	}
	if len(ex) == 0 {
		return nil, errorf(abi.CodeBadRequest, "%s holds no records", name)
	}
	return ex, nil
}

// padID fills padded rows (weight 0): EOS when there is one, as graft
// train does.
func padID(m *model.Model) int32 {
	if eos := m.Tokenizer.EOS(); eos >= 0 {
		return eos
	}
	return 0
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}
