package cpu

import "github.com/graft-ml/graft/core/tensor"

// External is a set of kernels that run outside Go code, which a program
// installs with UseExternal. A GOOS=js program uses it for WebAssembly
// SIMD128 kernels (wasm/simd), since the Go compiler emits no SIMD for
// wasm; core stays free of syscall/js because the caller lives outside
// core and only this interface crosses the seam. It is the browser's
// counterpart of the plugin's host kernels (hostkernels.go).
type External interface {
	// Name says what the kernels are, for Kernels.
	Name() string
	// Each method computes one operation and reports whether it did; on
	// false the caller computes it with its own kernels.

	// MatMul computes a matrix product.
	MatMul(p Product) bool
	// SoftmaxRows exponentiates rows as SoftmaxRows says.
	SoftmaxRows(s SoftmaxRows) bool
	// SoftmaxBackRows is attention's softmax backward on a block of
	// rows: with P = s.X and dP = s.Out, over the columns each row sees
	// (as for SoftmaxRows; Causal, Hi0 and Window), D = sum of P*dP in
	// float64, then dP = P * (dP - float32(D)); dP is 0 on the other
	// columns.
	SoftmaxBackRows(s SoftmaxRows) bool
	// SiLUMul sets dst = gate * sigmoid(gate) * up, as Backend.SiLUMul;
	// dst may be gate or up.
	SiLUMul(dst, gate, up []float32) bool
	// SiLUMulBackward sets dgate and dup (either nil when not wanted) as
	// Backend.SiLUMulBackward; they may alias inputs.
	SiLUMulBackward(dgate, dup, dy, gate, up []float32) bool
}

// SoftmaxRows is the softmax step of attention and cross-entropy, for
// External.SoftmaxRows: for each of Rows rows of N floats (row r of X at
// r*N, and of Out), over the columns [lo, hi) the row sees, Out = exp(X -
// max) and (max, sum of the exponentials) into Stats[2r], Stats[2r+1]
// (Stats may be nil). Without Causal every row sees [0, N); with it row r
// sees [lo, Hi0+r), lo = max(0, hi-Window) with a Window, else 0.
// Normalize then divides the exponentials by their sum and zeroes the
// columns not seen (attention's probabilities). X may be Out.
type SoftmaxRows struct {
	X, Out, Stats     []float32
	N, Rows           int
	Causal, Normalize bool
	Hi0, Window       int
}

// Product is a matrix product Dst [M, N] (+)= Alpha * op(A) * op(B) on F32
// operands, as MatMul computes it, for External.MatMul: op(A) is A [M, K],
// or its transpose stored [K, M] when TransA; op(B) is B [K, N], or its
// transpose stored [N, K] when TransB; Acc adds to Dst. The matrices are
// row-major with their rows LdDst, LdA and LdB floats apart (views of one
// attention head's columns are strided). Scratch holds at least K*N
// floats when TransB (nil otherwise) and may be overwritten. M, N and K
// are at least 1 and Dst overlaps neither operand.
type Product struct {
	Dst, A, B, Scratch  []float32
	LdDst, LdA, LdB     int
	M, N, K             int
	TransA, TransB, Acc bool
	Alpha               float32
}

// external is the installed set, nil for none; ownISA is kernelISA
// without it.
var (
	external External
	ownISA   string
)

// UseExternal makes every Backend hand the operations e implements to it,
// and Kernels name it; nil goes back to this package's own kernels. Call
// it at start-up, before any operation runs: it is not synchronized with
// running operations.
func UseExternal(e External) {
	if external == nil {
		ownISA = kernelISA
	}
	external = e
	if e != nil {
		kernelISA = e.Name()
	} else {
		kernelISA = ownISA
	}
}

// Below this many multiply-adds a product stays in Go: a call through
// syscall/js costs a microsecond or two, as much as a small product.
const externalMinWork = 4096

// externalTakes reports whether a product of this shape should be offered
// to the installed external kernels. A product with few rows of a
// transposed b stays in Go: its transpose into scratch would cost as much
// as the product, where Go's matmulNT reads b in place.
func externalTakes(m, n, k int, transB bool) bool {
	return external != nil && m*n*k >= externalMinWork && (!transB || m >= 4)
}

// externalMatMul offers an F32 product to the installed external kernels
// and reports whether they computed it.
func (c *Backend) externalMatMul(out, a []float32, w *buffer, m, n, k int, transA, transB bool, alpha float32, acc bool) bool {
	if w.dtype != tensor.F32 || !externalTakes(m, n, k, transB) {
		return false
	}
	p := Product{Dst: out, A: a, B: w.data(), LdDst: n, LdA: k, LdB: n, M: m, N: n, K: k,
		TransA: transA, TransB: transB, Acc: acc, Alpha: alpha}
	if transA {
		p.LdA = m
	}
	if transB {
		p.LdB = k
		sp := getScratch(k * n)
		defer putScratch(sp)
		p.Scratch = *sp
	}
	return external.MatMul(p)
}

// externalSmallGemm is smallGemm's offer to the external kernels, with
// smallGemm's own scratch for the transpose of b.
func externalSmallGemm(out, a strided, transA bool, b strided, transB bool, m, n, k int, alpha float32, acc bool, scratch []float32) bool {
	if !externalTakes(m, n, k, transB) || (transB && len(scratch) < k*n) {
		return false
	}
	p := Product{Dst: out.data, A: a.data, B: b.data, LdDst: out.ld, LdA: a.ld, LdB: b.ld, M: m, N: n, K: k,
		TransA: transA, TransB: transB, Acc: acc, Alpha: alpha}
	if transB {
		p.Scratch = scratch[:k*n]
	}
	return external.MatMul(p)
}

// Below this many elements an elementwise operation stays in Go.
const externalMinElems = 256

// externalSoftmax offers a SoftmaxRows step to the external kernels.
func externalSoftmax(s SoftmaxRows) bool {
	return external != nil && s.Rows*s.N >= externalMinElems && external.SoftmaxRows(s)
}

// externalSoftmaxBack offers a SoftmaxBackRows step to the external
// kernels.
func externalSoftmaxBack(s SoftmaxRows) bool {
	return external != nil && s.Rows*s.N >= externalMinElems && external.SoftmaxBackRows(s)
}

// externalSiLU offers SiLUMul (backward when dy is not nil) to the
// external kernels.
func externalSiLU(dst, dup, dy, gate, up []float32) bool {
	if external == nil || len(gate) < externalMinElems {
		return false
	}
	if dy == nil {
		return external.SiLUMul(dst, gate, up)
	}
	return external.SiLUMulBackward(dst, dup, dy, gate, up)
}
