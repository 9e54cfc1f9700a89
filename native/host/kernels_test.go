package host

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tetratelabs/wazero/api"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/tensor"
)

// fakeMemory is a guest memory for calling the host kernels directly: its
// Read answers as wazero's does; every other method is left unimplemented.
type fakeMemory struct {
	api.Memory
	buf []byte
}

func (m *fakeMemory) Size() uint32 { return uint32(len(m.buf)) }

func (m *fakeMemory) Read(off, n uint32) ([]byte, bool) {
	if uint64(off)+uint64(n) > uint64(len(m.buf)) {
		return nil, false
	}
	return m.buf[off : off+n : off+n], true
}

func (m *fakeMemory) putFloats(off uint32, v []float32) {
	for i, x := range v {
		binary.LittleEndian.PutUint32(m.buf[int(off)+4*i:], math.Float32bits(x))
	}
}

func (m *fakeMemory) floats(off uint32, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(m.buf[int(off)+4*i:]))
	}
	return v
}

func randFloats(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// TestMatMulKernel: a product through the host kernel on a guest memory
// equals the same product on the backend's own buffers, for F32 and a
// quantized b, transposed or not, accumulated or not.
func TestMatMulKernel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	kb := cpu.NewWithThreads(2)
	const m, n, k = 37, 64, 256
	for _, tc := range []struct {
		dt                  tensor.DType
		transA, transB, acc bool
	}{
		{tensor.F32, false, false, false}, {tensor.F32, false, true, true}, {tensor.F32, true, false, false},
		{tensor.Q8_0, false, true, false}, {tensor.Q4_K, false, true, true}, {tensor.F16, true, false, true},
	} {
		a, d0 := randFloats(r, m*k), randFloats(r, m*n)
		bRows, bCols := k, n
		if tc.transB {
			bRows, bCols = n, k
		}
		size, err := tc.dt.Bytes(int64(bRows * bCols))
		if err != nil {
			t.Fatal(err)
		}
		raw := make([]byte, size)
		if err := tensor.Encode(tc.dt, randFloats(r, bRows*bCols), raw); err != nil {
			t.Fatal(err)
		}
		bt, err := tensor.New("b", tc.dt, tensor.Shape{bRows, bCols}, raw)
		if err != nil {
			t.Fatal(err)
		}
		aRows, aCols := m, k
		if tc.transA {
			aRows, aCols = k, m
		}
		f := backend.MatMul{TransA: tc.transA, TransB: tc.transB, Accumulate: tc.acc, Alpha: 0.5}

		// The backend's own result.
		bb, err := kb.Load(bt)
		if err != nil {
			t.Fatal(err)
		}
		ab, db := kb.Zeros(aRows, aCols), kb.Zeros(m, n)
		kb.Write(ab, 0, a)
		kb.Write(db, 0, d0)
		kb.MatMul(db, ab, bb, f)
		want := make([]float32, m*n)
		kb.Read(db, 0, want)

		// The same through guest memory: dst, a, b one after another.
		mem := &fakeMemory{buf: make([]byte, 4*(m*n+m*k)+len(bt.Data)+64)}
		dOff, aOff := uint32(0), uint32(4*m*n)
		bOff := aOff + uint32(4*m*k)
		mem.putFloats(dOff, d0)
		mem.putFloats(aOff, a)
		copy(mem.buf[bOff:], bt.Data)
		var flags uint32
		if tc.transA {
			flags |= cpu.HostFlagTransA
		}
		if tc.transB {
			flags |= cpu.HostFlagTransB
		}
		if tc.acc {
			flags |= cpu.HostFlagAccumulate
		}
		err = matmulKernel(kb, mem, matmulArgs{dst: dOff, dstLen: m * n, a: aOff, aLen: m * k, b: bOff, bLen: uint32(len(bt.Data)),
			bDType: uint32(tc.dt), m: m, n: n, k: k, flags: flags, alpha: 0.5})
		if err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		if got := mem.floats(dOff, m*n); !slices.Equal(got, want) {
			t.Errorf("%+v: host kernel result differs from the backend's", tc)
		}
	}
}

