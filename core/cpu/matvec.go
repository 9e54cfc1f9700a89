package cpu

import (
	"fmt"

	"github.com/graft-ml/graft/core/tensor"
)

// The mat-vec of token-by-token generation, x · Wᵀ with one row of x (or
// two), reads every byte of the weight once per token: it is bound by
// memory, so a quantized weight is read as stored and decoded in
// registers straight into the dot product (fused), rather than decoded
// into scratch and read back. The fused kernels compute exactly what
// decode-then-dot computes, in the same order, so a product gives the same
// bits whichever path it takes.

// matVecRows is the most rows of x that take the fused path: each row of x
// decodes the weight again, which beyond two rows costs more than the
// decode-then-dot tiles, which decode once for all of them.
const matVecRows = 2

// blockDotKernel returns the dot product of x (blocks whole blocks of
// values) with the blocks at src.
type blockDotKernel func(blocks int, x *float32, src *byte) float32

// blockDot, where set (amd64 with AVX2), returns the fused kernel for a
// dtype, or nil for one without; simdDots says the float dot kernels are
// not the portable ones, whose order the portable fused path repeats.
var (
	blockDot func(dt tensor.DType) blockDotKernel
	simdDots bool
)

// fusedMatVec reports whether the mat-vec path reads rows of w as stored
// (ok), and through which assembly kernel (nil: the portable quantDotGo);
// otherwise it decodes them into scratch first.
func fusedMatVec(w *buffer, k int) (kern blockDotKernel, ok bool) {
	if !w.dtype.Quantized() || w.st.raw == nil || k%w.dtype.BlockElems() != 0 {
		return nil, false
	}
	if blockDot != nil {
		kern = blockDot(w.dtype)
		return kern, kern != nil
	}
	return nil, !simdDots && 256%w.dtype.BlockElems() == 0
}

// quantDotGo returns the dot product of x with the len(x) values whose
// blocks start at src, decoding at most 256 values at a time into a buffer
// on the stack: in dot1x4Go's order (one running sum) when seq, else in
// dotGo's, so it equals decoding the row and calling the one ntTile would.
func quantDotGo(dt tensor.DType, src []byte, x []float32, seq bool) float32 {
	var buf [256]float32
	be, bb := dt.BlockElems(), dt.BlockBytes()
	chunk := 256 / be * be
	var s [4]float32
	for off := 0; off < len(x); off += chunk {
		n := min(chunk, len(x)-off)
		w := buf[:n]
		if err := tensor.Decode(dt, src[off/be*bb:], w); err != nil {
			panic(fmt.Sprintf("cpu: MatMul: decode %v: %v", dt, err))
		}
		xs := x[off : off+n]
		if seq {
			s[0] = dotSeqGo(xs, w, s[0])
		} else {
			dotAccGo(xs, w, &s)
		}
	}
	if seq {
		return s[0]
	}
	return (s[0] + s[1]) + (s[2] + s[3])
}

// dotSeqGo returns s plus a[i]*b[i] summed in order: one of dot1x4Go's
// sums.
func dotSeqGo(a, b []float32, s float32) float32 {
	b = b[:len(a)]
	for i, x := range a {
		s += x * b[i]
	}
	return s
}

// matVec computes out[i, j] (+)= alpha * dot(a[i, :], w[j, :]) for the
// rows j of a tile from the stored blocks of w (see fusedMatVec).
func (mt *matmulNTTask) matVec(j0, nj, i0, i1 int) {
	out, a, w, n, k := mt.out, mt.a, mt.w, mt.n, mt.k
	be, bb := w.dtype.BlockElems(), w.dtype.BlockBytes()
	blocks := k / be
	rowBytes := blocks * bb
	raw := w.st.raw
	for r := range nj {
		j := j0 + r
		src := raw[j*rowBytes : (j+1)*rowBytes]
		// ntTile takes rows four at a time with dot1x4 and the rest with
		// dot; the portable kernel repeats whichever order applies.
		seq := r < nj&^3
		for i := i0; i < i1; i++ {
			ai := a[i*k : (i+1)*k]
			var s float32
			if mt.kern != nil {
				s = mt.kern(blocks, &ai[0], &src[0])
			} else {
				s = quantDotGo(w.dtype, src, ai, seq)
			}
			store(&out[i*n+j], s, mt.alpha, mt.acc)
		}
	}
}
