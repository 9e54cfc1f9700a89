// Command wasmsimd writes wasm/simd/kernels.wasm, the WebAssembly SIMD128
// kernels a GOOS=js build of graft runs its heavy operations on (the Go
// compiler emits neither SIMD nor threads for wasm, so the portable Go
// kernels run a lane at a time). The module imports the Go instance's
// linear memory (import "go" "mem") and computes on byte offsets into it,
// so nothing is copied between the two instances.
//
// The bytes are encoded here directly, instruction by instruction, so that
// no assembler is needed to build or check them: `go generate ./wasm/simd`
// runs this program, and `make check-asm` fails when the committed module
// differs from what it writes.
//
//	go run ./tools/wasmsimd -o wasm/simd/kernels.wasm
package main

import (
	"flag"
	"log"
	"os"
	"path/filepath"
)

func main() {
	out := flag.String("o", "kernels.wasm", "the module to write")
	flag.Parse()
	bin := kernels().encode()
	// A temporary name, then a rename: an interrupted run never leaves a
	// half-written module behind.
	tmp, err := os.CreateTemp(filepath.Dir(*out), ".kernels-*.wasm")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := tmp.Write(bin); err != nil {
		log.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		log.Fatal(err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		log.Fatal(err)
	}
}
