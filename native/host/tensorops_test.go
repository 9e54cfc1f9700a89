package host

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tetratelabs/wazero/api"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/cpu"
)

// opCase is one tensor operation run two ways: by run on the backend's own
// buffers, and through the op kernel on a guest memory holding the same
// values.
type opCase struct {
	name   string
	code   uint32
	bufs   []opBuf  // nil shape: absent
	slices [][]byte // nil: absent
	params []uint32
	run    func(kb *cpu.Backend, b []backend.Buffer) float64
}

// opBuf is a buffer operand: its shape and values.
type opBuf struct {
	shape []int
	vals  []float32
}

func bufOf(r *rand.Rand, shape ...int) opBuf {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return opBuf{shape: shape, vals: randFloats(r, n)}
}

func int32Bytes(v ...int32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(x))
	}
	return b
}

func float32Bytes(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func float64Bytes(v ...float64) []byte {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
	}
	return b
}

func f32bits(v float32) uint32 { return math.Float32bits(v) }

// layout places the case's operands in a fresh guest memory after the
// argument words and returns the memory, the words and each buffer's
// offset.
func (c opCase) layout() (*fakeMemory, []uint32, []uint32) {
	const argsOff = 8
	words := []uint32{uint32(len(c.bufs)), uint32(len(c.slices)), uint32(len(c.params))}
	off := uint32(512)
	offs := make([]uint32, len(c.bufs))
	var body []byte
	for i, b := range c.bufs {
		if b.shape == nil {
			words = append(words, 0, 0, cpu.HostAbsent, 0, 0, 0, 0)
			continue
		}
		offs[i] = off + uint32(len(body))
		d := [4]uint32{}
		for j, x := range b.shape {
			d[j] = uint32(x)
		}
		words = append(words, offs[i], uint32(len(b.vals)), uint32(len(b.shape)), d[0], d[1], d[2], d[3])
		body = append(body, float32Bytes(b.vals...)...)
	}
	for _, s := range c.slices {
		if s == nil {
			words = append(words, 0, 0)
			continue
		}
		for len(body)%8 != 0 {
			body = append(body, 0)
		}
		words = append(words, off+uint32(len(body)), uint32(len(s)))
		body = append(body, s...)
	}
	words = append(words, c.params...)
	mem := &fakeMemory{buf: make([]byte, int(off)+len(body)+64)}
	copy(mem.buf[off:], body)
	for i, w := range words {
		binary.LittleEndian.PutUint32(mem.buf[argsOff+4*i:], w)
	}
	return mem, words, offs
}

