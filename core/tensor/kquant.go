package tensor

import (
	"encoding/binary"
	"math"
)

// ggml's K-quants (ggml-common.h): super-blocks of qkK = 256 values cut into
// sub-blocks of 16 or 32, whose scales (and mins) are themselves quantized
// against one or two f16 super-block scales. Byte layouts, little-endian:
//
//	Q2_K (84):  scales[16] (low nibble scale, high nibble min), qs[64], f16 d, f16 dmin
//	            value = d*sc*q - dmin*m, q in [0, 3], sub-blocks of 16
//	Q3_K (110): hmask[32], qs[64], scales[12] (16 6-bit scales, offset 32), f16 d
//	            value = d*(sc-32)*(q - 4), q in [0, 7]: 2 low bits in qs, the high bit in hmask
//	Q4_K (144): f16 d, f16 dmin, scales[12] (8 6-bit scales and 8 6-bit mins), qs[128]
//	            value = d*sc*q - dmin*m, q in [0, 15], sub-blocks of 32
//	Q5_K (176): f16 d, f16 dmin, scales[12], qh[32], qs[128]
//	            value = d*sc*q - dmin*m, q in [0, 31]
//	Q6_K (210): ql[128], qh[64], int8 scales[16], f16 d
//	            value = d*sc*(q - 32), q in [0, 63], sub-blocks of 16
//
// The quantizers follow ggml's quantize_row_*_ref, the algorithm
// llama.cpp's quantize tool runs when it has no importance matrix: a
// weighted least-squares fit per sub-block (makeQKX2Quants for the types
// with a min, makeQXQuants and makeQ3Quants for the symmetric ones), then
// the sub-block scales quantized and the values re-quantized against the
// scales as stored. The float32 arithmetic is C's, one rounding per
// operation: float32(a*b) wherever a product meets an addition keeps Go
// from fusing the two into an FMA that C's reference does not use.

const qkK = 256 // values per K-quant super-block

// groupMaxEps is ggml's GROUP_MAX_EPS: a sub-block whose largest magnitude
// is below it counts as all zero.
const groupMaxEps = float32(1e-15)

// nearestInt is ggml's nearest_int: adding 1.5*2^23 leaves the rounded
// integer (ties to even) in the low mantissa bits. It is only meaningful
// for |f| < 2^22, which every caller respects, and gives the same bits as
// C for any input.
func nearestInt(f float32) int {
	v := f + 12582912
	return int(math.Float32bits(v)&0x007fffff) - 0x00400000
}

func f16At(b []byte) float32 { return F16ToF32(binary.LittleEndian.Uint16(b)) }

func putF16(b []byte, f float32) { binary.LittleEndian.PutUint16(b, F32ToF16(f)) }

func clampInt(v, lo, hi int) int { return max(lo, min(hi, v)) }

// makeQXQuants is make_qx_quants with rmse_type 1 and no importance
// weights (the weights are x²): symmetric quants L in [0, 2*nmax) around
// nmax, and the scale of the best of 19 trial scales by weighted least
// squares.
func makeQXQuants(nmax int, x []float32, L []int8) float32 {
	var mx, amax float32
	for _, v := range x {
		if a := abs32(v); a > amax {
			amax, mx = a, v
		}
	}
	if amax < groupMaxEps {
		clear(L)
		return 0
	}
	fmax := float32(nmax)
	iscale := -fmax / mx
	var sumlx, suml2 float32
	for i, v := range x {
		l := clampInt(nearestInt(float32(iscale*v)), -nmax, nmax-1)
		L[i] = int8(l + nmax)
		w := float32(v * v)
		fl := float32(l)
		sumlx += float32(float32(w*v) * fl)
		suml2 += float32(float32(w*fl) * fl)
	}
	var scale float32
	if suml2 != 0 {
		scale = sumlx / suml2
	}
	best := float32(scale * sumlx)
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale = -(fmax + float32(float32(0.1)*float32(is))) / mx
		sumlx, suml2 = 0, 0
		for _, v := range x {
			fl := float32(clampInt(nearestInt(float32(iscale*v)), -nmax, nmax-1))
			w := float32(v * v)
			sumlx += float32(float32(w*v) * fl)
			suml2 += float32(float32(w*fl) * fl)
		}
		if suml2 > 0 && float32(sumlx*sumlx) > float32(best*suml2) {
			for i, v := range x {
				L[i] = int8(nmax + clampInt(nearestInt(float32(iscale*v)), -nmax, nmax-1))
			}
			scale = sumlx / suml2
			best = float32(scale * sumlx)
		}
	}
	return scale
}

