package tensor

import (
	"encoding/binary"
	"math"
)

// ggml block layouts. Q8_0: an f16 scale d, then 32 int8 quants; value =
// d*q. Q4_0: an f16 scale d, then 16 bytes; element j (j < 16) is the low
// nibble of byte j and element j+16 its high nibble; value = d*(q-8).

const qk = 32 // elements per Q8_0 / Q4_0 block

func dequantizeQ8_0(src []byte, dst []float32) {
	for b := 0; b*qk < len(dst); b++ {
		blk := src[b*34 : b*34+34]
		d := F16ToF32(binary.LittleEndian.Uint16(blk))
		out := dst[b*qk : b*qk+qk]
		for j := range out {
			out[j] = d * float32(int8(blk[2+j]))
		}
	}
}

func dequantizeQ4_0(src []byte, dst []float32) {
	for b := 0; b*qk < len(dst); b++ {
		blk := src[b*18 : b*18+18]
		d := F16ToF32(binary.LittleEndian.Uint16(blk))
		out := dst[b*qk : b*qk+qk]
		for j := 0; j < qk/2; j++ {
			q := blk[2+j]
			out[j] = d * float32(int(q&0x0f)-8)
			out[j+qk/2] = d * float32(int(q>>4)-8)
		}
	}
}

// quantizeQ8_0 follows ggml's reference: d = max|x|/127, q = round(x/d).
func quantizeQ8_0(src []float32, dst []byte) {
	for b := 0; b*qk < len(src); b++ {
		in := src[b*qk : b*qk+qk]
		var amax float32
		for _, v := range in {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := amax / 127
		id := float32(0)
		if d != 0 {
			id = 1 / d
		}
		blk := dst[b*34 : b*34+34]
		binary.LittleEndian.PutUint16(blk, F32ToF16(d))
		for j, v := range in {
			blk[2+j] = byte(int8(math.Round(float64(v * id))))
		}
	}
}

// quantizeQ4_0 follows ggml's reference: the value of largest magnitude
// maps to -8, d = max/-8, q = min(15, trunc(x/d + 8.5)).
func quantizeQ4_0(src []float32, dst []byte) {
	for b := 0; b*qk < len(src); b++ {
		in := src[b*qk : b*qk+qk]
		var amax, mx float32
		for _, v := range in {
			if a := float32(math.Abs(float64(v))); a > amax {
				amax, mx = a, v
			}
		}
		d := mx / -8
		id := float32(0)
		if d != 0 {
			id = 1 / d
		}
		blk := dst[b*18 : b*18+18]
		binary.LittleEndian.PutUint16(blk, F32ToF16(d))
		for j := 0; j < qk/2; j++ {
			// The explicit float32 conversions round each product before
			// the addition, as C does; without them Go may fuse x*id+8.5
			// into one FMA on some architectures and pick a different q.
			q0 := min(15, int(float32(in[j]*id)+8.5))
			q1 := min(15, int(float32(in[j+qk/2]*id)+8.5))
			blk[2+j] = byte(q0) | byte(q1)<<4
		}
	}
}
