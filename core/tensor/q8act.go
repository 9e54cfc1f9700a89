package tensor

import (
	"fmt"
	"math"
)

// Activation blocks: before llama.cpp's CPU backend multiplies a row of
// activations by a quantized weight, it rounds the row to 8-bit blocks
// (ggml's vec_dot_type of the weight) once, and takes integer dot products
// of those with the weight's raw quants. The K-quants and IQ4_XS pair with
// Q8_K (256 values, a float32 scale and the sums of each 16 quants);
// Q4_0, Q5_0, Q8_0 and IQ4_NL with Q8_0 (32 values, an f16 scale); Q4_1
// and Q5_1 with Q8_1 (Q8_0 plus s = d*sum(q) as f16, which carries the
// weight's min term). The structs have the byte layout of ggml's C
// structs (block_q8_K is 292 bytes, block_q8_0 34, block_q8_1 36), so
// assembly reads them as ggml's kernels do.

// ActQ8K is ggml's block_q8_K: value i is D * Qs[i]; Bsums[j] is the sum
// of Qs[16j : 16j+16].
type ActQ8K struct {
	D     float32
	Qs    [qkK]int8
	Bsums [qkK / 16]int16
}

// ActQ8_0 is ggml's block_q8_0: value i is f16(D) * Qs[i].
type ActQ8_0 struct {
	D  uint16 // f16
	Qs [qk]int8
}

// ActQ8_1 is ggml's block_q8_1: ActQ8_0 plus S = f16(d * sum(Qs)), with d
// the float32 scale before its rounding to f16.
type ActQ8_1 struct {
	D, S uint16 // f16
	Qs   [qk]int8
}

// QuantizeQ8K rounds x (len(x) = 256*len(dst)) to Q8_K blocks as ggml's
// quantize_row_q8_K_ref does, which is also what its x86 CPU backend runs:
// with max the value of largest magnitude (signed, the first one on a
// tie), iscale = -127/max, q = min(127, nearest_int(iscale*x)) (ties to
// even), d = 1/iscale; an all-zero block has d = 0 and zero quants.
func QuantizeQ8K(x []float32, dst []ActQ8K) error {
	if len(x) != len(dst)*qkK {
		return fmt.Errorf("tensor: Q8_K activations: %d values for %d blocks of %d", len(x), len(dst), qkK)
	}
	for b := range dst {
		in := x[b*qkK : (b+1)*qkK]
		y := &dst[b]
		var amax, mx float32
		for _, v := range in {
			if a := abs32(v); a > amax {
				amax, mx = a, v
			}
		}
		if amax == 0 {
			*y = ActQ8K{}
			continue
		}
		iscale := -127 / mx
		for i, v := range in {
			// float32(...) keeps Go from fusing the product into
			// nearestInt's addition, which C does not do.
			y.Qs[i] = int8(min(127, nearestInt(float32(iscale*v))))
		}
		for j := range y.Bsums {
			var s int
			for _, q := range y.Qs[16*j : 16*j+16] {
				s += int(q)
			}
			y.Bsums[j] = int16(s)
		}
		y.D = 1 / iscale
	}
	return nil
}

// q8Block32 rounds one block of 32 values as ggml's quantize_row_q8_0 and
// quantize_row_q8_1 do on x86 with AVX2 (what llama.cpp runs on amd64):
// d = amax/127, q = round-half-even(x * (127/amax)). Its scalar reference
// (quantize_row_q8_0_ref, the weight quantizer in quant.go) multiplies by
// 1/d and rounds halves away from zero instead, which can differ in the
// last quant step. It returns d and the sum of the quants.
func q8Block32(in []float32, qs *[qk]int8) (d float32, sum int) {
	var amax float32
	for _, v := range in {
		amax = max(amax, abs32(v))
	}
	d = amax / 127
	var id float32
	if amax != 0 {
		id = 127 / amax
	}
	for i, v := range in {
		q := int(math.RoundToEven(float64(float32(v * id))))
		q = max(-128, min(127, q)) // _mm256_packs_epi16 saturates
		qs[i] = int8(q)
		sum += q
	}
	return d, sum
}

