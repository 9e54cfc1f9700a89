package host

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"unsafe"

	"github.com/tetratelabs/wazero/api"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/tensor"
)

// The host kernels (core/cpu's HostKernelModule): the plugin's CPU backend
// hands its matrix products, attention and tensor operations (elementwise,
// SiLU·mul, RMSNorm, RoPE, softmax, cross-entropy, AdamW, with their
// backwards) to the host, which runs core/cpu's native kernels (SIMD where
// the CPU has them) on its worker pool, on views of the guest's own linear
// memory. The guest passes offsets and lengths; every range is checked
// against the memory's size before a view is taken, so a guest can neither
// reach host memory nor make the host panic, and the results land in the
// guest's memory, which is all it sees.
//
// Deadlines: a kernel call is one host function call, which wazero does
// not interrupt, but its size is bounded by the guest's memory (its
// operands lie in it), and with preemptive deadlines the guest is stopped
// at the first loop after the call; a call that starts after the deadline
// is declined rather than run.
//
// Memory: the host allocates no output for the guest. Its scratch (packed
// panels, dequantized rows, transposes, per-row statistics) is bounded by
// cpu.HostScratchBound of the call's operands, and a call runs on the host
// only if the guest's memory plus that bound fits under MemoryLimitMB;
// otherwise it is declined and the guest computes it in its own memory, so
// the cap counts everything a tenant makes the host allocate.

// kernelsKey carries the calling instance's kernel backend in a call's
// context, which wazero hands to the host functions the guest calls.
type kernelsKey struct{}

// hostKernels instantiates the host kernel module. It is always there,
// since a guest built with host kernels imports it; with GuestKernels it
// reports that the host runs none.
func (h *Host) hostKernels(ctx context.Context) error {
	available := uint64(1)
	if h.opt.GuestKernels {
		available = 0
	}
	i32 := api.ValueTypeI32
	b := h.rt.NewHostModuleBuilder(cpu.HostKernelModule)
	b.NewFunctionBuilder().
		WithGoFunction(api.GoFunc(func(_ context.Context, stack []uint64) { stack[0] = available }), nil, []api.ValueType{i32}).
		Export(cpu.HostKernelAvailable)
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(h.matmulImport),
			[]api.ValueType{i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, api.ValueTypeF32}, []api.ValueType{i32}).
		Export(cpu.HostKernelMatMul)
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(h.opImport), []api.ValueType{i32, i32, i32}, []api.ValueType{i32}).
		Export(cpu.HostKernelOp)
	if _, err := b.Instantiate(ctx); err != nil {
		return fmt.Errorf("host: %s imports: %w", cpu.HostKernelModule, err)
	}
	return nil
}

// threads is the host-kernel thread cap of each instance.
func (h *Host) threads() int {
	if h.opt.Threads > 0 {
		return h.opt.Threads
	}
	return runtime.GOMAXPROCS(0)
}

// matmulImport is graft_kernels.matmul (see cpu.HostKernelMatMul).
func (h *Host) matmulImport(ctx context.Context, mod api.Module, stack []uint64) {
	kb, _ := ctx.Value(kernelsKey{}).(*cpu.Backend)
	if kb == nil || h.opt.GuestKernels || (!h.opt.Cooperative && ctx.Err() != nil) {
		stack[0] = cpu.HostDeclined
		return
	}
	args := matmulArgs{
		dst: uint32(stack[0]), dstLen: uint32(stack[1]),
		a: uint32(stack[2]), aLen: uint32(stack[3]),
		b: uint32(stack[4]), bLen: uint32(stack[5]), bDType: uint32(stack[6]),
		m: uint32(stack[7]), n: uint32(stack[8]), k: uint32(stack[9]), flags: uint32(stack[10]),
		alpha: api.DecodeF32(stack[11]),
	}
	mem := mod.Memory()
	operands := 4*(uint64(args.dstLen)+uint64(args.aLen)) + uint64(args.bLen)
	if !h.scratchFits(mem, operands, true) {
		stack[0] = cpu.HostDeclined
		return
	}
	if err := matmulKernel(kb, mem, args); err != nil {
		stack[0] = cpu.HostRejected
		return
	}
	stack[0] = cpu.HostDone
}

