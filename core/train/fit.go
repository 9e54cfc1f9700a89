package train

import (
	"context"
	"fmt"
	"time"
)

// Result summarizes a finished or stopped Fit.
type Result struct {
	Steps      int     // optimizer steps completed, across resumes
	TotalSteps int     // length of the run
	Loss       float64 // token-mean training loss of the last step
	// EvalLoss is the latest eval loss; Evaluated says whether there was
	// one.
	EvalLoss  float64
	Evaluated bool
	// BestEvalLoss is the lowest finite eval loss, at BestEvalStep (0 if
	// none).
	BestEvalLoss float64
	BestEvalStep int
	Tokens       int           // input tokens trained on, across resumes
	Elapsed      time.Duration // time spent in this Fit call
	// Checkpoint is the newest checkpoint written or resumed from, or "".
	Checkpoint string
}

// Fit trains until the configured number of steps, reporting progress to
// onEvent (which may be nil). After each step it evaluates every EvalEvery
// steps and checkpoints every SaveEvery steps; the last step is always
// evaluated (when there are eval batches) and then checkpointed (when
// SaveEvery is set), so the final checkpoint records the final eval loss.
//
// Fit checks ctx between steps: when it is cancelled, Fit returns after the
// step in flight (and that step's evaluation and checkpoint) with an error
// wrapping ctx.Err(). A step whose loss or gradient norm is not finite stops
// Fit before the update is applied, with an error naming the step and the
// last good checkpoint; no checkpoint of that state is written.
//
// Training mode is on during the steps and off for evaluation and after
// Fit returns. Calling Fit again after a cancellation continues from the
// current step.
func (t *Trainer) Fit(ctx context.Context, onEvent func(Event)) (Result, error) {
	emit := func(e Event) {
		if onEvent != nil {
			onEvent(e)
		}
	}
	start := time.Now()
	startStep, startTokens := t.step, t.tokens
	base := func(kind string) Event {
		return Event{Kind: kind, Step: t.step, TotalSteps: t.total, Epoch: t.epoch(),
			Tokens: t.tokens, Elapsed: time.Since(start)}
	}

	t.obj.SetTraining(true)
	defer t.obj.SetTraining(false) // leave the model ready for inference
	evaluatedAt := -1
	for t.step < t.total {
		if err := ctx.Err(); err != nil {
			return t.result(start), fmt.Errorf("train: stopped after step %d of %d: %w", t.step, t.total, err)
		}
		res, err := t.runStep()
		if err != nil {
			return t.result(start), err
		}
		e := base(EventStep)
		e.Loss, e.LR, e.GradNorm = res.loss, res.lr, res.gradNorm
		if secs := e.Elapsed.Seconds(); secs > 0 {
			e.TokensPerSec = float64(t.tokens-startTokens) / secs
		}
		perStep := e.Elapsed / time.Duration(t.step-startStep)
		e.ETA = perStep * time.Duration(t.total-t.step)
		emit(e)

		last := t.step == t.total
		if len(t.eval) > 0 && (last || t.cfg.EvalEvery > 0 && t.step%t.cfg.EvalEvery == 0) {
			if err := t.evaluateAndEmit(base, emit); err != nil {
				return t.result(start), err
			}
			evaluatedAt = t.step
		}
		if t.cfg.SaveEvery > 0 && (last || t.step%t.cfg.SaveEvery == 0) {
			if err := t.saveAndEmit(base, emit); err != nil {
				return t.result(start), err
			}
		}
	}
	// A Fit resumed at the last step trains nothing but still evaluates.
	if len(t.eval) > 0 && evaluatedAt != t.step {
		if err := t.evaluateAndEmit(base, emit); err != nil {
			return t.result(start), err
		}
	}
	r := t.result(start)
	e := base(EventDone)
	e.Loss, e.EvalLoss = r.Loss, r.EvalLoss
	emit(e)
	return r, nil
}

func (t *Trainer) evaluateAndEmit(base func(string) Event, emit func(Event)) error {
	loss, err := t.Evaluate()
	if err != nil {
		return err
	}
	e := base(EventEval)
	e.EvalLoss = loss
	emit(e)
	return nil
}

func (t *Trainer) saveAndEmit(base func(string) Event, emit func(Event)) error {
	path, err := t.Save()
	if err != nil {
		return err
	}
	e := base(EventCheckpoint)
	e.Path = path
	emit(e)
	return nil
}

// Evaluate returns the token-mean loss over the eval batches with training
// mode off, and records it as the latest (and maybe best) evaluation.
func (t *Trainer) Evaluate() (float64, error) {
	if len(t.eval) == 0 {
		return 0, fmt.Errorf("train: no eval batches")
	}
	t.obj.SetTraining(false)
	defer t.obj.SetTraining(true)
	var sum, tokens float64
	for i, b := range t.eval {
		l, err := t.obj.Loss(b)
		if err != nil {
			return 0, fmt.Errorf("train: eval at step %d: batch %d: %w", t.step, i+1, err)
		}
		sum += l
		tokens += lossTokens(b)
	}
	loss := sum / tokens
	ev := &t.evals
	ev.done, ev.last, ev.lastStep = true, loss, t.step
	if isFinite(loss) && (!ev.hasBest || loss < ev.best) {
		ev.hasBest, ev.best, ev.bestStep = true, loss, t.step
	}
	return loss, nil
}

func (t *Trainer) result(start time.Time) Result {
	r := Result{
		Steps:      t.step,
		TotalSteps: t.total,
		Loss:       t.lastLoss,
		Evaluated:  t.evals.done,
		EvalLoss:   t.evals.last,
		Tokens:     t.tokens,
		Elapsed:    time.Since(start),
		Checkpoint: t.lastCheckpoint,
	}
	if t.evals.hasBest {
		r.BestEvalLoss, r.BestEvalStep = t.evals.best, t.evals.bestStep
	}
	return r
}