// makeQ3Quants is make_q3_quants with do_rmse: symmetric quants, refined by
// up to five passes that move single quants while the weighted fit
// improves.
func makeQ3Quants(nmax int, x []float32, L []int8) float32 {
	var mx, amax float32
	for _, v := range x {
		if a := abs32(v); a > amax {
			amax, mx = a, v
		}
	}
	if amax < groupMaxEps {
		clear(L)
		return 0
	}
	iscale := -float32(nmax) / mx
	var sumlx, suml2 float32
	for i, v := range x {
		l := clampInt(nearestInt(float32(iscale*v)), -nmax, nmax-1)
		L[i] = int8(l)
		w := float32(v * v)
		fl := float32(l)
		sumlx += float32(float32(w*v) * fl)
		suml2 += float32(float32(w*fl) * fl)
	}
	for range 5 {
		changed := 0
		for i, v := range x {
			w := float32(v * v)
			li := float32(L[i])
			slx := sumlx - float32(float32(w*v)*li)
			if slx > 0 {
				sl2 := suml2 - float32(float32(w*li)*li)
				nl := clampInt(nearestInt(float32(v*sl2)/slx), -nmax, nmax-1)
				if nl != int(L[i]) {
					fn := float32(nl)
					slx += float32(float32(w*v) * fn)
					sl2 += float32(float32(w*fn) * fn)
					if sl2 > 0 && float32(float32(slx*slx)*suml2) > float32(float32(sumlx*sumlx)*sl2) {
						L[i] = int8(nl)
						sumlx, suml2 = slx, sl2
						changed++
					}
				}
			}
		}
		if changed == 0 {
			break
		}
	}
	for i := range L[:len(x)] {
		L[i] += int8(nmax)
	}
	if suml2 > 0 {
		return sumlx / suml2
	}
	return 0
}

// makeQKX2Quants is make_qkx2_quants: asymmetric quants L in [0, nmax]
// with a scale and a min (returned negated, as ggml stores it), the best
// of nstep+1 trial scales by weighted squared (or absolute, useMAD) error.
func makeQKX2Quants(nmax int, x, weights []float32, L, Laux []uint8, rmin, rdelta float32, nstep int, useMAD bool) (scale, negMin float32) {
	n := len(x)
	lo, hi := x[0], x[0]
	sumW := weights[0]
	sumX := float32(sumW * x[0])
	for i := 1; i < n; i++ {
		if x[i] < lo {
			lo = x[i]
		}
		if x[i] > hi {
			hi = x[i]
		}
		w := weights[i]
		sumW += w
		sumX += float32(w * x[i])
	}
	if lo > 0 {
		lo = 0
	}
	if hi == lo {
		clear(L[:n])
		return 0, -lo
	}
	fmax := float32(nmax)
	iscale := fmax / (hi - lo)
	scale = 1 / iscale
	errOf := func(d float32) float32 {
		if useMAD {
			return abs32(d)
		}
		return float32(d * d)
	}
	var bestErr float32
	for i, v := range x {
		l := clampInt(nearestInt(float32(iscale*(v-lo))), 0, nmax)
		L[i] = uint8(l)
		diff := float32(float32(scale*float32(l))+lo) - v
		bestErr += float32(weights[i] * errOf(diff))
	}
	if nstep < 1 {
		return scale, -lo
	}
	for is := 0; is <= nstep; is++ {
		iscale = (float32(rmin+float32(rdelta*float32(is))) + fmax) / (hi - lo)
		var sumL, sumL2, sumXL float32
		for i, v := range x {
			l := clampInt(nearestInt(float32(iscale*(v-lo))), 0, nmax)
			Laux[i] = uint8(l)
			w := weights[i]
			fl := float32(l)
			sumL += float32(w * fl)
			sumL2 += float32(float32(w*fl) * fl)
			sumXL += float32(float32(w*fl) * v)
		}
		D := float32(sumW*sumL2) - float32(sumL*sumL)
		if D > 0 {
			thisScale := (float32(sumW*sumXL) - float32(sumX*sumL)) / D
			thisMin := (float32(sumL2*sumX) - float32(sumL*sumXL)) / D
			if thisMin > 0 {
				thisMin = 0
				thisScale = sumXL / sumL2
			}
			var cur float32
			for i, v := range x {
				diff := float32(float32(thisScale*float32(Laux[i]))+thisMin) - v
				cur += float32(weights[i] * errOf(diff))
			}
			if cur < bestErr {
				copy(L[:n], Laux[:n])
				bestErr = cur
				scale = thisScale
				lo = thisMin
			}
		}
	}
	return scale, -lo
}

