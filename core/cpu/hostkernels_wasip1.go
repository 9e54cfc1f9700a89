//go:build wasip1 && graft_hostkernels

package cpu

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"unsafe"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/tensor"
)

//go:wasmimport graft_kernels available
func hostKernelsAvailable() uint32

// The host reads and writes the operands only during the call and keeps
// no pointer, so they need not escape: an operation's argument words stay
// on the guest's stack rather than costing an allocation per operation.

//go:wasmimport graft_kernels op
//go:noescape
func hostKernelOp(code uint32, args unsafe.Pointer, nargs uint32) uint32

//go:wasmimport graft_kernels matmul
//go:noescape
func hostKernelMatMul(dst unsafe.Pointer, dstLen uint32, a unsafe.Pointer, aLen uint32, b unsafe.Pointer, bLen, bDType, m, n, k, flags uint32, alpha float32) uint32

// useHost is whether the host runs the kernels; asked once.
var useHost = sync.OnceValue(func() bool { return hostKernelsAvailable() == 1 })

// hostMatMul hands the product to the host when it runs the kernels and
// the operands are memory it can see (every F32 and encoded weight; NF4's
// codes and scales are not one range, so NF4 stays in the guest).
func hostMatMul(out, a []float32, w *buffer, m, n, k int, transA, transB bool, alpha float32, acc bool) bool {
	if !useHost() || w.st.nf4 != nil {
		return false
	}
	var bp unsafe.Pointer
	var bLen int
	if w.dtype == tensor.F32 {
		bv := w.data()
		bp, bLen = unsafe.Pointer(unsafe.SliceData(bv)), 4*len(bv)
	} else {
		bp, bLen = unsafe.Pointer(unsafe.SliceData(w.st.raw)), len(w.st.raw)
	}
	var flags uint32
	if transA {
		flags |= HostFlagTransA
	}
	if transB {
		flags |= HostFlagTransB
	}
	if acc {
		flags |= HostFlagAccumulate
	}
	switch r := hostKernelMatMul(unsafe.Pointer(unsafe.SliceData(out)), uint32(len(out)),
		unsafe.Pointer(unsafe.SliceData(a)), uint32(len(a)), bp, uint32(bLen), uint32(w.dtype),
		uint32(m), uint32(n), uint32(k), flags, alpha); r {
	case HostDone:
		return true
	case HostDeclined:
		return false
	default:
		panic(fmt.Sprintf("cpu: MatMul: the host rejected the product [%d, %d] x [%d, %d] (result %d)", m, k, k, n, r))
	}
}

// hostAttention hands an attention operation to the host when it runs the
// kernels: bufs are its operands in HostKernelOp's order (nil for an
// absent gradient), followed by the parameters.
func hostAttention(code int, s attnShape, bufs ...[]float32) bool {
	if !useHost() {
		return false
	}
	var args [2*7 + 9]uint32
	n := 0
	for _, b := range bufs {
		if len(b) > 0 {
			args[n] = uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
			args[n+1] = uint32(len(b))
		}
		n += 2
	}
	for _, v := range [...]int{s.Batch, s.SeqQ, s.SeqK, s.stride, s.Heads, s.KVHeads, s.HeadDim} {
		args[n] = uint32(v)
		n++
	}
	args[n] = math.Float32bits(s.Scale)
	args[n+1] = uint32(s.Window)
	n += 2
	r := hostKernelOp(uint32(code), unsafe.Pointer(&args), uint32(n))
	runtime.KeepAlive(bufs)
	return hostResult(r, "attention")
}

// hostResult turns a host kernel's answer into whether it ran.
func hostResult(r uint32, op string) bool {
	switch r {
	case HostDone:
		return true
	case HostDeclined:
		return false
	default:
		panic(fmt.Sprintf("cpu: the host rejected the %s operands (result %d)", op, r))
	}
}

// hostBufs hands the tensor operation code (HostOpAdd...) on bufs to the
// host when it runs the kernels, and reports whether it ran.
func (c *Backend) hostBufs(code int, bufs ...backend.Buffer) bool {
	_, ok := c.hostOp(code, bufs, hostSlice{}, hostSlice{})
	return ok
}

// hostOp hands the tensor operation code to the host: bufs its buffer
// operands (nil where absent), s0 and s1 its slice operands (as many as it
// takes), params its parameter words. It reports whether the host ran it,
// with its value. Operands the host cannot take (an encoded or NF4
// buffer, a rank over HostMaxRank) keep the operation in the guest, and so
// does a host's rejection: the guest's own checks then say what is wrong.
func (c *Backend) hostOp(code int, bufs []backend.Buffer, s0, s1 hostSlice, params ...uint32) (value float64, ok bool) {
	if !useHost() {
		return 0, false
	}
	nb, ns, np, known := HostOpShape(uint32(code))
	if !known || len(bufs) != nb || len(params) != np {
		return 0, false
	}
	var args [HostMaxOpWords]uint32
	args[0], args[1], args[2] = uint32(nb), uint32(ns), uint32(np)
	n := 3
	for _, x := range bufs {
		w := args[n : n+HostOperandWords]
		n += HostOperandWords
		if x == nil {
			w[2] = HostAbsent
			continue
		}
		b, isBuf := x.(*buffer)
		if !isBuf || b == nil || b.owner != c || b.dtype != tensor.F32 || b.freed || b.st.freed || len(b.shape) > HostMaxRank {
			return 0, false
		}
		if b.n > 0 {
			w[0] = uint32(uintptr(unsafe.Pointer(&b.st.f32[b.off])))
		}
		w[1], w[2] = uint32(b.n), uint32(len(b.shape))
		for i, d := range b.shape {
			w[3+i] = uint32(d)
		}
	}
	ss := [2]hostSlice{s0, s1}
	for _, s := range ss[:ns] {
		if s.n > 0 {
			args[n] = uint32(uintptr(s.p))
		}
		args[n+1] = uint32(s.n)
		n += 2
	}
	n += copy(args[n:], params)
	r := hostKernelOp(uint32(code), unsafe.Pointer(&args), uint32(n))
	runtime.KeepAlive(bufs)
	runtime.KeepAlive(s0.p)
	runtime.KeepAlive(s1.p)
	if r != HostDone {
		return 0, false
	}
	return math.Float64frombits(uint64(args[0]) | uint64(args[1])<<32), true
}
