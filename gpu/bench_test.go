package gpu

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
	"github.com/graft-ml/graft/core/tensor"
	"github.com/graft-ml/graft/core/train"
)

// benchGPU returns a hardware GPU backend, or skips with "no GPU": the
// benchmarks measure real devices, not lavapipe.
func benchGPU(b *testing.B) *Backend {
	b.Helper()
	g, err := New(Options{})
	if err != nil {
		b.Skipf("no GPU: %v", err)
	}
	b.Cleanup(g.Close)
	return g
}

// benchLarge adds the 4096³ products to BenchmarkMatMulKernels: 137
// GFLOP each, minutes on a software adapter.
var benchLarge = flag.Bool("gpu.large", false, "also time the 4096³ matrix products")

// BenchmarkMatMulKernels times square F32 products (NT, as a Linear layer
// computes them) with the register-tiled kernel MatMul runs and with the
// first, simple one (64 x 64 tiles, scalar loads), side by side, in
// GFLOP/s. It runs on a software adapter too (the only one in CI), so
// the log names the adapter: software figures say nothing about GPUs.
func BenchmarkMatMulKernels(b *testing.B) {
	sizes := []int{1024}
	if *benchLarge {
		sizes = append(sizes, 4096)
	}
	g, err := New(Options{AllowSoftware: true})
	if err != nil {
		b.Skipf("no GPU: %v", err)
	}
	b.Cleanup(g.Close)
	b.Logf("adapter: %s", g.Info())
	for _, n := range sizes {
		rng := rand.New(rand.NewPCG(1, 2))
		vals := make([]float32, n*n)
		for i := range vals {
			vals[i] = float32(rng.NormFloat64())
		}
		x, w, out := g.Zeros(n, n), g.Zeros(n, n), g.Zeros(n, n)
		for _, buf := range []backend.Buffer{x, w} {
			if err := g.Write(buf, 0, vals); err != nil {
				b.Fatal(err)
			}
		}
		for _, kind := range []string{"simple", "tiled"} {
			b.Run(fmt.Sprintf("%d/%s", n, kind), func(b *testing.B) {
				mm := func() { g.matMul(out, x, w, backend.MatMul{TransB: true}, kind == "simple") }
				mm() // compiles the kernel
				if err := g.Sync(); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				start := time.Now()
				for range b.N {
					mm()
				}
				if err := g.Sync(); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(2*float64(n)*float64(n)*float64(n)*float64(b.N)/time.Since(start).Seconds()/1e9, "GFLOP/s")
			})
		}
		for _, buf := range []backend.Buffer{x, w, out} {
			g.Free(buf)
		}
	}
}

// BenchmarkMatMul135M times the largest projection of a 135M-parameter
// Llama (SmolLM: dim 576, MLP 1536) over a batch of 4x128 tokens, for F32
// and Q8_0 weights.
func BenchmarkMatMul135M(b *testing.B) {
	const m, n, k = 512, 1536, 576
	for _, dt := range []tensor.DType{tensor.F32, tensor.Q8_0} {
		b.Run(dt.String(), func(b *testing.B) {
			g := benchGPU(b)
			vals := make([]float32, n*k)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range vals {
				vals[i] = float32(rng.NormFloat64())
			}
			size, _ := dt.Bytes(int64(n * k))
			raw := make([]byte, size)
			if err := tensor.Encode(dt, vals, raw); err != nil {
				b.Fatal(err)
			}
			wt, err := tensor.New("w", dt, tensor.Shape{n, k}, raw)
			if err != nil {
				b.Fatal(err)
			}
			w, err := g.Load(wt)
			if err != nil {
				b.Fatal(err)
			}
			x, out := g.Zeros(m, k), g.Zeros(m, n)
			if err := g.Sync(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				g.MatMul(out, x, w, backend.MatMul{TransB: true})
			}
			if err := g.Sync(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(2*m*n*k*float64(b.N)/time.Since(start).Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkLoRATrain measures LoRA training throughput (r 8 on q, k, v, o;
// batch 4 x 128 tokens) on the CPU and on the GPU, in tokens/s. The model
// is $GRAFT_BENCH_MODEL, stories260K when unset; bench/gpu.sh points it at
// a 135M model.
func BenchmarkLoRATrain(b *testing.B) {
	path := os.Getenv("GRAFT_BENCH_MODEL")
	if path == "" {
		path = storiesModel
	}
	for _, dev := range []string{"cpu", "gpu"} {
		b.Run(dev, func(b *testing.B) {
			var be backend.Backend = cpu.New()
			if dev == "gpu" {
				be = benchGPU(b)
			}
			m, err := model.Load(path, be)
			if err != nil {
				b.Fatal(err)
			}
			defer m.Free()
			seq := min(128, m.Config.Context-1)
			opt := data.DefaultOptions()
			opt.TextSeqLen = seq + 1
			ex, err := data.Load(loraData, m.Tokenizer, opt)
			if err != nil {
				b.Fatal(err)
			}
			loader, err := data.NewLoader(ex, data.LoaderOptions{Batch: 4, SeqLen: seq, Pack: true, Shuffle: true})
			if err != nil {
				b.Fatal(err)
			}
			mg := peft.AttachLoRA(m)
			cfg := peft.LoraConfig{R: 8, LoraAlpha: 16, TargetConfig: peft.TargetConfig{TargetModules: peft.TargetNames("q_proj", "k_proj", "v_proj", "o_proj")}}
			if err := mg.AddAdapter("bench", cfg, rand.New(rand.NewPCG(1, 2))); err != nil {
				b.Fatal(err)
			}
			params, err := mg.Params("bench")
			if err != nil {
				b.Fatal(err)
			}
			tc := train.DefaultConfig()
			tc.Steps, tc.LR, tc.CheckpointDir = b.N+1, 1e-3, b.TempDir()
			tr, err := train.New(&train.LM{Model: m, Trainable: params, Mode: mg.SetTraining}, be, train.LoaderSource(loader), nil, tc)
			if err != nil {
				b.Fatal(err)
			}
			// The first step compiles the kernels; the clock starts after it.
			var start time.Time
			var tokens0, tokens int
			b.ResetTimer()
			if _, err := tr.Fit(context.Background(), func(e train.Event) {
				if e.Kind != "step" {
					return
				}
				if e.Step == 1 {
					start, tokens0 = time.Now(), e.Tokens
				}
				tokens = e.Tokens
			}); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(tokens-tokens0)/time.Since(start).Seconds(), "tokens/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
