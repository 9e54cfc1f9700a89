//go:build js && wasm

package simd

import (
	_ "embed"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"syscall/js"
	"unsafe"

	"github.com/graft-ml/graft/core/cpu"
)

//go:embed kernels.wasm
var module []byte

// MemoryGlobal is the global through which the JavaScript that starts Go
// exposes the instance's memory (exports.mem) to Install.
const MemoryGlobal = "graftGoMemory"

// Name is what cpu.Kernels reports once Install succeeded.
const Name = "wasm-simd128"

// Kernels are the instantiated module's functions.
type Kernels struct {
	gemm, softmaxRows, softmaxBackRows, silu, siluBack js.Value
	// mu guards args, the words a call's arguments are passed in: the
	// kernels read them from Go's memory, so they live on the heap,
	// where nothing moves them while the call runs.
	mu   sync.Mutex
	args *[16]uint32
}

// Instantiate compiles the module and instantiates it on the memory that
// globalThis.graftGoMemory exposes, or says why it cannot.
func Instantiate() (*Kernels, error) {
	mem := js.Global().Get(MemoryGlobal)
	wa := js.Global().Get("WebAssembly")
	if wa.Type() != js.TypeObject {
		return nil, errors.New("simd: this JavaScript engine has no WebAssembly object")
	}
	if mem.Type() != js.TypeObject || !mem.InstanceOf(wa.Get("Memory")) {
		return nil, fmt.Errorf("simd: globalThis.%s is not the Go instance's WebAssembly.Memory; the loader must set it to instance.exports.mem", MemoryGlobal)
	}
	bytes := js.Global().Get("Uint8Array").New(len(module))
	js.CopyBytesToJS(bytes, module)
	if !wa.Call("validate", bytes).Bool() {
		return nil, errors.New("simd: this JavaScript engine does not run WebAssembly SIMD128")
	}
	// Synchronous compilation: allowed for any size in workers and Node,
	// where graft runs; the module is a few KiB.
	var inst js.Value
	if err := catch(func() {
		mod := wa.Get("Module").New(bytes)
		imports := js.ValueOf(map[string]any{"go": map[string]any{"mem": mem}})
		inst = wa.Get("Instance").New(mod, imports)
	}); err != nil {
		return nil, fmt.Errorf("simd: instantiating the kernels: %w", err)
	}
	exp := inst.Get("exports")
	return &Kernels{gemm: exp.Get("gemm"), softmaxRows: exp.Get("softmaxRows"), softmaxBackRows: exp.Get("softmaxBackRows"), silu: exp.Get("silu"), siluBack: exp.Get("siluBack"),
		args: new([16]uint32)}, nil
}

// catch runs f and turns a JavaScript exception it throws into an error.
func catch(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = e
				return
			}
			err = fmt.Errorf("%v", r)
		}
	}()
	f()
	return nil
}

// Install instantiates the kernels and makes core/cpu use them (see the
// package comment). On an error the portable Go kernels stay in use.
func Install() error {
	k, err := Instantiate()
	if err != nil {
		return err
	}
	cpu.UseExternal(k)
	return nil
}

// Name implements cpu.External.
func (k *Kernels) Name() string { return Name }

// addr is the byte offset of s's first element in the Go instance's
// memory, which is where wasm pointers point; 0 for an empty slice
// (an absent operand).
func addr(s []float32) uint32 {
	if len(s) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(s))))
}

// fits reports whether a rows x cols matrix with rows ld apart lies in x.
func fits(x []float32, rows, cols, ld int) bool {
	return ld >= cols && int64(rows-1)*int64(ld)+int64(cols) <= int64(len(x))
}

