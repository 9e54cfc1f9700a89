package data

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// cloneBatch copies a batch out of the loader's buffers.
func cloneBatch(b Batch) Batch {
	return Batch{B: b.B, T: b.T, IDs: slices.Clone(b.IDs), Targets: slices.Clone(b.Targets), Weights: slices.Clone(b.Weights)}
}

func TestPaddedBatches(t *testing.T) {
	bos, eos := tokID(1, false), tokID(2, true)
	exs := []Example{
		build(bos, txt("ab", true), eos),                // 4 tokens: 3 positions
		build(bos, txt("xy", false), txt("zwvu", true)), // 7 tokens: truncated to T+1 = 5
		build(bos, txt("q", true)),
	}
	l, err := NewLoader(exs, LoaderOptions{Batch: 2, SeqLen: 4, PadID: 2})
	if err != nil {
		t.Fatal(err)
	}
	if l.StepsPerEpoch() != 2 {
		t.Fatalf("StepsPerEpoch %d, want 2", l.StepsPerEpoch())
	}
	c := func(s string) int32 { return int32(s[0]) + byteOffset }
	want := []Batch{{
		B: 2, T: 4,
		IDs:     []int32{1, c("a"), c("b"), 2, 1, c("x"), c("y"), c("z")},
		Targets: []int32{c("a"), c("b"), 2, 2, c("x"), c("y"), c("z"), c("w")},
		Weights: []float32{1, 1, 1, 0, 0, 0, 1, 1},
	}, {
		// The epoch's last batch is filled up with a padding row.
		B: 2, T: 4,
		IDs:     []int32{1, 2, 2, 2, 2, 2, 2, 2},
		Targets: []int32{c("q"), 2, 2, 2, 2, 2, 2, 2},
		Weights: []float32{1, 0, 0, 0, 0, 0, 0, 0},
	}}
	for epoch := range 2 {
		for i, w := range want {
			got := l.Next(nil)
			if !reflect.DeepEqual(got, w) {
				t.Errorf("epoch %d batch %d:\ngot  %+v\nwant %+v", epoch, i, got, w)
			}
		}
		if l.Epoch() != epoch+1 {
			t.Errorf("Epoch() = %d after %d epochs", l.Epoch(), epoch+1)
		}
	}
	if got := (Batch{Weights: want[0].Weights}).Tokens(); got != 5 {
		t.Errorf("Tokens() = %d, want 5", got)
	}
}

// randomExamples makes examples whose tokens are all distinct, so a test
// can tell which example position a target came from.
func randomExamples(rng *rand.Rand, n, maxLen int) []Example {
	exs := make([]Example, n)
	next := int32(10)
	for i := range exs {
		length := 2 + rng.IntN(maxLen-1)
		ex := Example{IDs: make([]int32, length), Loss: make([]bool, length)}
		for j := range ex.IDs {
			ex.IDs[j] = next
			next++
			ex.Loss[j] = j > 0 && rng.IntN(3) > 0
		}
		ex.Loss[1+rng.IntN(length-1)] = true
		exs[i] = ex
	}
	return exs
}

// Over one epoch, packing must score every loss token exactly once, each
// predicted from the token before it in its example, and nothing else.
func TestPackingCoversEveryLossTokenOnce(t *testing.T) {
	for _, shuffle := range []bool{false, true} {
		for _, seqLen := range []int{2, 3, 7, 64} {
			rng := rand.New(rand.NewPCG(1, 2))
			exs := randomExamples(rng, 23, 12)
			prev := map[int32]int32{} // token -> token before it in its example
			loss := map[int32]bool{}
			for _, ex := range exs {
				for j := 1; j < len(ex.IDs); j++ {
					prev[ex.IDs[j]] = ex.IDs[j-1]
					loss[ex.IDs[j]] = ex.Loss[j]
				}
			}
			l, err := NewLoader(exs, LoaderOptions{Batch: 3, SeqLen: seqLen, Pack: true, Shuffle: shuffle, PadID: 0})
			if err != nil {
				t.Fatal(err)
			}
			for epoch := range 2 {
				seen := map[int32]int{}
				for range l.StepsPerEpoch() {
					b := l.Next(rng)
					if b.B != 3 || b.T != seqLen || len(b.IDs) != 3*seqLen {
						t.Fatalf("batch shape %dx%d with %d ids", b.B, b.T, len(b.IDs))
					}
					for r, w := range b.Weights {
						if w == 0 {
							continue
						}
						tgt := b.Targets[r]
						if !loss[tgt] || prev[tgt] != b.IDs[r] {
							t.Fatalf("seqLen %d: scored %d after %d, which is not a loss token following it", seqLen, tgt, b.IDs[r])
						}
						seen[tgt]++
					}
				}
				if l.Epoch() != epoch+1 {
					t.Fatalf("Epoch() = %d after %d epochs of StepsPerEpoch batches", l.Epoch(), epoch+1)
				}
				for tok, isLoss := range loss {
					if want := map[bool]int{true: 1}[isLoss]; seen[tok] != want {
						t.Fatalf("shuffle %v seqLen %d epoch %d: token %d scored %d times, want %d", shuffle, seqLen, epoch, tok, seen[tok], want)
					}
				}
			}
		}
	}
}

