package cpu

import (
	"math"
	"testing"

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
		for _, blocks := range []int{1, 2, 4, 7} {
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
				vt := dt.VecDotType()
				rowBytes, _ := actRowBytes(vt, n)
				row := make([]byte, rowBytes)
				quantizeActs(vt, x, row)
				act := &row[0]
				if vt == tensor.VecDotQ8K {
					tensor.DequantizeQ8K(q8kBlocks(act, n/256), xq)
				} else {
					tensor.DequantizeQ8_0(q80Blocks(act, n/32), xq)
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

// BenchmarkIntDot runs each integer kernel over one row of 16 blocks
// that stays in the L1 cache: the kernels' arithmetic throughput, apart
// from memory (BenchmarkMatVecBandwidth measures them on weights read
// from memory). Bytes are the weight bytes.
func BenchmarkIntDot(b *testing.B) {
	r := newRand(5)
	for _, dt := range []tensor.DType{tensor.Q4_K, tensor.Q5_K, tensor.Q6_K, tensor.Q8_0, tensor.Q4_0, tensor.Q5_0} {
		const k = 4096
		src := randomBlocks(dt, k)
		rowBytes, _ := actRowBytes(dt.VecDotType(), k)
		row := make([]byte, rowBytes)
		quantizeActs(dt.VecDotType(), randn(r, k, 1), row)
		kern := intDotFor(dt)
		blocks := k / dt.BlockElems()
		b.Run(dt.String(), func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			var sink float32
			for b.Loop() {
				sink += kern(blocks, &src[0], &row[0])
			}
			_ = sink
		})
	}
}
