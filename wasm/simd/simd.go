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
	gemm js.Value
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
	return &Kernels{gemm: inst.Get("exports").Get("gemm"), args: new([16]uint32)}, nil
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
// memory, which is where wasm pointers point.
func addr(s []float32) uint32 {
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
	k.mu.Lock()
	*k.args = [16]uint32{addr(p.Dst), addr(p.A), addr(p.B), t, uint32(m), uint32(n), uint32(kk), flags,
		uint32(p.LdDst), uint32(p.LdA), uint32(p.LdB), math.Float32bits(p.Alpha)}
	k.gemm.Invoke(uint32(uintptr(unsafe.Pointer(k.args))))
	k.mu.Unlock()
	runtime.KeepAlive(p)
	return true
}
