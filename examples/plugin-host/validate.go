package main

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/native/host"
)

// requestLimits checks a request against the model before any of it
// reaches a tenant's instance: a request the model cannot serve is
// refused at once with 400, instead of after the plugin has started an
// instance and tokenized megabytes (or failing with 500).
type requestLimits struct {
	context int // the model's context, in tokens
	vocab   int
	// maxTokenBytes is the longest entry of the model's vocabulary, in
	// bytes; 0 when the model has no tokenizer. No token stands for more
	// bytes of text than its entry spells (SentencePiece writes a space as
	// the 3-byte "▁", byte-level BPE a byte as a 1- or 2-byte character,
	// special tokens match their spelling exactly), so a text of n bytes
	// is at least n/maxTokenBytes tokens: a bound got without tokenizing.
	maxTokenBytes int
}

// limitsOf reads the limits of the model the plugin loaded from path; its
// vocabulary comes from the file's tokenizer metadata alone.
func limitsOf(path string, mi host.ModelInfo) (requestLimits, error) {
	l := requestLimits{context: mi.Context, vocab: mi.Vocab}
	if !mi.HasVocab {
		return l, nil // text is refused by the plugin: it has nothing to encode it with
	}
	tok, err := model.LoadTokenizer(path)
	if err != nil {
		return l, fmt.Errorf("model %s: %w", path, err)
	}
	for id := range tok.VocabSize() {
		l.maxTokenBytes = max(l.maxTokenBytes, len(tok.TokenString(int32(id))))
	}
	return l, nil
}

func badRequest(format string, a ...any) error {
	return httpError{http.StatusBadRequest, fmt.Errorf(format, a...)}
}

// checkTrain makes every check of a training run that needs neither the
// model's weights nor the data's tokens: the settings, the method and its
// options (unset ones take graft train's defaults: the method's learning
// rate and adapter settings, then train.Spec's), and the sequence length
// and virtual tokens against the context.
func (l requestLimits) checkTrain(req host.TrainRequest) error {
	spec, err := req.TrainSpec()
	if err != nil {
		return badRequest("%v", err)
	}
	if err := spec.ValidateFor(l.context); err != nil {
		return badRequest("%v", err)
	}
	return nil
}

// checkGenerate refuses a prompt that cannot fit in the context beside one
// new token.
func (l requestLimits) checkGenerate(req host.GenerateRequest) error {
	if req.MaxTokens < 0 {
		return badRequest("max_tokens %d must be 0 (until the context is full) or more", req.MaxTokens)
	}
	if len(req.PromptIDs) > 0 {
		return l.checkIDs(req.PromptIDs, "prompt_ids", l.context-1)
	}
	return l.checkText(req.Prompt, "prompt", l.context-1)
}

// checkEval refuses a text or sequence longer than the context.
func (l requestLimits) checkEval(req host.EvalRequest) error {
	if len(req.Texts) == 0 && len(req.Sequences) == 0 {
		return badRequest("give texts or sequences to evaluate")
	}
	var errs []error
	for i, text := range req.Texts {
		errs = append(errs, l.checkText(text, fmt.Sprintf("texts[%d]", i), l.context))
	}
	for i, ids := range req.Sequences {
		errs = append(errs, l.checkIDs(ids, fmt.Sprintf("sequences[%d]", i), l.context))
	}
	if err := errors.Join(errs...); err != nil {
		return httpError{http.StatusBadRequest, err}
	}
	return nil
}

// checkText refuses a text (encoded with BOS) that is sure to take more
// than limit tokens.
func (l requestLimits) checkText(text, what string, limit int) error {
	if l.maxTokenBytes == 0 || len(text) == 0 {
		return nil // the plugin answers these
	}
	least := 1 + (len(text)+l.maxTokenBytes-1)/l.maxTokenBytes // BOS, then the text
	if least > limit {
		return badRequest("%s of %d bytes is at least %d tokens, over the %d that fit (the model's context is %d tokens)",
			what, len(text), least, limit, l.context)
	}
	return nil
}

// checkIDs refuses token ids that do not fit in limit or in the vocabulary.
func (l requestLimits) checkIDs(ids []int32, what string, limit int) error {
	if len(ids) > limit {
		return badRequest("%s has %d tokens, over the %d that fit (the model's context is %d tokens)", what, len(ids), limit, l.context)
	}
	for i, id := range ids {
		if id < 0 || int(id) >= l.vocab {
			return badRequest("%s[%d] is %d, outside the model's vocabulary of %d", what, i, id, l.vocab)
		}
	}
	return nil
}
