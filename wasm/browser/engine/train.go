package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"

	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/peft"
	"github.com/graft-ml/graft/core/train"
)

// Methods the page names most often; any peft.Method name trains (see
// Methods).
const (
	MethodPromptTuning = "prompt-tuning"
	MethodIA3          = "ia3"
)

// TrainRequest is the page's training request: a train.Spec, whole (Spec,
// in graft train --config run.json's form) or in the short camelCase fields
// below, which override Spec's where set. Defaults are train.Run's and the
// method's own (peft.Method), the same as graft train's.
type TrainRequest struct {
	// Spec is a whole training run; nil starts from the zero Spec.
	Spec *train.Spec `json:"spec,omitempty"`

	// Method is a peft.Method name ("lora", "prompt-tuning", "houlsby"),
	// or several joined by "+", a mixed stack ("lora+prefix-tuning").
	Method string `json:"method,omitempty"`
	// Options are adapter_config.json fields over the method's defaults
	// ({"r": 4, "use_dora": true}).
	Options map[string]any `json:"options,omitempty"`
	// Examples are the training texts, in the person's own style;
	// EvalExamples are held out and evaluated before and after training.
	Examples     []string `json:"examples,omitempty"`
	EvalExamples []string `json:"evalExamples,omitempty"`

	// Steps or Epochs (passes over Examples) set the run's length; one of
	// them is required, as for train.Run.
	Steps  int     `json:"steps,omitempty"`
	Epochs float64 `json:"epochs,omitempty"`
	LR     float64 `json:"lr,omitempty"`
	Batch  int     `json:"batch,omitempty"`
	SeqLen int     `json:"seqLen,omitempty"`
	Warmup int     `json:"warmup,omitempty"`
	Seed   uint64  `json:"seed,omitempty"`

	// Shorthands for Options of prompt tuning, prefix tuning and IA³.
	NumVirtualTokens   int      `json:"numVirtualTokens,omitempty"`   // num_virtual_tokens
	InitText           string   `json:"initText,omitempty"`           // prompt_tuning_init "TEXT" with this text
	TargetModules      []string `json:"targetModules,omitempty"`      // target_modules
	FeedforwardModules []string `json:"feedforwardModules,omitempty"` // feedforward_modules
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
	Params       int64     `json:"params"`      // trainable values
	TotalParams  int64     `json:"totalParams"` // the base model's
	Steps        int       `json:"steps"`
	TotalSteps   int       `json:"totalSteps"` // the run's length; more than Steps when cancelled
	Losses       []float64 `json:"losses"`     // one per step
	Tokens       int       `json:"tokens"`
	TokensPerSec float64   `json:"tokensPerSec"`
	ElapsedMS    float64   `json:"elapsedMs"`
	// EvalBefore and EvalAfter are the held-out loss before the first and
	// after the last step, with eval examples (EvalAfter: of a finished
	// run).
	EvalBefore *float64 `json:"evalBefore,omitempty"`
	EvalAfter  *float64 `json:"evalAfter,omitempty"`
	// Spec is the run as train.Run carried it out, defaults filled in,
	// without the records.
	Spec *train.Spec `json:"spec,omitempty"`
}

// ToSpec is the train.Spec the request stands for.
func (r TrainRequest) ToSpec() (train.Spec, error) {
	var s train.Spec
	if r.Spec != nil {
		s = *r.Spec
	}
	if s.Data != "" || s.Eval != "" || s.Out != "" || s.Resume != "" {
		return s, errors.New("train: spec: the page has no file system: give records and eval_records, not data, eval, out or resume")
	}
	if r.Method != "" {
		s.Method = r.Method
	}
	for i, ex := range r.Examples {
		if ex == "" {
			return s, fmt.Errorf("train: example %d is empty", i)
		}
	}
	if len(r.Examples) > 0 {
		s.Records = records(r.Examples)
	}
	if len(r.EvalExamples) > 0 {
		s.EvalRecords = records(r.EvalExamples)
	}
	if len(s.Records) == 0 {
		return s, errors.New("train: no examples: give at least one text")
	}
	setInt(&s.Steps, r.Steps)
	if r.Epochs != 0 {
		s.Epochs = r.Epochs
	}
	setInt(&s.Batch, r.Batch)
	setInt(&s.SeqLen, r.SeqLen)
	setInt(&s.Warmup, r.Warmup)
	if r.LR != 0 {
		s.LR = r.LR
	}
	if r.Seed != 0 {
		s.Seed = r.Seed
	}
	opts := maps.Clone(s.Options)
	set := func(key string, v any) {
		if opts == nil {
			opts = map[string]any{}
		}
		opts[key] = v
	}
	for k, v := range r.Options {
		set(k, v)
	}
	if r.NumVirtualTokens != 0 {
		set("num_virtual_tokens", r.NumVirtualTokens)
	}
	if r.InitText != "" {
		set("prompt_tuning_init", peft.PromptInitText)
		set("prompt_tuning_init_text", r.InitText)
	}
	if len(r.TargetModules) > 0 {
		set("target_modules", r.TargetModules)
	}
	if len(r.FeedforwardModules) > 0 {
		set("feedforward_modules", r.FeedforwardModules)
	}
	s.Options = opts
	return s, nil
}

// records numbers texts as data records (line numbers name them in errors).
func records(texts []string) []data.Record {
	recs := make([]data.Record, len(texts))
	for i := range texts {
		recs[i] = data.Record{Line: i + 1, Text: &texts[i]}
	}
	return recs
}

func setInt(dst *int, v int) {
	if v != 0 {
		*dst = v
	}
}

// Train replaces the attached adapter with a new one and trains it with
// train.Run, calling onProgress (when not nil) after each step. Cancelling
// ctx stops after the current step with ctx's error; the adapter trained so
// far stays attached, and the result covers the steps done.
func (e *Engine) Train(ctx context.Context, req TrainRequest, onProgress func(Progress)) (TrainResult, error) {
	spec, err := req.ToSpec()
	if err != nil {
		return TrainResult{}, err
	}
	if err := e.DropAdapter(); err != nil {
		return TrainResult{}, fmt.Errorf("train: %w", err)
	}
	var res TrainResult
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
	rr, err := train.Run(ctx, e.m, spec, onEvent)
	if rr == nil || rr.Adapter == nil {
		if err == nil {
			err = errors.New("no adapter came back")
		}
		return TrainResult{}, fmt.Errorf("train: %w", err)
	}
	if err != nil && ctx.Err() == nil {
		_ = rr.Adapter.Unload()
		return TrainResult{}, fmt.Errorf("train: %w", err)
	}
	e.adapter = rr.Adapter
	res.PeftType, res.Params, res.TotalParams = rr.Adapter.PeftType(), rr.TrainableParams, rr.TotalParams
	res.Steps, res.TotalSteps, res.Tokens = rr.Steps, rr.TotalSteps, rr.Tokens
	if !math.IsNaN(rr.EvalBefore) {
		before := rr.EvalBefore
		res.EvalBefore = &before
	}
	if rr.Evaluated && err == nil {
		after := rr.EvalLoss
		res.EvalAfter = &after
	}
	eff := rr.Spec
	eff.Records, eff.EvalRecords = nil, nil
	res.Spec = &eff
	return res, err
}
