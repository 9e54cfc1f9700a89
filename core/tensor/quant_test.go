package tensor

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"
)

func encode(t *testing.T, dt DType, values []float32) []byte {
	t.Helper()
	n, err := dt.Bytes(int64(len(values)))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, n)
	if err := Encode(dt, values, buf); err != nil {
		t.Fatal(err)
	}
	return buf
}

func decode(t *testing.T, dt DType, data []byte, n int) []float32 {
	t.Helper()
	out := make([]float32, n)
	if err := Decode(dt, data, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestQ8_0BlockLayout spells out two blocks byte by byte. The first has
// max|x| = 127, so d = 1 and each quant is roundf(x): halves round away
// from zero, as in ggml's quantize_row_q8_0_ref. The second is all zero.
func TestQ8_0BlockLayout(t *testing.T) {
	x := make([]float32, 64)
	head := []float32{127, 0.5, -0.5, 1.5, 2.5, -2.5, 126.5, -127, 0, 3.49, -3.51, 0.49}
	copy(x, head)
	for j := len(head); j < 32; j++ {
		x[j] = float32(j - 20)
	}
	want := []byte{0x00, 0x3c, // d = 1.0 as f16, little-endian
		127, 1, 0xff, 2, 3, 0xfd, 127, 0x81, 0, 3, 0xfc, 0}
	for j := len(head); j < 32; j++ {
		want = append(want, byte(int8(j-20)))
	}
	want = append(want, make([]byte, 34)...) // zero block: d = 0, quants 0
	got := encode(t, Q8_0, x)
	if !bytes.Equal(got, want) {
		t.Fatalf("Q8_0 bytes\n got %x\nwant %x", got, want)
	}
	back := decode(t, Q8_0, got, 64)
	for j, v := range back {
		wantV := float32(int8(want[2+j%32+34*(j/32)]))
		if j >= 32 {
			wantV = 0
		}
		if v != wantV {
			t.Errorf("dequantized[%d] = %v, want %v", j, v, wantV)
		}
	}
}

// TestQ8_0Scale checks the scale d = max|x|/127 stored as f16 and that a
// negative maximum works the same as a positive one.
func TestQ8_0Scale(t *testing.T) {
	x := make([]float32, 32)
	x[5] = -2
	x[6] = 1
	got := encode(t, Q8_0, x)
	d := float32(2) / 127
	if h := uint16(got[0]) | uint16(got[1])<<8; h != F32ToF16(d) {
		t.Errorf("scale %#04x, want %#04x", h, F32ToF16(d))
	}
	if int8(got[2+5]) != -127 || int8(got[2+6]) != 64 { // 1*127/2 = 63.5 rounds away from zero
		t.Errorf("quants %d %d, want -127 64", int8(got[2+5]), int8(got[2+6]))
	}
}

// TestQ4_0BlockLayout spells out a block: the value of largest magnitude
// (here -8) fixes d = max/-8 = 1; q = min(15, trunc(x/d + 8.5)); element j
// goes in the low nibble of byte j and element j+16 in its high nibble.
func TestQ4_0BlockLayout(t *testing.T) {
	x := []float32{
		-8, 7, 7.9, 0.4, 0.5, -0.5, -0.6, -7.5, 0, 1, 2, 3, 4, 5, 6, -1,
		-2, -3, -4, -5, -6, -7, 7.49, 0.51, -7.51, 3.5, 2.5, 1.5, -1.5, -2.5, -3.5, 0,
	}
	lo := []byte{0, 15, 15, 8, 9, 8, 7, 1, 8, 9, 10, 11, 12, 13, 14, 7}
	hi := []byte{6, 5, 4, 3, 2, 1, 15, 9, 0, 12, 11, 10, 7, 6, 5, 8}
	want := []byte{0x00, 0x3c}
	for j := range 16 {
		want = append(want, lo[j]|hi[j]<<4)
	}
	got := encode(t, Q4_0, x)
	if !bytes.Equal(got, want) {
		t.Fatalf("Q4_0 bytes\n got %x\nwant %x", got, want)
	}
	back := decode(t, Q4_0, got, 32)
	for j, v := range back {
		q := lo[j%16]
		if j >= 16 {
			q = hi[j-16]
		}
		if v != float32(int(q)-8) {
			t.Errorf("dequantized[%d] = %v, want %v", j, v, int(q)-8)
		}
	}
}

// TestQ4_0PositiveMax: when the largest magnitude is positive, d is
// negative and that value maps to quant 0.
func TestQ4_0PositiveMax(t *testing.T) {
	x := make([]float32, 32)
	x[0], x[1], x[17] = 8, -4, 2
	got := encode(t, Q4_0, x)
	if got[0] != 0x00 || got[1] != 0xbc { // d = -1
		t.Fatalf("scale bytes %x, want 00bc", got[:2])
	}
	// q = trunc(x*-1 + 8.5): 8 -> 0, -4 -> 12, 2 -> 6, 0 -> 8.
	if got[2] != 0x80 || got[3] != 0x6c || got[4] != 0x88 {
		t.Errorf("quant bytes %x, want 80 6c 88", got[2:5])
	}
	back := decode(t, Q4_0, got, 32)
	if back[0] != 8 || back[1] != -4 || back[17] != 2 || back[2] != 0 {
		t.Errorf("dequantized %v", back[:18])
	}
	// An all-zero block has d = 0/-8 = -0, stored as f16 0x8000 exactly as
	// ggml stores it, and every quant 8.
	zero := encode(t, Q4_0, make([]float32, 32))
	if !bytes.Equal(zero, append([]byte{0x00, 0x80}, bytes.Repeat([]byte{0x88}, 16)...)) {
		t.Errorf("zero block %x", zero)
	}
}

// TestQuantRoundTrip bounds the error of random blocks: half a step for
// Q8_0 (a full step for Q4_0, whose largest positive value may clamp),
// plus what the f16 rounding of the scale adds across the quant range.
func TestQuantRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		dt              DType
		steps, maxQuant float64
	}{{Q8_0, 0.5, 127}, {Q4_0, 1, 8}} {
		for trial := range 50 {
			scale := math.Ldexp(1, rng.IntN(30)-15)
			x := make([]float32, 4*32)
			for i := range x {
				x[i] = float32(rng.NormFloat64() * scale)
			}
			got := decode(t, tc.dt, encode(t, tc.dt, x), len(x))
			for b := 0; b < len(x); b += 32 {
				var amax float64
				for _, v := range x[b : b+32] {
					amax = max(amax, math.Abs(float64(v)))
				}
				step := amax / tc.maxQuant
				// The f16 scale is off by half an f16 ulp: relative
				// 2^-11, or absolute 2^-25 once it is subnormal.
				tol := step*tc.steps + tc.maxQuant*max(step*0x1p-11, 0x1p-25) + 1e-12
				for i := b; i < b+32; i++ {
					if d := math.Abs(float64(got[i] - x[i])); d > tol {
						t.Fatalf("%v trial %d: x[%d] = %v came back %v (error %g > %g)", tc.dt, trial, i, x[i], got[i], d, tol)
					}
				}
			}
		}
	}
}

