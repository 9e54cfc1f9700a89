package data

import (
	"reflect"
	"strings"
	"testing"
)

func numbered(n int) []Example {
	exs := make([]Example, n)
	for i := range exs {
		exs[i] = Example{IDs: []int32{1, int32(i)}, Loss: []bool{false, true}}
	}
	return exs
}

func TestSplit(t *testing.T) {
	exs := numbered(50)
	tests := []struct {
		heldOut  float64
		wantEval int
	}{{0.1, 5}, {0.001, 1}, {0.5, 25}, {7, 7}, {49, 49}}
	for _, tt := range tests {
		train, eval, err := Split(exs, tt.heldOut, 42)
		if err != nil {
			t.Fatalf("heldOut %v: %v", tt.heldOut, err)
		}
		if len(eval) != tt.wantEval || len(train)+len(eval) != len(exs) {
			t.Fatalf("heldOut %v: %d train, %d eval; want %d eval", tt.heldOut, len(train), len(eval), tt.wantEval)
		}
		// Disjoint, complete, and each side in the original order.
		seen := map[int32]bool{}
		for _, part := range [][]Example{train, eval} {
			last := int32(-1)
			for _, ex := range part {
				id := ex.IDs[1]
				if seen[id] || id <= last {
					t.Fatalf("heldOut %v: example %d repeated or out of order", tt.heldOut, id)
				}
				seen[id], last = true, id
			}
		}
		train2, eval2, _ := Split(exs, tt.heldOut, 42)
		if !reflect.DeepEqual(train, train2) || !reflect.DeepEqual(eval, eval2) {
			t.Errorf("heldOut %v: same seed, different split", tt.heldOut)
		}
	}
	_, a, _ := Split(exs, 10, 1)
	_, b, _ := Split(exs, 10, 2)
	if reflect.DeepEqual(a, b) {
		t.Error("seeds 1 and 2 hold out the same examples")
	}
}

func TestSplitErrors(t *testing.T) {
	exs := numbered(4)
	tests := []struct {
		heldOut float64
		want    string
	}{{0, "held-out share 0"}, {-0.5, "held-out share"}, {2.5, "not a whole number"}, {4, "leaves none"}, {0.99, "leaves none"}}
	for _, tt := range tests {
		if _, _, err := Split(exs, tt.heldOut, 1); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("heldOut %v: error %v, want %q", tt.heldOut, err, tt.want)
		}
	}
}
