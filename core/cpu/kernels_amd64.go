//go:build !purego

package cpu

import "github.com/graft-ml/graft/core/tensor"

// Slice wrappers around the AVX2 vector primitives of gemm_amd64.s. The
// assembly handles whole steps of 16 floats; the remainder is finished
// here in Go, after the bounds have been checked once.

const simdStep = 16

func dotAVX(a, b []float32) float32 {
	n := len(a)
	b = b[:n]
	m := n &^ (simdStep - 1)
	var s float32
	if m > 0 {
		s = dotAVX2(m, &a[0], &b[0])
	}
	for i := m; i < n; i++ {
		s += a[i] * b[i]
	}
	return s
}

func dot1x4AVX(a, b0, b1, b2, b3 []float32) (s0, s1, s2, s3 float32) {
	n := len(a)
	b0, b1, b2, b3 = b0[:n], b1[:n], b2[:n], b3[:n]
	m := n &^ (simdStep - 1)
	if m > 0 {
		var out [4]float32
		dot4AVX2(m, &a[0], &b0[0], &b1[0], &b2[0], &b3[0], &out[0])
		s0, s1, s2, s3 = out[0], out[1], out[2], out[3]
	}
	for i := m; i < n; i++ {
		x := a[i]
		s0 += x * b0[i]
		s1 += x * b1[i]
		s2 += x * b2[i]
		s3 += x * b3[i]
	}
	return
}

func maxAVX(x []float32) float32 {
	n := len(x)
	k := n &^ 7
	if k == 0 {
		return maxOfGo(x)
	}
	m := maxAVX2(k, &x[0])
	for _, v := range x[k:] {
		if v > m {
			m = v
		}
	}
	return m
}

func axpyAVX(dst, x []float32, alpha float32) {
	n := len(dst)
	x = x[:n]
	m := n &^ (simdStep - 1)
	if m > 0 {
		axpyAVX2(m, &dst[0], &x[0], alpha)
	}
	for i := m; i < n; i++ {
		dst[i] += alpha * x[i]
	}
}

func axpy4AVX(dst, x0, x1, x2, x3 []float32, a0, a1, a2, a3 float32) {
	n := len(dst)
	x0, x1, x2, x3 = x0[:n], x1[:n], x2[:n], x3[:n]
	m := n &^ (simdStep - 1)
	if m > 0 {
		axpy4AVX2(m, &dst[0], &x0[0], &x1[0], &x2[0], &x3[0], a0, a1, a2, a3)
	}
	for i := m; i < n; i++ {
		dst[i] += a0*x0[i] + a1*x1[i] + a2*x2[i] + a3*x3[i]
	}
}

func expShiftAVX(x []float32, m float32) float32 {
	n := len(x)
	k := n &^ 7
	var s float32
	if k > 0 {
		s = expShiftAVX2(k, &x[0], m)
	}
	for i := k; i < n; i++ {
		e := exp32(x[i] - m)
		x[i] = e
		s += e
	}
	return s
}

func sigmoidsAVX(dst, x []float32) {
	n := len(dst)
	x = x[:n]
	k := n &^ 7
	if k > 0 {
		sigmoidAVX2(k, &dst[0], &x[0])
	}
	for i := k; i < n; i++ {
		dst[i] = sigmoid(x[i])
	}
}

// decodeAVX widens F16, BF16, Q8_0, Q4_0, Q5_0, Q2_K, Q3_K, Q4_K, Q5_K and Q6_K weights with the AVX2/F16C
// decoders, bit for bit as tensor.Decode does; it reports false for other
// dtypes, or a range it does not take whole, which tensor.Decode then
// handles (and checks).
func decodeAVX(dt tensor.DType, src []byte, dst []float32) bool {
	n := len(dst)
	if n == 0 {
		return false
	}
	switch dt {
	case tensor.F16, tensor.BF16:
		if len(src) < 2*n {
			return false
		}
		k := n &^ 7
		if k > 0 {
			if dt == tensor.F16 {
				f16DecodeAVX2(k, &dst[0], &src[0])
			} else {
				bf16DecodeAVX2(k, &dst[0], &src[0])
			}
		}
		if k < n {
			return tensor.Decode(dt, src[2*k:], dst[k:]) == nil
		}
		return true
	}
	kern, ok := blockDecoders[dt]
	if !ok {
		return false
	}
	blocks := n / dt.BlockElems()
	if n%dt.BlockElems() != 0 || len(src) < blocks*dt.BlockBytes() {
		return false
	}
	kern(blocks, &dst[0], &src[0])
	return true
}

// blockDecoders and blockDots are the generated kernels of ggml's block
// types (see tools/asmgen/blocks.go): the decoders for packed products,
// the fused decode-and-dot kernels for the mat-vec of generation.
var (
	blockDecoders = map[tensor.DType]func(blocks int, dst *float32, src *byte){
		tensor.Q8_0: q8DecodeAVX2, tensor.Q4_0: q4DecodeAVX2, tensor.Q5_0: q5DecodeAVX2,
		tensor.Q4_K: q4kDecodeAVX2, tensor.Q5_K: q5kDecodeAVX2, tensor.Q6_K: q6kDecodeAVX2,
		tensor.Q2_K: q2kDecodeAVX2, tensor.Q3_K: q3kDecodeAVX2,
	}
	blockDots = map[tensor.DType]blockDotKernel{
		tensor.Q8_0: q8DotAVX2, tensor.Q4_0: q4DotAVX2, tensor.Q5_0: q5DotAVX2,
		tensor.Q4_K: q4kDotAVX2, tensor.Q5_K: q5kDotAVX2, tensor.Q6_K: q6kDotAVX2,
		tensor.Q2_K: q2kDotAVX2, tensor.Q3_K: q3kDotAVX2,
	}
)

// pack8AVX interleaves 8 rows of src (ld apart) into dst with a stride of
// mr: eight steps at a time in assembly, the rest here.
func pack8AVX(dst, src []float32, ld, mr, kc int) {
	chunks := kc / 8
	if chunks > 0 {
		_ = src[7*ld+chunks*8-1]
		_ = dst[(chunks*8-1)*mr+7]
		transpose8AVX2(chunks, &src[0], ld, &dst[0], mr)
	}
	for p := chunks * 8; p < kc; p++ {
		d := dst[p*mr : p*mr+8]
		for r := range d {
			d[r] = src[r*ld+p]
		}
	}
}
