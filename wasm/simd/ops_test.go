//go:build js && wasm

package simd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/cpu"
)

// The elementwise kernels and attention, through core/cpu's backend with
// the module installed and without (the portable Go kernels). They agree
// bit for bit: the kernels compute in the portable kernels' float32 (and,
// for SiLU's sigmoid, float64) operations, in their order, and neither
// side fuses a multiply with an add.

// compare runs op on a fresh backend with the kernels installed and with
// the portable Go kernels, and checks that every output agrees within
// tol relative to the output's largest magnitude (and to 1); 0 asks for
// the same bits (NaN where NaN).
func compare(t *testing.T, name string, tol float64, op func(c *cpu.Backend) [][]float32) *counting {
	t.Helper()
	cnt := &counting{Kernels: kernels(t)}
	cpu.UseExternal(cnt)
	got := op(cpu.NewWithThreads(1))
	cpu.UseExternal(nil)
	want := op(cpu.NewWithThreads(1))
	for o := range want {
		var scale float64 = 1
		for _, v := range want[o] {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		for i, w := range want[o] {
			g := got[o][i]
			same := math.Float32bits(g) == math.Float32bits(w) || (math.IsNaN(float64(g)) && math.IsNaN(float64(w)))
			if tol == 0 && !same || math.IsNaN(float64(w)) != math.IsNaN(float64(g)) || math.Abs(float64(g-w)) > tol*scale {
				t.Errorf("%s: output %d, element %d: %g with the SIMD128 kernels, %g with Go's", name, o, i, g, w)
				break
			}
		}
	}
	return cnt
}

func upload(t *testing.T, c *cpu.Backend, x []float32, shape ...int) backend.Buffer {
	t.Helper()
	b := c.Zeros(shape...)
	if err := c.Write(b, 0, x); err != nil {
		t.Fatal(err)
	}
	return b
}

func download(t *testing.T, c *cpu.Backend, b backend.Buffer, n int) []float32 {
	t.Helper()
	out := make([]float32, n)
	if err := c.Read(b, 0, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSiLU(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{256, 257, 1031} {
		gate, up, dy := randn(r, n), randn(r, n), randn(r, n)
		for i := range gate {
			gate[i] *= 8
		}
		gate[0], gate[1], gate[2] = -100, 100, float32(math.NaN())
		cnt := compare(t, fmt.Sprintf("SiLUMul/%d", n), 0, func(c *cpu.Backend) [][]float32 {
			g, u, d := upload(t, c, gate, n), upload(t, c, up, n), c.Zeros(n)
			c.SiLUMul(d, g, u)
			return [][]float32{download(t, c, d, n)}
		})
		for _, which := range []string{"both", "dgate", "dup", "aliased"} {
			cnt2 := compare(t, fmt.Sprintf("SiLUMulBackward/%d/%s", n, which), 0, func(c *cpu.Backend) [][]float32 {
				g, u, d := upload(t, c, gate, n), upload(t, c, up, n), upload(t, c, dy, n)
				var dg, du backend.Buffer
				switch which {
				case "both":
					dg, du = c.Zeros(n), c.Zeros(n)
				case "dgate":
					dg = c.Zeros(n)
				case "dup":
					du = c.Zeros(n)
				case "aliased": // over the inputs, as the model may
					dg, du = g, u
				}
				c.SiLUMulBackward(dg, du, d, g, u)
				var out [][]float32
				for _, b := range []backend.Buffer{dg, du} {
					if b != nil {
						out = append(out, download(t, c, b, n))
					}
				}
				return out
			})
			cnt.silu += cnt2.silu
		}
		if cnt.silu != 5 {
			t.Errorf("n=%d: %d of 5 SiLU operations reached the module", n, cnt.silu)
		}
	}
	// Below the hand-off size, and a lone tail: straight to the kernel.
	k := kernels(t)
	for _, n := range []int{1, 3, 6} {
		gate, up := randn(r, n), randn(r, n)
		got := make([]float32, n)
		if !k.SiLUMul(got, gate, up) {
			t.Fatal("declined")
		}
		for i := range got {
			g := float64(gate[i])
			want := g / (1 + math.Exp(-g)) * float64(up[i])
			if math.Abs(float64(got[i])-want) > 1e-6*(1+math.Abs(want)) {
				t.Errorf("n=%d: silu element %d = %g, want %g", n, i, got[i], want)
			}
		}
	}
}

func TestCrossEntropy(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, s := range [][2]int{{9, 37}, {16, 512}, {3, 101}} {
		rows, vocab := s[0], s[1]
		logits := randn(r, rows*vocab)
		for i := range logits {
			logits[i] *= 4
		}
		targets := make([]int32, rows)
		weights := make([]float32, rows)
		for i := range targets {
			targets[i] = int32(r.IntN(vocab))
			weights[i] = float32(i % 3)
		}
		targets[0] = -100 // ignored: weight 0
		for _, mode := range []string{"grad", "in place", "loss only"} {
			name := fmt.Sprintf("%dx%d/%s", rows, vocab, mode)
			var losses [2]float64
			run := 0
			cnt := compare(t, name, 0, func(c *cpu.Backend) [][]float32 {
				x := upload(t, c, logits, rows, vocab)
				var dl backend.Buffer
				switch mode {
				case "grad":
					dl = c.Zeros(rows, vocab)
				case "in place":
					dl = x
				}
				losses[run] = c.CrossEntropy(dl, x, targets, weights, 0.5)
				run++
				if dl == nil {
					return nil
				}
				return [][]float32{download(t, c, dl, rows*vocab)}
			})
			if losses[0] != losses[1] {
				t.Errorf("%s: loss %v with the SIMD128 kernels, %v with Go's", name, losses[0], losses[1])
			}
			if cnt.softmax != 1 {
				t.Errorf("%s: %d calls to softmaxRows, want 1", name, cnt.softmax)
			}
		}
	}
}

func TestAttention(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, p := range []backend.Attention{
		{Batch: 2, SeqQ: 64, SeqK: 64, Heads: 4, KVHeads: 2, HeadDim: 8},
		{Batch: 1, SeqQ: 70, SeqK: 70, Heads: 2, KVHeads: 2, HeadDim: 12, Window: 20},
		{Batch: 1, SeqQ: 17, SeqK: 29, Heads: 3, KVHeads: 1, HeadDim: 16}, // 12 prefix keys
	} {
		p.Scale = float32(1 / math.Sqrt(float64(p.HeadDim)))
		nq, nk := p.Batch*p.SeqQ*p.Heads*p.HeadDim, p.Batch*p.SeqK*p.KVHeads*p.HeadDim
		q, k, v, dy := randn(r, nq), randn(r, nk), randn(r, nk), randn(r, nq)
		cnt := compare(t, fmt.Sprintf("%+v", p), 0, func(c *cpu.Backend) [][]float32 {
			qb := upload(t, c, q, p.Batch*p.SeqQ, p.Heads*p.HeadDim)
			kb := upload(t, c, k, p.Batch*p.SeqK, p.KVHeads*p.HeadDim)
			vb := upload(t, c, v, p.Batch*p.SeqK, p.KVHeads*p.HeadDim)
			dyb := upload(t, c, dy, p.Batch*p.SeqQ, p.Heads*p.HeadDim)
			out := c.Zeros(p.Batch*p.SeqQ, p.Heads*p.HeadDim)
			c.Attention(out, qb, kb, vb, p)
			dq, dk, dv := c.Zeros(p.Batch*p.SeqQ, p.Heads*p.HeadDim), c.Zeros(p.Batch*p.SeqK, p.KVHeads*p.HeadDim), c.Zeros(p.Batch*p.SeqK, p.KVHeads*p.HeadDim)
			c.AttentionBackward(dq, dk, dv, dyb, qb, kb, vb, p)
			return [][]float32{download(t, c, out, nq), download(t, c, dq, nq), download(t, c, dk, nk), download(t, c, dv, nk)}
		})
		if cnt.softmax == 0 || cnt.calls == 0 {
			t.Errorf("%+v: %d softmax and %d product calls reached the module", p, cnt.softmax, cnt.calls)
		}
	}
}
