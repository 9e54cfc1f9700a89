//go:build !wasip1 || !graft_hostkernels

package cpu

import "github.com/graft-ml/graft/core/backend"

// hostMatMul reports whether the host computed the product; only a wasip1
// guest has a host to ask (hostkernels_wasip1.go).
func hostMatMul(out, a []float32, w *buffer, m, n, k int, transA, transB bool, alpha float32, acc bool) bool {
	return false
}

// hostAttention reports whether the host ran the attention operation code
// on the operands bufs; only a wasip1 guest has a host to ask.
func hostAttention(code int, s attnShape, bufs ...[]float32) bool { return false }

// hostBufs reports whether the host ran the tensor operation code on the
// buffers bufs; only a wasip1 guest has a host to ask.
func (c *Backend) hostBufs(code int, bufs ...backend.Buffer) bool { return false }

// hostOp is hostBufs with slice operands and parameter words; value is
// the operation's value (CrossEntropy's loss).
func (c *Backend) hostOp(code int, bufs []backend.Buffer, s0, s1 hostSlice, params ...uint32) (value float64, ok bool) {
	return 0, false
}
