package abi

// Version is the ABI version this package describes. Host and plugin must
// agree on it exactly.
const Version uint32 = 1

// Names of the plugin's exports and of the host's import module.
const (
	// ExportInitialize is the WASI reactor's initializer, run once after
	// instantiation: () -> ().
	ExportInitialize = "_initialize"
	// ExportVersion returns the plugin's ABI version: () -> i32.
	ExportVersion = "graft_abi_version"
	// ExportAlloc reserves n bytes of guest memory: (i32 n) -> i32 ptr.
	// It returns 0 when n is larger than MaxMessage.
	ExportAlloc = "graft_alloc"
	// ExportFree releases a pointer from ExportAlloc, or the last
	// response of ExportCall, early: (i32 ptr) -> ().
	ExportFree = "graft_free"
	// ExportCall runs one request and releases its buffer:
	// (i32 ptr, i32 len) -> i64 Pack(ptr, len) of the response, which
	// stays valid until the next call or its ExportFree.
	ExportCall = "graft_call"
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

// MaxMessage bounds one request or response: 1 GiB, a quarter of wasm32's
// address space, so a message and its decoded copy still fit.
const MaxMessage = 1 << 30

// Pack joins a guest pointer and a length into graft_call's result.
func Pack(ptr, n uint32) uint64 { return uint64(ptr)<<32 | uint64(n) }

// Unpack splits graft_call's result into a guest pointer and a length.
func Unpack(v uint64) (ptr, n uint32) { return uint32(v >> 32), uint32(v) }
