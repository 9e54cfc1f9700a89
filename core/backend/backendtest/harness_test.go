package backendtest

import (
	"fmt"
	"math"
	"testing"
)

type recorder struct{ errors []string }

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func TestCompare(t *testing.T) {
	want := []float32{10, -0.001, 3, 0}
	nan := float32(math.NaN())
	for _, tc := range []struct {
		name string
		got  []float32
		tol  float64
		ok   bool
	}{
		{"equal", []float32{10, -0.001, 3, 0}, 0, true},
		{"within tolerance of the largest value", []float32{10.0005, -0.0015, 3.0005, 0.0009}, 1e-4, true},
		{"beyond tolerance", []float32{10, -0.001, 3.01, 0}, 1e-4, false},
		{"NaN", []float32{10, nan, 3, 0}, 1e-4, false},
		{"length", []float32{10, -0.001, 3}, 1e-4, false},
	} {
		r := &recorder{}
		compare(r, "x", tc.got, want, tc.tol)
		if ok := len(r.errors) == 0; ok != tc.ok {
			t.Errorf("%s: compare passed = %v, want %v (%q)", tc.name, ok, tc.ok, r.errors)
		}
	}
}
