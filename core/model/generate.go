package model

import (
	"fmt"
	"slices"

	"github.com/graft-ml/graft/core/tokenizer"
)

// GenerateOptions controls Generate.
type GenerateOptions struct {
	Sampling
	MaxTokens int // new tokens at most; 0 means until the context is full
	// StopAtEOS ends generation at the end-of-sequence token or another
	// token that ends generation (end of turn, ...: see
	// tokenizer.EndOfGeneration); that token is not emitted.
	StopAtEOS bool
	// OnToken, when set, receives each new token as it is chosen; returning
	// an error stops generation with that error.
	OnToken func(id int32) error
}

// Generate continues the prompt ids (which should start with BOS) and
// returns the new token ids.
func (m *Model) Generate(prompt []int32, opt GenerateOptions) ([]int32, error) {
	if err := opt.Sampling.Validate(); err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	if len(prompt) == 0 {
		return nil, fmt.Errorf("generate: empty prompt; start it with the BOS token")
	}
	if len(prompt) >= m.Config.Context {
		return nil, fmt.Errorf("generate: prompt of %d tokens fills the context of %d", len(prompt), m.Config.Context)
	}
	capacity := m.Config.Context
	if opt.MaxTokens > 0 && len(prompt)+opt.MaxTokens < capacity {
		capacity = len(prompt) + opt.MaxTokens
	}
	cache := m.NewCache(capacity)
	defer m.FreeCache(cache)
	sampler := NewSampler(opt.Sampling)
	var stop []int32
	if m.Tokenizer != nil && opt.StopAtEOS {
		stop = tokenizer.EndOfGeneration(m.Tokenizer)
	}
	var out []int32
	next := prompt
	for cache.fits(len(next), m) {
		logits, err := m.Forward(cache, next, false)
		if err != nil {
			return out, fmt.Errorf("generate: %w", err)
		}
		id := sampler.Next(logits)
		if slices.Contains(stop, id) {
			break
		}
		out = append(out, id)
		if opt.OnToken != nil {
			if err := opt.OnToken(id); err != nil {
				return out, err
			}
		}
		if opt.MaxTokens > 0 && len(out) >= opt.MaxTokens {
			break
		}
		next = []int32{id}
	}
	return out, nil
}
