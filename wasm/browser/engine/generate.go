package engine

import (
	"errors"
	"fmt"

	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
)

// GenerateRequest asks for a continuation of Prompt.
type GenerateRequest struct {
	Prompt    string `json:"prompt"`
	MaxTokens int    `json:"maxTokens"` // 0 means 64
	// Temperature 0 is greedy decoding; TopK and TopP (0: off) restrict
	// sampling, Seed makes it repeatable.
	Temperature float32 `json:"temperature"`
	TopK        int     `json:"topK"`
	TopP        float32 `json:"topP"`
	Seed        uint64  `json:"seed"`
	// NoAdapter generates with the base model alone, even when an adapter
	// is attached.
	NoAdapter bool `json:"noAdapter"`
}

// GenerateResult is the continuation, without the prompt.
type GenerateResult struct {
	Text        string  `json:"text"`
	IDs         []int32 `json:"ids"`
	UsedAdapter bool    `json:"usedAdapter"`
}

// encode tokenizes a prompt with BOS, as the model was trained.
func (e *Engine) encode(prompt, what string) ([]int32, error) {
	ids := e.m.Tokenizer.Encode(prompt, true)
	if len(ids) == 0 {
		return nil, fmt.Errorf("%s: prompt %q encodes to no tokens", what, prompt)
	}
	return ids, nil
}

// Generate continues req.Prompt.
func (e *Engine) Generate(req GenerateRequest) (GenerateResult, error) {
	if req.MaxTokens == 0 {
		req.MaxTokens = 64
	}
	if req.MaxTokens < 0 {
		return GenerateResult{}, fmt.Errorf("generate: maxTokens %d must be positive", req.MaxTokens)
	}
	ids, err := e.encode(req.Prompt, "generate")
	if err != nil {
		return GenerateResult{}, err
	}
	opt := model.GenerateOptions{
		Sampling:  model.Sampling{Temperature: req.Temperature, TopK: req.TopK, TopP: req.TopP, Seed: req.Seed},
		MaxTokens: req.MaxTokens,
		StopAtEOS: true,
	}
	var out []int32
	used := e.adapter != nil && !req.NoAdapter
	run := func() error {
		var err error
		out, err = e.m.Generate(ids, opt)
		return err
	}
	if e.adapter != nil && req.NoAdapter {
		err = e.withoutAdapter(run)
	} else {
		err = run()
	}
	if err != nil {
		return GenerateResult{}, err
	}
	if out == nil {
		out = []int32{}
	}
	return GenerateResult{Text: e.m.Tokenizer.Decode(out), IDs: out, UsedAdapter: used}, nil
}

// Logits runs one pass over prompt (with BOS) and returns the logits of
// every position, row after row (positions × vocabulary), computed with
// the attached adapter, if any.
func (e *Engine) Logits(prompt string) ([]float32, error) {
	ids, err := e.encode(prompt, "logits")
	if err != nil {
		return nil, err
	}
	return AllLogits(e.m, ids)
}

// AllLogits runs one pass of m over ids and returns every position's
// logits. Native graft and the browser share it, so that their results can
// be compared bit for bit.
func AllLogits(m *model.Model, ids []int32) ([]float32, error) {
	if len(ids) == 0 || len(ids) > m.Config.Context {
		return nil, fmt.Errorf("logits: %d tokens, want 1 to %d", len(ids), m.Config.Context)
	}
	cache := m.NewCache(len(ids))
	defer m.FreeCache(cache)
	return m.Forward(cache, ids, true)
}

// withoutAdapter detaches the adapter for the length of f: adapters act
// through hooks on the model, so the only way to run the base model alone
// is to unload the adapter and load it back from its own files.
func (e *Engine) withoutAdapter(f func() error) error {
	files, err := e.adapter.Files()
	if err != nil {
		return fmt.Errorf("detach adapter: %w", err)
	}
	if err := e.DropAdapter(); err != nil {
		return err
	}
	runErr := f()
	a, _, err := peft.LoadAdapter(e.m, peft.InMemory("adapter", files))
	if err != nil {
		return errors.Join(runErr, fmt.Errorf("reattach adapter: %w", err))
	}
	e.adapter = a
	return runErr
}
