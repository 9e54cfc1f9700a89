package tensor

import (
	"math"
	"strings"
	"testing"
)

func TestBytes(t *testing.T) {
	tests := []struct {
		dt      DType
		n       int64
		want    int64
		wantErr string
	}{
		{F32, 10, 40, ""},
		{F16, 3, 6, ""},
		{BF16, 0, 0, ""},
		{Q8_0, 64, 68, ""},
		{Q4_0, 32, 18, ""},
		{NF4, 4, 12 + 2 + 4, ""},
		{NF4, 129, 12 + 65 + 3*4, ""},
		{F64, 2, 16, ""},
		{I8, 5, 5, ""},
		{Bool, 3, 3, ""},
		{F32, 1 << 60, 1 << 62, ""},
		{Invalid, 1, 0, "no size"},
		{DType(200), 1, 0, "no size"},
		{F32, -1, 0, "negative"},
		{Q8_0, 33, 0, "whole number"},
		{NF4, -3, 0, "negative"},
		{F32, 1<<60 + 1, 0, "overflow"},
		{F64, math.MaxInt64, 0, "overflow"},
		{Q4_0, math.MaxInt64 - math.MaxInt64%32, 0, "overflow"},
	}
	for _, tt := range tests {
		got, err := tt.dt.Bytes(tt.n)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%v.Bytes(%d) = %d, %v; want an error containing %q", tt.dt, tt.n, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%v.Bytes(%d) = %d, %v; want %d", tt.dt, tt.n, got, err, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		t       Tensor
		wantErr string
	}{
		{"f32 matrix", Tensor{"a", F32, Shape{2, 3}, make([]byte, 24)}, ""},
		{"scalar", Tensor{"s", F32, Shape{}, make([]byte, 4)}, ""},
		{"empty", Tensor{"e", F16, Shape{0, 5}, nil}, ""},
		{"q8_0 rows", Tensor{"q", Q8_0, Shape{3, 64}, make([]byte, 3*68)}, ""},
		{"short data", Tensor{"a", F32, Shape{2, 3}, make([]byte, 23)}, "needs 24 bytes, have 23"},
		{"long data", Tensor{"a", BF16, Shape{2}, make([]byte, 5)}, "needs 4 bytes, have 5"},
		{"negative dim", Tensor{"n", F32, Shape{2, -1}, nil}, "invalid shape"},
		{"numel overflow", Tensor{"o", F32, Shape{1 << 40, 1 << 40}, nil}, "invalid shape"},
		// 2x48 is 96 elements, three blocks, but rows of 48 split blocks.
		{"rows split blocks", Tensor{"r", Q8_0, Shape{2, 48}, make([]byte, 102)}, "rows of 48"},
		{"q4_0 partial", Tensor{"p", Q4_0, Shape{16}, make([]byte, 9)}, "rows of 16"},
		{"invalid dtype", Tensor{"i", Invalid, Shape{1}, nil}, "no size"},
		{"byte overflow", Tensor{"b", F64, Shape{1 << 61}, nil}, "overflow"},
	}
	for _, tt := range tests {
		err := tt.t.Validate()
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), `"`+tt.t.Name+`"`) {
			t.Errorf("%s: got %v, want an error naming %q and containing %q", tt.name, err, tt.t.Name, tt.wantErr)
		}
	}
}

func TestNewAndFromFloat32(t *testing.T) {
	if _, err := New("x", F32, Shape{2}, make([]byte, 7)); err == nil {
		t.Error("New accepted the wrong size")
	}
	values := []float32{1, -2, 3, 0.5, 5, 6}
	x, err := FromFloat32("x", Shape{2, 3}, values)
	if err != nil {
		t.Fatal(err)
	}
	values[0] = 99 // FromFloat32 copies
	got, err := x.Float32s()
	if err != nil || got[0] != 1 || got[3] != 0.5 || len(got) != 6 {
		t.Errorf("Float32s = %v, %v", got, err)
	}
	if rows, cols := x.Rows(); rows != 2 || cols != 3 {
		t.Errorf("Rows = %d, %d", rows, cols)
	}
	if x.Numel() != 6 {
		t.Errorf("Numel = %d", x.Numel())
	}
	if _, err := FromFloat32("y", Shape{4}, values); err == nil {
		t.Error("FromFloat32 accepted a shape of the wrong size")
	}
	bad := &Tensor{Name: "bad", DType: F32, Shape: Shape{3}, Data: make([]byte, 4)}
	if _, err := bad.Float32s(); err == nil {
		t.Error("Float32s of an invalid tensor succeeded")
	}
	scalar := &Tensor{DType: F32}
	if rows, cols := scalar.Rows(); rows != 1 || cols != 1 {
		t.Errorf("scalar Rows = %d, %d", rows, cols)
	}
}

func TestShape(t *testing.T) {
	s := Shape{2, 3, 4}
	if s.Numel() != 24 || (Shape{}).Numel() != 1 || (Shape{5, 0}).Numel() != 0 {
		t.Error("Numel")
	}
	if (Shape{-1}).Numel() != -1 || (Shape{math.MaxInt64, 2}).Numel() != -1 {
		t.Error("Numel of invalid shapes should be -1")
	}
	c := s.Clone()
	c[0] = 9
	if s[0] != 2 || !s.Equal(Shape{2, 3, 4}) || s.Equal(c) || s.Equal(Shape{2, 3}) {
		t.Error("Clone/Equal")
	}
	if s.String() != "[2 3 4]" {
		t.Errorf("String = %q", s.String())
	}
}

func TestDTypeNames(t *testing.T) {
	for dt := F32; dt <= Bool; dt++ {
		if !dt.Valid() {
			t.Errorf("%v not valid", dt)
		}
		back, err := ParseDType(dt.String())
		if err != nil || back != dt {
			t.Errorf("ParseDType(%q) = %v, %v", dt.String(), back, err)
		}
	}
	if Invalid.Valid() || DType(99).Valid() {
		t.Error("Invalid or out-of-range dtype reported valid")
	}
	if DType(99).String() != "DType(99)" {
		t.Errorf("String of unknown = %q", DType(99).String())
	}
	if _, err := ParseDType("invalid"); err == nil {
		t.Error(`ParseDType("invalid") succeeded`)
	}
	if _, err := ParseDType("f32"); err == nil {
		t.Error("ParseDType is case-sensitive")
	}
	if !Q4_0.Quantized() || F16.Quantized() || !NF4.Float() || I32.Float() {
		t.Error("Quantized/Float")
	}
	if Q8_0.BlockElems() != 32 || Q8_0.BlockBytes() != 34 || Q4_0.BlockBytes() != 18 || F32.BlockElems() != 1 {
		t.Error("block sizes")
	}
}
