package data

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Split holds out examples for evaluation. heldOut below 1 is a fraction
// of the examples (rounded, at least one); 1 or more is a count. Which
// examples are held out depends only on len(examples), heldOut and seed;
// both parts keep the original order. At least one example must remain on
// each side.
func Split(examples []Example, heldOut float64, seed uint64) (train, eval []Example, err error) {
	n := len(examples)
	var k int
	switch {
	case math.IsNaN(heldOut) || heldOut <= 0:
		return nil, nil, fmt.Errorf("data split: held-out share %v, want a fraction in (0, 1) or a count", heldOut)
	case heldOut < 1:
		k = max(1, int(math.Round(heldOut*float64(n))))
	case heldOut != math.Trunc(heldOut) || heldOut > math.MaxInt32:
		return nil, nil, fmt.Errorf("data split: held-out count %v is not a whole number", heldOut)
	default:
		k = int(heldOut)
	}
	if k >= n {
		return nil, nil, fmt.Errorf("data split: holding out %d of %d examples leaves none to train on", k, n)
	}
	perm := rand.New(rand.NewPCG(seed, 0x6772616674)).Perm(n)
	held := perm[:k]
	slices.Sort(held)
	train = make([]Example, 0, n-k)
	eval = make([]Example, 0, k)
	for i, ex := range examples {
		if len(held) > 0 && held[0] == i {
			eval = append(eval, ex)
			held = held[1:]
			continue
		}
		train = append(train, ex)
	}
	return train, eval, nil
}
