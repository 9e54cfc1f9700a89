package host

import "github.com/tetratelabs/wazero/experimental"

// The guest is a Go program, and Go's wasm runtime grows its linear
// memory by the few pages each new heap span needs. wazero's default
// memory appends exactly the pages asked for, so every growth copies the
// whole memory: growing a tenant's heap from 16 to 70 MiB cost seconds of
// copying (a fifth of an Eval benchmark's time went to memmove under
// MemoryInstance.Grow). linearMemory grows its backing array
// geometrically instead, never past the tenant's cap, so the copies
// amortize to a constant per byte.

// memoryAllocator gives each instance a linearMemory.
type memoryAllocator struct{}

func (memoryAllocator) Allocate(capacity, max uint64) experimental.LinearMemory {
	return &linearMemory{buf: make([]byte, 0, capacity), max: max}
}

// linearMemory is a guest's memory: buf's length is the memory's size,
// its capacity what is already allocated, at most max bytes.
type linearMemory struct {
	buf []byte
	max uint64
}

// Reallocate returns the memory at size bytes: the same array while it
// has room (pages past the old size were never handed out, so they are
// still zero), else a new one of twice the size, or max, holding the old
// contents.
func (m *linearMemory) Reallocate(size uint64) []byte {
	if size > m.max {
		return nil
	}
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
		return m.buf
	}
	grown := make([]byte, size, min(max(size, 2*uint64(cap(m.buf))), m.max))
	copy(grown, m.buf)
	m.buf = grown
	return m.buf
}

// Free drops the memory.
func (m *linearMemory) Free() { m.buf = nil }
