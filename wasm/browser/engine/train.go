package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/peft"
	"github.com/graft-ml/graft/core/train"
)

// Methods Train understands.
const (
	MethodPromptTuning = "prompt-tuning"
	MethodIA3          = "ia3"
)

// TrainRequest says what to train on and how. Zero fields take the
// defaults listed beside them.
type TrainRequest struct {
	Method   string   `json:"method"`   // MethodPromptTuning or MethodIA3
	Examples []string `json:"examples"` // texts in the person's own style
	Steps    int      `json:"steps"`    // 30
	// LR is the peak learning rate: 0.03 for prompt tuning, 0.1 for IA³.
	LR     float64 `json:"lr"`
	Batch  int     `json:"batch"`  // 4
	SeqLen int     `json:"seqLen"` // 64, at most the model's context
	Warmup int     `json:"warmup"` // 0
	Seed   uint64  `json:"seed"`   // 1
	// NumVirtualTokens is the soft prompt's length (prompt tuning): 8.
	NumVirtualTokens int `json:"numVirtualTokens"`
	// InitText starts the soft prompt from this text's embeddings instead
	// of random ones (prompt tuning).
	InitText string `json:"initText"`
	// TargetModules and FeedforwardModules choose IA³'s layers; empty
	// means PEFT's defaults for the architecture.
	TargetModules      []string `json:"targetModules"`
	FeedforwardModules []string `json:"feedforwardModules"`
}

// Progress is reported after every optimizer step.
type Progress struct {
	Step         int     `json:"step"`
	TotalSteps   int     `json:"totalSteps"`
	Loss         float64 `json:"loss"`
	Tokens       int     `json:"tokens"`
	TokensPerSec float64 `json:"tokensPerSec"`
	ElapsedMS    float64 `json:"elapsedMs"`
}

// TrainResult summarizes a run.
type TrainResult struct {
	PeftType     string    `json:"peftType"`
	Params       int64     `json:"params"` // trainable values
	Steps        int       `json:"steps"`
	Losses       []float64 `json:"losses"` // one per step
	Tokens       int       `json:"tokens"`
	TokensPerSec float64   `json:"tokensPerSec"`
	ElapsedMS    float64   `json:"elapsedMs"`
}

// withDefaults fills zero fields and checks the rest.
func (r TrainRequest) withDefaults(context int) (TrainRequest, error) {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&r.Steps, 30)
	def(&r.Batch, 4)
	def(&r.SeqLen, min(64, context-1))
	def(&r.NumVirtualTokens, 8)
	if r.Seed == 0 {
		r.Seed = 1
	}
	switch r.Method {
	case MethodPromptTuning:
		if r.LR == 0 {
			r.LR = 0.03
		}
	case MethodIA3:
		if r.LR == 0 {
			r.LR = 0.1
		}
	default:
		return r, fmt.Errorf("train: method %q: want %q or %q", r.Method, MethodPromptTuning, MethodIA3)
	}
	switch {
	case len(r.Examples) == 0:
		return r, errors.New("train: no examples: give at least one text")
	case r.Steps < 1 || r.Steps > 100000:
		return r, fmt.Errorf("train: steps %d: want 1 to 100000", r.Steps)
	case r.Batch < 1 || r.Batch > 256:
		return r, fmt.Errorf("train: batch %d: want 1 to 256", r.Batch)
	case r.SeqLen < 2 || r.SeqLen >= context:
		return r, fmt.Errorf("train: seqLen %d: want 2 to %d (the model's context less one)", r.SeqLen, context-1)
	case r.LR <= 0 || r.LR > 10:
		return r, fmt.Errorf("train: lr %g: want a positive rate up to 10", r.LR)
	case r.NumVirtualTokens < 1 || r.NumVirtualTokens+r.SeqLen > context:
		return r, fmt.Errorf("train: numVirtualTokens %d: want 1 to %d (the context less seqLen)", r.NumVirtualTokens, context-r.SeqLen)
	}
	for i, ex := range r.Examples {
		if ex == "" {
			return r, fmt.Errorf("train: example %d is empty", i)
		}
	}
	return r, nil
}

