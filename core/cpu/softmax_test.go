package cpu

import (
	"fmt"
	"math"
	"testing"
)

func refSoftmax(x []float64, cols int, temp float64) []float64 {
	out := make([]float64, len(x))
	for r := 0; r < len(x); r += cols {
		mx := math.Inf(-1)
		for _, v := range x[r : r+cols] {
			mx = max(mx, v/temp)
		}
		var sum float64
		for j, v := range x[r : r+cols] {
			out[r+j] = math.Exp(v/temp - mx)
			sum += out[r+j]
		}
		for j := range cols {
			out[r+j] /= sum
		}
	}
	return out
}

// refCrossEntropy is sum_r w_r * (logsumexp(x_r) - x_r[t_r]) in float64.
func refCrossEntropy(x []float64, cols int, targets []int32, weights []float32) float64 {
	var loss float64
	for r, t := range targets {
		w := 1.0
		if weights != nil {
			w = float64(weights[r])
		}
		if w == 0 {
			continue
		}
		row := x[r*cols : (r+1)*cols]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = max(mx, v)
		}
		var sum float64
		for _, v := range row {
			sum += math.Exp(v - mx)
		}
		loss += w * (mx + math.Log(sum) - row[t])
	}
	return loss
}

func TestSoftmax(t *testing.T) {
	for _, s := range []struct {
		rows, cols int
		temp       float32
	}{{1, 1, 0}, {3, 7, 0}, {5, 100, 0.7}, {2, 9, 2}} {
		for _, threads := range threadCounts {
			t.Run(fmt.Sprintf("%dx%d/T%g/%dthreads", s.rows, s.cols, s.temp, threads), func(t *testing.T) {
				c := newTestBackend(threads)
				xv := randn(newRand(4), s.rows*s.cols, 5)
				xv[0] = 80 // large logits must not overflow
				temp := float64(s.temp)
				if temp == 0 {
					temp = 1
				}
				x, dst := upload(t, c, xv, s.rows, s.cols), c.Zeros(s.rows, s.cols)
				c.Softmax(dst, x, s.temp)
				want := refSoftmax(to64(xv), s.cols, temp)
				assertClose(t, "softmax", download(t, c, dst), want, 1e-5, 1e-7)
				c.Softmax(x, x, s.temp)
				assertClose(t, "in place", download(t, c, x), want, 1e-5, 1e-7)
			})
		}
	}
}

func TestCrossEntropy(t *testing.T) {
	const rows, vocab = 6, 11
	targets := []int32{3, 0, -100, 10, 5, 5}
	weights := []float32{1, 0.5, 0, 2, 1, 0}
	for _, tc := range []struct {
		name      string
		weights   []float32
		targets   []int32
		gradScale float32
	}{
		{"unweighted", nil, []int32{3, 0, 7, 10, 5, 5}, 1},
		{"weighted with ignored rows", weights, targets, 0.25},
	} {
		for _, threads := range threadCounts {
			t.Run(fmt.Sprintf("%s/%dthreads", tc.name, threads), func(t *testing.T) {
				c := newTestBackend(threads)
				xv := randn(newRand(11), rows*vocab, 3)
				x64 := to64(xv)
				wantLoss := refCrossEntropy(x64, vocab, tc.targets, tc.weights)
				wantGrad := numGrad(func(x []float64) float64 { return refCrossEntropy(x, vocab, tc.targets, tc.weights) }, x64)
				for i := range wantGrad {
					wantGrad[i] *= float64(tc.gradScale)
				}
				logits := upload(t, c, xv, rows, vocab)
				if got := c.CrossEntropy(nil, logits, tc.targets, tc.weights, tc.gradScale); math.Abs(got-wantLoss) > 1e-6*math.Abs(wantLoss) {
					t.Errorf("loss without gradient = %v, want %v", got, wantLoss)
				}
				dl := upload(t, c, randn(newRand(1), rows*vocab, 1), rows, vocab) // overwritten
				if got := c.CrossEntropy(dl, logits, tc.targets, tc.weights, tc.gradScale); math.Abs(got-wantLoss) > 1e-6*math.Abs(wantLoss) {
					t.Errorf("loss = %v, want %v", got, wantLoss)
				}
				assertClose(t, "dlogits", download(t, c, dl), wantGrad, 1e-5, 1e-7)
				// The gradient may overwrite the logits.
				if got := c.CrossEntropy(logits, logits, tc.targets, tc.weights, tc.gradScale); math.Abs(got-wantLoss) > 1e-6*math.Abs(wantLoss) {
					t.Errorf("in-place loss = %v, want %v", got, wantLoss)
				}
				assertClose(t, "dlogits in place", download(t, c, logits), wantGrad, 1e-5, 1e-7)
			})
		}
	}
	c := New()
	mustPanic(t, "outside the vocabulary", func() { c.CrossEntropy(nil, c.Zeros(1, 4), []int32{4}, nil, 1) })
	mustPanic(t, "1 targets", func() { c.CrossEntropy(nil, c.Zeros(2, 4), []int32{0}, nil, 1) })
}
