//go:build !purego

package cpu

import (
	"github.com/graft-ml/graft/core/tensor"
	"golang.org/x/sys/cpu"
)

// The generated integer dot kernels (tools/asmgen/intdot.go) need AVX2
// (vpmaddubsw and friends on YMM) and F16C (for the half scales), which
// every AVX2 CPU has.
func init() {
	if x := cpu.X86; x.HasAVX2 && x.HasFMA {
		intDotAsm = map[tensor.DType]intDotRows{
			tensor.Q4_K: q4kQ8KDotAVX2,
			tensor.Q5_K: q5kQ8KDotAVX2,
			tensor.Q6_K: q6kQ8KDotAVX2,
			tensor.Q8_0: q8Q80DotAVX2,
			tensor.Q4_0: q4Q80DotAVX2,
			tensor.Q5_0: q5Q80DotAVX2,
		}
	}
}
