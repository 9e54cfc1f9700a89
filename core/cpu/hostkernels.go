package cpu

import (
	"unsafe"

	"fmt"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/tensor"
)

// A plugin guest (GOOS=wasip1) can hand its heavy operations to kernels its
// host runs natively: the host registers the module HostKernelModule, the
// guest imports its functions and calls them with offsets into its own
// linear memory, and the host computes on views of that memory with this
// package's SIMD kernels and worker pool (native/host does). The host
// always provides the module, since wazero refuses to instantiate a guest
// whose imports are missing; a host that wants no host code in the loop
// answers HostKernelAvailable with 0 and the guest keeps its own kernels.
const (
	// HostKernelModule is the import module of the host kernels.
	HostKernelModule = "graft_kernels"
	// HostKernelAvailable: () -> i32, 1 when the host runs the kernels.
	// The guest asks once.
	HostKernelAvailable = "available"
	// HostKernelMatMul: (dst, dstLen, a, aLen, b, bLen, bDType, m, n, k,
	// flags i32, alpha f32) -> i32 computes dst [m, n] (+)= alpha *
	// op(a) * op(b) as MatMul does. dst, a and b are byte offsets in the
	// guest's memory; dstLen and aLen count float32s, bLen bytes (b is
	// F32 or a weight dtype Load keeps encoded, bDType its tensor.DType).
	// op(a) is [m, k] and op(b) [k, n]; flags is a sum of the HostFlag
	// values. The result is HostDone, HostDeclined (the guest computes the
	// product itself) or HostRejected (invalid arguments: the guest
	// panics, as MatMul does for a misuse).
	HostKernelMatMul = "matmul"
)

// Flags and results of the host kernels.
const (
	HostFlagTransA     = 1
	HostFlagTransB     = 2
	HostFlagAccumulate = 4

	HostDone     = 0
	HostDeclined = 1
	HostRejected = 2
)

// HostKernelOp: (code, args, nargs i32) -> i32 runs the operation code
// (a HostOp value) on the guest's memory; args is the byte offset of nargs
// uint32 words: first each operand as (byte offset, float32 count), an
// absent operand as (0, 0), then the operation's parameters (floats as
// their bits). The result is HostDone, HostDeclined or HostRejected, as
// for HostKernelMatMul.
const HostKernelOp = "op"

// The operations of HostKernelOp and their arguments.
const (
	// HostOpAttention: dst, q, k, v; then Batch, SeqQ, SeqK, KVStride
	// (resolved), Heads, KVHeads, HeadDim, Scale, Window.
	HostOpAttention = 1
	// HostOpAttentionBackward: dq, dk, dv (any absent), dy, q, k, v; then
	// the parameters of HostOpAttention.
	HostOpAttentionBackward = 2
)

// Foreign is float32 memory the caller owns (a plugin guest's linear
// memory, seen by its host) on which this backend's operations run:
// Buffer makes F32 buffers over ranges of it. They share one storage, so
// the operations' overlap checks see through them.
type Foreign struct {
	c  *Backend
	st *storage
}

// Foreign wraps mem; its buffers are valid while mem is.
func (c *Backend) Foreign(mem []float32) *Foreign {
	return &Foreign{c: c, st: &storage{f32: mem}}
}

// Buffer returns an F32 buffer of the given shape over the n elements of
// the wrapped memory from element off, or an error when the range is
// outside it or the shape does not hold n elements.
func (f *Foreign) Buffer(off, n int, shape ...int) (backend.Buffer, error) {
	if off < 0 || n < 0 || off > len(f.st.f32) || n > len(f.st.f32)-off {
		return nil, fmt.Errorf("cpu: Foreign: %d values at %d are outside the %d wrapped", n, off, len(f.st.f32))
	}
	numel := int64(1)
	for _, d := range shape {
		if d < 0 || (d > 0 && numel > int64(n)/int64(d)+1) {
			return nil, fmt.Errorf("cpu: Foreign: shape %v does not hold %d values", shape, n)
		}
		numel *= int64(d)
	}
	if numel != int64(n) {
		return nil, fmt.Errorf("cpu: Foreign: shape %v does not hold %d values", shape, n)
	}
	return &buffer{owner: f.c, st: f.st, dtype: tensor.F32, shape: tensor.Shape(shape).Clone(), off: off, n: n, view: true}, nil
}

// hostSlice is a plain-array operand of a host tensor operation: its
// first byte and byte count (nil: absent).
type hostSlice struct {
	p unsafe.Pointer
	n int
}

func int32Slice(v []int32) hostSlice {
	return hostSlice{unsafe.Pointer(unsafe.SliceData(v)), 4 * len(v)}
}

func float32Slice(v []float32) hostSlice {
	return hostSlice{unsafe.Pointer(unsafe.SliceData(v)), 4 * len(v)}
}

func float64Slice(v []float64) hostSlice {
	return hostSlice{unsafe.Pointer(unsafe.SliceData(v)), 8 * len(v)}
}
