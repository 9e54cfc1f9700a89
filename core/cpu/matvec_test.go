package cpu

import (
	"math"
	"testing"

	"github.com/graft-ml/graft/core/tensor"
)

// TestQuantDot checks both fused dot products of every ggml block type
// against decode-then-dot bit for bit: the portable one (which every
// platform without vector kernels runs) in dot1x4Go's and dotGo's orders,
// and, where built, the assembly one against dot, over rows of several
// blocks (and, past 256 values, several decode chunks).
func TestQuantDot(t *testing.T) {
	r := newRand(11)
	for _, dt := range tensor.QuantTypes() {
		if dt == tensor.NF4 {
			continue
		}
		for _, blocks := range []int{1, 3, 9} {
			n := blocks * dt.BlockElems()
			size, err := dt.Bytes(int64(n))
			if err != nil {
				t.Fatal(err)
			}
			src := make([]byte, size)
			if err := tensor.Encode(dt, randn(r, n, 0.3), src); err != nil {
				t.Fatal(err)
			}
			w := make([]float32, n)
			if err := tensor.Decode(dt, src, w); err != nil {
				t.Fatal(err)
			}
			x := randn(r, n, 1)
			same := func(what string, got, want float32) {
				t.Helper()
				if math.Float32bits(got) != math.Float32bits(want) {
					t.Errorf("%v, %d values: %s = %v, decode-then-dot %v", dt, n, what, got, want)
				}
			}
			want4, _, _, _ := dot1x4Go(x, w, w, w, w)
			same("quantDotGo in dot1x4Go's order", quantDotGo(dt, src, x, true), want4)
			same("quantDotGo in dotGo's order", quantDotGo(dt, src, x, false), dotGo(x, w))
			if blockDot != nil {
				if kern := blockDot(dt); kern != nil {
					same("the assembly kernel", kern(blocks, &x[0], &src[0]), dot(x, w))
				}
			}
		}
	}
}
