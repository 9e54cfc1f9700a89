package gpu

import (
	"fmt"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/gogpu/gputypes"
	"github.com/gogpu/wgpu"

	"github.com/graft-ml/graft/core/backend"
)

// Backend runs graft's operations as WebGPU compute shaders. It is safe
// for use by several goroutines: operations are recorded in call order
// under a lock.
type Backend struct {
	inst    *wgpu.Instance
	adapter *wgpu.Adapter
	dev     *wgpu.Device
	queue   *wgpu.Queue
	info    AdapterInfo
	limits  gputypes.Limits

	mu sync.Mutex
	// The command encoder and compute pass collecting operations until the
	// next flush.
	enc  *wgpu.CommandEncoder
	pass *wgpu.ComputePassEncoder
	// aux is the per-dispatch argument arena: every dispatch binds a slice
	// of it holding its parameters and small host inputs (token ids,
	// positions, targets). auxHost is its host image, uploaded once per
	// flush, before the commands that read it.
	aux     *wgpu.Buffer
	auxHost []byte
	auxUsed int
	// released after the next submit: bind groups of recorded dispatches,
	// temporaries, and freed buffers the recorded commands may still use.
	afterSubmit []interface{ Release() }
	dummy       *wgpu.Buffer // bound where an optional operand is nil
	staging     *wgpu.Buffer // map-readable, grown on demand
	layouts     map[int]*layout
	pipelines   map[string]*wgpu.ComputePipeline
	err         error // first device error, reported by Sync, Read, Write
	// maxPart is the most bytes one part of a buffer holds: the binding
	// limit, lowered by tests so that small buffers split.
	maxPart int

	readBacks  atomic.Int64
	dispatches atomic.Int64
	// perKernel counts dispatches by kernel name (under mu), so a test or
	// a benchmark can say where a step's dispatches go.
	perKernel map[string]int64
	// The bytes of device buffers the backend holds, and the most it has
	// held: WebGPU has no query for a device's memory use.
	liveBytes, peakBytes atomic.Int64
	// pending holds in-place Scales not yet recorded (see pending.go).
	pending []pendingScale
	// knownZero holds the device buffers known to hold only zeros (see
	// pending.go).
	knownZero map[*wgpu.Buffer]bool
}

var _ backend.Backend = (*Backend)(nil)

// auxBytes is the size of the argument arena; a flush empties it.
const auxBytes = 1 << 20

// New opens the adapter Probe describes and creates a device on it. It
// fails with ErrNoAdapter when there is no usable adapter, and with
// ErrSoftwareAdapter for a software one unless opts.AllowSoftware is set.
func New(opts Options) (*Backend, error) {
	inst, ad, info, err := openAdapter()
	if err != nil {
		return nil, err
	}
	if info.Software && !opts.AllowSoftware {
		ad.Release()
		inst.Release()
		return nil, fmt.Errorf("gpu: %w: %s", ErrSoftwareAdapter, info)
	}
	lim := ad.Limits()
	dev, err := ad.RequestDevice(&wgpu.DeviceDescriptor{Label: "graft", RequiredLimits: lim})
	if err != nil {
		ad.Release()
		inst.Release()
		return nil, fmt.Errorf("gpu: request device on %s: %w", info, err)
	}
	g := &Backend{
		inst: inst, adapter: ad, dev: dev, queue: dev.Queue(), info: info, limits: dev.Limits(),
		layouts: map[int]*layout{}, pipelines: map[string]*wgpu.ComputePipeline{},
		perKernel: map[string]int64{}, knownZero: map[*wgpu.Buffer]bool{},
	}
	if g.limits.MaxStorageBufferBindingSize == 0 {
		g.limits = lim
	}
	g.info.MaxBindingBytes = g.limits.MaxStorageBufferBindingSize
	g.maxPart = g.bindLimit()
	if g.aux, err = g.newBuffer("aux", auxBytes, wgpu.BufferUsageStorage|wgpu.BufferUsageCopyDst); err != nil {
		g.Close()
		return nil, err
	}
	g.auxHost = make([]byte, auxBytes)
	if g.dummy, err = g.newBuffer("dummy", 16, wgpu.BufferUsageStorage|wgpu.BufferUsageCopyDst); err != nil {
		g.Close()
		return nil, err
	}
	return g, nil
}

