package engine

import (
	"math"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/model"
)

func TestEvaluate(t *testing.T) {
	e := loadEngine(t)
	texts := []string{"Once upon a time, there was a little dog.", "The sun was warm."}
	base, err := e.Evaluate(EvaluateRequest{Texts: texts})
	if err != nil {
		t.Fatal(err)
	}
	// The same figure as scoring each text alone with graft eval's
	// SequenceLoss, summed over the texts.
	var want model.LossStats
	for _, text := range texts {
		st, err := e.Model().SequenceLoss(e.Model().Tokenizer.Encode(text, true))
		if err != nil {
			t.Fatal(err)
		}
		want.Add(st)
	}
	if base.UsedAdapter || base.Tokens != want.Tokens || math.Abs(base.Loss-want.Loss()) > 1e-9 || math.Abs(base.Perplexity-math.Exp(base.Loss)) > 1e-9 {
		t.Fatalf("base %+v, want loss %v over %d tokens", base, want.Loss(), want.Tokens)
	}

	trainSmall(t, e, "lora")
	own, err := e.Evaluate(EvaluateRequest{Texts: styleExamples})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := e.Evaluate(EvaluateRequest{Texts: styleExamples, NoAdapter: true})
	if err != nil {
		t.Fatal(err)
	}
	if !own.UsedAdapter || plain.UsedAdapter || !(own.Loss < plain.Loss) {
		t.Fatalf("on its own examples the adapter scores %+v, the base model %+v: want lower with the adapter", own, plain)
	}
	// The adapter is back after scoring without it.
	if again, err := e.Evaluate(EvaluateRequest{Texts: styleExamples}); err != nil || again.Loss != own.Loss || !e.HasAdapter() {
		t.Fatalf("after NoAdapter: %+v, %v, adapter %v", again, err, e.HasAdapter())
	}

	for _, c := range []struct {
		texts []string
		want  string
	}{
		{nil, "no texts"},
		{[]string{"fine", ""}, "text 2"},
		{[]string{strings.Repeat("a b c d ", 400)}, "context"},
	} {
		if _, err := e.Evaluate(EvaluateRequest{Texts: c.texts}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Evaluate(%.20q): %v, want an error naming %q", c.texts, err, c.want)
		}
	}
}
