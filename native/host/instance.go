package host

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/native/host/internal/wasmstop"
	"github.com/graft-ml/graft/wasm/plugin/abi"
)

// outputKept is how much of the beginning (and of the end) of the guest's
// output an instance keeps for crash reports.
const outputKept = 4 << 10

// Instance is one tenant's isolated plugin: its own memory, model and
// adapters. Calls on one instance run one at a time.
type Instance struct {
	h      *Host
	name   string
	mod    api.Module
	buffer api.Function
	call   api.Function
	free   api.Function
	stderr *outputLog
	// stop is the guest's stop flag (stop.go); nil in cooperative mode.
	stop api.MutableGlobal
	// kernels runs the guest's host kernels, on at most Options.Threads
	// threads.
	kernels *cpu.Backend

	callMu sync.Mutex // one call at a time; guards the fields below
	// bufPtr and bufLen locate the guest's request buffer (abi.ExportBuffer);
	// bufLen is 0 until the host asks for it, and again after the guest
	// dropped a large one.
	bufPtr, bufLen uint32
	// stack carries the parameter and result of a guest call, so that a
	// call allocates nothing for them.
	stack [1]uint64

	errMu sync.Mutex // guards err, so Err answers while a call runs
	err   error      // why the instance closed, or nil while open
}

// NewInstance starts a fresh instance of the plugin and checks its ABI
// version.
func (h *Host) NewInstance(ctx context.Context) (*Instance, error) {
	h.mu.Lock()
	done := h.done
	h.mu.Unlock()
	if done {
		return nil, fmt.Errorf("host: %w", ErrClosed)
	}
	ctx, cancel := h.withTimeout(ctx)
	defer cancel()
	in := &Instance{h: h, name: fmt.Sprintf("graft-%d", h.seq.Add(1)), stderr: newOutputLog(outputKept),
		kernels: cpu.NewWithThreads(h.threads())}
	cfg := wazero.NewModuleConfig().
		WithName(in.name).
		WithArgs("graft-plugin").
		WithStartFunctions(). // a reactor: _initialize is called below
		WithStdout(in.stderr).
		WithStderr(in.stderr)
	if h.opt.RealClock {
		cfg = cfg.WithSysWalltime().WithSysNanotime().WithSysNanosleep()
	}
	mod, err := h.rt.InstantiateModule(experimental.WithMemoryAllocator(ctx, memoryAllocator{}), h.compiled, cfg)
	if err != nil {
		if strings.Contains(err.Error(), "memory") && strings.Contains(err.Error(), "limit") {
			err = fmt.Errorf("%w: %w", ErrMemoryLimit, err)
		}
		return nil, fmt.Errorf("host: instantiating the plugin: %w", err)
	}
	in.mod = mod
	if in.stop = stopFlag(mod, h.stopFlag); in.stop == nil && h.stopFlag {
		mod.Close(context.Background())
		return nil, fmt.Errorf("host: %w: the instrumented plugin does not export its stop flag %s", ErrInvalidPlugin, wasmstop.Global)
	}
	in.buffer = mod.ExportedFunction(abi.ExportBuffer)
	in.call = mod.ExportedFunction(abi.ExportCall)
	in.free = mod.ExportedFunction(abi.ExportFree)
	if err := in.start(ctx); err != nil {
		mod.Close(context.Background())
		return nil, err
	}
	h.mu.Lock()
	if h.done { // Close ran meanwhile
		h.mu.Unlock()
		mod.Close(context.Background())
		return nil, fmt.Errorf("host: %w", ErrClosed)
	}
	h.live[in] = struct{}{}
	h.mu.Unlock()
	return in, nil
}

// start runs the reactor's initializer and the version handshake.
func (in *Instance) start(ctx context.Context) error {
	defer in.armStop(ctx)()
	if _, err := in.mod.ExportedFunction(abi.ExportInitialize).Call(ctx); err != nil {
		return fmt.Errorf("host: plugin %s: %s: %w", in.name, abi.ExportInitialize, in.classify(ctx, err))
	}
	res, err := in.mod.ExportedFunction(abi.ExportVersion).Call(ctx)
	if err != nil {
		return fmt.Errorf("host: plugin %s: %s: %w", in.name, abi.ExportVersion, in.classify(ctx, err))
	}
	if v := uint32(res[0]); v != abi.Version {
		return fmt.Errorf("host: %w: the plugin speaks ABI version %d, this host version %d; rebuild one of them from the same graft release",
			ErrABIVersion, v, abi.Version)
	}
	return nil
}

// Name identifies the instance in errors ("graft-7").
func (in *Instance) Name() string { return in.name }

// Err returns why the instance closed, or nil while it is open.
func (in *Instance) Err() error {
	in.errMu.Lock()
	defer in.errMu.Unlock()
	return in.err
}

// end records why the instance closed and closes it, unless it already
// was; in.callMu is held.
func (in *Instance) end(why error) error {
	in.errMu.Lock()
	if in.err != nil {
		in.errMu.Unlock()
		return nil
	}
	in.err = why
	in.errMu.Unlock()
	in.h.mu.Lock()
	delete(in.h.live, in)
	in.h.mu.Unlock()
	return in.mod.Close(context.Background())
}

// Close ends the instance and frees its memory, after the call in flight
// (if any) returns. It is safe to call more than once.
func (in *Instance) Close(ctx context.Context) error {
	in.callMu.Lock()
	defer in.callMu.Unlock()
	return in.end(ErrClosed)
}

// RawCall sends one msgpack abi.Request and returns the msgpack
// abi.Response, for callers that speak the ABI themselves. A deadline,
// exhausted memory or a crash closes the instance and returns an error
// wrapping context.DeadlineExceeded (or Canceled), ErrMemoryLimit or
// ErrCrashed.
func (in *Instance) RawCall(ctx context.Context, req []byte) ([]byte, error) {
	resp, _, err := in.rawCall(ctx, "call", req, nil)
	return resp, err
}

