package backendtest

import (
	"fmt"
	"math"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/tensor"
)

// ggmlRow is the row length of the ggml weights below: one K-quant
// super-block, eight blocks of 32. ggml requires whole blocks per row,
// and every backend must take weights as llama.cpp's files hold them.
const ggmlRow = 256

// ggmlCases runs every ggml block type (tensor.QuantTypes) as a frozen
// weight through what the model asks of it: the forward x·Wᵀ (NT, also
// as a mat-vec), the input gradient dY·W (NN), the transposed-A products,
// the embedding gather, and reads that start inside a block and cross a
// super-block boundary. Weight rows are ggmlRow long.
func ggmlCases() []testCase {
	var out []testCase
	shapes := []struct {
		name    string
		m, n, k int
		f       backend.MatMul
	}{
		{"NT", 7, 24, ggmlRow, backend.MatMul{TransB: true}},
		{"NT/matvec", 1, 40, ggmlRow, backend.MatMul{TransB: true}},
		{"NT/accumulate", 3, 16, ggmlRow, backend.MatMul{TransB: true, Accumulate: true, Alpha: -1.5}},
		{"NN", 5, ggmlRow, 20, backend.MatMul{}},
		{"TN", 6, ggmlRow, 9, backend.MatMul{TransA: true, Alpha: 0.5}},
		{"TT", 4, 24, ggmlRow, backend.MatMul{TransA: true, TransB: true, Accumulate: true}},
	}
	for _, dt := range tensor.QuantTypes() {
		for _, s := range shapes {
			out = append(out, testCase{fmt.Sprintf("GGML/%v/MatMul/%s", dt, s.name), func(h *harness) {
				aShape, bShape := []int{s.m, s.k}, []int{s.k, s.n}
				if s.f.TransA {
					aShape = []int{s.k, s.m}
				}
				if s.f.TransB {
					bShape = []int{s.n, s.k}
				}
				a, b, dst := h.rand(1, aShape...), h.load(dt, 1, bShape...), h.rand(1, s.m, s.n)
				h.do(func(be backend.Backend, x side) float64 { be.MatMul(x(dst), x(a), x(b), s.f); return 0 })
				h.closeLogged("dst", dst, defaultTol)
			}})
		}
		out = append(out, testCase{fmt.Sprintf("GGML/%v/Embedding", dt), func(h *harness) {
			ids := []int32{5, 0, 17, 5, 3, 16}
			table, dst := h.load(dt, 1, 18, ggmlRow), h.zeros(len(ids), ggmlRow)
			h.do(func(be backend.Backend, x side) float64 { be.Embedding(x(dst), x(table), ids); return 0 })
			h.closeLogged("dst", dst, 1e-6)
		}})
		out = append(out, testCase{fmt.Sprintf("GGML/%v/LoadRead", dt), func(h *harness) {
			p := h.load(dt, 1, 3, ggmlRow)
			h.closeLogged("read", p, 1e-6)
			part, want := make([]float32, 300), make([]float32, 300)
			if err := h.b.Read(p.got, 45, part); err != nil {
				h.t.Fatalf("%v: Read inside a block: %v", dt, err)
			}
			if err := h.o.Read(p.want, 45, want); err != nil {
				h.t.Fatal(err)
			}
			compare(h.t, h.b.Name()+": read inside a block", part, want, 1e-6)
		}})
	}
	return out
}

// closeLogged is close, logging the largest difference relative to the
// largest oracle value so that a run with -v shows how close it is.
func (h *harness) closeLogged(what string, p pair, tol float64) {
	h.t.Helper()
	got, want := h.read(p)
	compare(h.t, h.b.Name()+": "+what, got, want, tol)
	var worst, scale float64
	for i := range want {
		worst = max(worst, math.Abs(float64(got[i])-float64(want[i])))
		scale = max(scale, math.Abs(float64(want[i])))
	}
	h.t.Logf("%s: max |diff| %.3g of max |oracle| %.3g (%.3g relative)", what, worst, scale, worst/scale)
}
