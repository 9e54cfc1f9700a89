package abi

// Version is the ABI version this package describes. Host and plugin must
// agree on it exactly. Version 2 replaced version 1's graft_alloc, which
// cost every request a second guest call, with the reusable request
// buffer of graft_buffer.
const Version uint32 = 2

// Names of the plugin's exports and of the host's import module.
const (
	// ExportInitialize is the WASI reactor's initializer, run once after
	// instantiation: () -> ().
	ExportInitialize = "_initialize"
	// ExportVersion returns the plugin's ABI version: () -> i32.
	ExportVersion = "graft_abi_version"
	// ExportBuffer returns the guest's request buffer, grown to hold at
	// least n bytes: (i32 n) -> i64 Pack(ptr, capacity). It returns 0 when
	// n is larger than MaxMessage. The buffer stays where it is, and is
	// reused by every call, until a request needs a larger one or a call
	// drops it (see KeepBuffer).
	ExportBuffer = "graft_buffer"
	// ExportCall runs the request held in the first n bytes of the request
	// buffer: (i32 n) -> i64 Pack(ptr, len) of the response, which stays
	// valid until the next call or ExportFree.
	ExportCall = "graft_call"
	// ExportFree releases the last response of ExportCall early: () -> ().
	ExportFree = "graft_free"
	// ExportMemory is the guest's linear memory.
	ExportMemory = "memory"

	// ImportModule is the module name of the functions the host provides.
	ImportModule = "graft"
	// ImportProgress receives a msgpack Progress while a call runs:
	// (i32 ptr, i32 len) -> i32 stop (non-zero asks the guest to stop).
	ImportProgress = "progress"
	// ImportInterrupted reports whether the running call's deadline has
	// passed or it was cancelled: () -> i32 (non-zero: stop now). The guest
	// asks at its safe points (each generated token, evaluated sequence
	// and training step) and answers CodeInterrupted.
	ImportInterrupted = "interrupted"
)

// KeepBuffer is the largest request buffer a call leaves in place: the
// guest drops a larger one when the call that needed it returns (a
// model's bytes are not held for the instance's life), and the host asks
// ExportBuffer again before its next request. A buffer of at most
// KeepBuffer bytes is reused until a request needs more.
const KeepBuffer = 64 << 10

// MaxMessage bounds one request or response: 1 GiB, a quarter of wasm32's
// address space, so a message and its decoded copy still fit.
const MaxMessage = 1 << 30

// Pack joins a guest pointer and a length into the i64 result of
// ExportBuffer and ExportCall.
func Pack(ptr, n uint32) uint64 { return uint64(ptr)<<32 | uint64(n) }

// Unpack splits the result of ExportBuffer or ExportCall into a guest
// pointer and a length.
func Unpack(v uint64) (ptr, n uint32) { return uint32(v >> 32), uint32(v) }
