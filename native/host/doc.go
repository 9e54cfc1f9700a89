// Package host runs graft's WebAssembly plugin (wasm/plugin) inside any Go
// program, one sandboxed instance per tenant, under wazero.
//
// New compiles the embedded plugin once (through wazero's compilation
// cache, on disk when Options.CacheDir is set) and every NewInstance gets
// its own isolated module: its own linear memory, capped at
// Options.MemoryLimitMB; no file system (WASI without preopens); no
// network; no environment; a fake clock unless Options.RealClock; and a
// fixed random source, so the same requests give the same answers. The
// guest's model and adapters reach it as bytes, through the msgpack
// messages of package abi.
//
// Every call runs under a deadline (the context's, or Options.Timeout):
// past it the guest is stopped wherever it is and its instance closed,
// while the host and the other instances keep serving. An instance that
// runs out of memory or crashes is closed the same way; create a new one
// to continue. To stop the guest anywhere, the host instruments the plugin
// with a stop flag checked at every loop iteration (stop.go), a load and a
// branch each; Options.Cooperative drops the checks for deadlines met at
// the guest's safe points, which keep the instance.
//
// The guest's heavy kernels (matrix products, attention) run on the host
// (kernels.go): the guest calls them with offsets into its own memory, the
// host checks every range and runs core/cpu's native kernels on views of
// it, on at most Options.Threads threads per instance. Options.GuestKernels
// keeps them in the guest.
//
// An Instance runs one call at a time (the guest is single-threaded), and
// Close waits for the call in flight; separate instances run in parallel.
package host
