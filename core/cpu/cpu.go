// Package cpu implements backend.Backend in pure Go. It is graft's
// reference backend: every other backend is tested against it (see
// core/backend/backendtest), and it is what runs when no GPU is available,
// natively, in the browser (GOOS=js) and inside a WebAssembly plugin
// (GOOS=wasip1).
//
// Storage: an F32 buffer is a []float32 with a shape. Weights loaded in
// another dtype (F16, BF16, Q8_0, Q4_0, NF4) keep their encoded form;
// operations that read them (MatMul's b, Embedding's table, RMSNorm's
// weight) dequantize one row, or a small tile of rows, at a time into
// per-worker scratch, so a quantized model stays quantized in memory.
//
// Shapes: an operation sees a buffer as a matrix whose columns are the
// innermost dimension and whose rows are all outer dimensions folded
// together, so [B, T, C] and [B*T, C] are interchangeable and a 1-D buffer
// is a single row.
//
// Errors: Load, Write and Read return errors for bad input. The operations
// have no error result; handing them a buffer of another backend, a freed
// buffer, a non-F32 buffer where F32 is required, or operands whose shapes
// do not fit together is a programming error in the caller, and the
// operation panics with a message that names the operation and the operand.
// All such checks happen before any work is started.
//
// Work is split over goroutines by a single helper with a minimum grain, so
// small operations stay on the calling goroutine. Large ones are shared
// with the Backend's persistent worker goroutines, which start on first
// use and end by themselves once the Backend is garbage; a steady-state
// operation allocates nothing on the Go heap.
package cpu

import (
	"fmt"
	"runtime"
	"sync/atomic"

	"github.com/graft-ml/graft/core/backend"
)

// Backend runs graft's operations on the CPU. It is safe for concurrent use
// by several goroutines as long as they do not write the same buffers; an
// operation that finds the workers busy with another goroutine's runs on
// its own goroutine.
type Backend struct {
	threads int
	// pool holds the threads-1 worker goroutines; nil for one thread.
	pool *workerPool
	// tasks are the operations' reusable task structs.
	tasks taskSlots
	// recycled holds the arrays of freed buffers for Zeros to reuse.
	recycled recycler
	// splitAll makes parallel ignore its grain, so tests can drive the
	// parallel paths with problems small enough to check by brute force.
	splitAll bool
	// exactMatVec keeps the mat-vec of quantized weights in float32 (see
	// SetExactMatVec).
	exactMatVec atomic.Bool
}

var _ backend.Backend = (*Backend)(nil)

// New returns a Backend that uses runtime.GOMAXPROCS(0) goroutines for
// large operations.
func New() *Backend { return NewWithThreads(runtime.GOMAXPROCS(0)) }

// NewWithThreads returns a Backend that splits large operations over at most
// n goroutines; n < 1 means 1. The n-1 worker goroutines start with the
// first operation large enough to need them and stop once the Backend is
// no longer referenced, so dropping a Backend leaks nothing.
func NewWithThreads(n int) *Backend {
	c := &Backend{threads: max(n, 1)}
	if c.threads > 1 {
		c.pool = newWorkerPool(c.threads - 1)
		stopWorkersWhenDropped(c)
	}
	return c
}

// Threads returns the number of goroutines large operations are split over.
func (c *Backend) Threads() int { return c.threads }

// Name returns "cpu (N threads, K)", where K is Kernels(): "avx512",
// "avx2", "neon" or "go".
func (c *Backend) Name() string {
	unit := "threads"
	if c.threads == 1 {
		unit = "thread"
	}
	return fmt.Sprintf("cpu (%d %s, %s)", c.threads, unit, Kernels())
}

// Sync returns nil at once: CPU operations finish before they return.
func (c *Backend) Sync() error { return nil }
