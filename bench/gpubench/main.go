// Command gpubench measures graft's WebGPU backend where a user would run
// it (`make bench-gpu`): matmul GFLOP/s beside the device's FP32 peak,
// LoRA training tokens/s on the GPU against the CPU backend, generation
// tokens/s, and the most device memory the backend held. It prints the
// adapter it ran on first, so a figure is never read without its device.
//
// The model is a random-init Llama of SmolLM-135M's shape (written once
// to -cache), or a smaller preset with -shape tiny for software adapters
// such as lavapipe, where the 135M shape takes minutes a step.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
	"github.com/graft-ml/graft/core/train"
	"github.com/graft-ml/graft/gpu"
	"github.com/graft-ml/graft/internal/randgguf"
)

// shapes are the model presets: smol135m is SmolLM-135M's architecture
// (as bench/e2e and bench/torch_lora.py use it); tiny is for software
// adapters.
var shapes = map[string]randgguf.Shape{
	"smol135m": {Name: "smol135m-random", Dim: 576, FFN: 1536, Layers: 30, Heads: 9, KVHeads: 3,
		Vocab: 49152, Ctx: 2048, NormEps: 1e-5, RopeTheta: 10000},
	"tiny": {Name: "tiny-random", Dim: 128, FFN: 384, Layers: 2, Heads: 4, KVHeads: 2,
		Vocab: 512, Ctx: 256, NormEps: 1e-5, RopeTheta: 10000},
}

type options struct {
	sizes         []int
	shape         string
	cache         string
	threads       int
	steps         int
	batch, seq    int
	genTokens     int
	allowSoftware bool
	skipCPU       bool
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gpubench:", err)
		os.Exit(1)
	}
}

