package cpu

import (
	"encoding/binary"
	"unsafe"

	"github.com/graft-ml/graft/core/tensor"
)

// Integer dot products of a row of quantized weight blocks with a row of
// activations rounded to 8-bit blocks (tensor.ActQ8K, ActQ8_0): what
// ggml's vec_dot_<type>_q8_K / _q8_0 compute, and what llama.cpp's CPU
// backend runs for every product with a quantized weight. The activation
// row is rounded once per mat-vec; each weight block then costs integer
// multiply-adds on its raw quants (vpmaddubsw/vpmaddwd on amd64, SDOT on
// arm64) and one or two float operations, instead of a float decode and
// FMA per value.
//
// Semantics, the same for the portable functions here, the generated
// AVX2 kernels (tools/asmgen/intdot.go) and the NEON ones
// (intdot_arm64.s), which equal them bit for bit:
//
//   - Per block, everything but the final scaling is exact int32
//     arithmetic, so its order does not matter: for Q4_K and Q5_K,
//     sumi = sum_j sc_j * sum_l q*a over the 8 sub-blocks of 32 and
//     summ = sum_j m_j * (bsums[2j] + bsums[2j+1]); for Q6_K,
//     sumi = sum_j sc_j * (sum_l q*a - 32*bsums[j]) over the 16 sub-blocks
//     of 16 (q in [0, 63]); for Q8_0, sumi = sum_l q*a; for Q4_0,
//     sumi = sum_l (q-8)*a; for Q5_0, sumi = sum_l (q-16)*a.
//   - Float, per block in increasing order with one running float32 sum s
//     starting at 0, each operation rounded to float32 (no FMA):
//     K-quants: d = f16(w.d) * a.d, and for Q4_K/Q5_K m = f16(w.dmin) *
//     a.d; s += d*float32(sumi) (Q6_K), or
//     s += d*float32(sumi) - m*float32(summ) (Q4_K, Q5_K: the two products
//     rounded, then their difference, then the sum).
//     Q8_0, Q4_0, Q5_0: d = f16(w.d) * f16(a.d); s += d*float32(sumi).
//
// ggml's own kernels scale the same int32 sums by the same d, but sum
// the products in eight (AVX2) or more float lanes; the results differ
// from these only in float rounding, far below the activation rounding.

// intDotKernel returns the dot product of blocks weight blocks at w with
// the activation row at act: blocks ActQ8K or ActQ8_0 blocks, as the
// weight's VecDotType says, as quantizeActs writes them, with what the
// generated amd64 kernels read after the row's blocks (Q8_K: each block's bsum
// pair sums; Q8_0: the scales and sums): act is a whole row, blocks all
// of its blocks.
type intDotKernel func(blocks int, w, act *byte) float32

// intDotGo are the portable kernels, by weight type.
var intDotGo = map[tensor.DType]intDotKernel{
	tensor.Q4_K: dotQ4KQ8KGo,
	tensor.Q5_K: dotQ5KQ8KGo,
	tensor.Q6_K: dotQ6KQ8KGo,
	tensor.Q8_0: dotQ8_0Q8_0Go,
	tensor.Q4_0: dotQ4_0Q8_0Go,
	tensor.Q5_0: dotQ5_0Q8_0Go,
}

// intDotRows sets out[r] to the integer dot product of the weight row at
// w+r*stride (blocks blocks) with the activation row at act (a whole row,
// as intDotKernel's), for r < rows; rows and blocks are at least 1. The
// assembly kernels take this form: one call per run of rows.
type intDotRows func(rows, blocks int, w *byte, stride int, act *byte, out *float32)

// rowsOf runs the one-row kernel k over rows, as an intDotRows.
func rowsOf(k intDotKernel) intDotRows {
	return func(rows, blocks int, w *byte, stride int, act *byte, out *float32) {
		res := unsafe.Slice(out, rows)
		for r := range res {
			res[r] = k(blocks, (*byte)(unsafe.Add(unsafe.Pointer(w), r*stride)), act)
		}
	}
}

// intDotAsm, where set (amd64 with AVX2; arm64 with the dot-product
// extension), are the assembly kernels.
var intDotAsm map[tensor.DType]intDotRows

func q8kBlocks(act *byte, n int) []tensor.ActQ8K {
	return unsafe.Slice((*tensor.ActQ8K)(unsafe.Pointer(act)), n)
}

func q80Blocks(act *byte, n int) []tensor.ActQ8_0 {
	return unsafe.Slice((*tensor.ActQ8_0)(unsafe.Pointer(act)), n)
}

func f16(b []byte) float32 { return tensor.F16ToF32(binary.LittleEndian.Uint16(b)) }

// kScaleMins unpacks the 8 6-bit scales and mins of a Q4_K or Q5_K block
// (ggml's get_scale_min_k4) from its 12 scale bytes.
func kScaleMins(s []byte) (sc, m [8]int32) {
	s = s[:12]
	for j := range 4 {
		sc[j] = int32(s[j] & 63)
		m[j] = int32(s[j+4] & 63)
		sc[j+4] = int32(s[j+8]&0x0f | (s[j]>>6)<<4)
		m[j+4] = int32(s[j+8]>>4 | (s[j+4]>>6)<<4)
	}
	return sc, m
}

