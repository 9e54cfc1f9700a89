package engine

import (
	"fmt"

	"github.com/graft-ml/graft/core/model"
)

// EvaluateRequest asks for the loss of texts: how well the model (with the
// attached adapter, or without it) predicts them. The demo page scores
// held-out stories this way, to show that an adapter taught the person's
// style without unlearning how to tell a story.
type EvaluateRequest struct {
	// Texts are scored one by one, each with BOS and whole (at most the
	// model's context in tokens).
	Texts []string `json:"texts"`
	// NoAdapter scores with the base model alone, even when an adapter is
	// attached.
	NoAdapter bool `json:"noAdapter"`
}

// EvaluateResult is the mean negative log-likelihood per predicted token
// over all texts, as graft eval reports it.
type EvaluateResult struct {
	Loss        float64 `json:"loss"`
	Perplexity  float64 `json:"perplexity"`
	Tokens      int     `json:"tokens"`
	UsedAdapter bool    `json:"usedAdapter"`
}

// Evaluate scores req.Texts (see EvaluateRequest).
func (e *Engine) Evaluate(req EvaluateRequest) (EvaluateResult, error) {
	if len(req.Texts) == 0 {
		return EvaluateResult{}, fmt.Errorf("evaluate: no texts")
	}
	seqs := make([][]int32, len(req.Texts))
	for i, text := range req.Texts {
		if text == "" {
			return EvaluateResult{}, fmt.Errorf("evaluate: text %d is empty", i+1)
		}
		ids, err := e.encode(text, fmt.Sprintf("evaluate: text %d", i+1))
		if err != nil {
			return EvaluateResult{}, err
		}
		if len(ids) > e.m.Config.Context {
			return EvaluateResult{}, fmt.Errorf("evaluate: text %d has %d tokens, more than the model's context of %d", i+1, len(ids), e.m.Config.Context)
		}
		seqs[i] = ids
	}
	var total model.LossStats
	score := func() error {
		for i, ids := range seqs {
			st, err := e.m.SequenceLoss(ids)
			if err != nil {
				return fmt.Errorf("evaluate: text %d: %w", i+1, err)
			}
			total.Add(st)
		}
		return nil
	}
	used := e.adapter != nil && !req.NoAdapter
	var err error
	if e.adapter != nil && req.NoAdapter {
		err = e.withoutAdapter(score)
	} else {
		err = score()
	}
	if err != nil {
		return EvaluateResult{}, err
	}
	if total.Tokens == 0 { // NaN has no JSON form
		return EvaluateResult{}, fmt.Errorf("evaluate: the texts hold no token to predict after BOS")
	}
	return EvaluateResult{Loss: total.Loss(), Perplexity: total.Perplexity(), Tokens: total.Tokens, UsedAdapter: used}, nil
}
