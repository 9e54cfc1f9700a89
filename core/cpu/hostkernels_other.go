//go:build !wasip1 || !graft_hostkernels

package cpu

// hostMatMul reports whether the host computed the product; only a wasip1
// guest has a host to ask (hostkernels_wasip1.go).
func hostMatMul(out, a []float32, w *buffer, m, n, k int, transA, transB bool, alpha float32, acc bool) bool {
	return false
}

// hostAttention reports whether the host ran the attention operation code
// on the operands bufs; only a wasip1 guest has a host to ask.
func hostAttention(code int, s attnShape, bufs ...[]float32) bool { return false }
