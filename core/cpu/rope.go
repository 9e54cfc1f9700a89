package cpu

import (
	"fmt"
	"math"
	"slices"

	"github.com/graft-ml/graft/core/backend"
)

// ApplyRoPE rotates each head of each row of x in place by the angles of
// position pos[r]. Pair i (i < d/2, d = Dims or HeadDim when Dims is 0)
// turns by pos * theta^(-2i/d). Pairs are (2i, 2i+1) for RoPEInterleaved
// and (i, i+d/2) for RoPEHalf; dimensions from d on are left alone.
//
// Frequencies, angles, sines and cosines are computed in float64 and only
// the sine and cosine are rounded to float32. llama.cpp and transformers do
// the same arithmetic in float32, so at long positions (angle error ~1e-7 *
// pos rad) they differ from this, and from each other, by their own
// rounding; this backend is the exact value to float32 precision.
func (c *Backend) ApplyRoPE(x backend.Buffer, pos []int32, r backend.RoPE) {
	c.rope("ApplyRoPE", x, pos, r, 1)
}

// ApplyRoPEBackward rotates a gradient by the negated angles: the rotation is
// orthogonal, so its transpose, which backpropagation needs, is its inverse.
func (c *Backend) ApplyRoPEBackward(dx backend.Buffer, pos []int32, r backend.RoPE) {
	c.rope("ApplyRoPEBackward", dx, pos, r, -1)
}

// rope rotates x by sign * the RoPE angles.
func (c *Backend) rope(op string, x backend.Buffer, pos []int32, r backend.RoPE, sign float64) {
	code := HostOpRoPE
	if sign < 0 {
		code = HostOpRoPEBackward
	}
	// The host cannot tell an empty table from none, nor take sizes over
	// 32 bits; those stay here, whose checks name them.
	if (r.Freqs == nil || len(r.Freqs) > 0) && r.HeadDim >= 0 && r.HeadDim <= math.MaxInt32 && r.Dims >= 0 && r.Dims <= math.MaxInt32 {
		if _, ok := c.hostOp(code, []backend.Buffer{x}, int32Slice(pos), float64Slice(r.Freqs),
			uint32(r.Style), uint32(r.HeadDim), math.Float32bits(r.Theta), uint32(r.Dims)); ok {
			return
		}
	}
	xb := c.f32(x, op, "x")
	rows, cols := xb.dims()
	hd := r.HeadDim
	d := r.Dims
	if d == 0 {
		d = hd
	}
	switch {
	case hd <= 0 || cols%hd != 0:
		panic(fmt.Sprintf("cpu: %s: HeadDim %d does not divide the %d columns of x %v", op, hd, cols, xb.shape))
	case d < 0 || d > hd || d%2 != 0:
		panic(fmt.Sprintf("cpu: %s: Dims %d must be even and at most HeadDim %d", op, r.Dims, hd))
	case r.Freqs == nil && !(r.Theta > 0):
		panic(fmt.Sprintf("cpu: %s: Theta %v must be positive", op, r.Theta))
	case r.Freqs != nil && len(r.Freqs) != d/2:
		panic(fmt.Sprintf("cpu: %s: %d Freqs for %d rotated pairs", op, len(r.Freqs), d/2))
	case len(pos) != rows:
		panic(fmt.Sprintf("cpu: %s: %d positions for %d rows", op, len(pos), rows))
	case r.Style != backend.RoPEInterleaved && r.Style != backend.RoPEHalf:
		panic(fmt.Sprintf("cpu: %s: unknown RoPE style %d", op, r.Style))
	}
	freq := r.Freqs
	if freq == nil {
		fp := getScratch64(d / 2)
		defer putScratch64(fp)
		freq = *fp
		for i := range freq {
			freq[i] = math.Pow(float64(r.Theta), -2*float64(i)/float64(d))
		}
	}
	t := ropeTask{x: xb.data(), pos: pos, freq: freq, cols: cols, headDim: hd, dims: d, halfStyle: r.Style == backend.RoPEHalf, sign: sign}
	// A batch repeats its positions (every sequence of a training batch
	// runs 0..T-1): when the rows span no more positions than there are
	// rows, the sines and cosines are computed once per position, into a
	// table the rows share, rather than once per row. Same values, so the
	// same bits.
	if len(pos) > 0 {
		lo, hi := int(slices.Min(pos)), int(slices.Max(pos))
		if span := hi - lo + 1; span <= rows {
			half := len(freq)
			tp := getScratch(2 * half * span)
			defer putScratch(tp)
			t.table, t.first = *tp, int32(lo)
			for i := range span {
				t.angles(float64(lo+i), t.table[2*half*i:][:2*half])
			}
		}
	}
	runTask(c, &c.tasks.rope, rows, elemGrain/max(cols, 1)+1, t)
}

// ropeTask rotates a range of rows.
type ropeTask struct {
	x                   []float32
	pos                 []int32
	freq                []float64 // per pair
	cols, headDim, dims int
	halfStyle           bool // RoPEHalf pairing
	sign                float64
	// table holds each position's cosines then sines from position first
	// on, when rope made one; nil otherwise.
	table []float32
	first int32
}

// angles writes the cosines then the (signed) sines of position p's
// angles to cs.
func (t *ropeTask) angles(p float64, cs []float32) {
	half := len(t.freq)
	for i, f := range t.freq {
		s, c := math.Sincos(p * f)
		cs[i], cs[half+i] = float32(c), float32(t.sign*s)
	}
}

func (t *ropeTask) run(lo, hi int) {
	half, d, hd, cols := len(t.freq), t.dims, t.headDim, t.cols
	cs := t.table
	if t.table == nil {
		sp := getScratch(2 * half)
		defer putScratch(sp)
		cs = *sp
	}
	for row := lo; row < hi; row++ {
		if t.table != nil {
			cs = t.table[2*half*int(t.pos[row]-t.first):][:2*half]
		} else {
			t.angles(float64(t.pos[row]), cs)
		}
		cos, sin := cs[:half], cs[half:]
		for h := 0; h < cols; h += hd {
			head := t.x[row*cols+h : row*cols+h+hd]
			if t.halfStyle {
				rotateHalf(head[:half], head[half:d], cos, sin)
			} else {
				rotateInterleaved(head[:d], cos, sin)
			}
		}
	}
}

// rotateInterleaved turns each pair (x[2i], x[2i+1]) by the angle whose
// cosine and sine are cos[i] and sin[i]. The products are rounded before
// they are added (the float32 conversions forbid a fused multiply-add),
// so both pairings give the same bits on every platform: on arm64 the
// compiler would otherwise fuse one product of each sum, differently in
// the two loops.
func rotateInterleaved(x, cos, sin []float32) {
	for i, c := range cos {
		s := sin[i]
		a, b := x[2*i], x[2*i+1]
		x[2*i] = float32(a*c) - float32(b*s)
		x[2*i+1] = float32(a*s) + float32(b*c)
	}
}

// rotateHalf turns each pair (lo[i], hi[i]) like rotateInterleaved.
func rotateHalf(lo, hi, cos, sin []float32) {
	hi = hi[:len(lo)]
	for i, c := range cos {
		s := sin[i]
		a, b := lo[i], hi[i]
		lo[i] = float32(a*c) - float32(b*s)
		hi[i] = float32(a*s) + float32(b*c)
	}
}
