package train

import (
	"fmt"
	"math"

	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/model"
)

// EvalResult is the held-out loss of a model (with whatever adapters are
// attached) as Evaluate measures it, with the settings it was measured
// under: the same numbers mean the same thing only under the same ones.
type EvalResult struct {
	// Loss is the token-mean next-token cross-entropy over the loss
	// tokens (a prompt's tokens and padding are not scored).
	Loss float64
	// Tokens is the number of tokens scored, Examples the examples read
	// and Rows the rows of SeqLen positions they filled.
	Tokens, Examples, Rows int
	// SeqLen and Pack are how the examples were cut into rows (see
	// data.Loader): padded, each example one row truncated to SeqLen+1
	// tokens, or packed into one stream.
	SeqLen int
	Pack   bool
}

// Perplexity is exp(Loss).
func (r EvalResult) Perplexity() float64 { return math.Exp(r.Loss) }

// Settings names how the loss was measured, for logs: "seq_len 256,
// padded" or "seq_len 256, packed".
func (r EvalResult) Settings() string { return RowSettings(r.SeqLen, r.Pack) }

// RowSettings names how examples are cut into rows, on which a loss
// depends: "seq_len 256, packed" or "seq_len 256, padded (one example per
// row)".
func RowSettings(seqLen int, pack bool) string {
	if pack {
		return fmt.Sprintf("seq_len %d, packed", seqLen)
	}
	return fmt.Sprintf("seq_len %d, padded (one example per row)", seqLen)
}

// Evaluate scores the held-out data of spec (Eval, EvalRecords or
// EvalExamples) on m as it is, adapters attached, exactly as Run's
// evaluations do: the same tokenizing (EOS appended, chat templates,
// plain text cut at SeqLen+1), the same rows (SeqLen, Pack; SeqLen 0
// takes Run's default, capped to the model's context less the virtual
// tokens of the adapters attached) and the same token-mean loss. So
// `graft eval` and the eval losses of `graft train` agree when given the
// same data and settings. Batch only changes how many rows run at once.
// The training fields of spec are ignored. warn (which may be nil) hears
// what the data reading lets pass but reports (AllowInvalidUTF8).
func Evaluate(m *model.Model, spec Spec, warn func(string)) (*EvalResult, error) {
	if m == nil {
		return nil, fmt.Errorf("train: Evaluate needs a model")
	}
	if count(spec.Eval != "", len(spec.EvalRecords) > 0, len(spec.EvalExamples) > 0) != 1 {
		return nil, invalidf("evaluate: give one of eval, eval_records and eval_examples")
	}
	s := Spec{Eval: spec.Eval, EvalRecords: spec.EvalRecords, EvalExamples: spec.EvalExamples, SeqLen: spec.SeqLen,
		Batch: spec.Batch, Pack: spec.Pack, ChatTemplate: spec.ChatTemplate, ChatTemplateVars: spec.ChatTemplateVars,
		AllowInvalidUTF8: spec.AllowInvalidUTF8}
	if s.Batch == 0 {
		s.Batch = DefaultBatch
	}
	if s.Batch < 1 {
		return nil, invalidf("batch is %d, want 1 or more", s.Batch)
	}
	if s.SeqLen < 0 || s.SeqLen == 1 {
		return nil, invalidf("seq_len is %d, want 2 or more", s.SeqLen)
	}
	virtual := map[string]any{}
	if n := reservedPositions(m); n > 0 {
		virtual["num_virtual_tokens"] = float64(n)
	}
	var err error
	if s.SeqLen, err = fitSeqLen(s.SeqLen, m.Config.Context, virtual); err != nil {
		return nil, err
	}
	_, evalEx, err := s.tokenize(m, warn)
	if err != nil {
		return nil, err
	}
	batches, err := s.evalBatches(evalEx, padID(m))
	if err != nil {
		return nil, err
	}
	lm := &LM{Model: m}
	r := &EvalResult{Examples: len(evalEx), SeqLen: s.SeqLen, Pack: s.Pack}
	var sum float64
	for i, b := range batches {
		l, err := lm.Loss(b)
		if err != nil {
			return nil, fmt.Errorf("%s: batch %d: %w", s.evalName(), i+1, err)
		}
		sum += l
		r.Tokens += int(lossTokens(b))
		r.Rows += rowsWithTargets(b)
	}
	if r.Tokens == 0 {
		return nil, fmt.Errorf("%s: no token to score", s.evalName())
	}
	r.Loss = sum / float64(r.Tokens)
	return r, nil
}

// evalBatches cuts eval examples into the rows every evaluation scores:
// one epoch of an unshuffled loader with the run's SeqLen and Pack.
func (s Spec) evalBatches(evalEx []data.Example, pad int32) ([]data.Batch, error) {
	el, err := data.NewLoader(evalEx, data.LoaderOptions{Batch: s.Batch, SeqLen: s.SeqLen, Pack: s.Pack, PadID: pad})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.evalName(), err)
	}
	return EvalBatches(el), nil
}

// rowsWithTargets counts the rows of a batch that score a token (the last
// batch of an epoch is filled up with empty rows).
func rowsWithTargets(b data.Batch) int {
	n := 0
	for r := range b.B {
		for _, w := range b.Weights[r*b.T : (r+1)*b.T] {
			if w != 0 {
				n++
				break
			}
		}
	}
	return n
}

// reservedPositions is the context the adapters attached to m take before
// the real tokens: prompt tuning's virtual tokens and prefix tuning's
// prefix.
func reservedPositions(m *model.Model) int {
	n := 0
	if m.Prompt != nil {
		n += m.Prompt.Virtual()
	}
	if m.Prefix != nil {
		n += m.Prefix.Len()
	}
	return n
}
