package cpu

import (
	"fmt"
	"math"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/tensor"
)

// normWeight returns the RMSNorm weight as cols float32s (nil for no
// weight), dequantizing it into scratch if it is stored in another dtype;
// the caller hands a non-nil scratch back to putScratch when done.
func (c *Backend) normWeight(op string, w backend.Buffer, cols int) (ws []float32, scratch *[]float32) {
	if w == nil {
		return nil, nil
	}
	wb := c.buf(w, op, "w")
	if wb.n != cols {
		panic(fmt.Sprintf("cpu: %s: w has %d elements (shape %v), want %d", op, wb.n, wb.shape, cols))
	}
	if wb.dtype == tensor.F32 {
		return wb.data(), nil
	}
	scratch = getScratch(cols)
	wb.decode(0, *scratch)
	return *scratch, scratch
}

// releaseWeight recycles the scratch normWeight may have used.
func releaseWeight(scratch *[]float32) {
	if scratch != nil {
		putScratch(scratch)
	}
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
	if _, ok := c.hostOp(HostOpRMSNorm, []backend.Buffer{dst, x, w}, hostSlice{}, hostSlice{}, math.Float32bits(eps)); ok {
		return
	}
	d, xb := c.f32(dst, "RMSNorm", "dst"), c.f32(x, "RMSNorm", "x")
	checkSize("RMSNorm", "dst", d, xb.n)
	rows, cols := xb.dims()
	ws, scratch := c.normWeight("RMSNorm", w, cols)
	runTask(c, &c.tasks.rmsNorm, rows, elemGrain/max(cols, 1)+1,
		rmsNormTask{out: d.data(), x: xb.data(), w: ws, cols: cols, eps: eps})
	releaseWeight(scratch)
}

// rmsNormTask is RMSNorm over a range of rows.
type rmsNormTask struct {
	out, x, w []float32
	cols      int
	eps       float32
}

func (t *rmsNormTask) run(lo, hi int) {
	cols, ws := t.cols, t.w
	for r := lo; r < hi; r++ {
		xr, or := t.x[r*cols:(r+1)*cols], t.out[r*cols:(r+1)*cols]
		s := float32(invRMS(xr, t.eps))
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
}

// RMSNormBackward accumulates into dx the input gradient of RMSNorm, and into
// dw (when non-nil) the weight gradient. With r = 1/sqrt(mean(x^2)+eps) and
// g = dy*w, dx += r*g - x * r^3 * sum(g*x) / cols and dw += sum over rows of
// dy*x*r. Rows are split over goroutines for dx; dw is then summed column by
// column so the result does not depend on the thread count.
func (c *Backend) RMSNormBackward(dx, dw, dy, x, w backend.Buffer, eps float32) {
	if _, ok := c.hostOp(HostOpRMSNormBackward, []backend.Buffer{dx, dw, dy, x, w}, hostSlice{}, hostSlice{}, math.Float32bits(eps)); ok {
		return
	}
	const op = "RMSNormBackward"
	dxb, dyb, xb := c.f32(dx, op, "dx"), c.f32(dy, op, "dy"), c.f32(x, op, "x")
	checkSize(op, "dx", dxb, xb.n)
	checkSize(op, "dy", dyb, xb.n)
	rows, cols := xb.dims()
	ws, scratch := c.normWeight(op, w, cols)
	defer releaseWeight(scratch)
	var dws []float32
	if dw != nil {
		b := c.f32(dw, op, "dw")
		checkSize(op, "dw", b, cols)
		dws = b.data()
	}
	ip := getScratch64(rows)
	defer putScratch64(ip)
	t := rmsNormBackTask{dx: dxb.data(), dw: dws, dy: dyb.data(), x: xb.data(), w: ws, inv: *ip, rows: rows, cols: cols, eps: eps}
	runTask(c, &c.tasks.rmsNormBack, rows, elemGrain/max(cols, 1)+1, t)
	if dws == nil {
		return
	}
	t.weight = true
	runTask(c, &c.tasks.rmsNormBack, cols, elemGrain/max(rows, 1)+1, t)
}

// rmsNormBackTask is one of RMSNormBackward's two passes: over rows for dx
// (keeping each row's 1/rms in inv), then, when weight is set, over
// columns for dw.
type rmsNormBackTask struct {
	dx, dw, dy, x, w []float32
	inv              []float64
	rows, cols       int
	eps              float32
	weight           bool
}

func (t *rmsNormBackTask) run(lo, hi int) {
	if t.weight {
		t.weightGrad(lo, hi)
		return
	}
	cols, ws := t.cols, t.w
	for r := lo; r < hi; r++ {
		xr, gr, dr := t.x[r*cols:(r+1)*cols], t.dy[r*cols:(r+1)*cols], t.dx[r*cols:(r+1)*cols]
		s := invRMS(xr, t.eps)
		t.inv[r] = s
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
}

// weightGrad adds the dw of the columns [lo, hi), summing rows in order.
func (t *rmsNormBackTask) weightGrad(lo, hi int) {
	ap := getScratch64(hi - lo)
	defer putScratch64(ap)
	acc := *ap
	clear(acc)
	cols := t.cols
	for r := range t.rows {
		xr, gr, s := t.x[r*cols+lo:r*cols+hi], t.dy[r*cols+lo:r*cols+hi], t.inv[r]
		for j, v := range xr {
			acc[j] += float64(gr[j]) * float64(v) * s
		}
	}
	for j, a := range acc {
		t.dw[lo+j] += float32(a)
	}
}