func tensorOpCases(r *rand.Rand) []opCase {
	rows, cols := 6, 16
	freqs := []float64{1, 0.5, 0.25, 0.125}
	targets := []int32{3, 0, 15, 7, 2, 9}
	weights := []float32{1, 0, 0.5, 1, 1, 2}
	rope := backend.RoPE{Style: backend.RoPEHalf, HeadDim: 8, Theta: 10000}
	ropeF := backend.RoPE{Style: backend.RoPEInterleaved, HeadDim: 8, Dims: 8, Freqs: freqs}
	pos := []int32{0, 1, 2, 5, 9, 100}
	adam := backend.AdamW{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Step: 3}
	m := func(shape ...int) opBuf { return bufOf(r, shape...) }
	absent := opBuf{}
	return []opCase{
		{name: "add", code: cpu.HostOpAdd, bufs: []opBuf{m(rows, cols), m(rows, cols), m(rows, cols)},
			run: func(kb *cpu.Backend, b []backend.Buffer) float64 { kb.Add(b[0], b[1], b[2]); return 0 }},
		{name: "add row", code: cpu.HostOpAdd, bufs: []opBuf{m(rows, cols), m(rows, cols), m(cols)},
			run: func(kb *cpu.Backend, b []backend.Buffer) float64 { kb.Add(b[0], b[1], b[2]); return 0 }},
		{name: "mul column", code: cpu.HostOpMul, bufs: []opBuf{m(rows, cols), m(rows, cols), m(rows, 1)},
			run: func(kb *cpu.Backend, b []backend.Buffer) float64 { kb.Mul(b[0], b[1], b[2]); return 0 }},
		{name: "scale", code: cpu.HostOpScale, bufs: []opBuf{m(rows, cols), m(rows * cols)}, params: []uint32{f32bits(0.3)},
			run: func(kb *cpu.Backend, b []backend.Buffer) float64 { kb.Scale(b[0], b[1], 0.3); return 0 }},
		{name: "add scaled", code: cpu.HostOpAddScaled, bufs: []opBuf{m(rows, cols), m(rows, cols)}, params: []uint32{f32bits(-2)},
			run: func(kb *cpu.Backend, b []backend.Buffer) float64 { kb.AddScaled(b[0], b[1], -2); return 0 }},
		{name: "silu mul", code: cpu.HostOpSiLUMul, bufs: []opBuf{m(rows, cols), m(rows, cols), m(rows, cols)},
			run: func(kb *cpu.Backend, b []backend.Buffer) float64 { kb.SiLUMul(b[0], b[1], b[2]); return 0 }},
		{name: "silu mul backward", code: cpu.HostOpSiLUMulBackward, bufs: []opBuf{m(rows, cols), m(rows, cols), m(rows, cols), m(rows, cols), m(rows, cols)},
			run: func(kb *cpu.Backend, b []backend.Buffer) float64 {
				kb.SiLUMulBackward(b[0], b[1], b[2], b[3], b[4])
				return 0
			}},
		{name: "silu mul backward without dgate", code: cpu.HostOpSiLUMulBackward, bufs: []opBuf{absent, m(rows, cols), m(rows, cols), m(rows, cols), m(rows, cols)},
			run: func(kb *cpu.Backend, b []backend.Buffer) float64 {
				kb.SiLUMulBackward(nil, b[1], b[2], b[3], b[4])
				return 0
			}},
		{name: "rmsnorm", code: cpu.HostOpRMSNorm, bufs: []opBuf{m(rows, cols), m(rows, cols), m(cols)}, params: []uint32{f32bits(1e-5)},
			run: func(kb *cpu.Backend, b []backend.Buffer) float64 { kb.RMSNorm(b[0], b[1], b[2], 1e-5); return 0 }},
		{name: "rmsnorm without weight", code: cpu.HostOpRMSNorm, bufs: []opBuf{m(rows, cols), m(rows, cols), absent}, params: []uint32{f32bits(1e-5)},
			run: func(kb *cpu.Backend, b []backend.Buffer) float64 { kb.RMSNorm(b[0], b[1], nil, 1e-5); return 0 }},
		{name: "rmsnorm backward", code: cpu.HostOpRMSNormBackward, bufs: []opBuf{m(rows, cols), m(cols), m(rows, cols), m(rows, cols), m(cols)}, params: []uint32{f32bits(1e-6)},
			run: func(kb *cpu.Backend, b []backend.Buffer) float64 {
				kb.RMSNormBackward(b[0], b[1], b[2], b[3], b[4], 1e-6)
				return 0
			}},
		{name: "rope", code: cpu.HostOpRoPE, bufs: []opBuf{m(rows, cols)}, slices: [][]byte{int32Bytes(pos...), nil},
			params: []uint32{uint32(rope.Style), 8, f32bits(rope.Theta), 0},
			run:    func(kb *cpu.Backend, b []backend.Buffer) float64 { kb.ApplyRoPE(b[0], pos, rope); return 0 }},
		{name: "rope backward with frequencies", code: cpu.HostOpRoPEBackward, bufs: []opBuf{m(rows, cols)}, slices: [][]byte{int32Bytes(pos...), float64Bytes(freqs...)},
			params: []uint32{uint32(ropeF.Style), 8, 0, 8},
			run:    func(kb *cpu.Backend, b []backend.Buffer) float64 { kb.ApplyRoPEBackward(b[0], pos, ropeF); return 0 }},
		{name: "cross entropy", code: cpu.HostOpCrossEntropy, bufs: []opBuf{m(rows, cols), m(rows, cols)},
			slices: [][]byte{int32Bytes(targets...), float32Bytes(weights...)}, params: []uint32{f32bits(0.25)},
			run: func(kb *cpu.Backend, b []backend.Buffer) float64 {
				return kb.CrossEntropy(b[0], b[1], targets, weights, 0.25)
			}},
		{name: "cross entropy, loss only", code: cpu.HostOpCrossEntropy, bufs: []opBuf{absent, m(rows, cols)},
			slices: [][]byte{int32Bytes(targets...), nil}, params: []uint32{f32bits(1)},
			run: func(kb *cpu.Backend, b []backend.Buffer) float64 { return kb.CrossEntropy(nil, b[1], targets, nil, 1) }},
		{name: "adamw", code: cpu.HostOpAdamW, bufs: []opBuf{m(rows, cols), m(rows, cols), m(rows, cols), {shape: []int{rows, cols}, vals: make([]float32, rows*cols)}},
			params: []uint32{f32bits(adam.LR), f32bits(adam.Beta1), f32bits(adam.Beta2), f32bits(adam.Eps), f32bits(adam.WeightDecay), 3},
			run: func(kb *cpu.Backend, b []backend.Buffer) float64 {
				kb.AdamWStep(b[0], b[1], b[2], b[3], adam)
				return 0
			}},
		{name: "softmax", code: cpu.HostOpSoftmax, bufs: []opBuf{m(rows, cols), m(rows, cols)}, params: []uint32{f32bits(0.7)},
			run: func(kb *cpu.Backend, b []backend.Buffer) float64 { kb.Softmax(b[0], b[1], 0.7); return 0 }},
	}
}

