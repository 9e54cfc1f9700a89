package model

import (
	"fmt"
	"math"
)

// LossStats is the summed negative log-likelihood over a set of sequences.
type LossStats struct {
	SumNLL float64 // sum over predicted positions of -log p(token)
	Tokens int     // number of predicted positions
}

// Loss is the mean negative log-likelihood per predicted token.
func (s LossStats) Loss() float64 {
	if s.Tokens == 0 {
		return math.NaN()
	}
	return s.SumNLL / float64(s.Tokens)
}

// Perplexity is exp(Loss).
func (s LossStats) Perplexity() float64 { return math.Exp(s.Loss()) }

// Add accumulates o into s.
func (s *LossStats) Add(o LossStats) { s.SumNLL += o.SumNLL; s.Tokens += o.Tokens }

// SequenceLoss scores one sequence: the sum over positions t >= 1 of
// -log p(ids[t] | ids[:t]). Sequences shorter than two tokens score nothing.
func (m *Model) SequenceLoss(ids []int32) (LossStats, error) {
	if len(ids) < 2 {
		return LossStats{}, nil
	}
	if len(ids) > m.Config.Context {
		return LossStats{}, fmt.Errorf("sequence of %d tokens exceeds the context of %d", len(ids), m.Config.Context)
	}
	b := m.Backend
	cache := m.NewCache(len(ids) - 1)
	defer m.FreeCache(cache)
	s, err := m.forward(cache, ids[:len(ids)-1], true)
	if err != nil {
		return LossStats{}, err
	}
	defer s.free(b)
	nll := b.CrossEntropy(nil, s.logits, ids[1:], nil, 0)
	if math.IsNaN(nll) || math.IsInf(nll, 0) {
		return LossStats{}, fmt.Errorf("loss is %v", nll)
	}
	return LossStats{SumNLL: nll, Tokens: len(ids) - 1}, nil
}
