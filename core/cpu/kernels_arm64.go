//go:build !purego

package cpu

import "github.com/graft-ml/graft/core/tensor"

// The NEON kernels of kernels_arm64.s. Every arm64 CPU has ASIMD (NEON),
// so they are switched in at start-up unconditionally; -tags purego keeps
// the portable kernels. Each wrapper checks the bounds the assembly will
// touch, so a driver bug panics in Go instead of reading past a slice,
// and finishes in Go what is left after the whole vector steps.

// gemmNEON12x8 computes a 12x8 tile of the packed matrix product.
//
//go:noescape
func gemmNEON12x8(kc int, a, b, c *float32, ldc int, alpha float32, acc bool)

// dotNEON returns the dot product of x and y; k is a multiple of 16.
//
//go:noescape
func dotNEON(k int, x, y *float32) float32

// dot4NEON computes the dot products of x with w0..w3 into out[0..3]; k is a multiple of 16.
//
//go:noescape
func dot4NEON(k int, x, w0, w1, w2, w3, out *float32)

// axpyNEON adds alpha*x to dst; k is a multiple of 16.
//
//go:noescape
func axpyNEON(k int, dst, x *float32, alpha float32)

// axpy4NEON adds a0*x0 + a1*x1 + a2*x2 + a3*x3 to dst; k is a multiple of 16.
//
//go:noescape
func axpy4NEON(k int, dst, x0, x1, x2, x3 *float32, a0, a1, a2, a3 float32)

// expShiftNEON sets x[i] = exp(x[i]-m) and returns their sum; k is a multiple of 8. A NaN stays NaN.
//
//go:noescape
func expShiftNEON(k int, x *float32, m float32) float32

// sigmoidNEON sets dst[i] = 1/(1+exp(-x[i])); k is a multiple of 8. A NaN stays NaN.
//
//go:noescape
func sigmoidNEON(k int, dst, x *float32)

// f16DecodeNEON widens k IEEE half floats to float32 (FCVTL); k is a multiple of 8.
//
//go:noescape
func f16DecodeNEON(k int, dst *float32, src *byte)

// bf16DecodeNEON widens k bfloat16 values to float32; k is a multiple of 8.
//
//go:noescape
func bf16DecodeNEON(k int, dst *float32, src *byte)

// q8DecodeNEON dequantizes Q8_0 blocks (34 bytes: half scale, 32 int8) to float32.
//
//go:noescape
func q8DecodeNEON(blocks int, dst *float32, src *byte)

// q4DecodeNEON dequantizes Q4_0 blocks (18 bytes: half scale, 32 nibbles offset by 8) to float32.
//
//go:noescape
func q4DecodeNEON(blocks int, dst *float32, src *byte)

// q4kDecodeNEON dequantizes Q4_K super-blocks (144 bytes) to float32, given each block's
// 8 sub-block scales d*sc then 8 offsets dmin*m in scales.
//
//go:noescape
func q4kDecodeNEON(blocks int, dst *float32, src *byte, scales *float32)

// q5kDecodeNEON dequantizes Q5_K super-blocks (176 bytes) to float32, given scales as
// for q4kDecodeNEON.
//
//go:noescape
func q5kDecodeNEON(blocks int, dst *float32, src *byte, scales *float32)

// q6kDecodeNEON dequantizes Q6_K super-blocks (210 bytes) to float32, given each block's
// 16 scales d*sc in scales.
//
//go:noescape
func q6kDecodeNEON(blocks int, dst *float32, src *byte, scales *float32)

// neonStep is the floats the vector loops take per iteration.
const neonStep = 16

func init() {
	dot, dot1x4, axpy, axpy4 = dotNEONSlice, dot1x4NEON, axpyNEONSlice, axpy4NEONSlice
	simdDots = true // the mat-vec of quantized weights decodes, then dots (matvec.go)
	expShift, sigmoids = expShiftNEONSlice, sigmoidsNEON
	decodeFast = decodeNEON
	k := asmKernel("neon-12x8", 12, 8, gemmNEON12x8)
	gemmKernels = append(gemmKernels, k)
	fastKernel, narrowKernel, thinKernel, kernelISA = k, k, k, "neon"
}

func dotNEONSlice(a, b []float32) float32 {
	n := len(a)
	b = b[:n]
	m := n &^ (neonStep - 1)
	var s float32
	if m > 0 {
		s = dotNEON(m, &a[0], &b[0])
	}
	for i := m; i < n; i++ {
		s += a[i] * b[i]
	}
	return s
}

