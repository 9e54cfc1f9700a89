package gpu

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/gogpu/gputypes"
	"github.com/gogpu/wgpu"
)

// layout is the bind-group and pipeline layout shared by every kernel with
// the same number of buffer operands: binding 0 is the read-only argument
// slice, bindings 1..n read-write storage buffers.
type layout struct {
	bgl *wgpu.BindGroupLayout
	pl  *wgpu.PipelineLayout
}

func (g *Backend) layoutFor(n int) (*layout, error) {
	if l := g.layouts[n]; l != nil {
		return l, nil
	}
	entries := []gputypes.BindGroupLayoutEntry{{
		Binding: 0, Visibility: wgpu.ShaderStageCompute,
		Buffer: &gputypes.BufferBindingLayout{Type: gputypes.BufferBindingTypeReadOnlyStorage},
	}}
	for i := 1; i <= n; i++ {
		entries = append(entries, gputypes.BindGroupLayoutEntry{
			Binding: uint32(i), Visibility: wgpu.ShaderStageCompute,
			Buffer: &gputypes.BufferBindingLayout{Type: gputypes.BufferBindingTypeStorage},
		})
	}
	bgl, err := g.dev.CreateBindGroupLayout(&wgpu.BindGroupLayoutDescriptor{Label: fmt.Sprintf("graft-%d", n), Entries: entries})
	if err != nil {
		return nil, err
	}
	pl, err := g.dev.CreatePipelineLayout(&wgpu.PipelineLayoutDescriptor{BindGroupLayouts: []*wgpu.BindGroupLayout{bgl}})
	if err != nil {
		bgl.Release()
		return nil, err
	}
	l := &layout{bgl: bgl, pl: pl}
	g.layouts[n] = l
	return l, nil
}

// pipeline returns the compiled kernel k, compiling it on first use.
func (g *Backend) pipeline(k kernel) (*wgpu.ComputePipeline, *layout, error) {
	l, err := g.layoutFor(k.buffers)
	if err != nil {
		return nil, nil, err
	}
	key := k.key()
	if p := g.pipelines[key]; p != nil {
		return p, l, nil
	}
	src, err := k.source()
	if err != nil {
		return nil, nil, err
	}
	mod, err := g.dev.CreateShaderModule(&wgpu.ShaderModuleDescriptor{Label: key, WGSL: src})
	if err != nil {
		return nil, nil, fmt.Errorf("compile kernel %s: %w", key, err)
	}
	defer mod.Release()
	p, err := g.dev.CreateComputePipeline(&wgpu.ComputePipelineDescriptor{Label: key, Layout: l.pl, Module: mod, EntryPoint: "main"})
	if err != nil {
		return nil, nil, fmt.Errorf("create pipeline %s: %w", key, err)
	}
	g.pipelines[key] = p
	return p, l, nil
}

// args builds a dispatch's argument slice: 32-bit words.
type args []uint32

func (a args) u(vs ...int) args {
	for _, v := range vs {
		a = append(a, uint32(v))
	}
	return a
}

func (a args) f(vs ...float32) args {
	for _, v := range vs {
		a = append(a, math.Float32bits(v))
	}
	return a
}

// i32s appends host integers (ids, positions, targets) as words.
func (a args) i32s(vs []int32) args {
	for _, v := range vs {
		a = append(a, uint32(v))
	}
	return a
}

// maxGroupsPerDim is WebGPU's guaranteed limit on workgroups per dimension.
const maxGroupsPerDim = 65535

