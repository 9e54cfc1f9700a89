package train

import (
	"fmt"
	"math"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/data"
)

// clipEps is added to the norm before dividing, as clip_grad_norm_ does.
const clipEps = 1e-6

// stepResult describes one optimizer step.
type stepResult struct {
	loss, gradNorm, lr float64
	tokens             int // input tokens in the step's micro-batches
}

// divergedError reports a step whose loss or gradient norm is not finite.
type divergedError struct {
	step       int
	what       string // "loss" or "gradient norm"
	value      float64
	checkpoint string // last good checkpoint, or ""
}

func (e *divergedError) Error() string {
	last := "no checkpoint has been written"
	if e.checkpoint != "" {
		last = "last good checkpoint: " + e.checkpoint
	}
	return fmt.Sprintf("train: step %d: %s is %v; %s", e.step, e.what, e.value, last)
}

// runStep performs optimizer step t.step+1: it draws GradAccum
// micro-batches, accumulates the gradient of their token-mean loss, clips
// it, and applies AdamW. When the loss or the gradient norm is not finite
// it returns a divergedError and leaves the parameters and moments as they
// were.
func (t *Trainer) runStep() (stepResult, error) {
	n := t.step + 1
	batches := t.scratch.batchSlots(t.cfg.accum())
	var lossTok float64
	var res stepResult
	for i := range batches {
		b, err := t.src.Next(t.rng)
		if err != nil {
			return res, fmt.Errorf("train: step %d: next batch: %w", n, err)
		}
		batches[i] = copyBatch(batches[i], b)
		lossTok += lossTokens(b)
		res.tokens += len(b.IDs)
	}
	if lossTok <= 0 {
		return res, fmt.Errorf("train: step %d: its %d micro-batches hold no loss tokens", n, len(batches))
	}

	for i, p := range t.params {
		t.be.Copy(p.Grad, t.zeros[i])
	}
	scale := float32(1 / lossTok)
	var sumLoss float64
	for i, b := range batches {
		l, err := t.obj.LossAndGrad(b, scale, t.rng)
		if err != nil {
			return res, fmt.Errorf("train: step %d: micro-batch %d: %w", n, i+1, err)
		}
		sumLoss += l
	}
	res.loss = sumLoss / lossTok
	if !isFinite(res.loss) {
		return res, &divergedError{n, "loss", res.loss, t.lastCheckpoint}
	}

	grads := t.scratch.grads[:0]
	for _, p := range t.params {
		grads = append(grads, p.Grad)
	}
	t.scratch.grads = grads
	res.gradNorm = math.Sqrt(t.be.SumSquares(grads...))
	if !isFinite(res.gradNorm) {
		return res, &divergedError{n, "gradient norm", res.gradNorm, t.lastCheckpoint}
	}
	if coef := clipCoef(res.gradNorm, t.cfg.MaxGradNorm); coef < 1 {
		for _, g := range grads {
			t.be.Scale(g, g, float32(coef))
		}
	}

	res.lr = t.cfg.lrAt(t.step, t.total)
	h := backend.AdamW{
		LR:    float32(res.lr),
		Beta1: float32(t.cfg.Beta1),
		Beta2: float32(t.cfg.Beta2),
		Eps:   float32(t.cfg.Eps),
		Step:  n,
	}
	for i, p := range t.params {
		h.WeightDecay = float32(t.cfg.WeightDecay)
		if p.NoDecay {
			h.WeightDecay = 0
		}
		t.be.AdamWStep(p.Value, p.Grad, t.m[i], t.v[i], h)
	}
	if err := t.be.Sync(); err != nil {
		return res, fmt.Errorf("train: step %d: %s: %w", n, t.be.Name(), err)
	}
	t.step = n
	t.tokens += res.tokens
	t.microBatches += len(batches)
	t.lastLoss, t.lastLR = res.loss, res.lr
	return res, nil
}

// clipCoef returns the factor clip_grad_norm_ scales gradients by:
// maxNorm/(norm+1e-6), capped at 1; maxNorm 0 means no clipping.
func clipCoef(norm, maxNorm float64) float64 {
	if maxNorm <= 0 {
		return 1
	}
	return min(1, maxNorm/(norm+clipEps))
}

// stepScratch is what runStep needs between steps, kept on the Trainer so
// a steady-state step allocates nothing: the micro-batches of a step (a
// Source may reuse its buffers on the next call, so each is copied) and
// the list of gradient buffers.
type stepScratch struct {
	batches []data.Batch
	grads   []backend.Buffer
}

// batchSlots returns n batch slots whose slices can be reused.
func (s *stepScratch) batchSlots(n int) []data.Batch {
	if cap(s.batches) < n {
		s.batches = append(s.batches[:cap(s.batches)], make([]data.Batch, n-cap(s.batches))...)
	}
	s.batches = s.batches[:n]
	return s.batches
}

// copyBatch returns src with its slices copied into dst's storage.
func copyBatch(dst, src data.Batch) data.Batch {
	out := src
	out.IDs = reuse(dst.IDs, src.IDs)
	out.Targets = reuse(dst.Targets, src.Targets)
	out.Weights = reuse(dst.Weights, src.Weights)
	return out
}

// reuse copies src into buf's storage; a nil src stays nil.
func reuse[T any](buf, src []T) []T {
	if src == nil {
		return nil
	}
	return append(buf[:0], src...)
}