// TestMatMulKernelRejects: arguments a malicious guest could pass are
// errors, never a panic or a view outside its memory.
func TestMatMulKernelRejects(t *testing.T) {
	kb := cpu.NewWithThreads(2)
	const size = 4096
	ok := matmulArgs{dst: 0, dstLen: 8 * 8, a: 256, aLen: 8 * 16, b: 768, bLen: 4 * 16 * 8, bDType: uint32(tensor.F32), m: 8, n: 8, k: 16, alpha: 1}
	if err := matmulKernel(kb, &fakeMemory{buf: make([]byte, size)}, ok); err != nil {
		t.Fatalf("valid arguments: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*matmulArgs)
	}{
		{"dst past the end", func(x *matmulArgs) { x.dst = size - 4 }},
		{"a past the end", func(x *matmulArgs) { x.a = size - 100 }},
		{"b past the end", func(x *matmulArgs) { x.b = size - 8 }},
		{"offset wraps around", func(x *matmulArgs) { x.b = math.MaxUint32 - 3 }},
		{"b longer than memory", func(x *matmulArgs) { x.bLen = math.MaxUint32 }},
		{"b shorter than its shape", func(x *matmulArgs) { x.bLen -= 4 }},
		{"dst length does not fit m*n", func(x *matmulArgs) { x.dstLen-- }},
		{"a length does not fit m*k", func(x *matmulArgs) { x.aLen++ }},
		{"huge shape", func(x *matmulArgs) { x.m, x.n, x.dstLen = 1<<31, 1<<31, 0 }},
		{"dst overlaps a", func(x *matmulArgs) { x.a = 128 }},
		{"dst overlaps b", func(x *matmulArgs) { x.dst = 900 }},
		{"dst misaligned", func(x *matmulArgs) { x.dst = 2 }},
		{"unknown dtype", func(x *matmulArgs) { x.bDType = 999 }},
		{"NF4 b", func(x *matmulArgs) { x.bDType = uint32(tensor.NF4) }},
		{"integer b", func(x *matmulArgs) { x.bDType = uint32(tensor.I32) }},
		{"quantized b of the wrong size", func(x *matmulArgs) { x.bDType = uint32(tensor.Q8_0) }},
		{"unknown flag", func(x *matmulArgs) { x.flags = 8 }},
	} {
		x := ok
		tc.edit(&x)
		if err := matmulKernel(kb, &fakeMemory{buf: make([]byte, size)}, x); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

// FuzzMatMulKernelArgs: whatever a guest passes, the kernel answers with
// a result or an error, and writes only inside the memory (the Go runtime
// would panic on any view past the buffer).
func FuzzMatMulKernelArgs(f *testing.F) {
	f.Add(uint32(0), uint32(64), uint32(256), uint32(128), uint32(768), uint32(512), uint32(tensor.F32), uint32(8), uint32(8), uint32(16), uint32(0))
	f.Add(uint32(0), uint32(32), uint32(128), uint32(64), uint32(512), uint32(68), uint32(tensor.Q8_0), uint32(1), uint32(32), uint32(2), uint32(2))
	kb := cpu.NewWithThreads(2)
	f.Fuzz(func(t *testing.T, dst, dstLen, a, aLen, b, bLen, dt, m, n, k, flags uint32) {
		mem := &fakeMemory{buf: make([]byte, 2048)}
		matmulKernel(kb, mem, matmulArgs{dst: dst, dstLen: dstLen, a: a, aLen: aLen, b: b, bLen: bLen, bDType: dt, m: m, n: n, k: k, flags: flags, alpha: 1})
	})
}

// TestThreadsOption: each instance's kernels use at most Options.Threads
// threads; a negative count is refused.
func TestThreadsOption(t *testing.T) {
	ctx := context.Background()
	if _, err := New(ctx, Options{Threads: -1}); err == nil {
		t.Error("Threads -1 accepted")
	}
	h, err := New(ctx, Options{Threads: 3, MemoryLimitMB: 512, Cooperative: true})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	in := newInstance(t, h)
	if got := in.kernels.Threads(); got != 3 {
		t.Errorf("instance kernels use %d threads, want 3", got)
	}
}

// TestGuestKernels: with GuestKernels the guest computes everything itself
// (the host declines) and still matches native.
func TestGuestKernels(t *testing.T) {
	ctx := context.Background()
	h, err := New(ctx, Options{GuestKernels: true, MemoryLimitMB: 512, Cooperative: true})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	in := withModel(t, h)
	ev, err := in.Eval(ctx, EvalRequest{Texts: probeTexts[:1], Logits: true})
	if err != nil {
		t.Fatal(err)
	}
	sum, logits := nativeEval(t, nativeModel(t), probeTexts[:1])
	if !sameFloat(ev.SumNLL, sum) || !sameFloats(ev.Logits[0], logits[0]) {
		t.Errorf("guest kernels: loss %v, native %v", ev.SumNLL, sum)
	}
}

// TestAttentionOp: attention forward through the op kernel on a guest
// memory equals the backend's own; bad operands are rejected.
func TestAttentionOp(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	kb := cpu.NewWithThreads(2)
	p := backend.Attention{Batch: 2, SeqQ: 5, SeqK: 5, KVStride: 5, Heads: 4, KVHeads: 2, HeadDim: 8, Scale: 0.35}
	nq, nk := p.Batch*p.SeqQ*p.Heads*p.HeadDim, p.Batch*p.KVStride*p.KVHeads*p.HeadDim
	q, k, v := randFloats(r, nq), randFloats(r, nk), randFloats(r, nk)

	qb, kbuf, vb, db := kb.Zeros(p.Batch*p.SeqQ, p.Heads*p.HeadDim), kb.Zeros(p.Batch*p.KVStride, p.KVHeads*p.HeadDim),
		kb.Zeros(p.Batch*p.KVStride, p.KVHeads*p.HeadDim), kb.Zeros(p.Batch*p.SeqQ, p.Heads*p.HeadDim)
	kb.Write(qb, 0, q)
	kb.Write(kbuf, 0, k)
	kb.Write(vb, 0, v)
	kb.Attention(db, qb, kbuf, vb, p)
	want := make([]float32, nq)
	kb.Read(db, 0, want)

	const argsOff = 16
	dOff := uint32(256)
	qOff := dOff + 4*uint32(nq)
	kOff := qOff + 4*uint32(nq)
	vOff := kOff + 4*uint32(nk)
	mem := &fakeMemory{buf: make([]byte, int(vOff)+4*nk)}
	mem.putFloats(qOff, q)
	mem.putFloats(kOff, k)
	mem.putFloats(vOff, v)
	args := []uint32{dOff, uint32(nq), qOff, uint32(nq), kOff, uint32(nk), vOff, uint32(nk),
		uint32(p.Batch), uint32(p.SeqQ), uint32(p.SeqK), uint32(p.KVStride), uint32(p.Heads), uint32(p.KVHeads), uint32(p.HeadDim),
		math.Float32bits(p.Scale), 0}
	call := func(args []uint32) error {
		for i, a := range args {
			binary.LittleEndian.PutUint32(mem.buf[argsOff+4*i:], a)
		}
		return opError(opKernel(kb, mem, cpu.HostOpAttention, argsOff, uint32(len(args)), alwaysFits))
	}
	if err := call(args); err != nil {
		t.Fatal(err)
	}
	if got := mem.floats(dOff, nq); !slices.Equal(got, want) {
		t.Error("host attention differs from the backend's")
	}
	for _, tc := range []struct {
		name string
		edit func([]uint32)
	}{
		{"dst overlaps q", func(a []uint32) { a[0] = qOff - 4 }},
		{"v past the end", func(a []uint32) { a[6] = uint32(len(mem.buf)) - 8 }},
		{"q misaligned", func(a []uint32) { a[2]++ }},
		{"q length wrong", func(a []uint32) { a[3]-- }},
		{"absent q", func(a []uint32) { a[2], a[3] = 0, 0 }},
		{"huge batch", func(a []uint32) { a[8] = 1 << 30 }},
		{"heads not a multiple of kv heads", func(a []uint32) { a[13] = 3 }},
		{"shape does not fit the operands", func(a []uint32) { a[9], a[10] = 4, 4 }},
	} {
		bad := slices.Clone(args)
		tc.edit(bad)
		if err := call(bad); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	if err := call(args[:len(args)-1]); err == nil {
		t.Error("missing argument word accepted")
	}
	if err := opError(opKernel(kb, mem, 99, argsOff, uint32(len(args)), alwaysFits)); err == nil {
		t.Error("unknown operation accepted")
	}
	if err := opError(opKernel(kb, mem, cpu.HostOpAttention, uint32(len(mem.buf))-8, uint32(len(args)), alwaysFits)); err == nil {
		t.Error("arguments past the end accepted")
	}
}

// alwaysFits is a scratch check that accepts every call.
func alwaysFits(api.Memory, uint64, bool) bool { return true }

// opError turns an op kernel's status into an error unless it ran.
func opError(status uint32) error {
	if status != cpu.HostDone {
		return fmt.Errorf("status %d", status)
	}
	return nil
}
