package cpu_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/tensor"
)

func randomBuffer(b *testing.B, c *cpu.Backend, dt tensor.DType, shape ...int) backend.Buffer {
	b.Helper()
	n := tensor.Shape(shape).Numel()
	r := rand.New(rand.NewPCG(1, 2))
	vals := make([]float32, n)
	for i := range vals {
		vals[i] = float32(r.NormFloat64())
	}
	size, err := dt.Bytes(n)
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, size)
	if err := tensor.Encode(dt, vals, data); err != nil {
		b.Fatal(err)
	}
	t, err := tensor.New("x", dt, tensor.Shape(shape), data)
	if err != nil {
		b.Fatal(err)
	}
	buf, err := c.Load(t)
	if err != nil {
		b.Fatal(err)
	}
	return buf
}

// reportFlops adds a GFLOP/s metric for flops floating-point operations per
// iteration.
func reportFlops(b *testing.B, flops float64) {
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkMatMulF32(b *testing.B) {
	c := cpu.New()
	for _, n := range []int{256, 512, 1024} {
		for _, f := range []backend.MatMul{{}, {TransB: true}, {TransA: true}} {
			name := fmt.Sprintf("%d/NN", n)
			if f.TransB {
				name = fmt.Sprintf("%d/NT", n)
			}
			if f.TransA {
				name = fmt.Sprintf("%d/TN", n)
			}
			b.Run(name, func(b *testing.B) {
				x, w, dst := randomBuffer(b, c, tensor.F32, n, n), randomBuffer(b, c, tensor.F32, n, n), c.Zeros(n, n)
				for b.Loop() {
					c.MatMul(dst, x, w, f)
				}
				reportFlops(b, 2*math.Pow(float64(n), 3))
			})
		}
	}
}

// BenchmarkMatVec is one token of generation through a 4096x4096 linear
// layer: [1, K] x [N, K]^T, memory-bound on reading the weight.
func BenchmarkMatVec(b *testing.B) {
	const n, k = 4096, 4096
	c := cpu.New()
	for _, dt := range []tensor.DType{tensor.F32, tensor.Q8_0, tensor.Q4_0, tensor.F16, tensor.Q4_K, tensor.Q5_K, tensor.Q6_K} {
		b.Run(dt.String(), func(b *testing.B) {
			x, w, dst := randomBuffer(b, c, tensor.F32, 1, k), randomBuffer(b, c, dt, n, k), c.Zeros(1, n)
			bytes, _ := dt.Bytes(n * k)
			b.SetBytes(bytes)
			for b.Loop() {
				c.MatMul(dst, x, w, backend.MatMul{TransB: true})
			}
			reportFlops(b, 2*n*k)
		})
	}
}

// BenchmarkMatMulQ8_0 is a training-size forward and input-gradient product
// through a quantized weight.
func BenchmarkMatMulQ8_0(b *testing.B) {
	const m, n, k = 256, 1024, 1024
	c := cpu.New()
	w := randomBuffer(b, c, tensor.Q8_0, n, k)
	b.Run("NT", func(b *testing.B) {
		x, dst := randomBuffer(b, c, tensor.F32, m, k), c.Zeros(m, n)
		for b.Loop() {
			c.MatMul(dst, x, w, backend.MatMul{TransB: true})
		}
		reportFlops(b, 2*m*n*k)
	})
	b.Run("NN", func(b *testing.B) {
		dy, dx := randomBuffer(b, c, tensor.F32, m, n), c.Zeros(m, k)
		for b.Loop() {
			c.MatMul(dx, dy, w, backend.MatMul{})
		}
		reportFlops(b, 2*m*n*k)
	})
}

func BenchmarkAttention(b *testing.B) {
	c := cpu.New()
	for _, p := range []backend.Attention{
		{Batch: 1, SeqQ: 256, SeqK: 256, Heads: 8, KVHeads: 4, HeadDim: 64},
		{Batch: 4, SeqQ: 256, SeqK: 256, Heads: 9, KVHeads: 3, HeadDim: 64}, // SmolLM-135M, batch 4
		{Batch: 1, SeqQ: 1, SeqK: 1024, Heads: 32, KVHeads: 8, HeadDim: 128},
		{Batch: 8, SeqQ: 64, SeqK: 64, Heads: 8, KVHeads: 4, HeadDim: 8}, // stories260K, batch 8
	} {
		// Causal attention multiplies about half of the score matrix: two
		// products forward, four backward (P recomputed, dP, dq, dk, dv).
		pairs := float64(p.Batch*p.Heads*p.SeqQ) * (float64(p.SeqK) - float64(p.SeqQ-1)/2)
		flops := 2 * 2 * pairs * float64(p.HeadDim)
		p.Scale = float32(1 / math.Sqrt(float64(p.HeadDim)))
		q := randomBuffer(b, c, tensor.F32, p.Batch*p.SeqQ, p.Heads*p.HeadDim)
		k := randomBuffer(b, c, tensor.F32, p.Batch*p.SeqK, p.KVHeads*p.HeadDim)
		v := randomBuffer(b, c, tensor.F32, p.Batch*p.SeqK, p.KVHeads*p.HeadDim)
		dst := c.Zeros(p.Batch*p.SeqQ, p.Heads*p.HeadDim)
		name := fmt.Sprintf("B%d/Q%d/K%d/H%d/KV%d/D%d", p.Batch, p.SeqQ, p.SeqK, p.Heads, p.KVHeads, p.HeadDim)
		b.Run(name+"/forward", func(b *testing.B) {
			for b.Loop() {
				c.Attention(dst, q, k, v, p)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		dq, dk, dv := c.Zeros(p.Batch*p.SeqQ, p.Heads*p.HeadDim), c.Zeros(p.Batch*p.SeqK, p.KVHeads*p.HeadDim), c.Zeros(p.Batch*p.SeqK, p.KVHeads*p.HeadDim)
		b.Run(name+"/backward", func(b *testing.B) {
			for b.Loop() {
				c.AttentionBackward(dq, dk, dv, dst, q, k, v, p)
			}
			b.ReportMetric(2.5*flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