// opImport is graft_kernels.op (see cpu.HostKernelOp).
func (h *Host) opImport(ctx context.Context, mod api.Module, stack []uint64) {
	kb, _ := ctx.Value(kernelsKey{}).(*cpu.Backend)
	if kb == nil || h.opt.GuestKernels || (!h.opt.Cooperative && ctx.Err() != nil) {
		stack[0] = cpu.HostDeclined
		return
	}
	stack[0] = uint64(opKernel(kb, mod.Memory(), uint32(stack[0]), uint32(stack[1]), uint32(stack[2]), h.scratchFits))
}

// scratchFits reports whether the host's scratch for a call on operands
// of operandBytes fits under the instance's memory cap beside the guest's
// memory: the cap counts what a tenant makes the host allocate, so a call
// that would pass it is declined and the guest computes the operation in
// its own (capped) memory.
func (h *Host) scratchFits(mem api.Memory, operandBytes uint64, product bool) bool {
	limit := uint64(h.opt.MemoryLimitMB) << 20
	bound := uint64(cpu.HostScratchBound(int64(min(operandBytes, 1<<40)), h.threads(), product))
	return uint64(mem.Size())+bound <= limit
}

// maxOpArgs bounds the argument words of an operation.
const maxOpArgs = max(64, cpu.HostMaxOpWords)

// maxDim bounds every size parameter, so that products of a few of them
// cannot overflow.
const maxDim = 1 << 24

// opKernel checks a guest's operation arguments against its memory and
// runs the operation on views of it. The backend's checks (shapes,
// overlaps) panic on the calling goroutine before any work starts; such a
// panic becomes the error.
func opKernel(kb *cpu.Backend, mem api.Memory, code, argsOff, nargs uint32, fits func(api.Memory, uint64, bool) bool) uint32 {
	if nargs > maxOpArgs {
		return cpu.HostRejected
	}
	raw, err := byteView(mem, span{uint64(argsOff), 4 * uint64(nargs)})
	if err != nil {
		return cpu.HostRejected
	}
	var words [maxOpArgs]uint32
	args := words[:nargs]
	for i := range args {
		args[i] = binary.LittleEndian.Uint32(raw[4*i:])
	}
	if _, _, _, ok := cpu.HostOpShape(code); ok {
		value, status, err := tensorOpKernel(kb, mem, code, args, fits)
		if err != nil {
			return cpu.HostRejected
		}
		if status == cpu.HostDone && cpu.HostOpHasValue(code) {
			binary.LittleEndian.PutUint64(raw, math.Float64bits(value))
		}
		return status
	}
	operands := uint64(0)
	for i := 0; i+1 < len(args) && i < 14; i += 2 {
		operands += 4 * uint64(args[i+1])
	}
	if !fits(mem, operands, true) {
		return cpu.HostDeclined
	}
	if err := attentionKernel(kb, mem, code, args); err != nil {
		return cpu.HostRejected
	}
	return cpu.HostDone
}

// attentionKernel checks the arguments of an attention operation against
// the guest's memory and runs it on views of it.
func attentionKernel(kb *cpu.Backend, mem api.Memory, code uint32, args []uint32) (err error) {
	all, err := byteView(mem, span{0, uint64(mem.Size()) &^ 3})
	if err != nil {
		return err
	}
	fm := kb.Foreign(unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(all))), len(all)/4))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	switch code {
	case cpu.HostOpAttention, cpu.HostOpAttentionBackward:
		nb := 4
		if code == cpu.HostOpAttentionBackward {
			nb = 7
		}
		if len(args) != 2*nb+9 {
			return fmt.Errorf("attention takes %d argument words, not %d", 2*nb+9, len(args))
		}
		ps := args[2*nb:]
		for _, v := range ps[:7] {
			if v > maxDim {
				return fmt.Errorf("attention size %d over %d", v, maxDim)
			}
		}
		if ps[8] > maxDim {
			return fmt.Errorf("attention window %d over %d", ps[8], maxDim)
		}
		p := backend.Attention{
			Batch: int(ps[0]), SeqQ: int(ps[1]), SeqK: int(ps[2]), KVStride: int(ps[3]),
			Heads: int(ps[4]), KVHeads: int(ps[5]), HeadDim: int(ps[6]),
			Scale: math.Float32frombits(ps[7]), Window: int(ps[8]),
		}
		qRows, kRows := p.Batch*p.SeqQ, p.Batch*p.KVStride
		qCols, kCols := p.Heads*p.HeadDim, p.KVHeads*p.HeadDim
		// Operand shapes: q-like (dst, dq, dy, q) or k-like (dk, dv, k, v).
		kLike := []bool{false, false, true, true}
		if nb == 7 {
			kLike = []bool{false, true, true, false, false, true, true}
		}
		bufs := make([]backend.Buffer, nb)
		spans := make([]span, nb)
		for i := range bufs {
			off, n := args[2*i], args[2*i+1]
			if off == 0 && n == 0 {
				continue // absent
			}
			if off%4 != 0 {
				return fmt.Errorf("operand %d at %#x is not 4-byte aligned", i, off)
			}
			rows, cols := qRows, qCols
			if kLike[i] {
				rows, cols = kRows, kCols
			}
			spans[i] = span{uint64(off), 4 * uint64(n)}
			if bufs[i], err = fm.Buffer(int(off/4), int(n), rows, cols); err != nil {
				return fmt.Errorf("operand %d: %w", i, err)
			}
		}
		outs := 1
		if nb == 7 {
			outs = 3
		}
		// Outputs overlap neither an input nor each other.
		for i := range outs {
			for j := range nb {
				if j != i && spans[i].overlaps(spans[j]) {
					return fmt.Errorf("output %d overlaps operand %d", i, j)
				}
			}
		}
		for i := outs; i < nb; i++ {
			if bufs[i] == nil {
				return fmt.Errorf("input %d is absent", i)
			}
		}
		if nb == 4 {
			if bufs[0] == nil {
				return fmt.Errorf("dst is absent")
			}
			kb.Attention(bufs[0], bufs[1], bufs[2], bufs[3], p)
		} else {
			kb.AttentionBackward(bufs[0], bufs[1], bufs[2], bufs[3], bufs[4], bufs[5], bufs[6], p)
		}
		return nil
	}
	return fmt.Errorf("unknown operation %d", code)
}