// packQ2 stores 256 2-bit quants as Q2_K and Q3_K do: byte l of each
// 32-byte group holds elements l, l+32, l+64 and l+96 of its 128 from the
// low bits up.
func packQ2(qs []byte, L []uint8) {
	for j := 0; j < qkK; j += 128 {
		for l := range 32 {
			qs[j/4+l] = L[j+l] | L[j+l+32]<<2 | L[j+l+64]<<4 | L[j+l+96]<<6
		}
	}
}

// quantizeQ2_K follows quantize_row_q2_K_ref.
func quantizeQ2_K(src []float32, dst []byte) {
	var L, Laux [qkK]uint8
	var weights [16]float32
	var scales, mins [qkK / 16]float32
	for b := 0; b*qkK < len(src); b++ {
		x := src[b*qkK : b*qkK+qkK]
		blk := dst[b*84 : b*84+84]
		sc, qs := blk[:16], blk[16:80]
		var maxScale, maxMin float32
		for j := range qkK / 16 {
			xs := x[16*j : 16*j+16]
			for l, v := range xs {
				weights[l] = abs32(v)
			}
			scales[j], mins[j] = makeQKX2Quants(3, xs, weights[:], L[16*j:16*j+16], Laux[:16], -0.5, 0.1, 15, true)
			maxScale = max(maxScale, scales[j])
			maxMin = max(maxMin, mins[j])
		}
		if maxScale > 0 {
			iscale := 15 / maxScale
			for j := range sc {
				sc[j] = uint8(nearestInt(float32(iscale * scales[j])))
			}
			putF16(blk[80:], maxScale/15)
		} else {
			clear(sc)
			putF16(blk[80:], 0)
		}
		if maxMin > 0 {
			iscale := 15 / maxMin
			for j := range sc {
				sc[j] |= uint8(nearestInt(float32(iscale*mins[j])) << 4)
			}
			putF16(blk[82:], maxMin/15)
		} else {
			putF16(blk[82:], 0)
		}
		dAll, mAll := f16At(blk[80:]), f16At(blk[82:])
		for j := range qkK / 16 {
			d := dAll * float32(sc[j]&0xf)
			if d == 0 {
				continue
			}
			dm := mAll * float32(sc[j]>>4)
			for i := range 16 {
				L[16*j+i] = uint8(clampInt(nearestInt((x[16*j+i]+dm)/d), 0, 3))
			}
		}
		packQ2(qs, L[:])
	}
}

func dequantizeQ2_K(src []byte, dst []float32) {
	for b := 0; b*qkK < len(dst); b++ {
		blk := src[b*84 : b*84+84]
		d, dmin := f16At(blk[80:]), f16At(blk[82:])
		y := dst[b*qkK : b*qkK+qkK]
		is := 0
		for n := 0; n < qkK; n += 128 {
			q := blk[16+n/4 : 16+n/4+32]
			for shift := 0; shift < 8; shift += 2 {
				for half := 0; half < 32; half += 16 {
					sc := blk[is]
					is++
					dl, ml := d*float32(sc&0xf), dmin*float32(sc>>4)
					for l := range 16 {
						y[l] = float32(dl*float32(q[half+l]>>shift&3)) - ml
					}
					y = y[16:]
				}
			}
		}
	}
}

// q3Scale unpacks the j-th 6-bit scale of a Q3_K block, offset removed:
// the low four bits are a nibble of the first eight bytes, the high two
// bits a pair in the last four.
func q3Scale(sc []byte, j int) int {
	lo := sc[j%8] >> (4 * (j / 8)) & 0xf
	hi := sc[8+j%4] >> (2 * (j / 4)) & 3
	return int(lo|hi<<4) - 32
}

