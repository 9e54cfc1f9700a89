package host

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/graft-ml/graft/wasm/plugin/abi"
)

// Options configures a Host. The zero value is usable.
type Options struct {
	// MemoryLimitMB caps each instance's linear memory in MiB; 0 means
	// 4096, all that wasm32 can address. A cap below the memory the plugin
	// starts with (about 5 MiB for the embedded one) makes New fail with
	// ErrMemoryLimit; a useful one leaves room for the model and training.
	// The scratch of the host kernels a call runs counts against it too
	// (see kernels.go).
	MemoryLimitMB int
	// Timeout bounds every call (and instantiation) that the context does
	// not bound sooner; 0 leaves calls to the context alone.
	Timeout time.Duration
	// CacheDir keeps the compiled plugin on disk, so that a restarted
	// process skips compilation. Empty uses a process-wide in-memory cache
	// that hosts share while any of them is open.
	CacheDir string
	// RealClock gives the guest the host's wall and monotonic clocks and
	// real sleeps; without it the guest sees wazero's deterministic fake
	// clock, which tells it nothing about the host (training still works;
	// its reported durations and throughput are then meaningless).
	RealClock bool
	// Plugin is the module to run; nil runs the embedded one (Plugin()).
	Plugin []byte
	// Cooperative leaves deadlines to the guest's safe points (each
	// generated token, evaluated sequence and training step) instead of
	// instrumenting every loop of the guest so that the host can stop it
	// anywhere (stop.go). The guest's own code runs about a sixth faster
	// and an interrupted call keeps its instance (the error matches
	// ErrInterrupted and the context's error), but work between two safe
	// points — loading a large model, tokenizing a long text, one
	// training step on a large batch — finishes before the deadline is
	// noticed.
	Cooperative bool
	// Threads caps the threads one instance's host kernels use (see
	// kernels.go: the guest's matrix products, attention and tensor
	// operations run natively on views of its memory); 0 means
	// runtime.GOMAXPROCS(0). The guest itself runs on one.
	Threads int
	// GuestKernels keeps every kernel inside the guest (graft's portable
	// Go, compiled to WebAssembly, on one thread), for hosts that want no
	// host code in the loop; several times slower.
	GuestKernels bool
}

// maxMemoryMB is the most a wasm32 memory can hold.
const maxMemoryMB = 4096

// Host compiles the plugin once and creates isolated instances of it.
// Its methods are safe for concurrent use.
type Host struct {
	opt      Options
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	compile  time.Duration
	// stopFlag: the plugin runs instrumented with the stop flag
	// (stop.go); false in cooperative mode, and where wazero's own
	// deadline checks stand in for it.
	stopFlag bool

	seq  atomic.Uint64 // numbers instance names
	mu   sync.Mutex
	live map[*Instance]struct{}
	done bool
}

var (
	sharedCacheOnce sync.Once
	sharedCache     wazero.CompilationCache
)

// memoryCache is the in-memory compilation cache hosts without CacheDir
// share. Compiled code lives while any host holds it (wazero counts).
func memoryCache() wazero.CompilationCache {
	sharedCacheOnce.Do(func() { sharedCache = wazero.NewCompilationCache() })
	return sharedCache
}

// New compiles the plugin (or finds it in the cache), checks its exports
// and ABI version, and returns a host ready to create instances.
func New(ctx context.Context, opt Options) (*Host, error) {
	if opt.MemoryLimitMB < 0 || opt.MemoryLimitMB > maxMemoryMB {
		return nil, fmt.Errorf("host: MemoryLimitMB %d must be 0 to %d", opt.MemoryLimitMB, maxMemoryMB)
	}
	if opt.MemoryLimitMB == 0 {
		opt.MemoryLimitMB = maxMemoryMB
	}
	if opt.Timeout < 0 {
		return nil, fmt.Errorf("host: Timeout %v must not be negative", opt.Timeout)
	}
	if opt.Threads < 0 {
		return nil, fmt.Errorf("host: Threads %d must not be negative", opt.Threads)
	}
	if opt.Plugin == nil {
		opt.Plugin = pluginWasm
	}
	if err := checkInitialMemory(opt.Plugin, opt.MemoryLimitMB); err != nil {
		return nil, err
	}
	cache := memoryCache()
	if opt.CacheDir != "" {
		var err error
		if cache, err = wazero.NewCompilationCacheWithDir(opt.CacheDir); err != nil {
			return nil, fmt.Errorf("host: compilation cache %s: %w", opt.CacheDir, err)
		}
	}
	// Exact deadlines: the guest checks a stop flag at every loop iteration
	// (stop.go). A plugin the instrumenter cannot rewrite (an instruction
	// it does not know, the flag's name taken) gets wazero's own checks,
	// slower but as exact; a module that is not valid at all fails to
	// compile below, which says why.
	var wazeroDeadlines bool
	opt.Plugin, wazeroDeadlines = deadlineChecks(opt.Plugin, opt.Cooperative)
	cfg := wazero.NewRuntimeConfig().
		WithCompilationCache(cache).
		WithMemoryLimitPages(uint32(opt.MemoryLimitMB) * 16). // 64 KiB pages
		WithCloseOnContextDone(wazeroDeadlines)
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	h := &Host{opt: opt, rt: rt, live: map[*Instance]struct{}{}, stopFlag: !opt.Cooperative && !wazeroDeadlines}
	if err := h.setup(ctx); err != nil {
		rt.Close(ctx)
		return nil, err
	}
	// One instance proves the plugin starts and speaks our ABI version, so
	// a bad plugin fails here rather than at a tenant's first request.
	probe, err := h.NewInstance(ctx)
	if err != nil {
		h.Close(ctx)
		return nil, err
	}
	probe.Close(ctx)
	return h, nil
}

