// Package train fine-tunes an Objective's trainable parameters with AdamW:
// learning-rate schedules with warmup, gradient accumulation, clipping by
// global norm, periodic evaluation, atomic checkpoints that resume
// bit-for-bit, progress events, a metrics.jsonl writer and an SVG loss plot.
//
// The semantics follow Hugging Face transformers' Trainer with
// torch.optim.AdamW: one optimizer step accumulates GradAccum micro-batches,
// its loss is the mean over all their loss tokens, the gradient norm is
// clipped as torch.nn.utils.clip_grad_norm_ does, and the scheduler's
// multiplier at 0-based step s sets that step's learning rate.
package train

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/tensor"
)

// Trainer runs the optimization loop. It is not safe for concurrent use.
type Trainer struct {
	// OnSave, when set, is called with each checkpoint's temporary
	// directory before it is renamed into place, so the caller can add
	// files (say, an adapter_config.json and adapter_model.safetensors in
	// PEFT's layout) that appear atomically with the checkpoint. An error
	// abandons the checkpoint and stops Fit.
	OnSave func(dir string) error

	obj   Objective
	be    backend.Backend
	src   Source
	eval  []data.Batch
	cfg   Config
	total int // optimizer steps in the run

	params []model.Param
	m, v   []backend.Buffer // AdamW's first and second moments, per param
	zero   backend.Buffer   // zeros of the largest parameter
	zeros  []backend.Buffer // views of zero, shaped like each grad
	// scratch is reused by every step (see stepScratch).
	scratch stepScratch

	pcg *rand.PCG
	rng *rand.Rand

	step           int // optimizer steps completed
	tokens         int // input tokens trained on, across resumes
	microBatches   int // micro-batches consumed, for the epoch count
	lastLoss       float64
	lastLR         float64
	evals          evalRecord
	lastCheckpoint string
}

// evalRecord remembers the latest and the best evaluation.
type evalRecord struct {
	done     bool // an evaluation has run
	last     float64
	lastStep int
	hasBest  bool // some evaluation gave a finite loss
	best     float64
	bestStep int
}

// New prepares a trainer: it validates cfg, resolves the number of steps,
// checks the parameters and allocates AdamW's moment buffers on be. eval may
// be empty, which turns evaluation off; its batches must not share storage
// (see EvalBatches).
func New(obj Objective, be backend.Backend, src Source, eval []data.Batch, cfg Config) (*Trainer, error) {
	if obj == nil || be == nil || src == nil {
		return nil, errors.New("train: New needs an objective, a backend and a data source")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	total, err := resolveSteps(&cfg, src)
	if err != nil {
		return nil, err
	}
	var evalTokens float64
	for _, b := range eval {
		evalTokens += lossTokens(b)
	}
	if len(eval) > 0 && evalTokens <= 0 {
		return nil, fmt.Errorf("train: the %d eval batches hold no loss tokens", len(eval))
	}
	params := obj.Params()
	if err := checkParams(params); err != nil {
		return nil, err
	}

	t := &Trainer{obj: obj, be: be, src: src, eval: eval, cfg: cfg, total: total, params: params}
	maxNumel := 0
	for _, p := range params {
		maxNumel = max(maxNumel, numel(p.Value))
	}
	zero := be.Zeros(maxNumel)
	t.zero = zero
	for _, p := range params {
		shape := p.Value.Shape()
		t.m = append(t.m, be.Zeros(shape...))
		t.v = append(t.v, be.Zeros(shape...))
		t.zeros = append(t.zeros, be.View(zero, 0, p.Grad.Shape()...))
	}
	t.pcg = rand.NewPCG(cfg.Seed, cfg.Seed)
	t.rng = rand.New(t.pcg)
	return t, nil
}

// resolveSteps returns the length of the run in optimizer steps. Epochs
// become steps as in transformers: ceil(epochs * max(1, batches/accum)).
func resolveSteps(cfg *Config, src Source) (int, error) {
	total := cfg.Steps
	if total == 0 {
		perEpoch := src.BatchesPerEpoch()
		if perEpoch <= 0 {
			return 0, fmt.Errorf("train config: epochs is %v but the data source does not know its batches per epoch; set steps", cfg.Epochs)
		}
		steps := math.Ceil(cfg.Epochs * float64(max(1, perEpoch/cfg.accum())))
		if steps > math.MaxInt32 {
			return 0, fmt.Errorf("train config: %v epochs of %d batches is too many steps", cfg.Epochs, perEpoch)
		}
		total = max(1, int(steps))
	}
	if cfg.Warmup > total {
		return 0, fmt.Errorf("train config: warmup (%d steps) is longer than the run (%d steps)", cfg.Warmup, total)
	}
	return total, nil
}

// checkParams rejects parameter lists the trainer cannot optimize or
// checkpoint by name.
func checkParams(params []model.Param) error {
	if len(params) == 0 {
		return errors.New("train: the objective has no trainable parameters")
	}
	seen := make(map[string]bool, len(params))
	for i, p := range params {
		switch {
		case p.Name == "":
			return fmt.Errorf("train: parameter %d has no name", i)
		case seen[p.Name]:
			return fmt.Errorf("train: two parameters are named %q", p.Name)
		case p.Value == nil || p.Grad == nil:
			return fmt.Errorf("train: parameter %q lacks a value or gradient buffer", p.Name)
		case p.Value.DType() != tensor.F32 || p.Grad.DType() != tensor.F32:
			return fmt.Errorf("train: parameter %q is %v with a %v gradient, want F32 for both", p.Name, p.Value.DType(), p.Grad.DType())
		case numel(p.Value) != numel(p.Grad):
			return fmt.Errorf("train: parameter %q has shape %v but its gradient %v", p.Name, p.Value.Shape(), p.Grad.Shape())
		}
		seen[p.Name] = true
	}
	return nil
}

func numel(b backend.Buffer) int { return int(b.Shape().Numel()) }

// Free releases the optimizer state on the backend (AdamW's moments);
// the trainer cannot be used afterwards.
func (t *Trainer) Free() {
	for _, bufs := range [][]backend.Buffer{t.m, t.v} {
		for _, b := range bufs {
			t.be.Free(b)
		}
	}
	if t.zero != nil {
		t.be.Free(t.zero)
	}
	t.m, t.v, t.zeros, t.zero = nil, nil, nil, nil
}

// Step returns the number of optimizer steps completed.
func (t *Trainer) Step() int { return t.step }

// TotalSteps returns the length of the run in optimizer steps.
func (t *Trainer) TotalSteps() int { return t.total }

// Config returns the configuration the trainer runs with.
func (t *Trainer) Config() Config { return t.cfg }

// epoch returns how many passes over the data the consumed micro-batches
// make, or 0 when the source does not know its length.
func (t *Trainer) epoch() float64 {
	if n := t.src.BatchesPerEpoch(); n > 0 {
		return float64(t.microBatches) / float64(n)
	}
	return 0
}
