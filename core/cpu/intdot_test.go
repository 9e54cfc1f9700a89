package cpu

import (
	"encoding/binary"
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
	const rows = 3 // the generated kernels take runs of rows
	for _, dt := range []tensor.DType{tensor.Q4_K, tensor.Q5_K, tensor.Q6_K, tensor.Q8_0, tensor.Q4_0, tensor.Q5_0} {
		for _, blocks := range []int{1, 2, 4, 7} {
			for _, raw := range []bool{false, true} {
				n := blocks * dt.BlockElems()
				var src []byte
				if raw {
					src = randomBlocks(dt, rows*n)
				} else {
					size, _ := dt.Bytes(int64(rows * n))
					src = make([]byte, size)
					if err := tensor.Encode(dt, randn(r, rows*n, 0.3), src); err != nil {
						t.Fatal(err)
					}
				}
				w := make([]float32, rows*n)
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
				stride := len(src) / rows
				var asm [rows]float32
				k := intDotAsm[dt]
				if k != nil {
					k(rows, blocks, &src[0], stride, act, &asm[0])
				}
				for ri := range rows {
					var want, mag float64
					for i, v := range w[ri*n : (ri+1)*n] {
						want += float64(v) * float64(xq[i])
						mag += math.Abs(float64(v) * float64(xq[i]))
					}
					got := intDotGo[dt](blocks, &src[ri*stride], act)
					if e := math.Abs(float64(got) - want); e > 1e-5*mag+1e-30 {
						t.Errorf("%v, %d blocks (raw %v), row %d: portable %v, float64 decode-dot %v", dt, blocks, raw, ri, got, want)
					}
					if k != nil && math.Float32bits(asm[ri]) != math.Float32bits(got) {
						t.Errorf("%v, %d blocks (raw %v), row %d: assembly %v, portable %v", dt, blocks, raw, ri, asm[ri], got)
					}
				}
			}
		}
	}
}

// TestIntDotRows compares the assembly kernels, where built, with the
// portable ones bit for bit on many runs of rows of random bytes (every
// quant, fifth-bit and packed-scale pattern), 1-16 blocks a row, 1-5 rows
// a call, the rows packed, apart or all the same one (stride 0); the half
// scales range over many magnitudes and both signs, the activation blocks
// from zero (d = 0) to large: the integer sums and the order of the float
// operations over a row, well beyond TestIntDot's few fixed rows.
func TestIntDotRows(t *testing.T) {
	if intDotAsm == nil {
		t.Skip("no assembly integer kernels in this build")
	}
	r := newRand(33)
	for _, dt := range []tensor.DType{tensor.Q4_K, tensor.Q5_K, tensor.Q6_K, tensor.Q8_0, tensor.Q4_0, tensor.Q5_0} {
		k := intDotAsm[dt]
		if k == nil {
			t.Errorf("%v: no assembly kernel", dt)
			continue
		}
		bb := dt.BlockBytes()
		for run := range 40 {
			blocks, rows := 1+run%16, 1+run%5
			stride := blocks*bb + []int{0, 5, bb}[run%3]
			if run%7 == 6 {
				stride = 0
			}
			n := blocks * dt.BlockElems()
			src := make([]byte, (rows-1)*stride+blocks*bb)
			for i := range src {
				src[i] = byte(r.Uint32())
			}
			for ri := range rows {
				for b := 0; b < blocks; b++ {
					for _, off := range halfScaleOffsets(dt) {
						v := float32(r.NormFloat64() * math.Exp2(float64(r.IntN(20)-14)))
						binary.LittleEndian.PutUint16(src[ri*stride+b*bb+off:], tensor.F32ToF16(v))
					}
				}
			}
			actBytes, aelems := actRowBytes(dt.VecDotType(), n)
			x := randn(r, n, math.Exp2(float64(r.IntN(12)-4)))
			if run%3 == 0 { // a zero activation block
				clear(x[:aelems])
			}
			act := make([]byte, actBytes)
			quantizeActs(dt.VecDotType(), x, act)
			out := make([]float32, rows+1)
			out[rows] = 42 // past the run: must stay
			k(rows, blocks, &src[0], stride, &act[0], &out[0])
			for ri := range rows {
				want := intDotGo[dt](blocks, &src[ri*stride], &act[0])
				if got := out[ri]; math.Float32bits(got) != math.Float32bits(want) {
					t.Errorf("%v, run %d (%d rows of %d blocks, stride %d), row %d: assembly %v (%#08x), portable %v (%#08x)",
						dt, run, rows, blocks, stride, ri, got, math.Float32bits(got), want, math.Float32bits(want))
				}
			}
			if out[rows] != 42 {
				t.Errorf("%v, run %d: wrote past its %d rows", dt, run, rows)
			}
		}
	}
}

// BenchmarkIntDot runs each integer kernel over 8 rows of 16 blocks that
// stay in the L1 cache: the kernels' arithmetic throughput, apart from
// memory (BenchmarkMatVecBandwidth measures them on weights read from
// memory). Bytes are the weight bytes; ns/op is for the 8 rows.
func BenchmarkIntDot(b *testing.B) {
	r := newRand(5)
	for _, dt := range []tensor.DType{tensor.Q4_K, tensor.Q5_K, tensor.Q6_K, tensor.Q8_0, tensor.Q4_0, tensor.Q5_0} {
		const k, rows = 4096, 8
		src := randomBlocks(dt, k)
		rowBytes, _ := actRowBytes(dt.VecDotType(), k)
		row := make([]byte, rowBytes)
		quantizeActs(dt.VecDotType(), randn(r, k, 1), row)
		kern := intDotFor(dt)
		blocks := k / dt.BlockElems()
		var out [rows]float32
		b.Run(dt.String(), func(b *testing.B) {
			b.SetBytes(int64(rows * len(src)))
			for b.Loop() {
				// Stride 0: the same row eight times, in the cache.
				kern(rows, blocks, &src[0], 0, &row[0], &out[0])
			}
		})
	}
}
