package tensor

import (
	"math"
	"math/rand"
	"testing"
	"unsafe"
)

// The activation blocks must have ggml's C layouts: the assembly dot
// products read them as bytes.
func TestActBlockLayouts(t *testing.T) {
	var k ActQ8K
	var b0 ActQ8_0
	var b1 ActQ8_1
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof block_q8_K", unsafe.Sizeof(k), 292},
		{"offsetof block_q8_K.qs", unsafe.Offsetof(k.Qs), 4},
		{"offsetof block_q8_K.bsums", unsafe.Offsetof(k.Bsums), 260},
		{"sizeof block_q8_0", unsafe.Sizeof(b0), 34},
		{"offsetof block_q8_0.qs", unsafe.Offsetof(b0.Qs), 2},
		{"sizeof block_q8_1", unsafe.Sizeof(b1), 36},
		{"offsetof block_q8_1.s", unsafe.Offsetof(b1.S), 2},
		{"offsetof block_q8_1.qs", unsafe.Offsetof(b1.Qs), 4},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
}

// TestQuantizeQ8K checks quantize_row_q8_K_ref's rules on hand-made
// blocks: the signed value of largest magnitude (the first of a tie) sets
// iscale = -127/max, quants round half to even (nearest_int), d = 1/iscale,
// bsums sum each 16 quants, and an all-zero block is all zero.
func TestQuantizeQ8K(t *testing.T) {
	x := make([]float32, 2*256)
	// Block 0: max = -127, so iscale = 1 and q = nearest_int(x).
	x[0] = -127
	x[1], x[2], x[3], x[4] = 2.5, 3.5, -2.5, 127
	x[16], x[17] = 100.4, 100.6
	// Block 1: 4 and -4 tie; the first (4) wins: iscale = -31.75.
	x[256], x[257], x[258] = 4, -4, 1
	got := make([]ActQ8K, 2)
	if err := QuantizeQ8K(x, got); err != nil {
		t.Fatal(err)
	}
	b := got[0]
	if b.D != 1 {
		t.Errorf("block 0: d = %v, want 1", b.D)
	}
	wantQ := map[int]int8{0: -127, 1: 2, 2: 4, 3: -2, 4: 127, 16: 100, 17: 101}
	for i, q := range b.Qs {
		if q != wantQ[i] {
			t.Errorf("block 0: q[%d] = %d, want %d", i, q, wantQ[i])
		}
	}
	if b.Bsums[0] != -127+2+4-2+127 || b.Bsums[1] != 201 || b.Bsums[2] != 0 {
		t.Errorf("block 0: bsums %v", b.Bsums[:3])
	}
	b = got[1]
	iscale := float32(-127) / 4
	if b.D != 1/iscale {
		t.Errorf("block 1: d = %v, want 1/(-127/4) = %v", b.D, 1/iscale)
	}
	// 1*iscale = -31.75 rounds to -32.
	if b.Qs[0] != -127 || b.Qs[1] != 127 || b.Qs[2] != -32 {
		t.Errorf("block 1: q = %v", b.Qs[:3])
	}
	if err := QuantizeQ8K(make([]float32, 256), got[:1]); err != nil || got[0] != (ActQ8K{}) {
		t.Errorf("zero block: %+v, %v", got[0].D, err)
	}
	if err := QuantizeQ8K(make([]float32, 255), got[:1]); err == nil {
		t.Error("255 values for one block: no error")
	}
}

