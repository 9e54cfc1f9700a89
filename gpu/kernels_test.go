package gpu

import (
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/tensor"
)

// TestWeightKernelSources assembles every kernel that reads a weight for
// every dtype the device keeps encoded: each gets exactly one wload, the
// shared helpers its decoder includes are pasted once, and no include
// line is left for the WGSL compiler to trip on.
func TestWeightKernelSources(t *testing.T) {
	dts := append([]tensor.DType{tensor.F32, tensor.F16, tensor.BF16, tensor.NF4}, tensor.QuantTypes()...)
	for _, dt := range dts {
		if !deviceDType(dt) {
			t.Errorf("%v is not kept encoded on the device", dt)
		}
		for _, k := range []kernel{kMatMul, kEmbedding, kDecode} {
			src, err := k.withWeight(dt).source()
			if err != nil {
				t.Fatalf("%s: %v", k.withWeight(dt).key(), err)
			}
			for fn, want := range map[string]int{"fn wload(": 1, "fn wbyte(": bit(dt.Quantized()), "fn kscale(": bit(dt == tensor.Q4_K || dt == tensor.Q5_K)} {
				if got := strings.Count(src, fn); got != want {
					t.Errorf("%s: %d definitions of %q, want %d", k.withWeight(dt).key(), got, fn, want)
				}
			}
			if strings.Contains(src, includeMarker) || strings.Contains(src, weightMarker) {
				t.Errorf("%s: a marker line is left in the source", k.withWeight(dt).key())
			}
		}
	}
	if deviceDType(tensor.I32) {
		t.Error("I32 weights are kept encoded on the device")
	}
}
