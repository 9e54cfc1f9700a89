//go:build goexperiment.simd && amd64

package cpu

import "simd/archsimd"

// The AVX2+FMA micro-kernel, built with GOEXPERIMENT=simd. On CPUs without
// AVX2 and FMA fastKernel stays nil and MatMul keeps the portable loops.

func init() {
	if archsimd.X86.AVX2() && archsimd.X86.FMA() {
		fastKernel = gemmAVX2Kernel
	}
}

// gemmAVX2Kernel is a microKernel: a gemmMR x 16 tile held in 8-wide
// accumulators; each step of k is two loads of b and one broadcast of a per
// row. Eight accumulators leave room for the two b vectors and the
// broadcasts in the 15 YMM registers Go allocates (X15 is its zero
// register). Six rows, eight rows of AVX-512 vectors, and a panel of a that
// stores each value twice (so no broadcast is read twice) all measured
// slower: Go's register allocator keeps every load of an iteration live at
// once and spills.
func gemmAVX2Kernel(kc int, a, b, c []float32, ldc int, alpha float32, acc bool) {
	var (
		c00, c01 archsimd.Float32x8
		c10, c11 archsimd.Float32x8
		c20, c21 archsimd.Float32x8
		c30, c31 archsimd.Float32x8
	)
	a, b = a[:kc*gemmAW], b[:kc*gemmNR]
	for len(a) >= gemmAW && len(b) >= gemmNR {
		b0 := archsimd.LoadFloat32x8Slice(b[0:8])
		b1 := archsimd.LoadFloat32x8Slice(b[8:16])
		ap := a[:gemmAW]
		c00 = archsimd.BroadcastFloat32x8(ap[0]).MulAdd(b0, c00)
		c01 = archsimd.BroadcastFloat32x8(ap[0]).MulAdd(b1, c01)
		c10 = archsimd.BroadcastFloat32x8(ap[1]).MulAdd(b0, c10)
		c11 = archsimd.BroadcastFloat32x8(ap[1]).MulAdd(b1, c11)
		c20 = archsimd.BroadcastFloat32x8(ap[2]).MulAdd(b0, c20)
		c21 = archsimd.BroadcastFloat32x8(ap[2]).MulAdd(b1, c21)
		c30 = archsimd.BroadcastFloat32x8(ap[3]).MulAdd(b0, c30)
		c31 = archsimd.BroadcastFloat32x8(ap[3]).MulAdd(b1, c31)
		a, b = a[gemmAW:], b[gemmNR:]
	}
	av := archsimd.BroadcastFloat32x8(alpha)
	c = c[:(gemmMR-1)*ldc+gemmNR]
	storeRow16(c[:gemmNR], c00, c01, av, acc)
	storeRow16(c[1*ldc:1*ldc+gemmNR], c10, c11, av, acc)
	storeRow16(c[2*ldc:2*ldc+gemmNR], c20, c21, av, acc)
	storeRow16(c[3*ldc:3*ldc+gemmNR], c30, c31, av, acc)
}

// storeRow16 writes (or adds) alpha times two accumulators to 16 floats.
func storeRow16(dst []float32, s0, s1, alpha archsimd.Float32x8, acc bool) {
	if acc {
		s0 = s0.MulAdd(alpha, archsimd.LoadFloat32x8Slice(dst[0:8]))
		s1 = s1.MulAdd(alpha, archsimd.LoadFloat32x8Slice(dst[8:16]))
	} else {
		s0 = s0.Mul(alpha)
		s1 = s1.Mul(alpha)
	}
	s0.StoreSlice(dst[0:8])
	s1.StoreSlice(dst[8:16])
}
