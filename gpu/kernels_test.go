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
		for _, k := range []kernel{kMatMul, kEmbedding, kDecode, tile{64, 64, 16, 4, 4}.kernel(dt)} {
			if k.weight == tensor.Invalid {
				continue // the tiled product's own F32 and F16 loads
			}
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

// TestTiledKernelSources assembles the tiled product's variants: each
// binds w once, in the form its loads expect, with no conditional line
// left.
func TestTiledKernelSources(t *testing.T) {
	for dt, want := range map[tensor.DType]string{
		tensor.F32:  "wt: array<vec4<f32>>",
		tensor.F16:  "wt: array<vec2<u32>>",
		tensor.Q4_K: "wt: array<u32>",
	} {
		k := tile{128, 128, 16, 8, 8}.kernel(dt)
		src, err := k.source()
		if err != nil {
			t.Fatalf("%s: %v", k.key(), err)
		}
		if strings.Count(src, "var<storage, read_write> wt:") != 1 || !strings.Contains(src, want) {
			t.Errorf("%s: w is not bound once as %q", k.key(), want)
		}
		for _, s := range []string{"const BM: u32 = 128u;", "const TN: u32 = 8u;", "fn wload("} {
			if !strings.Contains(src, s) {
				t.Errorf("%s: no %q", k.key(), s)
			}
		}
		if strings.Contains(src, "//!") {
			t.Errorf("%s: a marker line is left in the source", k.key())
		}
	}
}

func TestPreprocess(t *testing.T) {
	src := "a\n//!if X\nx\n//!if Y\nxy\n//!else\nxny\n//!end\n//!else\nnx\n//!end\nb\n"
	for _, c := range []struct {
		flags map[string]bool
		want  string
	}{
		{map[string]bool{}, "a\nnx\nb\n"},
		{map[string]bool{"X": true}, "a\nx\nxny\nb\n"},
		{map[string]bool{"X": true, "Y": true}, "a\nx\nxy\nb\n"},
		{map[string]bool{"Y": true}, "a\nnx\nb\n"},
	} {
		got, err := preprocess(src, c.flags)
		if err != nil || got != c.want {
			t.Errorf("preprocess(%v) = %q, %v; want %q", c.flags, got, err, c.want)
		}
	}
	for _, bad := range []string{"//!if X\n", "//!end\n", "//!else\n"} {
		if _, err := preprocess(bad, nil); err == nil {
			t.Errorf("preprocess(%q) accepted unbalanced markers", bad)
		}
	}
}
