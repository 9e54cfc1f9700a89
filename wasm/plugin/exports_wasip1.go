//go:build wasip1

package main

import (
	"unsafe"

	"github.com/graft-ml/graft/wasm/plugin/abi"
	"github.com/graft-ml/graft/wasm/plugin/guest"
)

// pinned keeps every buffer handed to the host reachable until the host
// frees it: Go's collector does not move objects, so a reachable buffer
// stays where its pointer says.
var pinned = map[uint32][]byte{}

// state is the instance's one plugin: each wasm instance is one tenant.
var state = guest.New(hostProgress, hostInterrupted)

//go:wasmexport graft_abi_version
func abiVersion() uint32 { return abi.Version }

//go:wasmexport graft_alloc
func alloc(n uint32) uint32 {
	if n > abi.MaxMessage {
		return 0
	}
	return pin(make([]byte, max(n, 1)))
}

//go:wasmexport graft_free
func free(ptr uint32) { delete(pinned, ptr) }

// lastResponse is the pointer of the response graft_call returned last,
// released by the next call.
var lastResponse uint32

//go:wasmexport graft_call
func call(ptr, n uint32) uint64 {
	delete(pinned, lastResponse)
	var resp []byte
	if buf, ok := pinned[ptr]; !ok || int(n) > len(buf) {
		resp = guest.ErrorResponse(abi.CodeBadRequest, "graft_call: pointer %#x with %d bytes was not allocated by graft_alloc", ptr, n)
	} else {
		resp = state.Handle(buf[:n])
		delete(pinned, ptr)
	}
	lastResponse = pin(resp)
	return abi.Pack(lastResponse, uint32(len(resp)))
}

func pin(b []byte) uint32 {
	p := uint32(uintptr(unsafe.Pointer(&b[0])))
	pinned[p] = b
	return p
}

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
