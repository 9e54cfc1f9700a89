package cpu

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/graft-ml/graft/core/tensor"
)

// TestDecodeFast checks the vector decoders against tensor.Decode bit for
// bit, on lengths that leave a remainder, with special half-float values.
func TestDecodeFast(t *testing.T) {
	if decodeFast == nil {
		t.Skip("this build has no vector decoders (portable kernels)")
	}
	r := rand.New(rand.NewPCG(5, 6))
	types := []tensor.DType{tensor.F16, tensor.BF16, tensor.Q8_0, tensor.Q4_0, tensor.Q4_K, tensor.Q5_K, tensor.Q6_K}
	if blockDot != nil { // amd64's generated block kernels also decode Q5_0, Q2_K and Q3_K
		types = append(types, tensor.Q5_0, tensor.Q2_K, tensor.Q3_K)
	}
	for _, dt := range types {
		sizes := []int{32, 64, 96, 1024}
		if dt.BlockElems() == 256 {
			sizes = []int{256, 512, 2048}
		}
		for _, n := range sizes {
			vals := make([]float32, n)
			for i := range vals {
				vals[i] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(9)-4)))
			}
			if dt == tensor.F16 || dt == tensor.BF16 {
				vals[0], vals[1], vals[2] = float32(math.Inf(-1)), 6e-8, -0.0 // infinity, a half subnormal, -0
			}
			size, err := dt.Bytes(int64(n))
			if err != nil {
				t.Fatal(err)
			}
			src := make([]byte, size)
			if err := tensor.Encode(dt, vals, src); err != nil {
				t.Fatal(err)
			}
			be := dt.BlockElems()
			for _, m := range []int{n, n - max(32, be), max(32, be)} {
				if m == 0 {
					continue
				}
				if (dt == tensor.F16 || dt == tensor.BF16) && m == n {
					m = n - 3 // a tail the vector loop leaves
				}
				want, got := make([]float32, m), make([]float32, m)
				if err := tensor.Decode(dt, src, want); err != nil {
					t.Fatal(err)
				}
				if !decodeFast(dt, src, got) {
					t.Fatalf("%v: %d values not decoded", dt, m)
				}
				if !slices.EqualFunc(got, want, func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }) {
					t.Fatalf("%v: %d values: got %v..., want %v...", dt, m, got[:4], want[:4])
				}
			}
		}
	}
	if decodeFast(tensor.Q8_0, make([]byte, 33), make([]float32, 32)) {
		t.Error("a short Q8_0 block was decoded")
	}
}

// TestDecodeFastKQuantBytes feeds the K-quant vector decoders random
// blocks, so every bit of the packed scales and mins (Q3_K's high bits
// too) and negative Q6_K scales are reached, not only what the quantizer
// writes; the f16 super-block scales are kept finite.
func TestDecodeFastKQuantBytes(t *testing.T) {
	if decodeFast == nil {
		t.Skip("this build has no vector decoders (portable kernels)")
	}
	r := rand.New(rand.NewPCG(7, 8))
	finite := func(b []byte) { b[1] &= 0x3b } // clear an exponent bit: never 0x1f
	types := []tensor.DType{tensor.Q4_K, tensor.Q5_K, tensor.Q6_K}
	if blockDot != nil { // amd64's generated block kernels, as in TestDecodeFast
		types = append(types, tensor.Q2_K, tensor.Q3_K)
	}
	for _, dt := range types {
		const blocks = 64
		src := make([]byte, blocks*dt.BlockBytes())
		for i := range src {
			src[i] = byte(r.Uint32())
		}
		for b := range blocks {
			blk := src[b*dt.BlockBytes():]
			for _, at := range halfScaleOffsets(dt) {
				finite(blk[at:])
			}
		}
		want, got := make([]float32, blocks*256), make([]float32, blocks*256)
		if err := tensor.Decode(dt, src, want); err != nil {
			t.Fatal(err)
		}
		if !decodeFast(dt, src, got) {
			t.Fatalf("%v: not decoded", dt)
		}
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%v: [%d] (block %d) = %v, portable %v", dt, i, i/256, got[i], want[i])
			}
		}
		if decodeFast(dt, src[:dt.BlockBytes()-1], got[:256]) {
			t.Errorf("%v: a short block was decoded", dt)
		}
	}
}
