package cpu

import (
	"fmt"
	"testing"

	"github.com/graft-ml/graft/core/tensor"
)

func TestEmbedding(t *testing.T) {
	const vocab, dim = 11, 64
	ids := []int32{3, 0, 10, 3, 7}
	for _, dt := range []tensor.DType{tensor.F32, tensor.F16, tensor.BF16, tensor.Q8_0, tensor.Q4_0} {
		t.Run(dt.String(), func(t *testing.T) {
			c := newTestBackend(3)
			table, dec := uploadAs(t, c, dt, randn(newRand(1), vocab*dim, 1), vocab, dim)
			dst := c.Zeros(len(ids), dim)
			c.Embedding(dst, table, ids)
			want := make([]float64, 0, len(ids)*dim)
			for _, id := range ids {
				want = append(want, to64(dec[int(id)*dim:int(id+1)*dim])...)
			}
			assertClose(t, "rows", download(t, c, dst), want, 0, 0)
		})
	}
	c := New()
	mustPanic(t, "outside the table", func() { c.Embedding(c.Zeros(1, 4), c.Zeros(3, 4), []int32{3}) })
	mustPanic(t, "want [2 4]", func() { c.Embedding(c.Zeros(1, 4), c.Zeros(3, 4), []int32{0, 1}) })
}

// TestEmbeddingBackward compares the scatter-add with the finite-difference
// gradient of sum(dy * gather(table)), repeated ids included.
func TestEmbeddingBackward(t *testing.T) {
	for _, s := range []struct{ vocab, dim int }{{5, 3}, {50, 700}} {
		t.Run(fmt.Sprintf("%dx%d", s.vocab, s.dim), func(t *testing.T) {
			ids := []int32{1, 4, 1, 0, 1}
			r := newRand(2)
			tab, dyv, start := randn(r, s.vocab*s.dim, 1), randn(r, len(ids)*s.dim, 1), randn(r, s.vocab*s.dim, 1)
			tab64 := to64(tab)
			want := numGrad(func(x []float64) float64 {
				var loss float64
				for row, id := range ids {
					for j := range s.dim {
						loss += float64(dyv[row*s.dim+j]) * x[int(id)*s.dim+j]
					}
				}
				return loss
			}, tab64)
			for i := range want {
				want[i] += float64(start[i]) // accumulates into what was there
			}
			for _, threads := range threadCounts {
				c := newTestBackend(threads)
				d := upload(t, c, start, s.vocab, s.dim)
				c.EmbeddingBackward(d, upload(t, c, dyv, len(ids), s.dim), ids)
				assertClose(t, "dtable", download(t, c, d), want, 1e-5, 1e-6)
			}
		})
	}
}