// TestTensorOps: every tensor operation through the op kernel on a guest
// memory gives the backend's own result, bit for bit, and its value.
func TestTensorOps(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	kb := cpu.NewWithThreads(2)
	for _, c := range tensorOpCases(r) {
		bufs := make([]backend.Buffer, len(c.bufs))
		for i, b := range c.bufs {
			if b.shape != nil {
				bufs[i] = kb.Zeros(b.shape...)
				kb.Write(bufs[i], 0, b.vals)
			}
		}
		wantValue := c.run(kb, bufs)

		mem, words, offs := c.layout()
		if err := opError(opKernel(kb, mem, c.code, 8, uint32(len(words)), alwaysFits)); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for i, b := range c.bufs {
			if b.shape == nil {
				continue
			}
			want := make([]float32, len(b.vals))
			kb.Read(bufs[i], 0, want)
			if got := mem.floats(offs[i], len(b.vals)); !slices.Equal(got, want) {
				t.Errorf("%s: buffer %d differs from the backend's", c.name, i)
			}
		}
		if cpu.HostOpHasValue(c.code) {
			if got := math.Float64frombits(binary.LittleEndian.Uint64(mem.buf[8:])); got != wantValue {
				t.Errorf("%s: value %v, want %v", c.name, got, wantValue)
			}
		}
	}
}

// TestTensorOpsReject: arguments a malicious guest could pass are
// rejected, never a panic or a view outside its memory.
func TestTensorOpsReject(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	kb := cpu.NewWithThreads(2)
	cases := tensorOpCases(r)
	find := func(name string) opCase {
		for _, c := range cases {
			if c.name == name {
				return c
			}
		}
		t.Fatalf("no case %q", name)
		return opCase{}
	}
	buf := func(i int) int { return 3 + i*cpu.HostOperandWords } // first word of buffer i
	slice := func(c opCase, i int) int { return 3 + len(c.bufs)*cpu.HostOperandWords + 2*i }
	for _, tc := range []struct {
		name, op string
		edit     func(c opCase, w []uint32, memSize uint32)
	}{
		{"buffer past the end", "add", func(c opCase, w []uint32, size uint32) { w[buf(1)] = size - 16 }},
		{"offset wraps around", "add", func(c opCase, w []uint32, size uint32) { w[buf(1)] = math.MaxUint32 - 3 }},
		{"huge count", "add", func(c opCase, w []uint32, size uint32) { w[buf(1)+1] = math.MaxUint32 }},
		{"misaligned buffer", "add", func(c opCase, w []uint32, size uint32) { w[buf(2)]++ }},
		{"shape does not hold the count", "add", func(c opCase, w []uint32, size uint32) { w[buf(0)+3]++ }},
		{"rank over 4", "add", func(c opCase, w []uint32, size uint32) { w[buf(0)+2] = 5 }},
		{"huge dimension", "add", func(c opCase, w []uint32, size uint32) { w[buf(0)+3] = 1 << 30 }},
		{"required buffer absent", "add", func(c opCase, w []uint32, size uint32) { w[buf(1)+2] = cpu.HostAbsent }},
		{"sizes differ", "silu mul", func(c opCase, w []uint32, size uint32) { w[buf(2)+1], w[buf(2)+3] = 5*16, 5 }},
		{"wrong buffer count", "add", func(c opCase, w []uint32, size uint32) { w[0] = 2 }},
		{"target outside the vocabulary", "cross entropy", func(c opCase, w []uint32, size uint32) {
			w[slice(c, 0)+1] = 4 // one target for six rows
		}},
		{"targets overlap dlogits", "cross entropy", func(c opCase, w []uint32, size uint32) { w[slice(c, 0)] = w[buf(0)] }},
		{"weights overlap logits", "cross entropy", func(c opCase, w []uint32, size uint32) { w[slice(c, 1)] = w[buf(1)] + 4 }},
		{"slice past the end", "rope", func(c opCase, w []uint32, size uint32) { w[slice(c, 0)] = size - 8 }},
		{"positions for other rows", "rope", func(c opCase, w []uint32, size uint32) { w[slice(c, 0)+1] = 8 }},
		{"misaligned frequencies", "rope backward with frequencies", func(c opCase, w []uint32, size uint32) { w[slice(c, 1)] += 4 }},
		{"bad RoPE style", "rope", func(c opCase, w []uint32, size uint32) { w[len(w)-4] = 300 }},
		{"head size does not divide", "rope", func(c opCase, w []uint32, size uint32) { w[len(w)-3] = 5 }},
		{"AdamW step 0", "adamw", func(c opCase, w []uint32, size uint32) { w[len(w)-1] = 0 }},
	} {
		c := find(tc.op)
		mem, words, _ := c.layout()
		tc.edit(c, words, uint32(len(mem.buf)))
		for i, w := range words {
			binary.LittleEndian.PutUint32(mem.buf[8+4*i:], w)
		}
		if status := opKernel(kb, mem, c.code, 8, uint32(len(words)), alwaysFits); status != cpu.HostRejected {
			t.Errorf("%s: status %d, want rejected", tc.name, status)
		}
	}
	c := find("add")
	mem, words, _ := c.layout()
	if status := opKernel(kb, mem, c.code, 8, uint32(len(words))-1, alwaysFits); status != cpu.HostRejected {
		t.Errorf("a missing word: status %d", status)
	}
	never := func(api.Memory, uint64, bool) bool { return false }
	if status := opKernel(kb, mem, c.code, 8, uint32(len(words)), never); status != cpu.HostDeclined {
		t.Errorf("scratch over the cap: status %d, want declined", status)
	}
}

