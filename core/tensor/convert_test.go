package tensor

import (
	"math"
	"testing"
)

// f16Value is an independent decoding of binary16 via math.Ldexp.
func f16Value(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(mant, -24)
	case 0x1f:
		if mant != 0 {
			return math.NaN()
		}
		return sign * math.Inf(1)
	}
	return sign * math.Ldexp(1+mant/1024, exp-15)
}

func isF16NaN(h uint16) bool { return h&0x7c00 == 0x7c00 && h&0x3ff != 0 }

func TestF16ToF32Exhaustive(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		got := F16ToF32(h)
		want := f16Value(h)
		if isF16NaN(h) {
			if !math.IsNaN(float64(got)) {
				t.Fatalf("F16ToF32(%#04x) = %v, want NaN", h, got)
			}
			if math.Signbit(float64(got)) != (h&0x8000 != 0) {
				t.Fatalf("F16ToF32(%#04x) lost the sign of a NaN", h)
			}
			continue
		}
		if float64(got) != want || math.Signbit(float64(got)) != (h&0x8000 != 0) {
			t.Fatalf("F16ToF32(%#04x) = %v, want %v", h, got, want)
		}
		// Every binary16 value is a float32, so the way back is exact.
		if back := F32ToF16(got); back != h {
			t.Fatalf("F32ToF16(F16ToF32(%#04x)) = %#04x", h, back)
		}
	}
}

func TestF16Known(t *testing.T) {
	tests := []struct {
		h uint16
		f float32
	}{
		{0x0000, 0},
		{0x3c00, 1},
		{0xc000, -2},
		{0x3555, 0.333251953125},
		{0x7bff, 65504},
		{0x0400, 0x1p-14},               // smallest normal
		{0x03ff, 0x1.ff8p-15},           // largest subnormal
		{0x0001, 0x1p-24},               // smallest subnormal
		{0x8001, -0x1p-24},              // negative subnormal
		{0x7c00, float32(math.Inf(1))},  // +Inf
		{0xfc00, float32(math.Inf(-1))}, // -Inf
		{0x3bff, 0.99951171875},         // just below one
		{0x0200, 0x1p-15},               // mid subnormal
		{0x5640, 100},
	}
	for _, tt := range tests {
		if got := F16ToF32(tt.h); got != tt.f {
			t.Errorf("F16ToF32(%#04x) = %v, want %v", tt.h, got, tt.f)
		}
		if got := F32ToF16(tt.f); got != tt.h {
			t.Errorf("F32ToF16(%v) = %#04x, want %#04x", tt.f, got, tt.h)
		}
	}
	if got := F32ToF16(float32(math.Copysign(0, -1))); got != 0x8000 {
		t.Errorf("F32ToF16(-0) = %#04x, want 0x8000", got)
	}
}

// TestF32ToF16Rounding checks round-to-nearest-even at every midpoint
// between adjacent binary16 values, subnormals included, and just either
// side of it. Midpoints have 12 significant bits, so float32 holds them.
func TestF32ToF16Rounding(t *testing.T) {
	for a := uint16(0); a < 0x7c00; a++ {
		b := a + 1 // 0x7c00 (Inf) follows the largest finite value
		lo, hi := float64(F16ToF32(a)), float64(F16ToF32(b))
		if b == 0x7c00 {
			hi = 65536 // where the next value would be without overflow
		}
		mid := float32((lo + hi) / 2)
		if float64(mid) != (lo+hi)/2 {
			t.Fatalf("midpoint of %#04x and %#04x is not a float32", a, b)
		}
		even := a
		if a&1 == 1 {
			even = b
		}
		for _, sign := range []uint16{0, 0x8000} {
			s := float32(1)
			if sign != 0 {
				s = -1
			}
			if got := F32ToF16(s * mid); got != sign|even {
				t.Fatalf("F32ToF16(%v) = %#04x, want %#04x (tie to even)", s*mid, got, sign|even)
			}
			up := math.Nextafter32(mid, float32(math.Inf(1)))
			if got := F32ToF16(s * up); got != sign|b {
				t.Fatalf("F32ToF16(%v) = %#04x, want %#04x", s*up, got, sign|b)
			}
			down := math.Nextafter32(mid, 0)
			if got := F32ToF16(s * down); got != sign|a {
				t.Fatalf("F32ToF16(%v) = %#04x, want %#04x", s*down, got, sign|a)
			}
		}
	}
}