func run(argv []string) error {
	var o options
	fs := flag.NewFlagSet("gpubench", flag.ContinueOnError)
	sizes := fs.String("sizes", "1024,4096", "square matmul sizes n (n x n times n x n, F32), comma-separated")
	fs.StringVar(&o.shape, "shape", "smol135m", "model preset: smol135m (SmolLM-135M's shape) or tiny")
	fs.StringVar(&o.cache, "cache", "", "directory for the random model (default: the user cache directory)")
	fs.IntVar(&o.threads, "threads", 2, "CPU backend threads for the CPU rows")
	fs.IntVar(&o.steps, "steps", 5, "timed LoRA steps per device (after one untimed step that compiles the kernels)")
	fs.IntVar(&o.batch, "batch", 4, "LoRA batch rows")
	fs.IntVar(&o.seq, "seq", 128, "LoRA tokens per row")
	fs.IntVar(&o.genTokens, "gen-tokens", 32, "tokens generated per device (greedy, after an untimed warm-up)")
	fs.BoolVar(&o.allowSoftware, "allow-software", false, "run on a software adapter (lavapipe) when there is no GPU")
	fs.BoolVar(&o.skipCPU, "skip-cpu", false, "leave out the CPU rows")
	if err := fs.Parse(argv); err != nil {
		return err
	}
	for _, f := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return fmt.Errorf("-sizes: %q is not a positive size", f)
		}
		o.sizes = append(o.sizes, n)
	}
	s, ok := shapes[o.shape]
	if !ok {
		return fmt.Errorf("-shape %q: want smol135m or tiny", o.shape)
	}

	g, err := gpu.New(gpu.Options{AllowSoftware: o.allowSoftware})
	if err != nil {
		if errors.Is(err, gpu.ErrSoftwareAdapter) {
			return fmt.Errorf("%w (pass -allow-software to measure it anyway)", err)
		}
		return err
	}
	defer g.Close()
	info := g.Info()
	fmt.Printf("adapter: %s\n  backend %s, type %s, driver %q, shader-f16 %v, largest binding %d MiB\n",
		info.Name, info.Backend, info.DeviceType, info.Driver, info.ShaderF16, info.MaxBindingBytes>>20)
	peak, source := fp32Peak(info.Name)

	fmt.Println("\nmatmul (F32, n x n x n):")
	for _, n := range o.sizes {
		gflops, err := matmulGFLOPS(g, n)
		if err != nil {
			return err
		}
		if peak > 0 {
			fmt.Printf("  %5d^3  %9.3g GFLOP/s  %5.1f%% of the FP32 peak %.1f TFLOP/s (%s)\n", n, gflops, 100*gflops/(peak*1e3), peak, source)
		} else {
			fmt.Printf("  %5d^3  %9.3g GFLOP/s  FP32 peak of %q unknown\n", n, gflops, info.Name)
		}
	}

	path, err := ensureModel(o, s)
	if err != nil {
		return err
	}
	fmt.Printf("\nmodel: %s (dim %d, %d layers, %d heads, %d kv heads, vocab %d; random F32)\n", s.Name, s.Dim, s.Layers, s.Heads, s.KVHeads, s.Vocab)
	fmt.Printf("LoRA r=8 on q,k,v,o, batch %d x %d tokens, %d timed steps:\n", o.batch, o.seq, o.steps)
	g.ResetPeakMemory()
	live0, _ := g.MemoryStats()
	gpuTok, gpuLoss, err := loraTokensPerSecond(g, path, s, o)
	if err != nil {
		return fmt.Errorf("gpu training: %w", err)
	}
	_, peakBytes := g.MemoryStats()
	fmt.Printf("  gpu  %9.1f tokens/s  (last loss %.4f; peak device memory %.1f MiB, %.1f MiB before the model)\n",
		gpuTok, gpuLoss, float64(peakBytes)/(1<<20), float64(live0)/(1<<20))
	var cpuTok float64
	if !o.skipCPU {
		c := cpu.NewWithThreads(o.threads)
		var cpuLoss float64
		if cpuTok, cpuLoss, err = loraTokensPerSecond(c, path, s, o); err != nil {
			return fmt.Errorf("cpu training: %w", err)
		}
		fmt.Printf("  cpu  %9.1f tokens/s  (last loss %.4f; %s)\n", cpuTok, cpuLoss, c.Name())
		fmt.Printf("  gpu / cpu: %.2fx\n", gpuTok/cpuTok)
	}

	fmt.Printf("generation (greedy, %d new tokens after an 8-token prompt):\n", o.genTokens)
	gt, err := generationTokensPerSecond(g, path, o.genTokens)
	if err != nil {
		return fmt.Errorf("gpu generation: %w", err)
	}
	fmt.Printf("  gpu  %9.1f tokens/s\n", gt)
	if !o.skipCPU {
		ct, err := generationTokensPerSecond(cpu.NewWithThreads(o.threads), path, o.genTokens)
		if err != nil {
			return fmt.Errorf("cpu generation: %w", err)
		}
		fmt.Printf("  cpu  %9.1f tokens/s\n", ct)
	}
	fmt.Printf("dispatches recorded: %d\n", g.Dispatches())
	return nil
}

// matmulGFLOPS times dst = a b for n x n F32 matrices: one untimed product
// (the kernel's compile), then products until a second has passed.
func matmulGFLOPS(g *gpu.Backend, n int) (float64, error) {
	a, b, dst := g.Zeros(n, n), g.Zeros(n, n), g.Zeros(n, n)
	defer func() { g.Free(a); g.Free(b); g.Free(dst) }()
	vals := make([]float32, n*n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range vals {
		vals[i] = float32(r.NormFloat64())
	}
	if err := g.Write(a, 0, vals); err != nil {
		return 0, err
	}
	if err := g.Write(b, 0, vals); err != nil {
		return 0, err
	}
	g.MatMul(dst, a, b, backend.MatMul{})
	if err := g.Sync(); err != nil {
		return 0, err
	}
	reps := 0
	start := time.Now()
	for reps == 0 || time.Since(start) < time.Second {
		g.MatMul(dst, a, b, backend.MatMul{})
		if err := g.Sync(); err != nil {
			return 0, err
		}
		reps++
	}
	return 2 * float64(n) * float64(n) * float64(n) * float64(reps) / time.Since(start).Seconds() / 1e9, nil
}

// ensureModel writes the random model of shape s to the cache unless it
// is there.
func ensureModel(o options, s randgguf.Shape) (string, error) {
	dir := o.cache
	if dir == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			d = os.TempDir()
		}
		dir = filepath.Join(d, "graft-bench")
	}
	path := filepath.Join(dir, s.Name+".gguf")
	if info, err := model.Inspect(path); err == nil && info.Config.Dim == s.Dim && info.Config.Layers == s.Layers && info.Config.Vocab == s.Vocab {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	fmt.Printf("\nwriting %s (random init, F32)\n", path)
	tmp := path + ".tmp"
	if err := randgguf.WriteLlama(tmp, s, 7, nil); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}

