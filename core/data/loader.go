package data

import (
	"errors"
	"fmt"
	"math/rand/v2"
)

// LoaderOptions configures a Loader.
type LoaderOptions struct {
	// Batch is the number of rows per batch (B), at least 1.
	Batch int
	// SeqLen is the number of positions per row (T), at least 2. A row
	// reads T+1 tokens: T inputs and, shifted by one, T targets.
	SeqLen int
	// Pack concatenates the examples into one stream and cuts it into
	// rows, instead of one example per padded row. See Loader.
	Pack bool
	// Shuffle draws a new example order at the start of every epoch.
	Shuffle bool
	// PadID fills positions past the end of the data. Its weight is 0, so
	// it only has to be a valid token id; the tokenizer's EOS is a
	// natural choice, and the zero value, token 0, works too.
	PadID int32
}

// Loader turns examples into batches of fixed shape [Batch, SeqLen],
// epoch after epoch.
//
// Without Pack, each example is one row: truncated to its first SeqLen+1
// tokens and padded after its end with PadID at weight 0. Rows are always
// padded to SeqLen, not to the longest row of the batch, so every batch
// has the same shape and a backend can reuse its activation buffers (and
// GPU pipelines) from step to step; the cost is compute spent on padding,
// which Pack avoids.
//
// With Pack, the examples, in the epoch's order, form one stream that is
// cut into rows of SeqLen+1 tokens overlapping by one, so every token of
// the stream except the first is a target exactly once per epoch; each
// keeps its example's loss flag. Examples start with BOS, whose loss flag
// is false, so the model is never scored on guessing where the next
// example begins, but attention does see the previous example in the same
// row, as in most packed pretraining.
//
// An epoch is StepsPerEpoch batches. The last batch of an epoch is filled
// up with all-padding rows (weight 0) rather than with the next epoch's
// data, so each epoch covers the data exactly once and epochs can be
// shuffled independently.
type Loader struct {
	examples []Example
	opt      LoaderOptions
	steps    int // batches per epoch
	tokens   int // total tokens, for the state's fingerprint

	order []int // this epoch's example order
	drawn bool  // order holds this epoch's draw
	epoch int
	step  int // batches already returned from this epoch

	stream     []int32 // Pack: the examples in order, concatenated
	streamLoss []bool
	rows       int // Pack: rows per epoch

	ids, targets []int32
	weights      []float32
}

// NewLoader validates the examples and options and prepares a loader. The
// examples are not copied and must not change while the loader is used.
func NewLoader(examples []Example, opt LoaderOptions) (*Loader, error) {
	if opt.Batch < 1 {
		return nil, fmt.Errorf("data loader: batch size %d, want at least 1", opt.Batch)
	}
	if opt.SeqLen < 2 {
		return nil, fmt.Errorf("data loader: sequence length %d, want at least 2", opt.SeqLen)
	}
	if opt.PadID < 0 {
		return nil, fmt.Errorf("data loader: pad id %d is negative", opt.PadID)
	}
	if len(examples) == 0 {
		return nil, errors.New("data loader: no examples")
	}
	l := &Loader{examples: examples, opt: opt, order: make([]int, len(examples))}
	for i, ex := range examples {
		if err := checkExample(ex, opt); err != nil {
			return nil, fmt.Errorf("data loader: example %d: %w", i, err)
		}
		l.tokens += len(ex.IDs)
	}
	l.identityOrder()
	if opt.Pack {
		l.stream = make([]int32, 0, l.tokens)
		l.streamLoss = make([]bool, 0, l.tokens)
		l.rows = ceilDiv(l.tokens-1, opt.SeqLen)
		l.steps = ceilDiv(l.rows, opt.Batch)
		l.buildStream()
	} else {
		l.steps = ceilDiv(len(examples), opt.Batch)
	}
	l.drawn = !opt.Shuffle
	n := opt.Batch * opt.SeqLen
	l.ids, l.targets, l.weights = make([]int32, n), make([]int32, n), make([]float32, n)
	return l, nil
}

