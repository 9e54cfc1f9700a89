package gpu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/tensor"
)

// TestMatMulShapes checks the tiled product against the CPU backend on
// shapes that reach each tile (128 x 128, 64 x 64, thin in N or M), the
// vector and scalar loads of both operands and every transposition: sides
// that are not multiples of the tile or of 4, K = 1, single elements, and
// LoRA's rank-8 products.
func TestMatMulShapes(t *testing.T) {
	g := testBackend(t)
	c := cpu.New()
	cases := []struct {
		name    string
		m, n, k int
		dt      tensor.DType // of b
		f       backend.MatMul
	}{
		{"big/NT/vec", 512, 1024, 64, tensor.F32, backend.MatMul{TransB: true}},
		{"big/NN/odd", 515, 1030, 21, tensor.F32, backend.MatMul{Accumulate: true, Alpha: 0.5}},
		{"small/NN/vec", 96, 200, 36, tensor.F32, backend.MatMul{}},
		{"small/NT/odd", 67, 131, 37, tensor.F32, backend.MatMul{TransB: true}},
		{"small/TN/vec", 132, 68, 40, tensor.F32, backend.MatMul{TransA: true}},
		{"small/TT/odd", 70, 65, 19, tensor.F32, backend.MatMul{TransA: true, TransB: true, Accumulate: true}},
		{"K1", 77, 90, 1, tensor.F32, backend.MatMul{}},
		{"1x1x1", 1, 1, 1, tensor.F32, backend.MatMul{Accumulate: true}},
		{"tiny", 3, 5, 2, tensor.F32, backend.MatMul{TransB: true}},
		{"lora/xAt", 200, 8, 96, tensor.F32, backend.MatMul{TransB: true}},
		{"lora/xABt", 200, 96, 8, tensor.F32, backend.MatMul{TransB: true, Alpha: 2}},
		{"lora/dA", 8, 96, 200, tensor.F32, backend.MatMul{TransA: true}},
		{"lora/dB/odd", 99, 7, 201, tensor.F32, backend.MatMul{TransA: true, Accumulate: true}},
		{"F16/NT/vec", 12, 96, 64, tensor.F16, backend.MatMul{TransB: true}},
		{"F16/NN/odd", 12, 95, 64, tensor.F16, backend.MatMul{}},
		{"Q8_0/NT", 12, 96, 64, tensor.Q8_0, backend.MatMul{TransB: true}},
	}
	rng := rand.New(rand.NewPCG(3, 4))
	randn := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ashape := []int{tc.m, tc.k}
			if tc.f.TransA {
				ashape = []int{tc.k, tc.m}
			}
			bshape := tensor.Shape{tc.k, tc.n}
			if tc.f.TransB {
				bshape = tensor.Shape{tc.n, tc.k}
			}
			av, bv, dv := randn(tc.m*tc.k), randn(tc.n*tc.k), randn(tc.m*tc.n)
			size, err := tc.dt.Bytes(int64(tc.n * tc.k))
			if err != nil {
				t.Fatal(err)
			}
			raw := make([]byte, size)
			if err := tensor.Encode(tc.dt, bv, raw); err != nil {
				t.Fatal(err)
			}
			bt, err := tensor.New("b", tc.dt, bshape, raw)
			if err != nil {
				t.Fatal(err)
			}
			run := func(be backend.Backend) []float32 {
				a, d := be.Zeros(ashape...), be.Zeros(tc.m, tc.n)
				b, err := be.Load(bt)
				if err != nil {
					t.Fatal(err)
				}
				if err := be.Write(a, 0, av); err != nil {
					t.Fatal(err)
				}
				if err := be.Write(d, 0, dv); err != nil {
					t.Fatal(err)
				}
				be.MatMul(d, a, b, tc.f)
				// The first product of a tile compiles its kernel, which
				// on a loaded machine can outlast Read's hang deadline.
				if err := be.Sync(); err != nil {
					t.Fatal(err)
				}
				out := make([]float32, tc.m*tc.n)
				if err := be.Read(d, 0, out); err != nil {
					t.Fatal(err)
				}
				return out
			}
			closeTo(t, fmt.Sprintf("%s %v", tc.name, g.tileFor(tc.m, tc.n)), run(g), run(c), 1e-5)
		})
	}
}
