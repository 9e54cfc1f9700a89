//go:build !purego

package cpu

import (
	"github.com/graft-ml/graft/core/tensor"
	"golang.org/x/sys/cpu"
)

//go:generate sh -c "cd ../../tools/asmgen && go run . -out ../../core/cpu/gemm_amd64.s -stubs ../../core/cpu/gemm_stubs_amd64.go -pkg cpu"

func init() {
	x := cpu.X86
	if !x.HasAVX2 || !x.HasFMA {
		return
	}
	dot, dot1x4, axpy, axpy4 = dotAVX, dot1x4AVX, axpyAVX, axpy4AVX
	simdDots = true
	expShift, sigmoids = expShiftAVX, sigmoidsAVX
	maxOf = maxAVX
	decodeFast = decodeAVX // F16C comes with every AVX2 CPU
	blockDot = func(dt tensor.DType) blockDotKernel { return blockDots[dt] }
	pack8 = pack8AVX
	avx2 := asmKernel("avx2-6x16", 6, 16, gemmAVX2x6x16)
	thin := asmKernel("avx2-12x8", 12, 8, gemmAVX2x12x8)
	gemmKernels = append(gemmKernels, avx2, thin)
	fastKernel, narrowKernel, thinKernel, kernelISA = avx2, avx2, thin, "avx2"
	if x.HasAVX512F && x.HasAVX512DQ {
		k12 := asmKernel("avx512-12x32", 12, 32, gemmAVX512x12x32)
		gemmKernels = append(gemmKernels, k12)
		fastKernel, kernelISA = k12, "avx512"
	}
}
