package tensor

import (
	"encoding/binary"
	"math"
)

// ggml's other blocks of 32 (ggml-common.h), all little-endian:
//
//	Q4_1: f16 d, f16 m, 16 bytes of nibbles      value = d*q + m, q in [0, 15]
//	Q5_0: f16 d, u32 qh, 16 bytes of nibbles     value = d*(q - 16), q in [0, 31]
//	Q5_1: f16 d, f16 m, u32 qh, 16 bytes         value = d*q + m, q in [0, 31]
//
// As in Q4_0, element j < 16 is the low nibble of byte j and element j+16
// its high nibble; a 5-bit quant keeps its fifth bit in bit j of qh.
//
// The quantizers follow ggml's quantize_row_*_ref (what llama.cpp's
// quantize tool runs without an importance matrix), operation by
// operation in float32: every product that meets an addition is rounded
// first (float32(a*b)), because Go may otherwise fuse the two into one FMA
// on some architectures and pick a different quant than C does.

func dequantizeQ4_1(src []byte, dst []float32) {
	for b := 0; b*qk < len(dst); b++ {
		blk := src[b*20 : b*20+20]
		d := F16ToF32(binary.LittleEndian.Uint16(blk))
		m := F16ToF32(binary.LittleEndian.Uint16(blk[2:]))
		out := dst[b*qk : b*qk+qk]
		for j := 0; j < qk/2; j++ {
			q := blk[4+j]
			out[j] = float32(float32(q&0x0f)*d) + m
			out[j+qk/2] = float32(float32(q>>4)*d) + m
		}
	}
}

func dequantizeQ5_0(src []byte, dst []float32) {
	for b := 0; b*qk < len(dst); b++ {
		blk := src[b*22 : b*22+22]
		d := F16ToF32(binary.LittleEndian.Uint16(blk))
		qh := binary.LittleEndian.Uint32(blk[2:])
		out := dst[b*qk : b*qk+qk]
		for j := 0; j < qk/2; j++ {
			q := blk[6+j]
			lo := int(q&0x0f) | int(qh>>j&1)<<4
			hi := int(q>>4) | int(qh>>(j+16)&1)<<4
			out[j] = float32(lo-16) * d
			out[j+qk/2] = float32(hi-16) * d
		}
	}
}

func dequantizeQ5_1(src []byte, dst []float32) {
	for b := 0; b*qk < len(dst); b++ {
		blk := src[b*24 : b*24+24]
		d := F16ToF32(binary.LittleEndian.Uint16(blk))
		m := F16ToF32(binary.LittleEndian.Uint16(blk[2:]))
		qh := binary.LittleEndian.Uint32(blk[4:])
		out := dst[b*qk : b*qk+qk]
		for j := 0; j < qk/2; j++ {
			q := blk[8+j]
			lo := q&0x0f | byte(qh>>j&1)<<4
			hi := q>>4 | byte(qh>>(j+16)&1)<<4
			out[j] = float32(float32(lo)*d) + m
			out[j+qk/2] = float32(float32(hi)*d) + m
		}
	}
}

// blockMinMax returns the smallest and largest value of a block, starting
// from +-FLT_MAX as ggml does. Strict comparisons, not min and max, keep
// the first of 0 and -0 as C does: the sign reaches the stored offset.
func blockMinMax(in []float32) (lo, hi float32) {
	lo, hi = math.MaxFloat32, -math.MaxFloat32
	for _, v := range in {
		if v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
	}
	return lo, hi
}

// signedMax returns the value of largest magnitude (the first one on ties).
func signedMax(in []float32) float32 {
	var amax, mx float32
	for _, v := range in {
		if a := abs32(v); a > amax {
			amax, mx = a, v
		}
	}
	return mx
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

func inverse(d float32) float32 {
	if d == 0 {
		return 0
	}
	return 1 / d
}

// quantizeQ4_1 follows quantize_row_q4_1_ref: d = (max-min)/15, the exact
// min as the offset, q = min(15, trunc((x-min)/d + 0.5)).
func quantizeQ4_1(src []float32, dst []byte) {
	for b := 0; b*qk < len(src); b++ {
		in := src[b*qk : b*qk+qk]
		lo, hi := blockMinMax(in)
		d := (hi - lo) / 15
		id := inverse(d)
		blk := dst[b*20 : b*20+20]
		binary.LittleEndian.PutUint16(blk, F32ToF16(d))
		binary.LittleEndian.PutUint16(blk[2:], F32ToF16(lo))
		for j := 0; j < qk/2; j++ {
			q0 := min(15, int(float32((in[j]-lo)*id)+0.5))
			q1 := min(15, int(float32((in[j+qk/2]-lo)*id)+0.5))
			blk[4+j] = byte(q0) | byte(q1)<<4
		}
	}
}

// quantizeQ5_0 follows quantize_row_q5_0_ref: the value of largest
// magnitude maps to -16, q = min(31, trunc(x/d + 16.5)).
func quantizeQ5_0(src []float32, dst []byte) {
	for b := 0; b*qk < len(src); b++ {
		in := src[b*qk : b*qk+qk]
		d := signedMax(in) / -16
		id := inverse(d)
		blk := dst[b*22 : b*22+22]
		binary.LittleEndian.PutUint16(blk, F32ToF16(d))
		var qh uint32
		for j := 0; j < qk/2; j++ {
			q0 := min(31, int(float32(in[j]*id)+16.5))
			q1 := min(31, int(float32(in[j+qk/2]*id)+16.5))
			blk[6+j] = byte(q0&0x0f) | byte(q1&0x0f)<<4
			qh |= uint32(q0>>4&1)<<j | uint32(q1>>4&1)<<(j+qk/2)
		}
		binary.LittleEndian.PutUint32(blk[2:], qh)
	}
}

// quantizeQ5_1 follows quantize_row_q5_1_ref: d = (max-min)/31,
// q = trunc((x-min)/d + 0.5), which ggml does not clamp.
func quantizeQ5_1(src []float32, dst []byte) {
	for b := 0; b*qk < len(src); b++ {
		in := src[b*qk : b*qk+qk]
		lo, hi := blockMinMax(in)
		d := (hi - lo) / 31
		id := inverse(d)
		blk := dst[b*24 : b*24+24]
		binary.LittleEndian.PutUint16(blk, F32ToF16(d))
		binary.LittleEndian.PutUint16(blk[2:], F32ToF16(lo))
		var qh uint32
		for j := 0; j < qk/2; j++ {
			q0 := uint8(int(float32((in[j]-lo)*id) + 0.5))
			q1 := uint8(int(float32((in[j+qk/2]-lo)*id) + 0.5))
			blk[8+j] = q0&0x0f | (q1&0x0f)<<4
			qh |= uint32(q0>>4&1)<<j | uint32(q1>>4&1)<<(j+qk/2)
		}
		binary.LittleEndian.PutUint32(blk[4:], qh)
	}
}