// checkExample makes sure an example is well formed and trains something
// the loader will actually show: with padding, a target within the first
// SeqLen+1 tokens.
func checkExample(ex Example, opt LoaderOptions) error {
	if len(ex.Loss) != len(ex.IDs) {
		return fmt.Errorf("%d loss flags for %d tokens", len(ex.Loss), len(ex.IDs))
	}
	for _, id := range ex.IDs {
		if id < 0 {
			return fmt.Errorf("negative token id %d", id)
		}
	}
	seen := len(ex.IDs)
	if !opt.Pack {
		seen = min(seen, opt.SeqLen+1)
	}
	for i := 1; i < seen; i++ {
		if ex.Loss[i] {
			return nil
		}
	}
	if seen < len(ex.IDs) {
		return fmt.Errorf("no loss token within the first %d of its %d tokens; raise the sequence length or enable packing", seen, len(ex.IDs))
	}
	return errors.New("no loss token (the first token never counts: nothing predicts it)")
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

func (l *Loader) identityOrder() {
	for i := range l.order {
		l.order[i] = i
	}
}

// buildStream lays the examples out in the current order. The first token
// of each example is never a target: only the previous example precedes it.
func (l *Loader) buildStream() {
	l.stream, l.streamLoss = l.stream[:0], l.streamLoss[:0]
	for _, i := range l.order {
		ex := l.examples[i]
		l.stream = append(l.stream, ex.IDs...)
		start := len(l.streamLoss)
		l.streamLoss = append(l.streamLoss, ex.Loss...)
		l.streamLoss[start] = false
	}
}

// draw sets the order for a new epoch: a shuffle of the identity, so it
// depends only on rng, not on earlier epochs. A nil rng falls back to a
// PCG seeded with the epoch number, which keeps runs reproducible.
func (l *Loader) draw(rng *rand.Rand) {
	l.identityOrder()
	if rng == nil {
		rng = rand.New(rand.NewPCG(uint64(l.epoch), 0))
	}
	order := l.order
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	if l.opt.Pack {
		l.buildStream()
	}
	l.drawn = true
}

// Next returns the next batch, moving to a new epoch (and, with Shuffle,
// a new order drawn from rng) after the last batch of one. Batches depend
// only on the examples, the options, the loader's state and rng's
// draws. The batch's slices are the loader's own buffers: they are valid
// until the next call to Next or SetState, and Next allocates nothing
// once the loader is built (except, with Shuffle and a nil rng, the
// fallback generator once per epoch).
func (l *Loader) Next(rng *rand.Rand) Batch {
	if !l.drawn {
		l.draw(rng)
	}
	if l.opt.Pack {
		l.fillPacked()
	} else {
		l.fillPadded()
	}
	l.step++
	if l.step == l.steps {
		l.step = 0
		l.epoch++
		l.drawn = !l.opt.Shuffle
	}
	return Batch{B: l.opt.Batch, T: l.opt.SeqLen, IDs: l.ids, Targets: l.targets, Weights: l.weights}
}

func (l *Loader) fillPadded() {
	T := l.opt.SeqLen
	for b := range l.opt.Batch {
		row := b * T
		n := 0 // positions filled from the example
		if k := l.step*l.opt.Batch + b; k < len(l.order) {
			ex := l.examples[l.order[k]]
			n = min(len(ex.IDs), T+1) - 1
			for t := range n {
				l.ids[row+t] = ex.IDs[t]
				l.targets[row+t] = ex.IDs[t+1]
				l.weights[row+t] = weight(ex.Loss[t+1])
			}
		}
		l.pad(row+n, row+T)
	}
}

func (l *Loader) fillPacked() {
	T := l.opt.SeqLen
	L := len(l.stream)
	for b := range l.opt.Batch {
		row := b * T
		k := l.step*l.opt.Batch + b
		if k >= l.rows {
			l.pad(row, row+T)
			continue
		}
		start := k * T
		n := min(T, L-1-start) // positions with a target in the stream
		for t := range n {
			p := start + t
			l.ids[row+t] = l.stream[p]
			l.targets[row+t] = l.stream[p+1]
			l.weights[row+t] = weight(l.streamLoss[p+1])
		}
		l.pad(row+n, row+T)
	}
}

// pad fills positions [from, to) of the batch buffers with padding.
func (l *Loader) pad(from, to int) {
	for r := from; r < to; r++ {
		l.ids[r], l.targets[r], l.weights[r] = l.opt.PadID, l.opt.PadID, 0
	}
}

func weight(loss bool) float32 {
	if loss {
		return 1
	}
	return 0
}

// Epoch is the number of epochs completed: the 0-based epoch the next
// batch comes from.
func (l *Loader) Epoch() int { return l.epoch }

// StepsPerEpoch is the number of batches in one pass over the examples.
func (l *Loader) StepsPerEpoch() int { return l.steps }
