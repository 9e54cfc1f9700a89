//go:build wasip1

package main

import (
	"runtime"
	"unsafe"

	"github.com/graft-ml/graft/wasm/plugin/abi"
	"github.com/graft-ml/graft/wasm/plugin/guest"
)

// request is the request buffer of graft_buffer and graft_call, and
// response the last response; holding them in globals keeps them
// reachable, and Go's collector does not move objects, so each stays at
// the address the host was given. One buffer reused by every call saves
// the guest an allocation and the host a second guest call per request.
var request, response []byte

// responses is the buffer responses are written to, reused while it is
// small; response is a slice of it or a larger one of its own.
var responses []byte

// state is the instance's one plugin: each wasm instance is one tenant.
var state = guest.New(hostProgress, hostInterrupted)

//go:wasmexport graft_abi_version
func abiVersion() uint32 { return abi.Version }

//go:wasmexport graft_buffer
func buffer(n uint32) uint64 {
	if n > abi.MaxMessage {
		return 0
	}
	if uint32(len(request)) < n {
		// Small requests share one buffer of KeepBuffer bytes, so a
		// host rarely asks twice; a larger one is as large as asked,
		// and graft_call drops it.
		request = nil // collectable while its successor is allocated
		request = make([]byte, max(n, abi.KeepBuffer))
	}
	return abi.Pack(addr(request), uint32(len(request)))
}

//go:wasmexport graft_free
func free() { response = nil }

//go:wasmexport graft_call
func call(n uint32) uint64 {
	response = nil
	if n > uint32(len(request)) {
		response = guest.ErrorResponse(abi.CodeBadRequest, "graft_call: %d bytes, but the request buffer of graft_buffer holds %d", n, len(request))
	} else {
		response = state.HandleAppend(responses[:0], request[:n])
	}
	// The response buffer is kept for the next call while it is small
	// (a large response, an exported adapter, is its own allocation and
	// goes at graft_free or the next call).
	if cap(response) <= abi.KeepBuffer {
		responses = response
	}
	if len(request) > abi.KeepBuffer {
		request = nil
	}
	// Let the runtime's other goroutines run before returning to the
	// host. A wasm instance has one thread and no preemption: the
	// collector's mark workers run only when this goroutine yields, and
	// between calls nothing runs at all, so a collection cycle begun in a
	// call never finished and the heap, never swept, grew with every call
	// until the tenant's memory cap (TestGuestMemoryStaysBounded).
	runtime.Gosched()
	return abi.Pack(addr(response), uint32(len(response)))
}

// addr is the guest address of b's first byte (b is never empty here).
func addr(b []byte) uint32 { return uint32(uintptr(unsafe.Pointer(&b[0]))) }

//go:wasmimport graft progress
func progressImport(ptr unsafe.Pointer, n uint32) uint32

// hostProgress sends one msgpack Progress to the host and reports whether
// the host asked to stop.
func hostProgress(msg []byte) (stop bool) {
	if len(msg) == 0 {
		return false
	}
	return progressImport(unsafe.Pointer(&msg[0]), uint32(len(msg))) != 0
}

//go:wasmimport graft interrupted
func interruptedImport() uint32

// hostInterrupted reports whether the host wants the running call to end.
func hostInterrupted() bool { return interruptedImport() != 0 }
