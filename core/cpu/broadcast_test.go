package cpu

import (
	"testing"

	"github.com/graft-ml/graft/core/tensor"
)

// TestAddMulBroadcast pins the broadcasting the Backend contract gives Add
// and Mul: a same-size b, a row vector (a bias), or a [rows, 1] column.
func TestAddMulBroadcast(t *testing.T) {
	c := New()
	a := []float32{1, 2, 3, 4, 5, 6} // 2 x 3
	tests := []struct {
		name     string
		b        []float32
		shape    tensor.Shape
		add, mul []float32
	}{
		{"same size", []float32{1, 1, 1, 2, 2, 2}, tensor.Shape{2, 3}, []float32{2, 3, 4, 6, 7, 8}, []float32{1, 2, 3, 8, 10, 12}},
		{"row", []float32{10, 20, 30}, tensor.Shape{3}, []float32{11, 22, 33, 14, 25, 36}, []float32{10, 40, 90, 40, 100, 180}},
		{"column", []float32{10, 100}, tensor.Shape{2, 1}, []float32{11, 12, 13, 104, 105, 106}, []float32{10, 20, 30, 400, 500, 600}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ab := c.Zeros(2, 3)
			if err := c.Write(ab, 0, a); err != nil {
				t.Fatal(err)
			}
			bt, err := tensor.FromFloat32("b", tt.shape, tt.b)
			if err != nil {
				t.Fatal(err)
			}
			bb, err := c.Load(bt)
			if err != nil {
				t.Fatal(err)
			}
			for _, op := range []struct {
				name string
				want []float32
			}{
				{"Add", tt.add}, {"Mul", tt.mul},
			} {
				dst := c.Zeros(2, 3)
				if op.name == "Add" {
					c.Add(dst, ab, bb)
				} else {
					c.Mul(dst, ab, bb)
				}
				got := make([]float32, 6)
				if err := c.Read(dst, 0, got); err != nil {
					t.Fatal(err)
				}
				for i := range got {
					if got[i] != op.want[i] {
						t.Fatalf("%s = %v, want %v", op.name, got, op.want)
					}
				}
			}
		})
	}
}
