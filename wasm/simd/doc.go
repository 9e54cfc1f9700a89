// Package simd runs core/cpu's matrix products on WebAssembly SIMD128
// kernels in a GOOS=js program (the browser's Web Worker, or Node.js): the
// Go compiler emits no SIMD for wasm, so without them every product runs
// a float at a time.
//
// kernels.wasm is a small module that tools/wasmsimd writes (go generate;
// make check-asm checks that the committed one is current). It imports
// the Go instance's own linear memory, so its kernels compute on Go slices
// in place, given their byte offsets: a product costs one call through
// syscall/js and no copy. The JavaScript that starts Go exposes that
// memory (the instance's exports.mem) as globalThis.graftGoMemory before
// it runs the program: bindings/js/worker.js does, and so does
// node/go_js_wasm_exec, the loader make test-js runs the tests with.
// Install instantiates the module on it and hands it to core/cpu
// (cpu.UseExternal); where the memory is not exposed, or the engine lacks
// SIMD128, Install says why and the portable Go kernels run unchanged.
package simd

//go:generate go run ../../tools/wasmsimd -o kernels.wasm