func dot1x4NEON(a, b0, b1, b2, b3 []float32) (s0, s1, s2, s3 float32) {
	n := len(a)
	b0, b1, b2, b3 = b0[:n], b1[:n], b2[:n], b3[:n]
	m := n &^ (neonStep - 1)
	if m > 0 {
		var out [4]float32
		dot4NEON(m, &a[0], &b0[0], &b1[0], &b2[0], &b3[0], &out[0])
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

func axpyNEONSlice(dst, x []float32, alpha float32) {
	n := len(dst)
	x = x[:n]
	m := n &^ (neonStep - 1)
	if m > 0 {
		axpyNEON(m, &dst[0], &x[0], alpha)
	}
	for i := m; i < n; i++ {
		dst[i] += alpha * x[i]
	}
}

func axpy4NEONSlice(dst, x0, x1, x2, x3 []float32, a0, a1, a2, a3 float32) {
	n := len(dst)
	x0, x1, x2, x3 = x0[:n], x1[:n], x2[:n], x3[:n]
	m := n &^ (neonStep - 1)
	if m > 0 {
		axpy4NEON(m, &dst[0], &x0[0], &x1[0], &x2[0], &x3[0], a0, a1, a2, a3)
	}
	for i := m; i < n; i++ {
		dst[i] += a0*x0[i] + a1*x1[i] + a2*x2[i] + a3*x3[i]
	}
}

func expShiftNEONSlice(x []float32, m float32) float32 {
	n := len(x)
	k := n &^ 7
	var s float32
	if k > 0 {
		s = expShiftNEON(k, &x[0], m)
	}
	for i := k; i < n; i++ {
		e := exp32(x[i] - m)
		x[i] = e
		s += e
	}
	return s
}

func sigmoidsNEON(dst, x []float32) {
	n := len(dst)
	x = x[:n]
	k := n &^ 7
	if k > 0 {
		sigmoidNEON(k, &dst[0], &x[0])
	}
	for i := k; i < n; i++ {
		dst[i] = sigmoid(x[i])
	}
}

// decodeNEON widens F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K and Q6_K weights
// with the NEON decoders, bit for bit as tensor.Decode does (but for
// signalling NaN halves, which come out quiet as with F16C on amd64); it
// reports false for other dtypes, or a range it does not take whole, which
// tensor.Decode then handles (and checks).
func decodeNEON(dt tensor.DType, src []byte, dst []float32) bool {
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
				f16DecodeNEON(k, &dst[0], &src[0])
			} else {
				bf16DecodeNEON(k, &dst[0], &src[0])
			}
		}
		if k < n {
			return tensor.Decode(dt, src[2*k:], dst[k:]) == nil
		}
		return true
	case tensor.Q8_0, tensor.Q4_0:
		blocks := n / 32
		if n%32 != 0 || len(src) < blocks*dt.BlockBytes() {
			return false
		}
		if dt == tensor.Q8_0 {
			q8DecodeNEON(blocks, &dst[0], &src[0])
		} else {
			q4DecodeNEON(blocks, &dst[0], &src[0])
		}
		return true
	case tensor.Q4_K, tensor.Q5_K, tensor.Q6_K:
		blocks := n / 256
		if n%256 != 0 || len(src) < blocks*dt.BlockBytes() {
			return false
		}
		decodeKQuantNEON(dt, blocks, src, dst)
		return true
	}
	return false
}

// kChunk is how many K-quant super-blocks decodeKQuantNEON passes to the
// assembly at once, with their scales on the stack.
const kChunk = 16

// decodeKQuantNEON decodes whole Q4_K, Q5_K or Q6_K super-blocks. The
// 6-bit packing of Q4_K's and Q5_K's scales and mins is unpacked here in
// Go (as tensor's scaleMinK4 does), and every sub-block's scale multiplied
// out as tensor.Decode does it (float32 products, in the same order), so
// the assembly only widens quants.
func decodeKQuantNEON(dt tensor.DType, blocks int, src []byte, dst []float32) {
	bb := dt.BlockBytes()
	var sc [kChunk * 16]float32
	for b0 := 0; b0 < blocks; b0 += kChunk {
		nb := min(kChunk, blocks-b0)
		for b := range nb {
			blk := src[(b0+b)*bb : (b0+b+1)*bb]
			s := sc[16*b : 16*b+16]
			if dt != tensor.Q6_K {
				d, dmin := f16le(blk), f16le(blk[2:])
				q := blk[4:16]
				for j := range 8 {
					var s6, m6 uint8
					if j < 4 {
						s6, m6 = q[j]&63, q[j+4]&63
					} else {
						s6, m6 = q[j+4]&0xf|(q[j-4]>>6)<<4, q[j+4]>>4|(q[j]>>6)<<4
					}
					s[j], s[8+j] = d*float32(s6), dmin*float32(m6)
				}
			} else {
				d := f16le(blk[208:])
				for j, v := range blk[192:208] {
					s[j] = d * float32(int8(v))
				}
			}
		}
		out := dst[b0*256 : (b0+nb)*256]
		in := src[b0*bb : (b0+nb)*bb]
		switch dt {
		case tensor.Q4_K:
			q4kDecodeNEON(nb, &out[0], &in[0], &sc[0])
		case tensor.Q5_K:
			q5kDecodeNEON(nb, &out[0], &in[0], &sc[0])
		default:
			q6kDecodeNEON(nb, &out[0], &in[0], &sc[0])
		}
	}
}

// f16le reads a little-endian half float.
func f16le(b []byte) float32 { return tensor.F16ToF32(uint16(b[0]) | uint16(b[1])<<8) }
