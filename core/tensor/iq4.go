package tensor

import "encoding/binary"

// ggml's 4-bit non-linear types (ggml-common.h): each 4-bit code indexes
// kvaluesIQ4NL, a fixed table of int8 levels denser near zero, times a
// block scale.
//
//	IQ4_NL (18 bytes per 32): f16 d, 16 bytes of codes   value = d*kv[q]
//	IQ4_XS (136 bytes per 256): f16 d, u16 scales_h, scales_l[4], 128 bytes of codes
//	    sub-block ib of 32 has the 6-bit scale ls = low nibble ib of scales_l
//	    | bits 2ib..2ib+1 of scales_h << 4; value = d*(ls-32)*kv[q]
//
// As in Q4_0, value j < 16 of 32 is the low nibble of byte j, value j+16
// its high nibble.
//
// The quantizers follow ggml's quantize_iq4_nl / quantize_iq4_xs without
// importance weights (what llama.cpp's quantize tool runs without an
// importance matrix): weights x², the scale of the best of 15 trial
// scales per 32 values, and for IQ4_XS the sub-block scales quantized to
// 6 bits against d = -max/32 and the codes chosen again.

var kvaluesIQ4NL = [16]int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

// bestIndexIQ4 is ggml's best_index_int8 over kvaluesIQ4NL: the level x
// rounds to, a tie going up; comparing 2x with the sum of neighbours keeps
// both sides exact.
func bestIndexIQ4(x float32) int {
	x2 := x + x
	idx := 0
	for step := 8; step > 0; step >>= 1 {
		j := idx + step
		if x2 >= float32(int(kvaluesIQ4NL[j-1])+int(kvaluesIQ4NL[j])) {
			idx = j
		}
	}
	return idx
}

// iq4BlockScale fits one block of 32 as quantize_row_iq4_nl_impl does with
// ntry = 7 and no importance weights; L gets the codes of the first trial.
func iq4BlockScale(x []float32, L []uint8) float32 {
	var amax, mx float32
	for _, v := range x {
		if a := abs32(v); a > amax {
			amax, mx = a, v
		}
	}
	if amax < groupMaxEps {
		clear(L[:len(x)])
		return 0
	}
	v0 := float32(kvaluesIQ4NL[0])
	d := -mx / v0
	id := 1 / d
	var sumqx, sumq2 float32
	for j, v := range x {
		l := bestIndexIQ4(float32(id * v))
		L[j] = uint8(l)
		q := float32(kvaluesIQ4NL[l])
		w := float32(v * v)
		sumqx += float32(float32(w*q) * v)
		sumq2 += float32(float32(w*q) * q)
	}
	d = 0
	if sumq2 > 0 {
		d = sumqx / sumq2
	}
	best := float32(d * sumqx)
	for itry := -7; itry <= 7; itry++ {
		id = float32(itry+int(kvaluesIQ4NL[0])) / mx
		sumqx, sumq2 = 0, 0
		for _, v := range x {
			q := float32(kvaluesIQ4NL[bestIndexIQ4(float32(id*v))])
			w := float32(v * v)
			sumqx += float32(float32(w*q) * v)
			sumq2 += float32(float32(w*q) * q)
		}
		if sumq2 > 0 && float32(sumqx*sumqx) > float32(best*sumq2) {
			d = sumqx / sumq2
			best = float32(d * sumqx)
		}
	}
	return d
}

func packIQ4(q []byte, L []uint8) {
	for i := 0; i < len(L)/32; i++ {
		for j := range 16 {
			q[16*i+j] = L[32*i+j] | L[32*i+16+j]<<4
		}
	}
}

// quantizeIQ4_NL follows quantize_iq4_nl without importance weights.
func quantizeIQ4_NL(src []float32, dst []byte) {
	var L [32]uint8
	for b := 0; b*qk < len(src); b++ {
		x := src[b*qk : b*qk+qk]
		blk := dst[b*18 : b*18+18]
		d := iq4BlockScale(x, L[:])
		putF16(blk, d)
		id := inverse(d)
		for j, v := range x {
			L[j] = uint8(bestIndexIQ4(float32(id * v)))
		}
		packIQ4(blk[2:], L[:])
	}
}

func dequantizeIQ4_NL(src []byte, dst []float32) {
	for b := 0; b*qk < len(dst); b++ {
		blk := src[b*18 : b*18+18]
		d := f16At(blk)
		out := dst[b*qk : b*qk+qk]
		for j := range 16 {
			out[j] = d * float32(kvaluesIQ4NL[blk[2+j]&0xf])
			out[j+16] = d * float32(kvaluesIQ4NL[blk[2+j]>>4])
		}
	}
}

// quantizeIQ4_XS follows quantize_iq4_xs without importance weights.
func quantizeIQ4_XS(src []float32, dst []byte) {
	var L [qkK]uint8
	var scales [qkK / 32]float32
	for b := 0; b*qkK < len(src); b++ {
		x := src[b*qkK : b*qkK+qkK]
		blk := dst[b*136 : b*136+136]
		var maxScale, amaxScale float32
		for ib := range qkK / 32 {
			scales[ib] = iq4BlockScale(x[32*ib:32*ib+32], L[32*ib:32*ib+32])
			if a := abs32(scales[ib]); a > amaxScale {
				amaxScale, maxScale = a, scales[ib]
			}
		}
		d := -maxScale / 32
		putF16(blk, d)
		id := inverse(d)
		var sh uint16
		sl := blk[4:8]
		clear(sl)
		for ib := range qkK / 32 {
			l := clampInt(nearestInt(float32(id*scales[ib])), -32, 31)
			idl := inverse(d * float32(l))
			for j, v := range x[32*ib : 32*ib+32] {
				L[32*ib+j] = uint8(bestIndexIQ4(float32(idl * v)))
			}
			l += 32
			sl[ib/2] |= byte(l&0xf) << (4 * (ib % 2))
			sh |= uint16(l>>4) << (2 * ib)
		}
		binary.LittleEndian.PutUint16(blk[2:], sh)
		packIQ4(blk[8:], L[:])
	}
}

func dequantizeIQ4_XS(src []byte, dst []float32) {
	for b := 0; b*qkK < len(dst); b++ {
		blk := src[b*136 : b*136+136]
		d := f16At(blk)
		sh := binary.LittleEndian.Uint16(blk[2:])
		for ib := range qkK / 32 {
			ls := int(blk[4+ib/2]>>(4*(ib%2))&0xf) | int(sh>>(2*ib)&3)<<4
			dl := d * float32(ls-32)
			q := blk[8+16*ib : 8+16*ib+16]
			out := dst[b*qkK+32*ib : b*qkK+32*ib+32]
			for j, v := range q {
				out[j] = dl * float32(kvaluesIQ4NL[v&0xf])
				out[j+16] = dl * float32(kvaluesIQ4NL[v>>4])
			}
		}
	}
}