// loraTokensPerSecond trains LoRA r=8 on q, k, v, o over arithmetic runs
// of token ids for 1+o.steps steps and returns the tokens/s of the timed
// steps and the last loss.
func loraTokensPerSecond(be backend.Backend, path string, s randgguf.Shape, o options) (float64, float64, error) {
	m, err := model.Load(path, be)
	if err != nil {
		return 0, 0, err
	}
	defer m.Free()
	r := rand.New(rand.NewPCG(5, 6))
	examples := make([]data.Example, 4*o.batch)
	for i := range examples {
		ids, loss := make([]int32, o.seq+1), make([]bool, o.seq+1)
		start := r.IntN(s.Vocab)
		for j := range ids {
			ids[j], loss[j] = int32((start+3*j)%s.Vocab), j > 0
		}
		examples[i] = data.Example{IDs: ids, Loss: loss}
	}
	loader, err := data.NewLoader(examples, data.LoaderOptions{Batch: o.batch, SeqLen: o.seq, Pack: true, Shuffle: true})
	if err != nil {
		return 0, 0, err
	}
	mg := peft.AttachLoRA(m)
	cfg := peft.LoraConfig{R: 8, LoraAlpha: 16, TargetConfig: peft.TargetConfig{TargetModules: peft.TargetNames("q_proj", "k_proj", "v_proj", "o_proj")}}
	if err := mg.AddAdapter("bench", cfg, rand.New(rand.NewPCG(1, 2))); err != nil {
		return 0, 0, err
	}
	params, err := mg.Params("bench")
	if err != nil {
		return 0, 0, err
	}
	dir, err := os.MkdirTemp("", "gpubench")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	tc := train.DefaultConfig()
	tc.Steps, tc.LR, tc.CheckpointDir = o.steps+1, 1e-3, dir
	tr, err := train.New(&train.LM{Model: m, Trainable: params, Mode: mg.SetTraining}, be, train.LoaderSource(loader), nil, tc)
	if err != nil {
		return 0, 0, err
	}
	// The first step compiles the kernels; the clock starts after it.
	var start time.Time
	var tokens0, tokens int
	var loss float64
	_, err = tr.Fit(context.Background(), func(e train.Event) {
		if e.Kind != "step" {
			return
		}
		if e.Step == 1 {
			start, tokens0 = time.Now(), e.Tokens
		}
		tokens, loss = e.Tokens, e.Loss
	})
	if err != nil {
		return 0, 0, err
	}
	return float64(tokens-tokens0) / time.Since(start).Seconds(), loss, nil
}

// generationTokensPerSecond generates n tokens greedily after an untimed
// run of a few tokens (the kernels' compile).
func generationTokensPerSecond(be backend.Backend, path string, n int) (float64, error) {
	m, err := model.Load(path, be)
	if err != nil {
		return 0, err
	}
	defer m.Free()
	prompt := []int32{1, 17, 42, 99, 7, 300, 12, 5}
	for i := range prompt {
		prompt[i] %= int32(m.Config.Vocab)
	}
	if _, err := m.Generate(prompt, model.GenerateOptions{MaxTokens: 2}); err != nil {
		return 0, err
	}
	start := time.Now()
	out, err := m.Generate(prompt, model.GenerateOptions{MaxTokens: n})
	if err != nil {
		return 0, err
	}
	return float64(len(out)) / time.Since(start).Seconds(), nil
}