// Without packing every example's loss tokens within T+1 are scored once.
func TestPaddingCoversEveryExampleOnce(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	exs := randomExamples(rng, 17, 9)
	l, err := NewLoader(exs, LoaderOptions{Batch: 4, SeqLen: 9, Shuffle: true})
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, ex := range exs {
		want += ex.LossTokens()
	}
	total := 0
	for range l.StepsPerEpoch() {
		total += l.Next(rng).Tokens()
	}
	if total != want {
		t.Errorf("scored %d tokens in an epoch, want %d", total, want)
	}
}

func TestShuffleIsDeterministicAndChangesPerEpoch(t *testing.T) {
	exs := randomExamples(rand.New(rand.NewPCG(5, 6)), 40, 6)
	run := func(seed uint64) [][]int32 {
		l, err := NewLoader(exs, LoaderOptions{Batch: 8, SeqLen: 8, Shuffle: true})
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(seed, 0))
		var out [][]int32
		for range 2 * l.StepsPerEpoch() {
			out = append(out, slices.Clone(l.Next(rng).IDs))
		}
		return out
	}
	a, b, c := run(1), run(1), run(2)
	if !reflect.DeepEqual(a, b) {
		t.Error("same seed, different batches")
	}
	if reflect.DeepEqual(a, c) {
		t.Error("different seeds, same batches")
	}
	if reflect.DeepEqual(a[:5], a[5:]) {
		t.Error("two epochs in the same order")
	}
}

// A loader rebuilt from a saved State (through JSON, as a checkpoint
// stores it) and the rng's saved state must continue with exactly the
// batches of the run that never stopped, wherever it stopped.
func TestResumeFromStateIsBitIdentical(t *testing.T) {
	exs := randomExamples(rand.New(rand.NewPCG(7, 8)), 13, 10)
	for _, opt := range []LoaderOptions{
		{Batch: 3, SeqLen: 5, Shuffle: true},
		{Batch: 3, SeqLen: 5, Shuffle: true, Pack: true},
		{Batch: 2, SeqLen: 4, Pack: true},
		{Batch: 4, SeqLen: 12},
	} {
		ref, err := NewLoader(exs, opt)
		if err != nil {
			t.Fatal(err)
		}
		pcg := rand.NewPCG(9, 10)
		rng := rand.New(pcg)
		var batches []Batch
		var states [][]byte
		var rngStates [][]byte
		for range 3*ref.StepsPerEpoch() + 1 {
			st, err := json.Marshal(ref.State())
			if err != nil {
				t.Fatal(err)
			}
			rs, err := pcg.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			states, rngStates = append(states, st), append(rngStates, rs)
			batches = append(batches, cloneBatch(ref.Next(rng)))
		}
		for k := range states {
			var st LoaderState
			if err := json.Unmarshal(states[k], &st); err != nil {
				t.Fatal(err)
			}
			l, err := NewLoader(exs, opt)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.SetState(st); err != nil {
				t.Fatalf("%+v step %d: %v", opt, k, err)
			}
			p := &rand.PCG{}
			if err := p.UnmarshalBinary(rngStates[k]); err != nil {
				t.Fatal(err)
			}
			r := rand.New(p)
			for j := k; j < len(batches); j++ {
				if got := l.Next(r); !reflect.DeepEqual(got, batches[j]) {
					t.Fatalf("%+v: resumed at batch %d, batch %d differs", opt, k, j)
				}
			}
		}
	}
}