// run records one dispatch of kernel k over groups workgroups (laid out in
// two dimensions when there are more than one dimension allows; kernels
// compute their linear workgroup index as wid.x + wid.y * nwg.x) with the
// given arguments and device buffers, each bound whole. A nil buffer binds
// a dummy.
func (g *Backend) run(k kernel, groups int, a args, bufs ...*wgpu.Buffer) {
	if len(bufs) != k.buffers {
		panic(fmt.Sprintf("gpu: kernel %s takes %d buffers, got %d", k.name, k.buffers, len(bufs)))
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.runLocked(k, groups, a, bufs...)
}

// runLocked is run with g.mu held. A Scale pending on a buffer the
// dispatch binds is recorded before it.
func (g *Backend) runLocked(k kernel, groups int, a args, bufs ...*wgpu.Buffer) {
	if groups <= 0 {
		return
	}
	g.recordPendingFor(bufs)
	g.unmarkZeroLocked(bufs...)
	p, l, err := g.pipeline(k)
	if err != nil {
		panic(fmt.Sprintf("gpu: %v", err))
	}
	if len(a) == 0 {
		a = args{0}
	}
	size := 4 * len(a)
	align := int(max(g.limits.MinStorageBufferOffsetAlignment, 4))
	auxBuf, auxOff := g.aux, 0
	switch start := (g.auxUsed + align - 1) / align * align; {
	case size > auxBytes/4: // too big for the arena: a buffer of its own
		tmp, err := g.newBuffer("args", uint64(size), wgpu.BufferUsageStorage|wgpu.BufferUsageCopyDst)
		if err != nil {
			panic(fmt.Sprintf("gpu: %s: %v", k.name, err))
		}
		g.flushLocked() // the write must land after the work recorded so far
		if err := g.queue.WriteBuffer(tmp, 0, wordsToBytes(a)); err != nil {
			panic(fmt.Sprintf("gpu: %s: upload arguments: %v", k.name, err))
		}
		g.afterSubmit = append(g.afterSubmit, tmp)
		auxBuf = tmp
	case start+size > auxBytes:
		g.flushLocked()
		fallthrough
	default:
		auxOff = (g.auxUsed + align - 1) / align * align
		for i, w := range a {
			binary.LittleEndian.PutUint32(g.auxHost[auxOff+4*i:], w)
		}
		g.auxUsed = auxOff + size
	}
	if bufs, err = g.unaliasLocked(bufs); err != nil {
		panic(fmt.Sprintf("gpu: %s: %v", k.name, err))
	}
	entries := []wgpu.BindGroupEntry{{Binding: 0, Buffer: auxBuf, Offset: uint64(auxOff), Size: uint64(size)}}
	for i, b := range bufs {
		if b == nil {
			b = g.dummy
		}
		entries = append(entries, wgpu.BindGroupEntry{Binding: uint32(i + 1), Buffer: b, Size: b.Size()})
	}
	bg, err := g.dev.CreateBindGroup(&wgpu.BindGroupDescriptor{Label: k.name, Layout: l.bgl, Entries: entries})
	if err != nil {
		panic(fmt.Sprintf("gpu: %s: bind group: %v", k.name, err))
	}
	g.afterSubmit = append(g.afterSubmit, bg)
	if g.pass == nil {
		if err := g.begin(); err != nil {
			panic(fmt.Sprintf("gpu: %s: %v", k.name, err))
		}
	}
	x, y := groups, 1
	if groups > maxGroupsPerDim {
		y = (groups + maxGroupsPerDim - 1) / maxGroupsPerDim
		x = (groups + y - 1) / y
	}
	g.pass.SetPipeline(p)
	g.pass.SetBindGroup(0, bg, nil)
	g.pass.Dispatch(uint32(x), uint32(y), 1)
	g.dispatches.Add(1)
	g.perKernel[k.name]++
}

func wordsToBytes(a args) []byte {
	out := make([]byte, 4*len(a))
	for i, w := range a {
		binary.LittleEndian.PutUint32(out[4*i:], w)
	}
	return out
}

// begin opens a command encoder and a compute pass.
func (g *Backend) begin() error {
	enc, err := g.dev.CreateCommandEncoder(nil)
	if err != nil {
		return fmt.Errorf("create command encoder: %w", err)
	}
	pass, err := enc.BeginComputePass(nil)
	if err != nil {
		return fmt.Errorf("begin compute pass: %w", err)
	}
	g.enc, g.pass = enc, pass
	return nil
}

// endPass closes the compute pass so copies can be recorded, leaving the
// encoder open; it opens one when there is none.
func (g *Backend) endPass() error {
	if g.enc == nil {
		return g.beginEncoderOnly()
	}
	if g.pass != nil {
		if err := g.pass.End(); err != nil {
			return fmt.Errorf("end compute pass: %w", err)
		}
		g.pass = nil
	}
	return nil
}

func (g *Backend) beginEncoderOnly() error {
	enc, err := g.dev.CreateCommandEncoder(nil)
	if err != nil {
		return fmt.Errorf("create command encoder: %w", err)
	}
	g.enc = enc
	return nil
}

// flushLocked uploads the argument arena and submits everything recorded.
func (g *Backend) flushLocked() {
	if g.enc == nil {
		g.releasePending()
		return
	}
	if err := g.endPass(); err != nil {
		g.fail(err)
	}
	if g.auxUsed > 0 {
		n := (g.auxUsed + 3) / 4 * 4
		g.fail(g.queue.WriteBuffer(g.aux, 0, g.auxHost[:n]))
		g.auxUsed = 0
	}
	cb, err := g.enc.Finish()
	g.enc = nil
	if err != nil {
		g.fail(fmt.Errorf("gpu: finish commands: %w", err))
	} else if _, err := g.queue.Submit(cb); err != nil {
		g.fail(fmt.Errorf("gpu: submit: %w", err))
	}
	g.releasePending()
}

func (g *Backend) releasePending() {
	for _, r := range g.afterSubmit {
		if b, ok := r.(*wgpu.Buffer); ok {
			g.dropBuffer(b)
			continue
		}
		r.Release()
	}
	g.afterSubmit = g.afterSubmit[:0]
}