// setup instantiates the imports and compiles the plugin.
func (h *Host) setup(ctx context.Context) error {
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, h.rt); err != nil {
		return fmt.Errorf("host: WASI: %w", err)
	}
	if _, err := h.rt.NewHostModuleBuilder(abi.ImportModule).
		NewFunctionBuilder().WithFunc(progressImport).Export(abi.ImportProgress).
		NewFunctionBuilder().WithFunc(interruptedImport).Export(abi.ImportInterrupted).
		Instantiate(ctx); err != nil {
		return fmt.Errorf("host: %s imports: %w", abi.ImportModule, err)
	}
	if err := h.hostKernels(ctx); err != nil {
		return err
	}
	start := time.Now()
	compiled, err := h.rt.CompileModule(ctx, h.opt.Plugin)
	if err != nil {
		return fmt.Errorf("host: compiling the plugin: %w: %w", ErrInvalidPlugin, err)
	}
	h.compile = time.Since(start)
	h.compiled = compiled
	return checkExports(compiled)
}

// exportSignatures are the functions the plugin must export.
var exportSignatures = map[string]struct{ params, results []api.ValueType }{
	abi.ExportInitialize: {nil, nil},
	abi.ExportVersion:    {nil, []api.ValueType{api.ValueTypeI32}},
	abi.ExportBuffer:     {[]api.ValueType{api.ValueTypeI32}, []api.ValueType{api.ValueTypeI64}},
	abi.ExportCall:       {[]api.ValueType{api.ValueTypeI32}, []api.ValueType{api.ValueTypeI64}},
	abi.ExportFree:       {nil, nil},
}

// checkExports names the first missing or mistyped export.
func checkExports(c wazero.CompiledModule) error {
	fns := c.ExportedFunctions()
	for _, name := range []string{abi.ExportInitialize, abi.ExportVersion, abi.ExportBuffer, abi.ExportCall, abi.ExportFree} {
		want := exportSignatures[name]
		fn, ok := fns[name]
		if !ok {
			return fmt.Errorf("host: %w: it does not export %s", ErrInvalidPlugin, name)
		}
		if !sameTypes(fn.ParamTypes(), want.params) || !sameTypes(fn.ResultTypes(), want.results) {
			return fmt.Errorf("host: %w: export %s has type %s -> %s, want %s -> %s", ErrInvalidPlugin, name,
				typeNames(fn.ParamTypes()), typeNames(fn.ResultTypes()), typeNames(want.params), typeNames(want.results))
		}
	}
	if _, ok := c.ExportedMemories()[abi.ExportMemory]; !ok {
		return fmt.Errorf("host: %w: it does not export its memory as %q", ErrInvalidPlugin, abi.ExportMemory)
	}
	return nil
}

func sameTypes(a, b []api.ValueType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func typeNames(ts []api.ValueType) string {
	s := "("
	for i, t := range ts {
		if i > 0 {
			s += ", "
		}
		s += api.ValueTypeName(t)
	}
	return s + ")"
}

// CompileTime is how long New took to compile the plugin (short when the
// cache held it).
func (h *Host) CompileTime() time.Duration { return h.compile }

// Instances returns the number of open instances.
func (h *Host) Instances() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.live)
}

// Close closes every instance and releases the compiled plugin.
func (h *Host) Close(ctx context.Context) error {
	h.mu.Lock()
	if h.done {
		h.mu.Unlock()
		return nil
	}
	h.done = true
	live := make([]*Instance, 0, len(h.live))
	for in := range h.live {
		live = append(live, in)
	}
	h.mu.Unlock()
	var errs []error
	for _, in := range live {
		errs = append(errs, in.Close(ctx))
	}
	if h.compiled != nil {
		errs = append(errs, h.compiled.Close(ctx))
	}
	errs = append(errs, h.rt.Close(ctx))
	return errors.Join(errs...)
}

// withTimeout applies Options.Timeout to ctx. Without one, ctx is used as
// it is: a derived context would cost every call an allocation and
// nothing would cancel it.
func (h *Host) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if h.opt.Timeout > 0 {
		return context.WithTimeout(ctx, h.opt.Timeout)
	}
	return ctx, noCancel
}

func noCancel() {}
