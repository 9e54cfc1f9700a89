package gpu

import (
	"context"
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
