package cpu

import (
	"fmt"
	"math"
	"testing"

	"github.com/graft-ml/graft/core/tensor"
)

// refRMSNorm is RMSNorm written plainly in float64; w may be nil.
func refRMSNorm(x, w []float64, rows, cols int, eps float64) []float64 {
	out := make([]float64, len(x))
	for r := range rows {
		var ss float64
		for j := range cols {
			ss += x[r*cols+j] * x[r*cols+j]
		}
		s := 1 / math.Sqrt(ss/float64(cols)+eps)
		for j := range cols {
			out[r*cols+j] = x[r*cols+j] * s
			if w != nil {
				out[r*cols+j] *= w[j]
			}
		}
	}
	return out
}

var normShapes = []struct{ rows, cols int }{{1, 1}, {3, 5}, {4, 64}, {67, 130}}

func TestRMSNorm(t *testing.T) {
	const eps = 1e-5
	for _, dt := range []tensor.DType{tensor.F32, tensor.F16} {
		for _, s := range normShapes {
			for _, threads := range threadCounts {
				t.Run(fmt.Sprintf("%v/%dx%d/%dthreads", dt, s.rows, s.cols, threads), func(t *testing.T) {
					c := newTestBackend(threads)
					r := newRand(uint64(s.cols))
					xv := randn(r, s.rows*s.cols, 3)
					w, wDec := uploadAs(t, c, dt, randn(r, s.cols, 1), s.cols)
					x, dst := upload(t, c, xv, s.rows, s.cols), c.Zeros(s.rows, s.cols)
					c.RMSNorm(dst, x, w, eps)
					assertClose(t, "weighted", download(t, c, dst), refRMSNorm(to64(xv), to64(wDec), s.rows, s.cols, eps), 1e-5, 1e-6)
					c.RMSNorm(x, x, nil, eps) // in place, no weight
					assertClose(t, "in place", download(t, c, x), refRMSNorm(to64(xv), nil, s.rows, s.cols, eps), 1e-5, 1e-6)
				})
			}
		}
	}
}

func TestRMSNormBackward(t *testing.T) {
	const eps = 1e-3
	for _, s := range []struct{ rows, cols int }{{1, 1}, {3, 5}, {9, 40}} {
		for _, withW := range []bool{true, false} {
			t.Run(fmt.Sprintf("%dx%d/weight=%v", s.rows, s.cols, withW), func(t *testing.T) {
				r := newRand(uint64(s.rows))
				xv, wv, dyv := randn(r, s.rows*s.cols, 1), randn(r, s.cols, 1), randn(r, s.rows*s.cols, 1)
				dx0, dw0 := randn(r, len(xv), 1), randn(r, s.cols, 1)
				x64, w64 := to64(xv), to64(wv)
				if !withW {
					w64 = nil
				}
				loss := func([]float64) float64 { return weighted(dyv, refRMSNorm(x64, w64, s.rows, s.cols, eps)) }
				wantDX := numGrad(loss, x64)
				for i := range wantDX {
					wantDX[i] += float64(dx0[i])
				}
				var wantDW []float64
				if withW {
					wantDW = numGrad(loss, w64)
				} else {
					// The gradient of a weight of ones, which is what
					// dw receives when w is nil.
					ones := make([]float64, s.cols)
					for i := range ones {
						ones[i] = 1
					}
					w64 = ones
					wantDW = numGrad(loss, w64)
					w64 = nil
				}
				for i := range wantDW {
					wantDW[i] += float64(dw0[i])
				}
				for _, threads := range threadCounts {
					c := newTestBackend(threads)
					dx, dw := upload(t, c, dx0, s.rows, s.cols), upload(t, c, dw0, s.cols)
					w := upload(t, c, wv, s.cols)
					if !withW {
						w = nil
					}
					c.RMSNormBackward(dx, dw, upload(t, c, dyv, s.rows, s.cols), upload(t, c, xv, s.rows, s.cols), w, eps)
					assertClose(t, "dx", download(t, c, dx), wantDX, 1e-4, 1e-5)
					assertClose(t, "dw", download(t, c, dw), wantDW, 1e-4, 1e-5)
					dx2 := upload(t, c, dx0, s.rows, s.cols)
					c.RMSNormBackward(dx2, nil, upload(t, c, dyv, s.rows, s.cols), upload(t, c, xv, s.rows, s.cols), w, eps)
					assertClose(t, "dx without dw", download(t, c, dx2), wantDX, 1e-4, 1e-5)
				}
			})
		}
	}
}
