package cpu

import (
	"fmt"
	"math"
	"testing"

	"github.com/nlpodyssey/spago/ag"
)

// refGELUTanh is GELU's tanh form written plainly in float64.
func refGELUTanh(x float64) float64 {
	return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
}

func TestGELUTanhMul(t *testing.T) {
	const n = 41
	r := newRand(11)
	gv, uv := randn(r, n, 3), randn(r, n, 1)
	gv[0], gv[1], gv[2] = 0, -12, 12 // zero and both tails
	want := make([]float64, n)
	for i := range want {
		want[i] = refGELUTanh(float64(gv[i])) * float64(uv[i])
	}
	for _, threads := range threadCounts {
		c := newTestBackend(threads)
		dst := c.Zeros(n)
		c.GELUTanhMul(dst, upload(t, c, gv, n), upload(t, c, uv, n))
		assertClose(t, "dst", download(t, c, dst), want, 1e-6, 1e-7)
		// dst may be the gate.
		g := upload(t, c, gv, n)
		c.GELUTanhMul(g, g, upload(t, c, uv, n))
		assertClose(t, "in place", download(t, c, g), want, 1e-6, 1e-7)
	}
}

// TestGELUTanhMulBackward checks the backward against finite differences
// of the float64 reference.
func TestGELUTanhMulBackward(t *testing.T) {
	const n = 37
	r := newRand(12)
	gv, uv, dyv := randn(r, n, 2), randn(r, n, 1), randn(r, n, 1)
	g64, u64 := to64(gv), to64(uv)
	forward := func() float64 {
		y := make([]float64, n)
		for i := range y {
			y[i] = refGELUTanh(g64[i]) * u64[i]
		}
		return weighted(dyv, y)
	}
	wantG := numGrad(func([]float64) float64 { return forward() }, g64)
	wantU := numGrad(func([]float64) float64 { return forward() }, u64)
	for _, threads := range threadCounts {
		c := newTestBackend(threads)
		dg, du := upload(t, c, randn(r, n, 1), n), upload(t, c, randn(r, n, 1), n) // overwritten
		c.GELUTanhMulBackward(dg, du, upload(t, c, dyv, n), upload(t, c, gv, n), upload(t, c, uv, n))
		assertClose(t, "dgate", download(t, c, dg), wantG, 1e-5, 1e-6)
		assertClose(t, "dup", download(t, c, du), wantU, 1e-5, 1e-6)
		c.GELUTanhMulBackward(nil, du, upload(t, c, dyv, n), upload(t, c, gv, n), upload(t, c, uv, n))
		assertClose(t, "dup alone", download(t, c, du), wantU, 1e-5, 1e-6)
		c.GELUTanhMulBackward(dg, nil, upload(t, c, dyv, n), upload(t, c, gv, n), upload(t, c, uv, n))
		assertClose(t, "dgate alone", download(t, c, dg), wantG, 1e-5, 1e-6)
	}
}

// TestSpagoGELUTanhMulBackward checks the backward against spaGO's GELU,
// which is the same tanh form.
func TestSpagoGELUTanhMulBackward(t *testing.T) {
	const rows, cols = 6, 9
	for _, threads := range threadCounts {
		c := newTestBackend(threads)
		t.Run(fmt.Sprintf("t%d", threads), func(t *testing.T) {
			r := newRand(510)
			gVals, uVals, dyVals := randn(r, rows*cols, 3), randn(r, rows*cols, 1), randn(r, rows*cols, 1)
			gate, up, dy := upload(t, c, gVals, rows, cols), upload(t, c, uVals, rows, cols), upload(t, c, dyVals, rows, cols)
			y := c.Zeros(rows, cols)
			c.GELUTanhMul(y, gate, up)

			G, U := sgLeaf(to64(gVals), rows, cols), sgLeaf(to64(uVals), rows, cols)
			Y := ag.Prod(ag.GELU(G), U)
			checkSpago(t, "y", download(t, c, y), sgValue(Y))
			sgBackward(t, sgDotLoss(Y, dyVals))

			dgate, dup := nanFilled(t, c, rows, cols), nanFilled(t, c, rows, cols)
			c.GELUTanhMulBackward(dgate, dup, dy, gate, up)
			checkSpago(t, "dgate", download(t, c, dgate), sgGrad(G))
			checkSpago(t, "dup", download(t, c, dup), sgGrad(U))
		})
	}
}
