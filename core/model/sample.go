package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// Sampling selects how the next token is chosen from the logits.
// Temperature 0 is greedy decoding; TopK 0 and TopP 0 (or 1) disable those
// filters. The same Seed gives the same tokens.
type Sampling struct {
	Temperature float32
	TopK        int
	TopP        float32
	Seed        uint64
}

// Validate rejects values outside their ranges.
func (s Sampling) Validate() error {
	switch {
	case !(s.Temperature >= 0) || math.IsInf(float64(s.Temperature), 0):
		return fmt.Errorf("temperature %g must be a finite number >= 0", s.Temperature)
	case s.TopK < 0:
		return fmt.Errorf("top-k %d must be >= 0", s.TopK)
	case !(s.TopP >= 0 && s.TopP <= 1):
		return fmt.Errorf("top-p %g must be in [0, 1]", s.TopP)
	}
	return nil
}

// Sampler draws tokens from logits according to a Sampling.
type Sampler struct {
	s     Sampling
	rng   *rand.Rand
	probs []candidate
}

type candidate struct {
	id int32
	p  float64
}

// NewSampler returns a sampler seeded from s.Seed.
func NewSampler(s Sampling) *Sampler {
	return &Sampler{s: s, rng: rand.New(rand.NewPCG(s.Seed, s.Seed^0x9e3779b97f4a7c15))}
}

// Next picks a token id from one row of logits.
func (sp *Sampler) Next(logits []float32) int32 {
	if sp.s.Temperature == 0 {
		return argmax(logits)
	}
	c := sp.probs[:0]
	maxL := float64(logits[argmax(logits)])
	inv := 1 / float64(sp.s.Temperature)
	for i, l := range logits {
		c = append(c, candidate{int32(i), (float64(l) - maxL) * inv})
	}
	// Sort by logit, ties by id, so filtering is deterministic.
	sort.Slice(c, func(i, j int) bool {
		if c[i].p != c[j].p {
			return c[i].p > c[j].p
		}
		return c[i].id < c[j].id
	})
	if k := sp.s.TopK; k > 0 && k < len(c) {
		c = c[:k]
	}
	var sum float64
	for i := range c {
		c[i].p = math.Exp(c[i].p)
		sum += c[i].p
	}
	for i := range c {
		c[i].p /= sum
	}
	if p := float64(sp.s.TopP); p > 0 && p < 1 {
		var cum float64
		for i := range c {
			cum += c[i].p
			if cum >= p {
				c = c[:i+1]
				break
			}
		}
		sum = cum
	} else {
		sum = 1
	}
	sp.probs = c
	r := sp.rng.Float64() * sum
	for _, cand := range c {
		r -= cand.p
		if r < 0 {
			return cand.id
		}
	}
	return c[len(c)-1].id
}

func argmax(x []float32) int32 {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return int32(best)
}