// TestQuantizeQ8_0Act checks ggml's x86 quantize_row_q8_0 and _q8_1:
// q = round-half-even(x * 127/amax) (the scalar reference would round
// 2.5 to 3), d = amax/127 as f16, s = f16(d * sum(q)).
func TestQuantizeQ8_0Act(t *testing.T) {
	x := make([]float32, 64)
	x[0], x[1], x[2], x[3] = -127, 2.5, -3.5, 0.5
	x[32], x[33] = 0.1, -0.05
	b0 := make([]ActQ8_0, 2)
	b1 := make([]ActQ8_1, 2)
	if err := QuantizeQ8_0(x, b0); err != nil {
		t.Fatal(err)
	}
	if err := QuantizeQ8_1(x, b1); err != nil {
		t.Fatal(err)
	}
	want := [][4]int8{{-127, 2, -4, 0}, {127, int8(math.RoundToEven(float64(float32(-0.05) * (127 / float32(0.1))))), 0, 0}}
	for blk, w := range want {
		for i, q := range w {
			if b0[blk].Qs[i] != q || b1[blk].Qs[i] != q {
				t.Errorf("block %d: q[%d] = %d (Q8_0), %d (Q8_1), want %d", blk, i, b0[blk].Qs[i], b1[blk].Qs[i], q)
			}
		}
	}
	if b0[1].Qs[1] != -64 { // -63.5 ties to even
		t.Errorf("block 1: q[1] = %d, want -64", b0[1].Qs[1])
	}
	d1 := float32(0.1) / 127
	if b0[0].D != F32ToF16(1) || b0[1].D != F32ToF16(d1) || b1[1].D != b0[1].D {
		t.Errorf("d = %#x, %#x (Q8_1 %#x)", b0[0].D, b0[1].D, b1[1].D)
	}
	if b1[0].S != F32ToF16(-129) || b1[1].S != F32ToF16(d1*float32(127-64)) {
		t.Errorf("s = %v, %v", F16ToF32(b1[0].S), F16ToF32(b1[1].S))
	}
	if err := QuantizeQ8_0(x[:33], b0[:1]); err == nil {
		t.Error("33 values for one block: no error")
	}
}

// TestRoundActivations checks the round trip on random rows: every value
// moves by at most half a quant step (plus, for the f16 scales, the
// scale's rounding times 127 steps: 127/2048), and RoundActivations equals
// quantize-then-dequantize of the weight's activation type.
func TestRoundActivations(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	row := make([]float32, 512)
	for i := range row {
		row[i] = float32(r.NormFloat64())
	}
	for _, c := range []struct {
		dt   DType
		step func(blk int) float32
	}{
		{Q4_K, nil}, {Q6_K, nil}, {IQ4_XS, nil}, {Q4_0, nil}, {Q5_1, nil},
	} {
		got := append([]float32(nil), row...)
		RoundActivations(got, c.dt)
		want := make([]float32, len(row))
		var steps []float32
		switch c.dt.VecDotType() {
		case VecDotQ8K:
			b := make([]ActQ8K, 2)
			_ = QuantizeQ8K(row, b)
			DequantizeQ8K(b, want)
			for _, blk := range b {
				steps = append(steps, abs32(blk.D))
			}
		case VecDotQ8_0:
			b := make([]ActQ8_0, 16)
			_ = QuantizeQ8_0(row, b)
			DequantizeQ8_0(b, want)
			for _, blk := range b {
				steps = append(steps, F16ToF32(blk.D))
			}
		case VecDotQ8_1:
			b := make([]ActQ8_1, 16)
			_ = QuantizeQ8_1(row, b)
			DequantizeQ8_1(b, want)
			for _, blk := range b {
				steps = append(steps, F16ToF32(blk.D))
			}
		}
		per := len(row) / len(steps)
		for i := range row {
			if got[i] != want[i] {
				t.Fatalf("%v: value %d = %v, quantize-dequantize %v", c.dt, i, got[i], want[i])
			}
			if e := abs32(got[i] - row[i]); e > steps[i/per]*0.563 {
				t.Fatalf("%v: value %d moved %v, step %v", c.dt, i, e, steps[i/per])
			}
		}
	}
	kept := append([]float32(nil), row...)
	RoundActivations(kept, F32)
	for i := range kept {
		if kept[i] != row[i] {
			t.Fatal("F32 weight: activations changed")
		}
	}
}
