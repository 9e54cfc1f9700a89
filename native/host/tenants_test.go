package host

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"
)

// tenant runs one tenant's session: start, load, evaluate, generate. The
// instance is left open for the caller to close.
func tenant(ctx context.Context, h *Host, gguf []byte) (*Instance, EvalResult, GenerateResult, error) {
	in, err := h.NewInstance(ctx)
	if err != nil {
		return nil, EvalResult{}, GenerateResult{}, err
	}
	if _, err := in.LoadModel(ctx, "stories260K.gguf", gguf); err != nil {
		return in, EvalResult{}, GenerateResult{}, err
	}
	ev, err := in.Eval(ctx, EvalRequest{Texts: probeTexts})
	if err != nil {
		return in, ev, GenerateResult{}, err
	}
	gen, err := in.Generate(ctx, GenerateRequest{Prompt: "Once upon a time", MaxTokens: 8})
	return in, ev, gen, err
}

// TestFiftyTenants runs 50 tenants at once on one host, within a time
// bound, and checks that closing them returns the instances, the
// goroutines and the memory they took.
func TestFiftyTenants(t *testing.T) {
	if testing.Short() {
		t.Skip("50 instances; skipped in -short mode")
	}
	const tenants = 50
	h := testHost(t)
	gguf := readFile(t, modelPath)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// A first tenant warms what is allocated once per process (wazero's
	// and the runtime's pools), so the measurement sees only per-tenant
	// memory.
	warm, wantEval, wantGen, err := tenant(ctx, h, gguf)
	if err != nil {
		t.Fatal(err)
	}
	warm.Close(ctx)

	instances := h.Instances()
	goroutines := runtime.NumGoroutine()
	before := heapAfterGC()

	start := time.Now()
	var (
		wg      sync.WaitGroup
		all     sync.WaitGroup // released once every tenant is up
		mu      sync.Mutex
		peak    int
		open    []*Instance
		failure error
	)
	all.Add(tenants)
	for range tenants {
		wg.Go(func() {
			in, ev, gen, err := tenant(ctx, h, gguf)
			all.Done()
			all.Wait() // all 50 hold their instance at this point
			mu.Lock()
			defer mu.Unlock()
			peak = max(peak, h.Instances())
			if in != nil {
				open = append(open, in)
			}
			switch {
			case err != nil:
				failure = err
			case ev.SumNLL != wantEval.SumNLL || gen.Text != wantGen.Text:
				t.Errorf("%s: loss %v and text %q, want %v and %q", in.Name(), ev.SumNLL, gen.Text, wantEval.SumNLL, wantGen.Text)
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	if failure != nil {
		t.Fatal(failure)
	}
	if peak != instances+tenants {
		t.Errorf("%d instances at the peak, want %d", peak, instances+tenants)
	}
	for _, in := range open {
		if err := in.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	after := heapAfterGC()
	t.Logf("%d tenants in %v; heap %d MiB before, %d MiB after", tenants, took, before>>20, after>>20)

	if n := h.Instances(); n != instances {
		t.Errorf("%d instances after closing, want %d", n, instances)
	}
	// A leaked instance holds its whole linear memory (more than 10 MiB
	// with the model loaded); allow for less than two.
	if after > before+24<<20 {
		t.Errorf("heap grew from %d to %d MiB across %d tenants", before>>20, after>>20, tenants)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutines {
		t.Errorf("%d goroutines after, %d before", n, goroutines)
	}
}

func heapAfterGC() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