// matmulArgs are the arguments of graft_kernels.matmul.
type matmulArgs struct {
	dst, dstLen, a, aLen, b, bLen, bDType uint32
	m, n, k, flags                        uint32
	alpha                                 float32
}

// span is a byte range of guest memory.
type span struct{ off, n uint64 }

func (s span) overlaps(o span) bool {
	return s.n > 0 && o.n > 0 && s.off < o.off+o.n && o.off < s.off+s.n
}

// matmulKernel checks a guest's matmul arguments against its memory and
// runs the product on views of it.
func matmulKernel(kb *cpu.Backend, mem api.Memory, x matmulArgs) error {
	if x.flags&^(cpu.HostFlagTransA|cpu.HostFlagTransB|cpu.HostFlagAccumulate) != 0 {
		return fmt.Errorf("unknown flags %#x", x.flags)
	}
	f := backend.MatMul{
		TransA:     x.flags&cpu.HostFlagTransA != 0,
		TransB:     x.flags&cpu.HostFlagTransB != 0,
		Accumulate: x.flags&cpu.HostFlagAccumulate != 0,
		Alpha:      x.alpha,
	}
	m, n, k := uint64(x.m), uint64(x.n), uint64(x.k)
	if uint64(x.dstLen) != m*n || uint64(x.aLen) != m*k {
		return fmt.Errorf("dst of %d and a of %d values do not fit [%d, %d] = [%d, %d] x [%d, %d]", x.dstLen, x.aLen, m, n, m, k, k, n)
	}
	dt := tensor.DType(x.bDType)
	if !dt.Valid() {
		return fmt.Errorf("b's dtype %d is unknown", x.bDType)
	}
	dstSpan := span{uint64(x.dst), 4 * uint64(x.dstLen)}
	aSpan := span{uint64(x.a), 4 * uint64(x.aLen)}
	bSpan := span{uint64(x.b), uint64(x.bLen)}
	if dstSpan.overlaps(aSpan) || dstSpan.overlaps(bSpan) {
		return fmt.Errorf("dst overlaps an operand")
	}
	dst, err := floatView(mem, dstSpan)
	if err != nil {
		return fmt.Errorf("dst: %w", err)
	}
	a, err := floatView(mem, aSpan)
	if err != nil {
		return fmt.Errorf("a: %w", err)
	}
	aRows, aCols := int(m), int(k)
	if f.TransA {
		aRows, aCols = aCols, aRows
	}
	bm := cpu.Matrix{DType: dt, Rows: int(k), Cols: int(n)}
	if f.TransB {
		bm.Rows, bm.Cols = bm.Cols, bm.Rows
	}
	if dt == tensor.F32 {
		bm.F32, err = floatView(mem, bSpan)
	} else {
		bm.Raw, err = byteView(mem, bSpan)
	}
	if err != nil {
		return fmt.Errorf("b: %w", err)
	}
	return kb.MatMulSlices(dst, a, aRows, aCols, bm, f)
}