// QuantizeQ8_0 rounds x (len(x) = 32*len(dst)) to Q8_0 activation blocks
// as ggml's x86 quantize_row_q8_0 does (see q8Block32).
func QuantizeQ8_0(x []float32, dst []ActQ8_0) error {
	if len(x) != len(dst)*qk {
		return fmt.Errorf("tensor: Q8_0 activations: %d values for %d blocks of %d", len(x), len(dst), qk)
	}
	for b := range dst {
		d, _ := q8Block32(x[b*qk:(b+1)*qk], &dst[b].Qs)
		dst[b].D = F32ToF16(d)
	}
	return nil
}

// QuantizeQ8_1 rounds x (len(x) = 32*len(dst)) to Q8_1 activation blocks
// as ggml's x86 quantize_row_q8_1 does: the quants of QuantizeQ8_0, and
// S = f16(d * float32(sum of the quants)) with d before its f16 rounding.
func QuantizeQ8_1(x []float32, dst []ActQ8_1) error {
	if len(x) != len(dst)*qk {
		return fmt.Errorf("tensor: Q8_1 activations: %d values for %d blocks of %d", len(x), len(dst), qk)
	}
	for b := range dst {
		d, sum := q8Block32(x[b*qk:(b+1)*qk], &dst[b].Qs)
		dst[b].D = F32ToF16(d)
		dst[b].S = F32ToF16(d * float32(sum))
	}
	return nil
}

// DequantizeQ8K writes the values of the blocks to dst (256 per block):
// D * Qs[i], as ggml's dequantize_row_q8_K.
func DequantizeQ8K(src []ActQ8K, dst []float32) {
	for b := range src {
		for i, q := range src[b].Qs {
			dst[b*qkK+i] = src[b].D * float32(q)
		}
	}
}

// DequantizeQ8_0 writes the values of the blocks to dst (32 per block).
func DequantizeQ8_0(src []ActQ8_0, dst []float32) {
	for b := range src {
		d := F16ToF32(src[b].D)
		for i, q := range src[b].Qs {
			dst[b*qk+i] = d * float32(q)
		}
	}
}

// DequantizeQ8_1 writes the values of the blocks to dst (32 per block).
func DequantizeQ8_1(src []ActQ8_1, dst []float32) {
	for b := range src {
		d := F16ToF32(src[b].D)
		for i, q := range src[b].Qs {
			dst[b*qk+i] = d * float32(q)
		}
	}
}

// VecDotType names the activation blocks ggml pairs with a weight type
// (its vec_dot_type).
type VecDotType uint8

const (
	VecDotNone VecDotType = iota // no integer dot product: the float path
	VecDotQ8K                    // ActQ8K
	VecDotQ8_0                   // ActQ8_0
	VecDotQ8_1                   // ActQ8_1
)

// VecDotType returns the activation blocks ggml pairs with a weight of
// type d: Q8_K for the K-quants and IQ4_XS, Q8_0 for Q4_0, Q5_0, Q8_0 and
// IQ4_NL, Q8_1 for Q4_1 and Q5_1, VecDotNone for any other type.
func (d DType) VecDotType() VecDotType {
	switch d {
	case Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS:
		return VecDotQ8K
	case Q4_0, Q5_0, Q8_0, IQ4_NL:
		return VecDotQ8_0
	case Q4_1, Q5_1:
		return VecDotQ8_1
	}
	return VecDotNone
}

// RoundActivations rounds a row of activations in place as llama.cpp's
// CPU backend does before multiplying it by a weight of type dt (see
// DType.VecDotType): quantized to its activation blocks and back. Rows
// whose length is not a whole number of blocks, and weights without an
// activation type, are left as they are.
func RoundActivations(row []float32, dt DType) {
	switch dt.VecDotType() {
	case VecDotQ8K:
		if len(row)%qkK != 0 {
			return
		}
		blocks := make([]ActQ8K, len(row)/qkK)
		_ = QuantizeQ8K(row, blocks)
		DequantizeQ8K(blocks, row)
	case VecDotQ8_0:
		if len(row)%qk != 0 {
			return
		}
		blocks := make([]ActQ8_0, len(row)/qk)
		_ = QuantizeQ8_0(row, blocks)
		DequantizeQ8_0(blocks, row)
	case VecDotQ8_1:
		if len(row)%qk != 0 {
			return
		}
		blocks := make([]ActQ8_1, len(row)/qk)
		_ = QuantizeQ8_1(row, blocks)
		DequantizeQ8_1(blocks, row)
	}
}