// dotKScaleMin is Q4_K (five false) and Q5_K: 144 or 176 bytes a block.
func dotKScaleMin(blocks int, w, act *byte, five bool) float32 {
	bb, qs := 144, 16
	if five {
		bb, qs = 176, 48
	}
	src := unsafe.Slice(w, blocks*bb)
	var s float32
	for i, a := range q8kBlocks(act, blocks) {
		blk := src[i*bb : (i+1)*bb]
		sc, mn := kScaleMins(blk[4:16])
		var sumi, summ int32
		for j := range 8 {
			q := blk[qs+32*(j/2) : qs+32*(j/2)+32]
			shift := 4 * uint(j%2)
			var dj int32
			for l, b := range q {
				v := int32(b>>shift) & 15
				if five {
					v |= int32(blk[16+l]>>uint(j)&1) << 4
				}
				dj += v * int32(a.Qs[32*j+l])
			}
			sumi += sc[j] * dj
			summ += mn[j] * (int32(a.Bsums[2*j]) + int32(a.Bsums[2*j+1]))
		}
		d := f16(blk[0:]) * a.D
		m := f16(blk[2:]) * a.D
		s += float32(d*float32(sumi)) - float32(m*float32(summ))
	}
	return s
}

func dotQ4KQ8KGo(blocks int, w, act *byte) float32 { return dotKScaleMin(blocks, w, act, false) }

func dotQ5KQ8KGo(blocks int, w, act *byte) float32 { return dotKScaleMin(blocks, w, act, true) }

// dotQ6KQ8KGo: 210-byte blocks; in each half of 128 values, value l+32p
// takes its low nibble from ql byte l (p even) or l+32 (p odd), low or
// high as p < 2 or not, and its high two bits from pair p of qh byte l.
func dotQ6KQ8KGo(blocks int, w, act *byte) float32 {
	src := unsafe.Slice(w, blocks*210)
	var s float32
	for i, a := range q8kBlocks(act, blocks) {
		blk := src[i*210 : (i+1)*210]
		var sums [16]int32 // sum of q*a per sub-block of 16
		for h := range 2 {
			ql, qh := blk[64*h:], blk[128+32*h:]
			for p := range 4 {
				for l := range 32 {
					lo := ql[l+32*(p%2)]
					if p >= 2 {
						lo >>= 4
					}
					q := int32(lo&15) | int32(qh[l]>>(2*uint(p))&3)<<4
					v := 128*h + 32*p + l
					sums[v/16] += q * int32(a.Qs[v])
				}
			}
		}
		var sumi int32
		for j, dj := range sums {
			sumi += int32(int8(blk[192+j])) * (dj - 32*int32(a.Bsums[j]))
		}
		d := f16(blk[208:]) * a.D
		s += float32(d * float32(sumi))
	}
	return s
}

func dotQ8_0Q8_0Go(blocks int, w, act *byte) float32 {
	src := unsafe.Slice(w, blocks*34)
	var s float32
	for i, a := range q80Blocks(act, blocks) {
		blk := src[i*34 : (i+1)*34]
		var sumi int32
		for l, q := range blk[2:34] {
			sumi += int32(int8(q)) * int32(a.Qs[l])
		}
		d := f16(blk) * tensor.F16ToF32(a.D)
		s += float32(d * float32(sumi))
	}
	return s
}

// dotQ4_0Q8_0Go: byte l holds value l (low nibble) and l+16 (high), each
// offset by 8.
func dotQ4_0Q8_0Go(blocks int, w, act *byte) float32 {
	src := unsafe.Slice(w, blocks*18)
	var s float32
	for i, a := range q80Blocks(act, blocks) {
		blk := src[i*18 : (i+1)*18]
		var sumi int32
		for l, q := range blk[2:18] {
			sumi += (int32(q&15)-8)*int32(a.Qs[l]) + (int32(q>>4)-8)*int32(a.Qs[l+16])
		}
		d := f16(blk) * tensor.F16ToF32(a.D)
		s += float32(d * float32(sumi))
	}
	return s
}

// dotQ5_0Q8_0Go: 22-byte blocks, f16 d, 32 fifth bits (value j's in bit
// j), then nibbles as in Q4_0; each value offset by 16.
func dotQ5_0Q8_0Go(blocks int, w, act *byte) float32 {
	src := unsafe.Slice(w, blocks*22)
	var s float32
	for i, a := range q80Blocks(act, blocks) {
		blk := src[i*22 : (i+1)*22]
		qh := binary.LittleEndian.Uint32(blk[2:])
		var sumi int32
		for l, q := range blk[6:22] {
			lo := int32(q&15) | int32(qh>>uint(l)&1)<<4
			hi := int32(q>>4) | int32(qh>>uint(l+16)&1)<<4
			sumi += (lo-16)*int32(a.Qs[l]) + (hi-16)*int32(a.Qs[l+16])
		}
		d := f16(blk) * tensor.F16ToF32(a.D)
		s += float32(d * float32(sumi))
	}
	return s
}