// adapterConfig writes the adapter_config.json that creates the method.
func (r TrainRequest) adapterConfig() ([]byte, error) {
	doc := map[string]any{"task_type": "CAUSAL_LM"}
	switch r.Method {
	case MethodPromptTuning:
		doc["peft_type"] = peft.PeftTypePromptTuning
		doc["num_virtual_tokens"] = r.NumVirtualTokens
		doc["prompt_tuning_init"] = "RANDOM"
		if r.InitText != "" {
			doc["prompt_tuning_init"] = "TEXT"
			doc["prompt_tuning_init_text"] = r.InitText
		}
	case MethodIA3:
		doc["peft_type"] = peft.PeftTypeIA3
		if len(r.TargetModules) > 0 {
			doc["target_modules"] = r.TargetModules
		}
		if len(r.FeedforwardModules) > 0 {
			doc["feedforward_modules"] = r.FeedforwardModules
		}
	}
	return json.Marshal(doc)
}

// Train replaces the attached adapter with a new one of req.Method and
// trains it on req.Examples, calling onProgress (when not nil) after each
// step. Cancelling ctx stops after the current step with ctx's error; the
// adapter trained so far stays attached, and the result covers the steps
// done.
func (e *Engine) Train(ctx context.Context, req TrainRequest, onProgress func(Progress)) (TrainResult, error) {
	req, err := req.withDefaults(e.m.Config.Context)
	if err != nil {
		return TrainResult{}, err
	}
	cfgJSON, err := req.adapterConfig()
	if err != nil {
		return TrainResult{}, fmt.Errorf("train: %w", err)
	}
	tok := e.m.Tokenizer
	recs := make([]data.Record, len(req.Examples))
	for i := range req.Examples {
		recs[i] = data.Record{Line: i + 1, Text: &req.Examples[i]}
	}
	opt := data.DefaultOptions()
	opt.Name, opt.TextSeqLen = "examples", req.SeqLen+1
	examples, err := data.Tokenize(recs, tok, opt)
	if err != nil {
		return TrainResult{}, fmt.Errorf("train: %w", err)
	}
	pad := tok.EOS()
	if pad < 0 {
		pad = 0
	}
	loader, err := data.NewLoader(examples, data.LoaderOptions{Batch: req.Batch, SeqLen: req.SeqLen, Shuffle: true, PadID: pad})
	if err != nil {
		return TrainResult{}, fmt.Errorf("train: examples: %w", err)
	}
	tc := train.DefaultConfig()
	tc.Steps, tc.LR, tc.Warmup, tc.Seed = req.Steps, req.LR, req.Warmup, req.Seed

	if err := e.DropAdapter(); err != nil {
		return TrainResult{}, fmt.Errorf("train: %w", err)
	}
	// Seeded as graft train seeds, so the same request there starts from
	// the same adapter.
	a, err := peft.NewAdapter(e.m, cfgJSON, rand.New(rand.NewPCG(req.Seed, req.Seed^0x5eed)))
	if err != nil {
		return TrainResult{}, fmt.Errorf("train: %w", err)
	}
	defer e.m.FreeTrainingState()
	obj := &train.LM{Model: e.m, Trainable: a.Params(), Mode: a.SetTraining}
	tr, err := train.New(obj, e.m.Backend, train.LoaderSource(loader), nil, tc)
	if err != nil {
		a.Unload()
		return TrainResult{}, fmt.Errorf("train: %w", err)
	}
	res := TrainResult{PeftType: a.PeftType()}
	for _, p := range a.Params() {
		res.Params += p.Value.Shape().Numel()
	}
	onEvent := func(ev train.Event) {
		if ev.Kind != train.EventStep {
			return
		}
		res.Losses = append(res.Losses, ev.Loss)
		res.TokensPerSec, res.ElapsedMS = ev.TokensPerSec, float64(ev.Elapsed.Microseconds())/1000
		if onProgress != nil {
			onProgress(Progress{Step: ev.Step, TotalSteps: ev.TotalSteps, Loss: ev.Loss, Tokens: ev.Tokens,
				TokensPerSec: ev.TokensPerSec, ElapsedMS: res.ElapsedMS})
		}
	}
	r, err := tr.Fit(ctx, onEvent)
	res.Steps, res.Tokens = r.Steps, r.Tokens
	if err != nil && ctx.Err() == nil {
		a.Unload()
		return TrainResult{}, fmt.Errorf("train: %w", err)
	}
	e.adapter = a
	return res, err
}
