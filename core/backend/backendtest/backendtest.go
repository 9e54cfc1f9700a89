// Package backendtest is the conformance suite for implementations of
// backend.Backend. Run drives every operation, forward and backward, on
// random inputs through the backend under test and through the CPU backend
// (core/cpu), the oracle, and compares the results.
//
// A backend's own test calls it:
//
//	func TestConformance(t *testing.T) {
//		backendtest.Run(t, func(t *testing.T) backend.Backend { return mygpu.New() })
//	}
//
// Problems are small (a few thousand elements) so the suite runs in
// seconds on any device, but each is shaped to reach the awkward cases:
// odd sizes, grouped-query attention, a KV cache with SeqQ < SeqK and
// KVStride > SeqK, quantized weights in both orientations, views at an
// offset, and every ggml block type as llama.cpp's files hold it (rows of
// whole super-blocks).
package backendtest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/tensor"
)

// Run runs the suite. newBackend is called once per subtest, with that
// subtest's t, so it may register cleanups or skip.
func Run(t *testing.T, newBackend func(t *testing.T) backend.Backend) {
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.run(newHarness(t, newBackend(t), uint64(i)+1))
		})
	}
}

// weightDTypes are the dtypes every backend must accept in Load.
var weightDTypes = []tensor.DType{tensor.F32, tensor.F16, tensor.BF16, tensor.Q8_0, tensor.Q4_0}

type testCase struct {
	name string
	run  func(h *harness)
}

var cases = slices.Concat(bufferCases, matmulCases(), ggmlCases(), elementwiseCases, layerCases, attentionCases, lossCases)

var bufferCases = []testCase{
	{"Name", func(h *harness) {
		if h.b.Name() == "" {
			h.t.Error("Name() is empty")
		}
	}},
	{"WriteRead", func(h *harness) {
		vals := h.randn(30, 1)
		p := h.values(vals, 5, 6)
		got, _ := h.read(p)
		compare(h.t, "read back", got, vals, 0)
		part := make([]float32, 7)
		if err := h.b.Read(p.got, 11, part); err != nil {
			h.t.Fatal(err)
		}
		compare(h.t, "read at offset", part, vals[11:18], 0)
		if err := h.b.Write(p.got, 28, []float32{1, 2}); err != nil {
			h.t.Fatal(err)
		}
		if err := h.b.Write(p.got, 29, []float32{1, 2}); err == nil {
			h.t.Error("Write past the end succeeded")
		}
		if err := h.b.Read(p.got, 25, make([]float32, 6)); err == nil {
			h.t.Error("Read past the end succeeded")
		}
		if z := h.zeros(3, 4); !z.got.Shape().Equal(tensor.Shape{3, 4}) || z.got.DType() != tensor.F32 {
			h.t.Errorf("Zeros(3, 4) is %v %v", z.got.DType(), z.got.Shape())
		}
	}},
	{"LoadRead", func(h *harness) {
		for _, dt := range weightDTypes {
			p := h.load(dt, 1, 3, 64)
			h.close("read "+dt.String(), p, 1e-6)
			part, want := make([]float32, 40), make([]float32, 40)
			if err := h.b.Read(p.got, 45, part); err != nil {
				h.t.Fatalf("%v: Read inside blocks: %v", dt, err)
			}
			if err := h.o.Read(p.want, 45, want); err != nil {
				h.t.Fatal(err)
			}
			compare(h.t, "read inside blocks "+dt.String(), part, want, 1e-6)
		}
	}},
	{"View", func(h *harness) {
		base := h.rand(1, 6, 8)
		dst := h.view(base, 8, 4, 8) // rows 1..4 of base
		a := h.view(h.rand(1, 5, 16), 16, 4, 16)
		w := h.rand(1, 8, 16)
		h.do(func(be backend.Backend, x side) float64 {
			be.MatMul(x(dst), x(a), x(w), backend.MatMul{TransB: true, Accumulate: true})
			be.Add(x(h.view(base, 0, 2, 4)), x(h.view(base, 40, 2, 4)), x(h.view(base, 20, 2, 4)))
			return 0
		})
		h.close("base through views", base, defaultTol)
		h.close("view", dst, defaultTol)
	}},
}

func matmulCases() []testCase {
	var out []testCase
	shapes := []struct {
		name    string
		m, n, k int
		f       backend.MatMul
	}{
		{"NT", 7, 64, 96, backend.MatMul{TransB: true}},
		{"NT/matvec", 1, 96, 128, backend.MatMul{TransB: true}},
		{"NN", 9, 64, 48, backend.MatMul{}},
		{"TN", 5, 64, 11, backend.MatMul{TransA: true, Alpha: 0.5}},
		{"TT", 6, 33, 64, backend.MatMul{TransA: true, TransB: true, Accumulate: true}},
		{"NT/accumulate", 3, 32, 64, backend.MatMul{TransB: true, Accumulate: true, Alpha: -1.5}},
	}
	for _, dt := range weightDTypes {
		for _, s := range shapes {
			out = append(out, testCase{fmt.Sprintf("MatMul/%v/%s", dt, s.name), func(h *harness) {
				aShape, bShape := []int{s.m, s.k}, []int{s.k, s.n}
				if s.f.TransA {
					aShape = []int{s.k, s.m}
				}
				if s.f.TransB {
					bShape = []int{s.n, s.k}
				}
				a, b, dst := h.rand(1, aShape...), h.load(dt, 1, bShape...), h.rand(1, s.m, s.n)
				h.do(func(be backend.Backend, x side) float64 { be.MatMul(x(dst), x(a), x(b), s.f); return 0 })
				h.close("dst", dst, defaultTol)
			}})
		}
	}
	out = append(out, testCase{"MatMul/F32/odd", func(h *harness) {
		a, b, dst := h.rand(1, 13, 37), h.rand(1, 37, 29), h.zeros(13, 29)
		h.do(func(be backend.Backend, x side) float64 { be.MatMul(x(dst), x(a), x(b), backend.MatMul{}); return 0 })
		h.close("dst", dst, defaultTol)
	}})
	return out
}
