package cpu

import (
	"fmt"
	"math"
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/tensor"
)

// TestMatMulGGMLTypes multiplies by weights of every ggml block type, in
// every orientation and through each path (the mat-vec of generation, the
// portable tiles, the packed product, edge tiles of several super-blocks),
// and checks the result equals, bit for bit, the same product with the
// weight's decoded values loaded as F32: the weight is decoded block-wise
// inside the product exactly as tensor.Decode decodes it whole.
func TestMatMulGGMLTypes(t *testing.T) {
	shapes := []struct {
		m, n, k int
		f       backend.MatMul
	}{
		{1, 40, 768, backend.MatMul{TransB: true}},                   // generation: x · Wᵀ, W [40, 768]
		{2, 21, 512, backend.MatMul{TransB: true, Accumulate: true}}, // fused mat-vec, rows past the last group of four
		{3, 24, 512, backend.MatMul{TransB: true, Alpha: 0.5}},       // portable NT tiles
		{70, 36, 512, backend.MatMul{TransB: true}},                  // packed NT
		{2, 768, 20, backend.MatMul{}},                               // backward dX = dY · W, W [20, 768]: NN column tiles
		{66, 768, 12, backend.MatMul{Accumulate: true}},              // packed NN
		{9, 512, 8, backend.MatMul{TransA: true, Accumulate: true}},  // TN
	}
	c := newTestBackend(3)
	for _, dt := range tensor.QuantTypes() {
		for si, s := range shapes {
			t.Run(fmt.Sprintf("%v/%dx%dx%d/%+v", dt, s.m, s.n, s.k, s.f), func(t *testing.T) {
				r := newRand(uint64(si) + 7)
				aShape, bShape := []int{s.m, s.k}, []int{s.k, s.n}
				if s.f.TransA {
					aShape = []int{s.k, s.m}
				}
				if s.f.TransB {
					bShape = []int{s.n, s.k}
				}
				av := randn(r, s.m*s.k, 1)
				a := upload(t, c, av, aShape...)
				w, dec := uploadAs(t, c, dt, randn(r, s.n*s.k, 0.1), bShape...)
				w32 := upload(t, c, dec, bShape...)
				start := randn(r, s.m*s.n, 1)
				got, want := upload(t, c, start, s.m, s.n), upload(t, c, start, s.m, s.n)
				// The exact mat-vec; the integer one (the default) is
				// checked below.
				c.SetExactMatVec(true)
				c.MatMul(got, a, w, s.f)
				c.SetExactMatVec(false)
				c.MatMul(want, a, w32, s.f)
				g, wv := download(t, c, got), download(t, c, want)
				for i := range g {
					if math.Float32bits(g[i]) != math.Float32bits(wv[i]) {
						t.Fatalf("dst[%d] = %v, with the decoded F32 weight %v", i, g[i], wv[i])
					}
				}
				if s.f.TransB && s.m <= matVecRows && intDotFor(dt) != nil {
					checkIntMatVec(t, c, dt, w, dec, av, start, s.m, s.n, s.k, s.f)
				}
				// Reads that start inside a super-block decode the right values.
				part := make([]float32, 300)
				if err := c.Read(w, 37, part); err != nil {
					t.Fatal(err)
				}
				for i, v := range part {
					if v != dec[37+i] {
						t.Fatalf("Read at 37: [%d] = %v, want %v", i, v, dec[37+i])
					}
				}
			})
		}
	}
}

// TestEmbeddingGGMLTypes gathers rows of a K-quant token table (Q4_K_M
// files put Q6_K or Q4_K on token_embd).
func TestEmbeddingGGMLTypes(t *testing.T) {
	c := newTestBackend(2)
	for _, dt := range []tensor.DType{tensor.Q2_K, tensor.Q3_K, tensor.Q4_K, tensor.Q5_K, tensor.Q6_K, tensor.Q5_1} {
		r := newRand(3)
		table, dec := uploadAs(t, c, dt, randn(r, 10*256, 1), 10, 256)
		ids := []int32{3, 0, 9, 3}
		out := c.Zeros(len(ids), 256)
		c.Embedding(out, table, ids)
		got := download(t, c, out)
		for i, id := range ids {
			for j := range 256 {
				if got[i*256+j] != dec[int(id)*256+j] {
					t.Fatalf("%v: row %d (token %d) [%d] = %v, want %v", dt, i, id, j, got[i*256+j], dec[int(id)*256+j])
				}
			}
		}
	}
}

// checkIntMatVec checks the default mat-vec of a quantized weight w
// (decoded values dec) against float64 products of the decoded weight
// with the activations rounded as llama.cpp rounds them
// (tensor.RoundActivations), to float32 rounding.
func checkIntMatVec(t *testing.T, c *Backend, dt tensor.DType, w backend.Buffer, dec, av, start []float32, m, n, k int, f backend.MatMul) {
	t.Helper()
	dst := upload(t, c, start, m, n)
	c.MatMul(dst, upload(t, c, av, m, k), w, f)
	rounded := append([]float32(nil), av...)
	for i := range m {
		tensor.RoundActivations(rounded[i*k:(i+1)*k], dt)
	}
	want, mag := refMatMul(rounded, dec, m, n, k, false, true)
	alpha := float64(f.Alpha)
	if alpha == 0 {
		alpha = 1
	}
	got := download(t, c, dst)
	for i := range got {
		wv := alpha * want[i]
		if f.Accumulate {
			wv += float64(start[i])
		}
		if d := math.Abs(float64(got[i]) - wv); !(d <= 1e-5*(mag[i]+math.Abs(float64(start[i])))) {
			t.Fatalf("integer mat-vec: dst[%d] = %v, want %v", i, got[i], wv)
		}
	}
}
