package cpu

import "sync/atomic"

// An operation hands its arguments to the workers as a task struct. Passed
// to parallel, the struct escapes to the heap (the workers read it through
// the pool), so one built on the stack would be allocated on every call.
// Instead each Backend keeps one struct of every kind in a taskSlot and
// operations fill it in; only a second goroutine running the same kind of
// operation on the same Backend at the same moment gets a fresh one.

// taskSlot holds one reusable task struct.
type taskSlot[T any] struct {
	busy atomic.Bool
	t    T
}

// get returns the slot's struct, or a new one while the slot is in use.
func (s *taskSlot[T]) get() *T {
	if s.busy.CompareAndSwap(false, true) {
		return &s.t
	}
	return new(T)
}

// put zeroes t, so that the Backend keeps no slices of freed buffers
// alive, and frees the slot when t is its struct.
func (s *taskSlot[T]) put(t *T) {
	var zero T
	*t = zero
	if t == &s.t {
		s.busy.Store(false)
	}
}

// runTask runs args as a task with parallel, in the struct of slot s.
func runTask[T any, P interface {
	*T
	task
}](c *Backend, s *taskSlot[T], n, grain int, args T) {
	t := s.get()
	*t = args
	defer s.put(t)
	c.parallel(n, grain, P(t))
}

// taskSlots is a Backend's task struct of each operation.
type taskSlots struct {
	scale         taskSlot[scaleTask]
	broadcast     taskSlot[broadcastTask]
	silu          taskSlot[siluTask]
	siluBack      taskSlot[siluBackTask]
	gelu          taskSlot[geluTask]
	geluBack      taskSlot[geluBackTask]
	embedding     taskSlot[embeddingTask]
	embeddingBack taskSlot[embeddingBackTask]
	rmsNorm       taskSlot[rmsNormTask]
	rmsNormBack   taskSlot[rmsNormBackTask]
	rope          taskSlot[ropeTask]
	softmax       taskSlot[softmaxTask]
	crossEntropy  taskSlot[crossEntropyTask]
	attention     taskSlot[attentionTask]
	attnBack      taskSlot[attnBackTask]
	sumSquares    taskSlot[sumSquaresTask]
	adamW         taskSlot[adamWTask]
	transpose     taskSlot[transposeTask]
	matmulNT      taskSlot[matmulNTTask]
	matVecInt     taskSlot[matVecIntTask]
	matmulNN      taskSlot[matmulNNTask]
	gemm          taskSlot[gemmJob]
	attnBlock     taskSlot[attnBlockTask]
}