func TestSetStateRejectsMismatches(t *testing.T) {
	exs := randomExamples(rand.New(rand.NewPCG(1, 1)), 6, 5)
	l, err := NewLoader(exs, LoaderOptions{Batch: 2, SeqLen: 8, Shuffle: true})
	if err != nil {
		t.Fatal(err)
	}
	l.Next(rand.New(rand.NewPCG(1, 2)))
	good := l.State()
	if len(good.Order) != 6 || good.Step != 1 {
		t.Fatalf("state %+v", good)
	}
	tests := []struct {
		name   string
		change func(*LoaderState)
		want   string
	}{
		{"other data", func(s *LoaderState) { s.Examples = 7 }, "state is for 7 examples"},
		{"other options", func(s *LoaderState) { s.Batch = 3 }, "state is for batch 3"},
		{"step past the epoch", func(s *LoaderState) { s.Step = 3 }, "step 3 out of range"},
		{"negative epoch", func(s *LoaderState) { s.Epoch = -1 }, "out of range"},
		{"short order", func(s *LoaderState) { s.Order = s.Order[:5] }, "5 entries for 6"},
		{"repeated index", func(s *LoaderState) { s.Order = []int{0, 1, 2, 3, 4, 4} }, "not a permutation"},
		{"index out of range", func(s *LoaderState) { s.Order = []int{0, 1, 2, 3, 4, 6} }, "not a permutation"},
		{"mid-epoch without order", func(s *LoaderState) { s.Order = nil }, "no order"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := good
			s.Order = slices.Clone(good.Order)
			tt.change(&s)
			if err := l.SetState(s); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
	if err := l.SetState(good); err != nil {
		t.Fatalf("own state: %v", err)
	}
	plain, err := NewLoader(exs, LoaderOptions{Batch: 2, SeqLen: 8})
	if err != nil {
		t.Fatal(err)
	}
	s := plain.State()
	s.Order = []int{0, 1, 2, 3, 4, 5}
	if err := plain.SetState(s); err == nil || !strings.Contains(err.Error(), "does not shuffle") {
		t.Fatalf("order for an unshuffled loader: %v", err)
	}
}

func TestNewLoaderValidates(t *testing.T) {
	ok := []Example{build(tokID(1, false), txt("ab", true))}
	tests := []struct {
		name string
		exs  []Example
		opt  LoaderOptions
		want string
	}{
		{"batch 0", ok, LoaderOptions{Batch: 0, SeqLen: 4}, "batch size 0"},
		{"seqLen 1", ok, LoaderOptions{Batch: 1, SeqLen: 1}, "sequence length 1"},
		{"negative pad", ok, LoaderOptions{Batch: 1, SeqLen: 4, PadID: -1}, "pad id -1"},
		{"no examples", nil, LoaderOptions{Batch: 1, SeqLen: 4}, "no examples"},
		{"no loss", []Example{ok[0], build(txt("abc", false))}, LoaderOptions{Batch: 1, SeqLen: 4}, "example 1: no loss token"},
		{"loss only on the first token", []Example{build(txt("a", true), txt("b", false))}, LoaderOptions{Batch: 1, SeqLen: 4}, "example 0: no loss token"},
		{"loss past truncation", []Example{build(txt("abcdef", false), txt("g", true))}, LoaderOptions{Batch: 1, SeqLen: 4}, "within the first 5 of its 7 tokens"},
		{"mask length", []Example{{IDs: []int32{1, 2}, Loss: []bool{false}}}, LoaderOptions{Batch: 1, SeqLen: 4}, "1 loss flags for 2 tokens"},
		{"negative id", []Example{{IDs: []int32{1, -2}, Loss: []bool{false, true}}}, LoaderOptions{Batch: 1, SeqLen: 4}, "negative token id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewLoader(tt.exs, tt.opt); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
	// Packing keeps late loss tokens, so the truncation check is off.
	if _, err := NewLoader([]Example{build(txt("abcdef", false), txt("g", true))}, LoaderOptions{Batch: 1, SeqLen: 4, Pack: true}); err != nil {
		t.Errorf("packed: %v", err)
	}
}

func TestNextDoesNotAllocate(t *testing.T) {
	exs := randomExamples(rand.New(rand.NewPCG(2, 2)), 10, 8)
	for _, pack := range []bool{false, true} {
		l, err := NewLoader(exs, LoaderOptions{Batch: 2, SeqLen: 6, Pack: pack, Shuffle: true})
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 1))
		// Enough runs to cross several epochs and reshuffles.
		if n := testing.AllocsPerRun(50, func() { l.Next(rng) }); n != 0 {
			t.Errorf("pack %v: %v allocations per Next", pack, n)
		}
	}
}
