package cpu

import (
	"fmt"
	"math"

	"github.com/graft-ml/graft/core/backend"
)

// Softmax sets each row of dst to the softmax of that row of x divided by
// temperature (0 means 1). It subtracts the row maximum before
// exponentiating. dst may be x.
func (c *Backend) Softmax(dst, x backend.Buffer, temperature float32) {
	if _, ok := c.hostOp(HostOpSoftmax, []backend.Buffer{dst, x}, hostSlice{}, hostSlice{}, math.Float32bits(temperature)); ok {
		return
	}
	d, xb := c.f32(dst, "Softmax", "dst"), c.f32(x, "Softmax", "x")
	checkSize("Softmax", "dst", d, xb.n)
	if temperature == 0 {
		temperature = 1
	}
	rows, cols := xb.dims()
	runTask(c, &c.tasks.softmax, rows, elemGrain/8/max(cols, 1)+1,
		softmaxTask{out: d.data(), x: xb.data(), cols: cols, inv: 1 / float64(temperature)})
}

// softmaxTask is Softmax over a range of rows; inv is 1/temperature.
type softmaxTask struct {
	out, x []float32
	cols   int
	inv    float64
}

func (t *softmaxTask) run(lo, hi int) {
	cols, inv := t.cols, t.inv
	for r := lo; r < hi; r++ {
		xr, or := t.x[r*cols:(r+1)*cols], t.out[r*cols:(r+1)*cols]
		inv := float32(inv)
		for j, v := range xr {
			or[j] = v * inv
		}
		scaleInPlace(or, 1/expShift(or, rowMax(or)))
	}
}

// CrossEntropy returns sum over rows r of weight[r] * -log
// softmax(logits[r])[targets[r]], from a fused log-softmax: one pass of
// exponentials per row, written straight into the gradient row when there
// is one, summed in float32 lanes and logged in float64.
// Rows whose weight is 0 are skipped: their target is not looked at (it may
// be an ignore marker such as -100) and their gradient row is zero. When
// dlogits is non-nil it is set to gradScale * weight[r] *
// (softmax(logits[r]) - onehot(targets[r])); it may be logits itself, to
// save a vocabulary-sized buffer. The loss is summed in row order, so it does
// not depend on the thread count. A target outside the vocabulary on a row
// of non-zero weight panics.
func (c *Backend) CrossEntropy(dlogits, logits backend.Buffer, targets []int32, weights []float32, gradScale float32) float64 {
	const op = "CrossEntropy"
	if weights == nil || len(weights) > 0 {
		if loss, ok := c.hostOp(HostOpCrossEntropy, []backend.Buffer{dlogits, logits}, int32Slice(targets), float32Slice(weights), math.Float32bits(gradScale)); ok {
			return loss
		}
	}
	lb := c.f32(logits, op, "logits")
	rows, vocab := lb.dims()
	if len(targets) != rows || (weights != nil && len(weights) != rows) {
		panic(fmt.Sprintf("cpu: %s: logits %v has %d rows; %d targets, %d weights", op, lb.shape, rows, len(targets), len(weights)))
	}
	var dl []float32
	if dlogits != nil {
		b := c.f32(dlogits, op, "dlogits")
		checkSize(op, "dlogits", b, lb.n)
		dl = b.data()
	}
	for r, t := range targets {
		if rowWeight(weights, r) != 0 && (t < 0 || int(t) >= vocab) {
			panic(fmt.Sprintf("cpu: %s: targets[%d] = %d is outside the vocabulary of %d", op, r, t, vocab))
		}
	}
	lp := getScratch64(rows)
	defer putScratch64(lp)
	losses := *lp
	runTask(c, &c.tasks.crossEntropy, rows, elemGrain/8/max(vocab, 1)+1, crossEntropyTask{
		dl: dl, x: lb.data(), targets: targets, weights: weights, losses: losses, vocab: vocab, gradScale: gradScale,
	})
	var loss float64
	for _, l := range losses {
		loss += l
	}
	return loss
}

