package cpu

import (
	"fmt"
	"math"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/tensor"
)

// normWeight returns the RMSNorm weight as cols float32s (nil for no
// weight), dequantizing it if it is stored in another dtype.
func (c *Backend) normWeight(op string, w backend.Buffer, cols int) []float32 {
	if w == nil {
		return nil
	}
	wb := c.buf(w, op, "w")
	if wb.n != cols {
		panic(fmt.Sprintf("cpu: %s: w has %d elements (shape %v), want %d", op, wb.n, wb.shape, cols))
	}
	if wb.dtype == tensor.F32 {
		return wb.data()
	}
	out := make([]float32, cols)
	wb.decode(0, out)
	return out
}

// invRMS returns 1/sqrt(mean(x^2) + eps), summing the squares in float64.
func invRMS(x []float32, eps float32) float64 {
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	return 1 / math.Sqrt(ss/float64(len(x))+float64(eps))
}

// RMSNorm sets dst = x / sqrt(mean(x^2) + eps) * w row by row, with the
// mean of squares accumulated in float64. w is [cols] of any dtype, or nil.
// dst may be x.
func (c *Backend) RMSNorm(dst, x, w backend.Buffer, eps float32) {
	d, xb := c.f32(dst, "RMSNorm", "dst"), c.f32(x, "RMSNorm", "x")
	checkSize("RMSNorm", "dst", d, xb.n)
	rows, cols := xb.dims()
	ws := c.normWeight("RMSNorm", w, cols)
	out, xs := d.data(), xb.data()
	c.parallelFor(rows, elemGrain/max(cols, 1)+1, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr, or := xs[r*cols:(r+1)*cols], out[r*cols:(r+1)*cols]
			s := float32(invRMS(xr, eps))
			if ws == nil {
				for j, v := range xr {
					or[j] = v * s
				}
				continue
			}
			for j, v := range xr {
				or[j] = v * s * ws[j]
			}
		}
	})
}

// RMSNormBackward accumulates into dx the input gradient of RMSNorm, and into
// dw (when non-nil) the weight gradient. With r = 1/sqrt(mean(x^2)+eps) and
// g = dy*w, dx += r*g - x * r^3 * sum(g*x) / cols and dw += sum over rows of
// dy*x*r. Rows are split over goroutines for dx; dw is then summed column by
// column so the result does not depend on the thread count.
func (c *Backend) RMSNormBackward(dx, dw, dy, x, w backend.Buffer, eps float32) {
	const op = "RMSNormBackward"
	dxb, dyb, xb := c.f32(dx, op, "dx"), c.f32(dy, op, "dy"), c.f32(x, op, "x")
	checkSize(op, "dx", dxb, xb.n)
	checkSize(op, "dy", dyb, xb.n)
	rows, cols := xb.dims()
	ws := c.normWeight(op, w, cols)
	var dws []float32
	if dw != nil {
		b := c.f32(dw, op, "dw")
		checkSize(op, "dw", b, cols)
		dws = b.data()
	}
	dxs, dys, xs := dxb.data(), dyb.data(), xb.data()
	inv := make([]float64, rows)
	c.parallelFor(rows, elemGrain/max(cols, 1)+1, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr, gr, dr := xs[r*cols:(r+1)*cols], dys[r*cols:(r+1)*cols], dxs[r*cols:(r+1)*cols]
			s := invRMS(xr, eps)
			inv[r] = s
			var gx float64
			for j, v := range xr {
				g := float64(gr[j])
				if ws != nil {
					g *= float64(ws[j])
				}
				gx += g * float64(v)
			}
			k := s * s * s * gx / float64(cols)
			for j, v := range xr {
				g := float64(gr[j])
				if ws != nil {
					g *= float64(ws[j])
				}
				dr[j] += float32(s*g - float64(v)*k)
			}
		}
	})
	if dws == nil {
		return
	}
	c.parallelFor(cols, elemGrain/max(rows, 1)+1, func(lo, hi int) {
		acc := make([]float64, hi-lo)
		for r := range rows {
			xr, gr, s := xs[r*cols+lo:r*cols+hi], dys[r*cols+lo:r*cols+hi], inv[r]
			for j, v := range xr {
				acc[j] += float64(gr[j]) * float64(v) * s
			}
		}
		for j, a := range acc {
			dws[lo+j] += float32(a)
		}
	})
}
