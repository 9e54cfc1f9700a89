package host

import (
	"context"
	"testing"
	"time"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/wasm/plugin/abi"
	"github.com/graft-ml/graft/wasm/plugin/guest"
)

// The figures of the plugin's report: go test -run '^$' -bench . -benchtime 1x
// for the compile benchmarks, the default benchtime for the rest.

// BenchmarkCompile measures New: compiling the plugin cold (an empty cache
// directory), from a warm cache directory, and from the in-memory cache
// another open host holds. compile-ms is the compilation alone; ns/op
// adds the probe instance New starts.
func BenchmarkCompile(b *testing.B) {
	ctx := context.Background()
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			h, err := New(ctx, Options{CacheDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(h.CompileTime().Milliseconds()), "compile-ms")
			h.Close(ctx)
		}
	})
	b.Run("cache-dir", func(b *testing.B) {
		dir := b.TempDir()
		warm, err := New(ctx, Options{CacheDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		warm.Close(ctx)
		for b.Loop() {
			h, err := New(ctx, Options{CacheDir: dir})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(h.CompileTime().Microseconds())/1000, "compile-ms")
			h.Close(ctx)
		}
	})
	b.Run("memory", func(b *testing.B) {
		holder := testHost(b)
		for b.Loop() {
			h, err := New(ctx, Options{Cooperative: holder.opt.Cooperative})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(h.CompileTime().Microseconds())/1000, "compile-ms")
			h.Close(ctx)
		}
	})
}

// BenchmarkInstantiate measures starting (and closing) a tenant's
// instance: instantiation, the Go runtime's _initialize and the handshake.
func BenchmarkInstantiate(b *testing.B) {
	ctx := context.Background()
	for _, hc := range benchHosts(b) {
		b.Run(hc.name, func(b *testing.B) {
			for b.Loop() {
				in, err := hc.h.NewInstance(ctx)
				if err != nil {
					b.Fatal(err)
				}
				in.Close(ctx)
			}
		})
	}
}

