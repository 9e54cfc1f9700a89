package cpu

import "testing"

// BenchmarkGemmKernel measures the micro-kernel alone on panels that sit
// in L1: the ceiling the packed matrix product can reach on one core.
func BenchmarkGemmKernel(b *testing.B) {
	kernels := map[string]microKernel{"go": gemmGoKernel}
	if fastKernel != nil {
		kernels["simd"] = fastKernel
	}
	const kc = gemmKC
	a, w := make([]float32, kc*gemmAW), make([]float32, kc*gemmNR)
	c := make([]float32, gemmMR*gemmNR)
	for name, kern := range kernels {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				kern(kc, a, w, c, gemmNR, 1, true)
			}
			b.ReportMetric(2*gemmMR*gemmNR*kc*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
