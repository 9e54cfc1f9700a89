// Command plugin is graft as a sandboxed WebAssembly plugin: a WASI reactor
// (GOOS=wasip1, -buildmode=c-shared) whose //go:wasmexport functions speak
// the msgpack ABI of package abi. native/host embeds the built plugin and
// runs one isolated instance of it per tenant under wazero.
//
// Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -tags graft_hostkernels \
//		-trimpath -buildvcs=false -ldflags='-s -w' -o native/host/plugin.wasm ./wasm/plugin
//
// (make wasm). The plugin holds one base model and its adapters, runs on
// the CPU backend on one thread, and reads no files: the host hands it the
// model's and adapters' bytes. The graft_hostkernels tag makes the backend
// import the host's kernels (core/cpu's HostKernelModule) and use them when
// the host runs them; without it the plugin needs no host module but
// graft's own.
package main

// main is not run in a reactor: the host calls _initialize, which runs the
// package initializers, and then the exports.
func main() {}