// BenchmarkCallOverhead measures an empty call: encoding, copying into
// the guest, dispatch and back. preemptive-timeout adds what a deadline
// costs a call (Options.Timeout: a timer, and a context wazero watches).
func BenchmarkCallOverhead(b *testing.B) {
	ctx := context.Background()
	preemptiveHost(b) // compiles the plugin into cacheDir
	timed, err := New(ctx, Options{CacheDir: cacheDir, Timeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	defer timed.Close(ctx)
	for _, hc := range append(benchHosts(b), benchHost{"preemptive-timeout", timed}) {
		b.Run(hc.name, func(b *testing.B) {
			in := newInstance(b, hc.h)
			for b.Loop() {
				if err := in.Ping(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEval scores the probe texts with stories260K natively (all
// threads and one) and through the plugin; tokens/s compare the runtimes.
func BenchmarkEval(b *testing.B) {
	ctx := context.Background()
	m := nativeModel(b)
	tokens := 0
	for _, text := range probeTexts {
		tokens += len(m.Tokenizer.Encode(text, true)) - 1
	}
	report := func(b *testing.B) {
		b.ReportMetric(float64(tokens*b.N)/b.Elapsed().Seconds(), "tokens/s")
	}
	one, err := model.Load(modelPath, cpu.NewWithThreads(1)) // as in the guest
	if err != nil {
		b.Fatal(err)
	}
	defer one.Free()
	for _, native := range []struct {
		name string
		m    *model.Model
	}{{"native", m}, {"native-1-thread", one}} {
		b.Run(native.name, func(b *testing.B) {
			for b.Loop() {
				for _, text := range probeTexts {
					if _, err := native.m.SequenceLoss(native.m.Tokenizer.Encode(text, true)); err != nil {
						b.Fatal(err)
					}
				}
			}
			report(b)
		})
	}
	for _, hc := range benchHosts(b) {
		b.Run("plugin-"+hc.name, func(b *testing.B) {
			in := withModel(b, hc.h)
			for b.Loop() {
				if _, err := in.Eval(ctx, EvalRequest{Texts: probeTexts}); err != nil {
					b.Fatal(err)
				}
			}
			report(b)
		})
	}
}

type benchHost struct {
	name string
	h    *Host
}

// benchHosts are the two deadline modes, and the preemptive one with the
// kernels kept in the guest (GuestKernels).
func benchHosts(b *testing.B) []benchHost {
	return []benchHost{{"preemptive", preemptiveHost(b)}, {"preemptive-guest-kernels", guestKernelsHost(b)}, {"cooperative", testHost(b)}}
}

// guestKernelsHost returns a preemptive host whose guest runs every kernel
// itself, closed at the end of the benchmark or test.
func guestKernelsHost(t testing.TB) *Host {
	t.Helper()
	preemptiveHost(t) // compiles the plugin into cacheDir
	h, err := New(context.Background(), Options{CacheDir: cacheDir, GuestKernels: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return h
}

// BenchmarkTrainLoRA trains LoRA on stories260K (5 steps of 4 x 64 tokens,
// no evaluation) natively (package guest's code, all threads) and through
// the plugin; tokens/s compare the runtimes over the whole call (with
// tokenizing the data and building the adapter), step-tokens/s over the
// steps alone (from the first step's progress event to the last, on the
// host's clock).
func BenchmarkTrainLoRA(b *testing.B) {
	req := trainRequest(b, methods[0])
	req.Steps, req.EvalData = 5, nil
	benchTrain(b, readFile(b, modelPath), req, benchHosts(b))
}

// stepClock times a run's steps from its progress events.
type stepClock struct {
	first, last time.Time
	steps       int
}

func (c *stepClock) event(kind string) {
	if kind != "step" {
		return
	}
	now := time.Now()
	if c.steps == 0 {
		c.first = now
	}
	c.last = now
	c.steps++
}

// benchTrain runs req natively and on each host, loading the model
// (untimed) before each run, and reports tokens/s and step-tokens/s.
func benchTrain(b *testing.B, gguf []byte, req TrainRequest, hosts []benchHost) {
	ctx := context.Background()
	stepTokens := float64(req.Batch * req.SeqLen)
	report := func(b *testing.B, clocks []stepClock) {
		b.ReportMetric(float64(req.Steps)*stepTokens*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		var d time.Duration
		n := 0
		for _, c := range clocks {
			d += c.last.Sub(c.first)
			n += c.steps - 1
		}
		if d > 0 {
			b.ReportMetric(float64(n)*stepTokens/d.Seconds(), "step-tokens/s")
		}
	}
	b.Run("native", func(b *testing.B) {
		var clocks []stepClock
		for b.Loop() {
			b.StopTimer()
			clocks = append(clocks, stepClock{})
			c := &clocks[len(clocks)-1]
			p := guest.New(func(msg []byte) bool {
				var pr abi.Progress
				if abi.Decode(msg, &pr) == nil {
					c.event(pr.Kind)
				}
				return false
			}, nil)
			nativeCall(b, p, abi.OpLoadModel, &abi.LoadModelArgs{Name: "model.gguf", GGUF: gguf}, nil)
			b.StartTimer()
			nativeCall(b, p, abi.OpTrain, &req, nil)
		}
		report(b, clocks)
	})
	for _, hc := range hosts {
		b.Run("plugin-"+hc.name, func(b *testing.B) {
			var clocks []stepClock
			for b.Loop() {
				// A fresh instance each time: one holds one adapter.
				b.StopTimer()
				in := newInstance(b, hc.h)
				if _, err := in.LoadModel(ctx, "model.gguf", gguf); err != nil {
					b.Fatal(err)
				}
				clocks = append(clocks, stepClock{})
				c := &clocks[len(clocks)-1]
				b.StartTimer()
				if _, err := in.Train(ctx, req, func(p Progress) error { c.event(p.Kind); return nil }); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				in.Close(ctx)
				b.StartTimer()
			}
			report(b, clocks)
		})
	}
}