// quantizeQ3_K follows quantize_row_q3_K_ref.
func quantizeQ3_K(src []float32, dst []byte) {
	var L [qkK]int8
	var scales [qkK / 16]float32
	var u [qkK]uint8
	for b := 0; b*qkK < len(src); b++ {
		x := src[b*qkK : b*qkK+qkK]
		blk := dst[b*110 : b*110+110]
		hmask, qs, sc := blk[:32], blk[32:96], blk[96:108]
		var maxScale, amax float32
		for j := range qkK / 16 {
			scales[j] = makeQ3Quants(4, x[16*j:16*j+16], L[16*j:16*j+16])
			if a := abs32(scales[j]); a > amax {
				amax, maxScale = a, scales[j]
			}
		}
		clear(sc)
		if maxScale != 0 {
			iscale := -32 / maxScale
			for j := range qkK / 16 {
				l := int8(nearestInt(float32(iscale * scales[j])))
				l = int8(clampInt(int(l), -32, 31) + 32)
				if j < 8 {
					sc[j] = byte(l & 0xf)
				} else {
					sc[j-8] |= byte(l&0xf) << 4
				}
				l >>= 4
				sc[j%4+8] |= byte(l) << (2 * (j / 4))
			}
			putF16(blk[108:], 1/iscale)
		} else {
			putF16(blk[108:], 0)
		}
		dAll := f16At(blk[108:])
		for j := range qkK / 16 {
			d := dAll * float32(int8(q3Scale(sc, j)))
			if d == 0 {
				continue
			}
			for i := range 16 {
				L[16*j+i] = int8(clampInt(nearestInt(x[16*j+i]/d), -4, 3) + 4)
			}
		}
		clear(hmask)
		for j := range qkK {
			v := uint8(L[j])
			if v > 3 {
				hmask[j%32] |= 1 << (j / 32)
				v -= 4
			}
			u[j] = v
		}
		packQ2(qs, u[:])
	}
}

func dequantizeQ3_K(src []byte, dst []float32) {
	for b := 0; b*qkK < len(dst); b++ {
		blk := src[b*110 : b*110+110]
		hmask, sc := blk[:32], blk[96:108]
		dAll := f16At(blk[108:])
		y := dst[b*qkK : b*qkK+qkK]
		is := 0
		m := byte(1)
		for n := 0; n < qkK; n += 128 {
			q := blk[32+n/4 : 32+n/4+32]
			for shift := 0; shift < 8; shift += 2 {
				for half := 0; half < 32; half += 16 {
					dl := dAll * float32(q3Scale(sc, is))
					is++
					for l := range 16 {
						v := int(q[half+l] >> shift & 3)
						if hmask[half+l]&m == 0 {
							v -= 4
						}
						y[l] = dl * float32(v)
					}
					y = y[16:]
				}
				m <<= 1
			}
		}
	}
}

