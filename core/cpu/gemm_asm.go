//go:build !purego && (amd64 || arm64)

package cpu

// The assembly micro-kernels (gemm_amd64.s, kernels_arm64.s) take raw
// pointers; asmKernel's wrapper checks every bound the kernel will touch
// first, so a driver bug panics in Go instead of reading or writing past a
// slice.
func asmKernel(name string, mr, nr int, fn func(kc int, a, b, c *float32, ldc int, alpha float32, acc bool)) *gemmKernel {
	return &gemmKernel{name: name, mr: mr, nr: nr, tile: func(kc int, a, b, c []float32, ldc int, alpha float32, acc bool) {
		_ = a[kc*mr-1]
		_ = b[kc*nr-1]
		_ = c[(mr-1)*ldc+nr-1]
		fn(kc, &a[0], &b[0], &c[0], ldc, alpha, acc)
	}}
}
