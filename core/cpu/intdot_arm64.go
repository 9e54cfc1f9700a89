//go:build !purego

package cpu

import (
	"github.com/graft-ml/graft/core/tensor"
	"golang.org/x/sys/cpu"
)

// The NEON integer dot kernels of intdot_arm64.s. They need SDOT, the
// dot-product extension of ARMv8.2 (every Apple Silicon CPU, most recent
// Linux arm64 ones); an arm64 CPU without it keeps the portable kernels.
// Like the amd64 ones, each takes a run of weight rows per call (an
// intDotRows); none reads the data quantizeActs writes after a row's
// blocks.
func init() {
	if cpu.ARM64.HasASIMDDP {
		intDotAsm = map[tensor.DType]intDotRows{
			tensor.Q4_K: q4kQ8KDotNEON,
			tensor.Q5_K: q5kQ8KDotNEON,
			tensor.Q6_K: q6kQ8KDotNEON,
			tensor.Q8_0: q8Q80DotNEON,
			tensor.Q4_0: q4Q80DotNEON,
			tensor.Q5_0: q5Q80DotNEON,
		}
	}
}

//go:noescape
func q4kQ8KDotNEON(rows, blocks int, w *byte, stride int, act *byte, out *float32)

//go:noescape
func q5kQ8KDotNEON(rows, blocks int, w *byte, stride int, act *byte, out *float32)

//go:noescape
func q6kQ8KDotNEON(rows, blocks int, w *byte, stride int, act *byte, out *float32)

//go:noescape
func q8Q80DotNEON(rows, blocks int, w *byte, stride int, act *byte, out *float32)

//go:noescape
func q4Q80DotNEON(rows, blocks int, w *byte, stride int, act *byte, out *float32)

//go:noescape
func q5Q80DotNEON(rows, blocks int, w *byte, stride int, act *byte, out *float32)
