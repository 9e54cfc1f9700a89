package cpu

import (
	"fmt"
	"math"
	"testing"
)

func TestElementwise(t *testing.T) {
	for _, threads := range threadCounts {
		c := newTestBackend(threads)
		for _, n := range []int{1, 7, 1000, 70001} {
			t.Run(fmt.Sprintf("%dthreads/n=%d", threads, n), func(t *testing.T) {
				r := newRand(uint64(n))
				av, bv := randn(r, n, 1), randn(r, n, 1)
				a, b := upload(t, c, av, n), upload(t, c, bv, n)
				want := func(f func(x, y float64) float64) []float64 {
					out := make([]float64, n)
					for i := range out {
						out[i] = f(float64(av[i]), float64(bv[i]))
					}
					return out
				}
				d := c.Zeros(n)
				c.Add(d, a, b)
				assertClose(t, "Add", download(t, c, d), want(func(x, y float64) float64 { return x + y }), 1e-6, 1e-7)
				c.Scale(d, a, 1.5)
				assertClose(t, "Scale", download(t, c, d), want(func(x, y float64) float64 { return 1.5 * x }), 1e-6, 0)
				c.AddScaled(d, b, -0.5)
				assertClose(t, "AddScaled", download(t, c, d), want(func(x, y float64) float64 { return 1.5*x - 0.5*y }), 1e-6, 1e-7)
				c.Mul(d, a, b)
				assertClose(t, "Mul", download(t, c, d), want(func(x, y float64) float64 { return x * y }), 1e-6, 0)
				c.Copy(d, b)
				assertClose(t, "Copy", download(t, c, d), want(func(x, y float64) float64 { return y }), 0, 0)
				c.SiLUMul(d, a, b)
				assertClose(t, "SiLUMul", download(t, c, d), want(func(x, y float64) float64 { return x / (1 + math.Exp(-x)) * y }), 1e-6, 1e-7)
				// dst aliasing an input.
				c.Add(a, a, b)
				assertClose(t, "Add in place", download(t, c, a), want(func(x, y float64) float64 { return x + y }), 1e-6, 1e-7)
			})
		}
	}
}

func TestMulBroadcast(t *testing.T) {
	c := newTestBackend(3)
	for _, s := range []struct{ rows, cols int }{{3, 5}, {4, 4}, {1, 6}, {300, 200}} {
		t.Run(fmt.Sprintf("%dx%d", s.rows, s.cols), func(t *testing.T) {
			r := newRand(7)
			av := randn(r, s.rows*s.cols, 1)
			rowv, colv := randn(r, s.cols, 1), randn(r, s.rows, 1)
			a := upload(t, c, av, s.rows, s.cols)
			d := c.Zeros(s.rows, s.cols)
			wantRow, wantCol := make([]float64, len(av)), make([]float64, len(av))
			for i := range s.rows {
				for j := range s.cols {
					wantRow[i*s.cols+j] = float64(av[i*s.cols+j]) * float64(rowv[j])
					wantCol[i*s.cols+j] = float64(av[i*s.cols+j]) * float64(colv[i])
				}
			}
			c.Mul(d, a, upload(t, c, rowv, s.cols))
			assertClose(t, "row", download(t, c, d), wantRow, 1e-6, 0)
			c.Mul(d, a, upload(t, c, colv, s.rows, 1))
			assertClose(t, "column [rows 1]", download(t, c, d), wantCol, 1e-6, 0)
			if s.rows != s.cols && s.rows != 1 {
				c.Mul(d, a, upload(t, c, colv, s.rows))
				assertClose(t, "column [rows]", download(t, c, d), wantCol, 1e-6, 0)
			}
		})
	}
	mustPanic(t, "broadcasts over neither", func() { c.Mul(c.Zeros(3, 5), c.Zeros(3, 5), c.Zeros(4)) })
}

func TestSiLUMulBackward(t *testing.T) {
	const n = 37
	r := newRand(3)
	gv, uv, dyv := randn(r, n, 2), randn(r, n, 1), randn(r, n, 1)
	silu := func(x float64) float64 { return x / (1 + math.Exp(-x)) }
	g64, u64 := to64(gv), to64(uv)
	forward := func() float64 {
		y := make([]float64, n)
		for i := range y {
			y[i] = silu(g64[i]) * u64[i]
		}
		return weighted(dyv, y)
	}
	wantG := numGrad(func([]float64) float64 { return forward() }, g64)
	wantU := numGrad(func([]float64) float64 { return forward() }, u64)
	for _, threads := range threadCounts {
		c := newTestBackend(threads)
		dg, du := upload(t, c, randn(r, n, 1), n), upload(t, c, randn(r, n, 1), n) // overwritten
		c.SiLUMulBackward(dg, du, upload(t, c, dyv, n), upload(t, c, gv, n), upload(t, c, uv, n))
		assertClose(t, "dgate", download(t, c, dg), wantG, 1e-5, 1e-6)
		assertClose(t, "dup", download(t, c, du), wantU, 1e-5, 1e-6)
		c.SiLUMulBackward(nil, du, upload(t, c, dyv, n), upload(t, c, gv, n), upload(t, c, uv, n))
		assertClose(t, "dup alone", download(t, c, du), wantU, 1e-5, 1e-6)
	}
}