// MatMul implements cpu.External with the module's gemm. It checks every
// extent first, since the kernel reads and writes whatever offsets it is
// given, and declines what does not fit.
func (k *Kernels) MatMul(p cpu.Product) bool {
	m, n, kk := p.M, p.N, p.K
	ar, ac, br, bc := m, kk, kk, n
	if p.TransA {
		ar, ac = kk, m
	}
	if p.TransB {
		br, bc = n, kk
	}
	if m < 1 || n < 1 || kk < 1 || !fits(p.Dst, m, n, p.LdDst) || !fits(p.A, ar, ac, p.LdA) || !fits(p.B, br, bc, p.LdB) ||
		(p.TransB && len(p.Scratch) < kk*n) || max(m, n, kk, p.LdDst, p.LdA, p.LdB) > math.MaxInt32/4 {
		return false
	}
	flags := uint32(0)
	if p.TransA {
		flags |= 1
	}
	var t uint32
	if p.TransB {
		flags |= 2
		t = addr(p.Scratch)
	}
	if p.Acc {
		flags |= 4
	}
	k.call(k.gemm, addr(p.Dst), addr(p.A), addr(p.B), t, uint32(m), uint32(n), uint32(kk), flags,
		uint32(p.LdDst), uint32(p.LdA), uint32(p.LdB), math.Float32bits(p.Alpha))
	runtime.KeepAlive(p)
	return true
}

// call runs the kernel f with its arguments as words in Go's memory.
func (k *Kernels) call(f js.Value, words ...uint32) {
	k.mu.Lock()
	copy(k.args[:], words)
	f.Invoke(uint32(uintptr(unsafe.Pointer(k.args))))
	k.mu.Unlock()
}

// rowsFit reports whether the rows of s lie in its slices and its
// causal ranges in its rows.
func rowsFit(s cpu.SoftmaxRows) bool {
	cells := int64(s.Rows) * int64(s.N)
	return s.Rows >= 1 && s.N >= 1 && cells <= math.MaxInt32/4 && int64(len(s.X)) >= cells && int64(len(s.Out)) >= cells &&
		(s.Stats == nil || len(s.Stats) >= 2*s.Rows) &&
		(!s.Causal || (s.Hi0 >= 0 && s.Window >= 0 && s.Hi0+s.Rows-1 <= s.N))
}

// SoftmaxBackRows implements cpu.External with the module's
// softmaxBackRows.
func (k *Kernels) SoftmaxBackRows(s cpu.SoftmaxRows) bool {
	if !rowsFit(s) {
		return false
	}
	var flags uint32
	if s.Causal {
		flags |= 2
	}
	k.call(k.softmaxBackRows, addr(s.X), addr(s.Out), uint32(s.N), uint32(s.Rows), flags, uint32(s.Hi0), uint32(s.Window))
	runtime.KeepAlive(s)
	return true
}

// SoftmaxRows implements cpu.External with the module's softmaxRows.
func (k *Kernels) SoftmaxRows(s cpu.SoftmaxRows) bool {
	if !rowsFit(s) {
		return false
	}
	var flags uint32
	if s.Normalize {
		flags |= 1
	}
	if s.Causal {
		flags |= 2
	}
	k.call(k.softmaxRows, addr(s.X), addr(s.Out), uint32(s.N), uint32(s.Rows), addr(s.Stats), flags, uint32(s.Hi0), uint32(s.Window))
	runtime.KeepAlive(s)
	return true
}

// SiLUMul implements cpu.External with the module's silu.
func (k *Kernels) SiLUMul(dst, gate, up []float32) bool {
	n := len(dst)
	if n < 1 || len(gate) < n || len(up) < n {
		return false
	}
	k.call(k.silu, addr(dst), addr(gate), addr(up), uint32(n))
	runtime.KeepAlive(dst)
	runtime.KeepAlive(gate)
	runtime.KeepAlive(up)
	return true
}

// SiLUMulBackward implements cpu.External with the module's siluBack.
func (k *Kernels) SiLUMulBackward(dgate, dup, dy, gate, up []float32) bool {
	n := len(dy)
	if n < 1 || len(gate) < n || len(up) < n || (dgate != nil && len(dgate) < n) || (dup != nil && len(dup) < n) {
		return false
	}
	k.call(k.siluBack, addr(dgate), addr(dup), addr(dy), addr(gate), addr(up), uint32(n))
	runtime.KeepAlive(dgate)
	runtime.KeepAlive(dup)
	runtime.KeepAlive(dy)
	runtime.KeepAlive(gate)
	runtime.KeepAlive(up)
	return true
}