// FuzzOpKernelArgs: any argument words for any operation on a small guest
// memory are run or rejected, never a panic.
func FuzzOpKernelArgs(f *testing.F) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, c := range tensorOpCases(r) {
		mem, words, _ := c.layout()
		f.Add(c.code, int32Bytes(int32sOf(words)...), mem.buf[512:])
	}
	kb := cpu.NewWithThreads(2)
	f.Fuzz(func(t *testing.T, code uint32, words, body []byte) {
		if len(words) > 4*maxOpArgs || len(body) > 1<<16 {
			return
		}
		mem := &fakeMemory{buf: make([]byte, 512+len(body))}
		copy(mem.buf[8:], words[:min(len(words), 504)])
		copy(mem.buf[512:], body)
		opKernel(kb, mem, code%20, 8, uint32(min(len(words), 504)/4), alwaysFits)
	})
}

func int32sOf(w []uint32) []int32 {
	v := make([]int32, len(w))
	for i, x := range w {
		v[i] = int32(x)
	}
	return v
}

// sizedMemory is a guest memory of which only the size is read.
type sizedMemory struct {
	api.Memory
	size uint32
}

func (m sizedMemory) Size() uint32 { return m.size }

// TestScratchCountsAgainstTheCap: a host kernel call runs only when the
// guest's memory plus the call's scratch bound fit under MemoryLimitMB.
func TestScratchCountsAgainstTheCap(t *testing.T) {
	h := &Host{opt: Options{MemoryLimitMB: 64, Threads: 2}}
	const mib = 1 << 20
	for _, tc := range []struct {
		memory, operands uint64
		product, fits    bool
	}{
		{memory: 8 * mib, operands: 1 * mib, fits: true},
		{memory: 8 * mib, operands: 1 * mib, product: true, fits: true},
		{memory: 40 * mib, operands: 8 * mib, fits: true},
		{memory: 40 * mib, operands: 12 * mib, fits: false},               // 24 MiB of copies and panels
		{memory: 54 * mib, operands: 1 * mib, product: true, fits: false}, // the packed block of b
		{memory: 63 * mib, operands: 1 * mib, fits: false},
		{memory: 8 * mib, operands: 1 << 62, fits: false},
	} {
		bound := cpu.HostScratchBound(int64(min(tc.operands, 1<<40)), 2, tc.product)
		if got := h.scratchFits(sizedMemory{size: uint32(tc.memory)}, tc.operands, tc.product); got != tc.fits {
			t.Errorf("%d MiB of memory, %d bytes of operands, product %v (scratch bound %d): fits %v, want %v",
				tc.memory/mib, tc.operands, tc.product, bound, got, tc.fits)
		}
	}
}