// TestQ8_0ExactIntegers: integers within ±127 in a block whose maximum is
// 127 survive quantization unchanged.
func TestQ8_0ExactIntegers(t *testing.T) {
	x := make([]float32, 256)
	for i := range x {
		x[i] = float32(i%255 - 127)
	}
	x[0] = 127
	for b := 0; b < len(x); b += 32 {
		x[b] = 127
	}
	got := decode(t, Q8_0, encode(t, Q8_0, x), len(x))
	for i := range x {
		if got[i] != x[i] {
			t.Fatalf("x[%d] = %v came back %v", i, x[i], got[i])
		}
	}
}

func TestEncodeDecodeErrors(t *testing.T) {
	if err := Encode(Q8_0, make([]float32, 32), make([]byte, 33)); err == nil {
		t.Error("Encode into a short buffer succeeded")
	}
	if err := Encode(Q8_0, make([]float32, 31), make([]byte, 34)); err == nil {
		t.Error("Encode of a partial block succeeded")
	}
	if err := Encode(NF4, make([]float32, 2), make([]byte, 1)); err == nil {
		t.Error("Encode NF4 into a short buffer succeeded")
	}
	if err := Decode(NF4, make([]byte, 18), make([]float32, 4)); err == nil {
		t.Error("Decode NF4 without a header succeeded")
	}
	if err := Decode(Q4_0, make([]byte, 17), make([]float32, 32)); err == nil {
		t.Error("Decode of a short buffer succeeded")
	}
	if err := Decode(I32, make([]byte, 4), make([]float32, 1)); err == nil {
		t.Error("Decode I32 succeeded")
	}
	if err := Decode(Invalid, nil, make([]float32, 1)); err == nil {
		t.Error("Decode Invalid succeeded")
	}
}
