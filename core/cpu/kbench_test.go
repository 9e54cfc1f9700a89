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

// BenchmarkPackRows measures packing a 1024 x 576 operand into panels of
// 12 rows (the AVX-512 kernel's), which every packed product pays once
// per operand.
func BenchmarkPackRows(b *testing.B) {
	const m, k, mr = 1024, 576, 12
	src := make([]float32, m*k)
	dst := make([]float32, m*gemmKC)
	for b.Loop() {
		for p0 := 0; p0 < k; p0 += gemmKC {
			kc := min(gemmKC, k-p0)
			for i0 := 0; i0+mr <= m; i0 += mr {
				packRows(dst[i0*kc:], src[i0*k+p0:], k, mr, mr, kc)
			}
		}
	}
	b.ReportMetric(float64(m/mr*mr*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gfloat/s")
}