// rowWeight is row r's weight in the loss: weights[r], or 1 without
// weights.
func rowWeight(weights []float32, r int) float32 {
	if weights == nil {
		return 1
	}
	return weights[r]
}

// crossEntropyTask is CrossEntropy over a range of rows, each writing its
// loss (0 for a row of weight 0) into losses.
type crossEntropyTask struct {
	dl, x     []float32
	targets   []int32
	weights   []float32
	losses    []float64
	vocab     int
	gradScale float32
}

func (t *crossEntropyTask) run(lo, hi int) {
	if t.runExternal(lo, hi) {
		return
	}
	vocab, dl := t.vocab, t.dl
	var sp *[]float32
	for r := lo; r < hi; r++ {
		w := rowWeight(t.weights, r)
		xr := t.x[r*vocab : (r+1)*vocab]
		if w == 0 {
			t.losses[r] = 0
			if dl != nil {
				clear(dl[r*vocab : (r+1)*vocab])
			}
			continue
		}
		tg := t.targets[r]
		xt := xr[tg] // read before a gradient written over the logits
		mx := rowMax(xr)
		// e holds exp(x - max): the gradient row itself when there is
		// one (so the exponentials are computed once), else scratch.
		var e []float32
		if dl != nil {
			e = dl[r*vocab : (r+1)*vocab]
		} else {
			if sp == nil {
				sp = getScratch(vocab)
				defer putScratch(sp)
			}
			e = *sp
		}
		copy(e, xr)
		sum := expShift(e, mx)
		t.losses[r] = float64(w) * (float64(mx) + math.Log(float64(sum)) - float64(xt))
		if dl == nil {
			continue
		}
		g := t.gradScale * w
		scaleInPlace(e, g/sum)
		e[tg] -= g
	}
}

// runExternal is run with the exponentials of rows [lo, hi) computed by
// the external kernels in one call (see External), and reports whether
// they did. The rest is run's per-row arithmetic.
func (t *crossEntropyTask) runExternal(lo, hi int) bool {
	vocab, dl, rows := t.vocab, t.dl, hi-lo
	if external == nil || rows*vocab < externalMinElems {
		return false
	}
	sp := getScratch(3 * rows)
	defer putScratch(sp)
	stats, xts := (*sp)[:2*rows], (*sp)[2*rows:]
	// The targets' logits, read before a gradient written over them.
	for r := lo; r < hi; r++ {
		if rowWeight(t.weights, r) != 0 {
			xts[r-lo] = t.x[r*vocab+int(t.targets[r])]
		}
	}
	var e []float32
	if dl != nil {
		e = dl[lo*vocab : hi*vocab]
	} else {
		ep := getScratch(rows * vocab)
		defer putScratch(ep)
		e = *ep
	}
	if !external.SoftmaxRows(SoftmaxRows{X: t.x[lo*vocab : hi*vocab], Out: e, Stats: stats, N: vocab, Rows: rows}) {
		return false
	}
	for r := lo; r < hi; r++ {
		w := rowWeight(t.weights, r)
		if w == 0 {
			t.losses[r] = 0
			if dl != nil {
				clear(dl[r*vocab : (r+1)*vocab])
			}
			continue
		}
		mx, sum := stats[2*(r-lo)], stats[2*(r-lo)+1]
		t.losses[r] = float64(w) * (float64(mx) + math.Log(float64(sum)) - float64(xts[r-lo]))
		if dl == nil {
			continue
		}
		g := t.gradScale * w
		er := dl[r*vocab : (r+1)*vocab]
		scaleInPlace(er, g/sum)
		er[t.targets[r]] -= g
	}
	return true
}

// rowMax returns the largest element of x (NaN if there is one, so a
// diverged model shows in its loss).
func rowMax(x []float32) float32 {
	mx := float32(math.Inf(-1))
	for _, v := range x {
		if v > mx || v != v {
			mx = v
		}
	}
	return mx
}

// scaleInPlace multiplies x by s.
func scaleInPlace(x []float32, s float32) {
	for i := range x {
		x[i] *= s
	}
}
