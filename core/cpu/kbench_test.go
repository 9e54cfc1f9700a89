package cpu

import "testing"

// BenchmarkGemmKernel measures each micro-kernel alone on panels that sit
// in L1: the ceiling the packed matrix product can reach on one core.
func BenchmarkGemmKernel(b *testing.B) {
	for _, kern := range gemmKernels {
		const kc = gemmKC
		a, w := make([]float32, kc*kern.mr), make([]float32, kc*kern.nr)
		c := make([]float32, kern.mr*kern.nr)
		b.Run(kern.name, func(b *testing.B) {
			for b.Loop() {
				kern.tile(kc, a, w, c, kern.nr, 1, true)
			}
			b.ReportMetric(2*float64(kern.mr*kern.nr*kc)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