// byteView returns the guest's bytes s, or an error when any lies outside
// its memory.
func byteView(mem api.Memory, s span) ([]byte, error) {
	if s.off+s.n > uint64(mem.Size()) {
		return nil, fmt.Errorf("%d bytes at %#x pass the end of memory (%d bytes)", s.n, s.off, mem.Size())
	}
	if s.n == 0 {
		return nil, nil
	}
	v, ok := mem.Read(uint32(s.off), uint32(s.n))
	if !ok || uint64(len(v)) != s.n {
		return nil, fmt.Errorf("%d bytes at %#x are outside memory", s.n, s.off)
	}
	return v, nil
}

// floatView is byteView as float32s; s must be 4-byte aligned.
func floatView(mem api.Memory, s span) ([]float32, error) {
	if s.off%4 != 0 {
		return nil, fmt.Errorf("float32s at %#x are not 4-byte aligned", s.off)
	}
	v, err := byteView(mem, s)
	if err != nil || len(v) == 0 {
		return nil, err
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(v))), len(v)/4), nil
}

// tensorOpKernel checks the arguments of a tensor operation (cpu.HostOpAdd
// and after; see cpu.RunHostOp for their layout) against the guest's
// memory and runs it on views of it. Slice operands (positions, targets,
// weights) may not overlap a buffer operand: the backend checks them once,
// before its workers write the buffers.
func tensorOpKernel(kb *cpu.Backend, mem api.Memory, code uint32, args []uint32, fits func(api.Memory, uint64, bool) bool) (float64, uint32, error) {
	nb, ns, np, _ := cpu.HostOpShape(code)
	want := 3 + nb*cpu.HostOperandWords + 2*ns + np
	if len(args) != want || args[0] != uint32(nb) || args[1] != uint32(ns) || args[2] != uint32(np) {
		return 0, 0, fmt.Errorf("operation %d takes %d argument words (%d buffers, %d slices, %d parameters)", code, want, nb, ns, np)
	}
	all, err := byteView(mem, span{0, uint64(mem.Size()) &^ 3})
	if err != nil {
		return 0, 0, err
	}
	fm := kb.Foreign(unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(all))), len(all)/4))
	var bufArr [5]backend.Buffer
	var spanArr [5]span
	bufs, spans := bufArr[:nb], spanArr[:nb]
	operands := uint64(0)
	w := args[3:]
	for i := range bufs {
		d := w[:cpu.HostOperandWords]
		w = w[cpu.HostOperandWords:]
		off, n, rank := d[0], d[1], d[2]
		if rank == cpu.HostAbsent {
			continue
		}
		if rank > cpu.HostMaxRank {
			return 0, 0, fmt.Errorf("buffer %d has rank %d, at most %d", i, rank, cpu.HostMaxRank)
		}
		if off%4 != 0 {
			return 0, 0, fmt.Errorf("buffer %d at %#x is not 4-byte aligned", i, off)
		}
		var shape [cpu.HostMaxRank]int
		for j := range rank {
			if d[3+j] > maxDim {
				return 0, 0, fmt.Errorf("buffer %d: dimension %d over %d", i, d[3+j], maxDim)
			}
			shape[j] = int(d[3+j])
		}
		spans[i] = span{uint64(off), 4 * uint64(n)}
		operands += spans[i].n
		if bufs[i], err = fm.Buffer(int(off/4), int(n), shape[:rank]...); err != nil {
			return 0, 0, fmt.Errorf("buffer %d: %w", i, err)
		}
	}
	var sliceArr [2][]byte
	slices := sliceArr[:ns]
	for i := range slices {
		s := span{uint64(w[0]), uint64(w[1])}
		w = w[2:]
		if s.n == 0 {
			continue // nil
		}
		v, err := byteView(mem, s)
		if err != nil {
			return 0, 0, fmt.Errorf("slice %d: %w", i, err)
		}
		for j, b := range spans {
			if bufs[j] != nil && s.overlaps(b) {
				return 0, 0, fmt.Errorf("slice %d overlaps buffer %d", i, j)
			}
		}
		operands += s.n
		slices[i] = v
	}
	if !fits(mem, operands, false) {
		return 0, cpu.HostDeclined, nil
	}
	value, err := kb.RunHostOp(code, bufs, slices, w)
	if err != nil {
		return 0, 0, err
	}
	return value, cpu.HostDone, nil
}