func TestF32ToF16Special(t *testing.T) {
	tests := []struct {
		name string
		f    float32
		want uint16
	}{
		{"overflow", 1e6, 0x7c00},
		{"negative overflow", -1e6, 0xfc00},
		{"max float32", math.MaxFloat32, 0x7c00},
		{"+Inf", float32(math.Inf(1)), 0x7c00},
		{"-Inf", float32(math.Inf(-1)), 0xfc00},
		{"float32 subnormal", math.SmallestNonzeroFloat32, 0},
		{"negative tiny", -1e-30, 0x8000},
		{"2^-25 ties to zero", 0x1p-25, 0},
		{"above 2^-25 rounds up", 0x1.000002p-25, 1},
		{"3*2^-25 ties to even", 0x1.8p-24, 2},
	}
	for _, tt := range tests {
		if got := F32ToF16(tt.f); got != tt.want {
			t.Errorf("%s: F32ToF16(%v) = %#04x, want %#04x", tt.name, tt.f, got, tt.want)
		}
	}
	for _, bits := range []uint32{0x7fc00000, 0xffc00000, 0x7f800001, 0x7fffffff, 0xff800001} {
		f := math.Float32frombits(bits)
		got := F32ToF16(f)
		if !isF16NaN(got) || (got&0x8000 != 0) != (bits>>31 == 1) {
			t.Errorf("F32ToF16(NaN %#08x) = %#04x, want a NaN of the same sign", bits, got)
		}
	}
}

func TestBF16ToF32Exhaustive(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		got := BF16ToF32(h)
		if math.Float32bits(got) != uint32(h)<<16 {
			t.Fatalf("BF16ToF32(%#04x) = %#08x", h, math.Float32bits(got))
		}
		isNaN := h&0x7f80 == 0x7f80 && h&0x7f != 0
		back := F32ToBF16(got)
		if isNaN {
			if back&0x7f80 != 0x7f80 || back&0x7f == 0 || back&0x8000 != h&0x8000 {
				t.Fatalf("F32ToBF16(NaN %#04x) = %#04x", h, back)
			}
			continue
		}
		if back != h {
			t.Fatalf("F32ToBF16(BF16ToF32(%#04x)) = %#04x", h, back)
		}
	}
}

// TestF32ToBF16Rounding checks ties-to-even at every midpoint between
// adjacent bfloat16 values and one float32 ulp either side.
func TestF32ToBF16Rounding(t *testing.T) {
	for a := uint16(0); a < 0x7f80; a++ {
		b := a + 1
		midBits := uint32(a)<<16 | 0x8000
		even := a
		if a&1 == 1 {
			even = b
		}
		for _, sign := range []uint32{0, 0x80000000} {
			s16 := uint16(sign >> 16)
			check := func(bits uint32, want uint16) {
				if got := F32ToBF16(math.Float32frombits(sign | bits)); got != s16|want {
					t.Fatalf("F32ToBF16(%#08x) = %#04x, want %#04x", sign|bits, got, s16|want)
				}
			}
			check(midBits, even)
			check(midBits+1, b)
			check(midBits-1, a)
		}
	}
}

func TestF32ToBF16Special(t *testing.T) {
	tests := []struct {
		name string
		f    float32
		want uint16
	}{
		{"one", 1, 0x3f80},
		{"+Inf", float32(math.Inf(1)), 0x7f80},
		{"-Inf", float32(math.Inf(-1)), 0xff80},
		{"max float32 rounds to Inf", math.MaxFloat32, 0x7f80},
		{"negative zero", float32(math.Copysign(0, -1)), 0x8000},
		{"float32 subnormal rounds", math.Float32frombits(0x00008000), 0x0000},
		{"float32 subnormal kept", math.Float32frombits(0x00018000), 0x0002},
	}
	for _, tt := range tests {
		if got := F32ToBF16(tt.f); got != tt.want {
			t.Errorf("%s: F32ToBF16(%v) = %#04x, want %#04x", tt.name, tt.f, got, tt.want)
		}
	}
	// A NaN whose payload sits only in the low bits must not become Inf.
	for _, bits := range []uint32{0x7f800001, 0xff800001, 0x7fc00000, 0x7fffffff} {
		got := F32ToBF16(math.Float32frombits(bits))
		if got&0x7f80 != 0x7f80 || got&0x7f == 0 || uint32(got>>15) != bits>>31 {
			t.Errorf("F32ToBF16(NaN %#08x) = %#04x, want a NaN of the same sign", bits, got)
		}
	}
}

func TestEncodeDecodeScalarTypes(t *testing.T) {
	values := []float32{0, 1, -2.5, 65504, 0x1p-24, float32(math.Inf(-1))}
	for _, dt := range []DType{F32, F16, BF16} {
		n, err := dt.Bytes(int64(len(values)))
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, n)
		if err := Encode(dt, values, buf); err != nil {
			t.Fatal(err)
		}
		out := make([]float32, len(values))
		if err := Decode(dt, buf, out); err != nil {
			t.Fatal(err)
		}
		for i, v := range values {
			want := v
			switch dt {
			case F16:
				want = F16ToF32(F32ToF16(v))
			case BF16:
				want = BF16ToF32(F32ToBF16(v))
			}
			if out[i] != want {
				t.Errorf("%v: value %d decoded to %v, want %v", dt, i, out[i], want)
			}
		}
	}
	// F64 is decode-only.
	f64 := make([]byte, 16)
	for i, v := range []float64{1.5, -3} {
		bits := math.Float64bits(v)
		for b := range 8 {
			f64[8*i+b] = byte(bits >> (8 * b))
		}
	}
	out := make([]float32, 2)
	if err := Decode(F64, f64, out); err != nil || out[0] != 1.5 || out[1] != -3 {
		t.Errorf("Decode F64 = %v, %v", out, err)
	}
}