// Info describes the adapter the backend runs on.
func (g *Backend) Info() AdapterInfo { return g.info }

// Name returns "gpu: " and the adapter, e.g. "gpu: NVIDIA H200 (Vulkan,
// DiscreteGPU)".
func (g *Backend) Name() string { return "gpu: " + g.info.String() }

// ReadBacks returns how many device-to-host transfers the backend has made:
// one per Read, CrossEntropy or SumSquares call (and none for anything
// else), so a training step's count is the number of values it asked for.
func (g *Backend) ReadBacks() int64 { return g.readBacks.Load() }

// Dispatches returns how many compute dispatches the backend has recorded.
func (g *Backend) Dispatches() int64 { return g.dispatches.Load() }

// DispatchesByKernel returns how many dispatches of each kernel (by shader
// name, without the weight dtype) the backend has recorded.
func (g *Backend) DispatchesByKernel() map[string]int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return maps.Clone(g.perKernel)
}

// Close waits for queued work, releases every device resource and the
// device. Buffers must not be used afterwards.
func (g *Backend) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.dev == nil {
		return
	}
	g.recordAllPendingLocked()
	g.flushLocked()
	_ = g.dev.WaitIdle()
	for _, p := range g.pipelines {
		p.Release()
	}
	for _, l := range g.layouts {
		l.pl.Release()
		l.bgl.Release()
	}
	for _, b := range []*wgpu.Buffer{g.aux, g.dummy, g.staging} {
		if b != nil {
			b.Release()
		}
	}
	g.dev.Release()
	g.adapter.Release()
	g.inst.Release()
	g.dev = nil
}

// newBuffer creates a device buffer.
func (g *Backend) newBuffer(label string, size uint64, usage gputypes.BufferUsage) (*wgpu.Buffer, error) {
	b, err := g.dev.CreateBuffer(&wgpu.BufferDescriptor{Label: label, Size: size, Usage: usage})
	if err != nil {
		return nil, fmt.Errorf("gpu: create %s buffer of %d bytes: %w", label, size, err)
	}
	live := g.liveBytes.Add(int64(size))
	for {
		peak := g.peakBytes.Load()
		if live <= peak || g.peakBytes.CompareAndSwap(peak, live) {
			break
		}
	}
	return b, nil
}

// dropBuffer releases a device buffer newBuffer made.
func (g *Backend) dropBuffer(b *wgpu.Buffer) {
	g.liveBytes.Add(-int64(b.Size()))
	b.Release()
}

// MemoryStats returns the bytes of device buffers the backend holds now
// and the most it has held since New or the last ResetPeakMemory: the
// buffers it created (weights, activations, temporaries, staging), not
// the driver's own allocations (pipelines, command buffers), which
// WebGPU does not report.
func (g *Backend) MemoryStats() (live, peak int64) {
	return g.liveBytes.Load(), g.peakBytes.Load()
}

// ResetPeakMemory starts the peak MemoryStats reports again from the
// bytes held now.
func (g *Backend) ResetPeakMemory() { g.peakBytes.Store(g.liveBytes.Load()) }

// fail records the first device error.
func (g *Backend) fail(err error) {
	if err != nil && g.err == nil {
		g.err = err
	}
}

// Sync submits the recorded operations and waits until the device has
// finished them. It returns the first device error since the last Sync.
func (g *Backend) Sync() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.recordAllPendingLocked()
	g.flushLocked()
	if err := g.dev.WaitIdle(); err != nil {
		g.fail(fmt.Errorf("gpu: wait: %w", err))
	}
	err := g.err
	g.err = nil
	return err
}
