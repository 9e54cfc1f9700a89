package data

import "math"

// Batch is B rows of T positions of next-token prediction, row-major.
// Position r = b*T + t of row b reads input IDs[r] and is scored on
// predicting Targets[r] with weight Weights[r].
type Batch struct {
	B, T int
	// IDs are the B*T input tokens.
	IDs []int32
	// Targets are the B*T next tokens: Targets[r] follows IDs[r] in the
	// sequence.
	Targets []int32
	// Weights are 1 where Targets[r] counts in the loss and 0 for padding
	// and masked (prompt) positions.
	Weights []float32
}

// Tokens is the number of positions that count in the loss (the sum of
// Weights), the usual divisor for a mean loss.
func (b Batch) Tokens() int {
	var n float64
	for _, w := range b.Weights {
		n += float64(w)
	}
	return int(math.Round(n))
}
