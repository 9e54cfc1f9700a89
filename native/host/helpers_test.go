package host

import (
	"context"
	"math"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/graft-ml/graft/core/cpu"
)

const (
	modelPath = "../../models/stories260K/stories260K.gguf"
	trainPath = "../../examples/lora/data/train.jsonl"
	evalPath  = "../../examples/lora/data/eval.jsonl"
)

var (
	sharedOnce sync.Once
	shared     *Host
	sharedErr  error

	preemptiveOnce sync.Once
	preemptive     *Host
	preemptiveErr  error
	cacheDir       string // preemptive's compilation cache
)

// testHost returns the host most tests share: Cooperative, because it runs
// the guest several times faster. The plugin is compiled once per test
// binary; hosts the tests create with other options but the same
// Cooperative setting reuse the code through the in-memory cache.
func testHost(t testing.TB) *Host {
	t.Helper()
	sharedOnce.Do(func() {
		shared, sharedErr = New(context.Background(), Options{MemoryLimitMB: 512, Cooperative: true})
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

// preemptiveHost returns a host with the default, preemptive deadlines,
// compiled into cacheDir.
func preemptiveHost(t testing.TB) *Host {
	t.Helper()
	preemptiveOnce.Do(func() {
		if cacheDir, preemptiveErr = os.MkdirTemp("", "graft-host-cache-"); preemptiveErr == nil {
			preemptive, preemptiveErr = New(context.Background(), Options{CacheDir: cacheDir})
		}
	})
	if preemptiveErr != nil {
		t.Fatal(preemptiveErr)
	}
	return preemptive
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, h := range []*Host{shared, preemptive} {
		if h != nil {
			h.Close(context.Background())
		}
	}
	if cacheDir != "" {
		os.RemoveAll(cacheDir)
	}
	os.Exit(code)
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newInstance returns an instance of h closed at the end of the test.
func newInstance(t testing.TB, h *Host) *Instance {
	t.Helper()
	in, err := h.NewInstance(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(context.Background()) })
	return in
}

// withModel returns an instance of h with stories260K loaded.
func withModel(t testing.TB, h *Host) *Instance {
	t.Helper()
	in := newInstance(t, h)
	if _, err := in.LoadModel(context.Background(), "stories260K.gguf", readFile(t, modelPath)); err != nil {
		t.Fatal(err)
	}
	return in
}

// The plugin always runs graft's portable kernels (wasm has no assembly).
// Natively, on a CPU with SIMD kernels, sums run in another order, so
// plugin and native results agree to float32 rounding rather than bit for
// bit; built with -tags purego (as .ci/run also does) they must be equal.
var nativeIsPortable = cpu.Kernels() == "go"

// sameFloats reports whether plugin and native values agree: exactly with
// portable kernels natively, else within a relative tolerance.
func sameFloats[F float32 | float64](plugin, native []F) bool {
	if nativeIsPortable {
		return slices.Equal(plugin, native)
	}
	if len(plugin) != len(native) {
		return false
	}
	for i := range plugin {
		p, n := float64(plugin[i]), float64(native[i])
		if math.Abs(p-n) > 2e-5*(1+math.Abs(n)) {
			return false
		}
	}
	return true
}

// sameFloat is sameFloats for one value.
func sameFloat(plugin, native float64) bool {
	return sameFloats([]float64{plugin}, []float64{native})
}
