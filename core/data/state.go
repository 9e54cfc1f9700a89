package data

import (
	"errors"
	"fmt"
	"slices"
)

// LoaderState is where a Loader is, for checkpoints. Saved with the
// trainer's rng state and restored with SetState, it makes the resumed
// run draw the same batches as one that never stopped.
type LoaderState struct {
	Epoch int `json:"epoch"`
	// Step is how many batches of the epoch have been returned.
	Step int `json:"step"`
	// Order is the epoch's shuffled example order. It is empty when the
	// loader does not shuffle, and at the start of an epoch before Next
	// has drawn the order.
	Order []int `json:"order,omitempty"`

	// The rest fingerprints the data and options; SetState refuses a
	// state saved for different ones, whose Step would mean something
	// else.
	Examples int  `json:"examples"`
	Tokens   int  `json:"tokens"`
	Batch    int  `json:"batch"`
	SeqLen   int  `json:"seq_len"`
	Pack     bool `json:"pack"`
	Shuffle  bool `json:"shuffle"`
}

// State returns the loader's position. The state shares nothing with the
// loader.
func (l *Loader) State() LoaderState {
	s := LoaderState{
		Epoch:    l.epoch,
		Step:     l.step,
		Examples: len(l.examples),
		Tokens:   l.tokens,
		Batch:    l.opt.Batch,
		SeqLen:   l.opt.SeqLen,
		Pack:     l.opt.Pack,
		Shuffle:  l.opt.Shuffle,
	}
	if l.opt.Shuffle && l.drawn {
		s.Order = slices.Clone(l.order)
	}
	return s
}

// SetState moves the loader to a position State returned, from this
// loader or another built from the same examples and options.
func (l *Loader) SetState(s LoaderState) error {
	if err := l.checkState(s); err != nil {
		return fmt.Errorf("data loader: resume: %w", err)
	}
	l.epoch, l.step = s.Epoch, s.Step
	switch {
	case !l.opt.Shuffle:
		l.drawn = true
	case len(s.Order) == 0:
		l.drawn = false
	default:
		copy(l.order, s.Order)
		if l.opt.Pack {
			l.buildStream()
		}
		l.drawn = true
	}
	return nil
}

func (l *Loader) checkState(s LoaderState) error {
	want := l.State()
	if s.Examples != want.Examples || s.Tokens != want.Tokens {
		return fmt.Errorf("state is for %d examples of %d tokens, the loader has %d of %d", s.Examples, s.Tokens, want.Examples, want.Tokens)
	}
	if s.Batch != want.Batch || s.SeqLen != want.SeqLen || s.Pack != want.Pack || s.Shuffle != want.Shuffle {
		return fmt.Errorf("state is for batch %d, seq_len %d, pack %v, shuffle %v; the loader has %d, %d, %v, %v",
			s.Batch, s.SeqLen, s.Pack, s.Shuffle, want.Batch, want.SeqLen, want.Pack, want.Shuffle)
	}
	if s.Epoch < 0 || s.Step < 0 || s.Step >= l.steps {
		return fmt.Errorf("epoch %d step %d out of range (%d steps per epoch)", s.Epoch, s.Step, l.steps)
	}
	if len(s.Order) == 0 {
		if l.opt.Shuffle && s.Step > 0 {
			return fmt.Errorf("step %d of a shuffled epoch but no order", s.Step)
		}
		return nil
	}
	if !l.opt.Shuffle {
		return errors.New("an order for a loader that does not shuffle")
	}
	if len(s.Order) != len(l.examples) {
		return fmt.Errorf("order has %d entries for %d examples", len(s.Order), len(l.examples))
	}
	seen := make([]bool, len(s.Order))
	for _, i := range s.Order {
		if i < 0 || i >= len(seen) || seen[i] {
			return fmt.Errorf("order is not a permutation of 0..%d", len(seen)-1)
		}
		seen[i] = true
	}
	return nil
}