// scaleMinK4 unpacks the j-th 6-bit scale and min of a Q4_K or Q5_K block
// (ggml's get_scale_min_k4): the first four pairs are the low six bits of
// bytes j and j+4, the last four a nibble of bytes 8-11 plus the top two
// bits of bytes 0-7.
func scaleMinK4(j int, q []byte) (sc, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0xf | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

// quantizeScaleMinK4 is the first half of quantize_row_q4_K_ref and
// quantize_row_q5_K_ref: a least-squares scale and min per sub-block of
// 32, both quantized to 6 bits against the f16 super-block d and dmin
// (stored in blk[0:4], the packed scales in blk[4:16]), then every value
// re-quantized to [0, nmax] against the scales as stored.
func quantizeScaleMinK4(x []float32, blk []byte, L []uint8, nmax int, rmin, rdelta float32, nstep int) {
	var Laux [32]uint8
	var weights [32]float32
	var scales, mins [qkK / 32]float32
	var maxScale, maxMin float32
	for j := range qkK / 32 {
		xs := x[32*j : 32*j+32]
		var sumX2 float32
		for _, v := range xs {
			sumX2 += float32(v * v)
		}
		avX := float32(math.Sqrt(float64(sumX2 / 32)))
		for l, v := range xs {
			weights[l] = avX + abs32(v)
		}
		scales[j], mins[j] = makeQKX2Quants(nmax, xs, weights[:], L[32*j:32*j+32], Laux[:], rmin, rdelta, nstep, false)
		maxScale = max(maxScale, scales[j])
		maxMin = max(maxMin, mins[j])
	}
	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxMin > 0 {
		invMin = 63 / maxMin
	}
	sc := blk[4:16]
	for j := range qkK / 32 {
		ls := min(63, uint8(nearestInt(float32(invScale*scales[j]))))
		lm := min(63, uint8(nearestInt(float32(invMin*mins[j]))))
		if j < 4 {
			sc[j] = ls
			sc[j+4] = lm
		} else {
			sc[j+4] = ls&0xf | (lm&0xf)<<4
			sc[j-4] |= (ls >> 4) << 6
			sc[j] |= (lm >> 4) << 6
		}
	}
	putF16(blk, maxScale/63)
	putF16(blk[2:], maxMin/63)
	dAll, mAll := f16At(blk), f16At(blk[2:])
	for j := range qkK / 32 {
		s, m := scaleMinK4(j, sc)
		d := dAll * float32(s)
		if d == 0 {
			continue
		}
		dm := mAll * float32(m)
		for i := range 32 {
			L[32*j+i] = uint8(clampInt(nearestInt((x[32*j+i]+dm)/d), 0, nmax))
		}
	}
}

// quantizeQ4_K follows quantize_row_q4_K_ref.
func quantizeQ4_K(src []float32, dst []byte) {
	var L [qkK]uint8
	for b := 0; b*qkK < len(src); b++ {
		blk := dst[b*144 : b*144+144]
		clear(blk[4:16])
		quantizeScaleMinK4(src[b*qkK:b*qkK+qkK], blk, L[:], 15, -1, 0.1, 20)
		q := blk[16:]
		for j := 0; j < qkK; j += 64 {
			for l := range 32 {
				q[l] = L[j+l] | L[j+l+32]<<4
			}
			q = q[32:]
		}
	}
}

func dequantizeQ4_K(src []byte, dst []float32) {
	for b := 0; b*qkK < len(dst); b++ {
		blk := src[b*144 : b*144+144]
		d, dmin := f16At(blk), f16At(blk[2:])
		sc, q := blk[4:16], blk[16:144]
		y := dst[b*qkK : b*qkK+qkK]
		for j := range 4 {
			s1, m1 := scaleMinK4(2*j, sc)
			s2, m2 := scaleMinK4(2*j+1, sc)
			d1, o1 := d*float32(s1), dmin*float32(m1)
			d2, o2 := d*float32(s2), dmin*float32(m2)
			qq := q[32*j : 32*j+32]
			lo, hi := y[64*j:64*j+32], y[64*j+32:64*j+64]
			for l, v := range qq {
				lo[l] = float32(d1*float32(v&0xf)) - o1
				hi[l] = float32(d2*float32(v>>4)) - o2
			}
		}
	}
}

// quantizeQ5_K follows quantize_row_q5_K_ref.
func quantizeQ5_K(src []float32, dst []byte) {
	var L [qkK]uint8
	for b := 0; b*qkK < len(src); b++ {
		blk := dst[b*176 : b*176+176]
		clear(blk[4:16])
		quantizeScaleMinK4(src[b*qkK:b*qkK+qkK], blk, L[:], 31, -0.5, 0.1, 15)
		qh, ql := blk[16:48], blk[48:176]
		clear(qh)
		m1, m2 := byte(1), byte(2)
		for n := 0; n < qkK; n += 64 {
			for j := range 32 {
				l1, l2 := L[n+j], L[n+j+32]
				if l1 > 15 {
					l1 -= 16
					qh[j] |= m1
				}
				if l2 > 15 {
					l2 -= 16
					qh[j] |= m2
				}
				ql[j] = l1 | l2<<4
			}
			m1 <<= 2
			m2 <<= 2
			ql = ql[32:]
		}
	}
}

func dequantizeQ5_K(src []byte, dst []float32) {
	for b := 0; b*qkK < len(dst); b++ {
		blk := src[b*176 : b*176+176]
		d, dmin := f16At(blk), f16At(blk[2:])
		sc, qh, ql := blk[4:16], blk[16:48], blk[48:176]
		y := dst[b*qkK : b*qkK+qkK]
		for j := range 4 {
			s1, m1 := scaleMinK4(2*j, sc)
			s2, m2 := scaleMinK4(2*j+1, sc)
			d1, o1 := d*float32(s1), dmin*float32(m1)
			d2, o2 := d*float32(s2), dmin*float32(m2)
			u1, u2 := byte(1)<<(2*j), byte(2)<<(2*j)
			qq := ql[32*j : 32*j+32]
			lo, hi := y[64*j:64*j+32], y[64*j+32:64*j+64]
			for l, v := range qq {
				a, c := v&0xf, v>>4
				if qh[l]&u1 != 0 {
					a += 16
				}
				if qh[l]&u2 != 0 {
					c += 16
				}
				lo[l] = float32(d1*float32(a)) - o1
				hi[l] = float32(d2*float32(c)) - o2
			}
		}
	}
}

// quantizeQ6_K follows quantize_row_q6_K_ref.
func quantizeQ6_K(src []float32, dst []byte) {
	var L [qkK]int8
	var scales [qkK / 16]float32
	for b := 0; b*qkK < len(src); b++ {
		x := src[b*qkK : b*qkK+qkK]
		blk := dst[b*210 : b*210+210]
		var maxScale, maxAbs float32
		for ib := range qkK / 16 {
			scales[ib] = makeQXQuants(32, x[16*ib:16*ib+16], L[16*ib:16*ib+16])
			if a := abs32(scales[ib]); a > maxAbs {
				maxAbs, maxScale = a, scales[ib]
			}
		}
		if maxAbs < groupMaxEps {
			clear(blk)
			continue
		}
		sc := blk[192:208]
		iscale := -128 / maxScale
		putF16(blk[208:], 1/iscale)
		for ib := range sc {
			sc[ib] = byte(int8(min(127, nearestInt(float32(iscale*scales[ib])))))
		}
		dAll := f16At(blk[208:])
		for j := range qkK / 16 {
			d := dAll * float32(int8(sc[j]))
			if d == 0 {
				continue
			}
			for i := range 16 {
				L[16*j+i] = int8(clampInt(nearestInt(x[16*j+i]/d), -32, 31) + 32)
			}
		}
		ql, qh := blk[:128], blk[128:192]
		for j := 0; j < qkK; j += 128 {
			for l := range 32 {
				q1, q2 := byte(L[j+l]), byte(L[j+l+32])
				q3, q4 := byte(L[j+l+64]), byte(L[j+l+96])
				ql[l] = q1&0xf | (q3&0xf)<<4
				ql[l+32] = q2&0xf | (q4&0xf)<<4
				qh[l] = q1>>4 | (q2>>4)<<2 | (q3>>4)<<4 | (q4>>4)<<6
			}
			ql, qh = ql[64:], qh[32:]
		}
	}
}

func dequantizeQ6_K(src []byte, dst []float32) {
	for b := 0; b*qkK < len(dst); b++ {
		blk := src[b*210 : b*210+210]
		d := f16At(blk[208:])
		ql, qh, sc := blk[:128], blk[128:192], blk[192:208]
		y := dst[b*qkK : b*qkK+qkK]
		for n := 0; n < 2; n++ {
			for l := range 32 {
				is := l / 16
				h := qh[l]
				q1 := int(ql[l]&0xf|(h&3)<<4) - 32
				q2 := int(ql[l+32]&0xf|(h>>2&3)<<4) - 32
				q3 := int(ql[l]>>4|(h>>4&3)<<4) - 32
				q4 := int(ql[l+32]>>4|(h>>6&3)<<4) - 32
				y[l] = d * float32(int8(sc[is])) * float32(q1)
				y[l+32] = d * float32(int8(sc[is+2])) * float32(q2)
				y[l+64] = d * float32(int8(sc[is+4])) * float32(q3)
				y[l+96] = d * float32(int8(sc[is+6])) * float32(q4)
			}
			y, ql, qh, sc = y[128:], ql[64:], qh[32:], sc[8:]
		}
	}
}