// rawCall runs one request; op names it in errors. ctxErr is the error of
// the call's context (its deadline applied) when the call returned.
func (in *Instance) rawCall(ctx context.Context, op string, req []byte, progress func(abi.Progress) error) (resp []byte, ctxErr, err error) {
	in.callMu.Lock()
	defer in.callMu.Unlock()
	if err := in.Err(); err != nil {
		return nil, nil, fmt.Errorf("plugin %s: %s: %w", in.name, op, wrapClosed(err))
	}
	limit := uint64(in.h.opt.MemoryLimitMB) << 20
	if uint64(len(req)) > min(limit, abi.MaxMessage) {
		return nil, nil, fmt.Errorf("plugin %s: %s: request of %d bytes: %w (%d MiB per instance)", in.name, op, len(req), ErrMemoryLimit, in.h.opt.MemoryLimitMB)
	}
	ctx, cancel := in.h.withTimeout(ctx)
	defer cancel()
	if progress != nil {
		ctx = context.WithValue(ctx, progressKey{}, progress)
	}
	ctx = context.WithValue(ctx, kernelsKey{}, in.kernels)
	disarm := in.armStop(ctx)
	resp, err = in.exchange(ctx, req)
	disarm()
	if err != nil {
		lost := fmt.Errorf("plugin %s: %s: %w; %w", in.name, op, err, ErrClosed)
		in.end(lost)
		return nil, nil, lost
	}
	return resp, ctx.Err(), nil
}

// exchange writes the request into the guest, runs it and reads the
// response back. Any error means the instance can no longer be trusted.
// A request that fits the guest's request buffer costs one guest call.
func (in *Instance) exchange(ctx context.Context, req []byte) ([]byte, error) {
	n := uint32(len(req))
	if n > in.bufLen {
		if err := in.growBuffer(ctx, n); err != nil {
			return nil, err
		}
	}
	mem := in.mod.Memory()
	if !mem.Write(in.bufPtr, req) {
		return nil, fmt.Errorf("%w: the request buffer of %s at %#x of %d bytes is outside memory", ErrCrashed, abi.ExportBuffer, in.bufPtr, in.bufLen)
	}
	in.stack[0] = uint64(n)
	if err := in.call.CallWithStack(ctx, in.stack[:]); err != nil {
		return nil, in.classify(ctx, err)
	}
	if in.bufLen > abi.KeepBuffer { // the guest dropped it
		in.bufPtr, in.bufLen = 0, 0
	}
	rptr, rlen := abi.Unpack(in.stack[0])
	view, ok := mem.Read(rptr, rlen)
	if !ok {
		return nil, fmt.Errorf("%w: response at %#x of %d bytes is outside memory", ErrCrashed, rptr, rlen)
	}
	resp := append([]byte(nil), view...)
	// The guest drops a response at its next call; a large one (an
	// exported adapter) is dropped now rather than held until then.
	if rlen > keepResponse {
		if err := in.free.CallWithStack(ctx, in.stack[:]); err != nil {
			return nil, in.classify(ctx, err)
		}
	}
	return resp, nil
}

// growBuffer asks the guest for a request buffer of at least n bytes.
func (in *Instance) growBuffer(ctx context.Context, n uint32) error {
	in.bufPtr, in.bufLen = 0, 0
	in.stack[0] = uint64(n)
	if err := in.buffer.CallWithStack(ctx, in.stack[:]); err != nil {
		return in.classify(ctx, err)
	}
	ptr, size := abi.Unpack(in.stack[0])
	if size < n {
		return fmt.Errorf("%w: %s returned %d bytes at %#x for a request of %d", ErrCrashed, abi.ExportBuffer, size, ptr, n)
	}
	if _, ok := in.mod.Memory().Read(ptr, size); !ok {
		return fmt.Errorf("%w: %s returned %d bytes at %#x, outside memory", ErrCrashed, abi.ExportBuffer, size, ptr)
	}
	in.bufPtr, in.bufLen = ptr, size
	return nil
}

// keepResponse is the size up to which a response is left for the guest to
// release at its next call, saving a call.
const keepResponse = 64 << 10

// classify turns a failed guest call into an error that says why: the
// context, exhausted memory, or a crash with the end of the guest's stderr.
func (in *Instance) classify(ctx context.Context, err error) error {
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case sys.ExitCodeDeadlineExceeded:
			return fmt.Errorf("stopped at its deadline: %w", context.DeadlineExceeded)
		case sys.ExitCodeContextCanceled:
			return fmt.Errorf("stopped by cancellation: %w", context.Canceled)
		}
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("stopped: %w (%v)", ctxErr, err)
	}
	msg := firstLine(err.Error()) // wazero appends the wasm stack trace
	head := strings.TrimSpace(in.stderr.Head())
	if strings.Contains(head, "out of memory") {
		return fmt.Errorf("%w (%d MiB per instance): %s: %s", ErrMemoryLimit, in.h.opt.MemoryLimitMB, msg, firstLines(head, 2))
	}
	if head != "" {
		return fmt.Errorf("%w: %s; guest output:\n%s", ErrCrashed, msg, firstLines(head, 12))
	}
	return fmt.Errorf("%w: %s", ErrCrashed, msg)
}

// firstLines returns the first n lines of s.
func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

func firstLine(s string) string { return firstLines(s, 1) }

// wrapClosed makes sure a closed instance's error matches ErrClosed while
// keeping its cause.
func wrapClosed(cause error) error {
	if errors.Is(cause, ErrClosed) {
		return cause
	}
	return fmt.Errorf("%w after: %w", ErrClosed, cause)
}
