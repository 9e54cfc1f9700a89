package cpu

import (
	"math"
	"testing"
	"unsafe"

	"github.com/graft-ml/graft/core/tensor"
)

// TestIntDot checks the integer dot products of each weight type with its
// activation blocks: the portable kernel against the float64 dot product
// of the decoded weight with the decoded activations (so it computes
// ggml's vec_dot), and the assembly kernel, where built, against the
// portable one bit for bit; over rows of several blocks, on quantized
// random values and on random bytes (every scale and quant pattern).
func TestIntDot(t *testing.T) {
	r := newRand(21)
	for _, dt := range []tensor.DType{tensor.Q4_K, tensor.Q5_K, tensor.Q6_K, tensor.Q8_0, tensor.Q4_0, tensor.Q5_0} {
		for _, blocks := range []int{1, 2, 7} {
			for _, raw := range []bool{false, true} {
				n := blocks * dt.BlockElems()
				var src []byte
				if raw {
					src = randomBlocks(dt, n)
				} else {
					size, _ := dt.Bytes(int64(n))
					src = make([]byte, size)
					if err := tensor.Encode(dt, randn(r, n, 0.3), src); err != nil {
						t.Fatal(err)
					}
				}
				w := make([]float32, n)
				if err := tensor.Decode(dt, src, w); err != nil {
					t.Fatal(err)
				}
				x := randn(r, n, 1)
				xq := make([]float32, n)
				var act *byte
				switch dt.VecDotType() {
				case tensor.VecDotQ8K:
					a := make([]tensor.ActQ8K, n/256)
					if err := tensor.QuantizeQ8K(x, a); err != nil {
						t.Fatal(err)
					}
					tensor.DequantizeQ8K(a, xq)
					act = (*byte)(unsafe.Pointer(&a[0]))
				default:
					a := make([]tensor.ActQ8_0, n/32)
					if err := tensor.QuantizeQ8_0(x, a); err != nil {
						t.Fatal(err)
					}
					tensor.DequantizeQ8_0(a, xq)
					act = (*byte)(unsafe.Pointer(&a[0]))
				}
				var want, mag float64
				for i := range w {
					want += float64(w[i]) * float64(xq[i])
					mag += math.Abs(float64(w[i]) * float64(xq[i]))
				}
				got := intDotGo[dt](blocks, &src[0], act)
				if e := math.Abs(float64(got) - want); e > 1e-5*mag+1e-30 {
					t.Errorf("%v, %d blocks (raw %v): portable %v, float64 decode-dot %v", dt, blocks, raw, got, want)
				}
				if k := intDotAsm[dt]; k != nil {
					if a := k(blocks, &src[0], act); math.Float32bits(a) != math.Float32bits(got) {
						t.Errorf("%v, %d blocks (raw %v): assembly %v, portable %v", dt, blocks, raw, a, got)
					}
				}
			}
		}
	}
}
