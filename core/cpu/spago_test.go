package cpu

// These tests check every backward of the backend against the reverse-mode
// autograd of spaGO (github.com/nlpodyssey/spago), a Go machine-learning
// library written independently of graft. Each operation is rebuilt from
// spaGO primitives in float64 (matrix products, masking, softmax, ...), the
// scalar sum(dy * y) is backpropagated, and the gradients spaGO finds for the
// inputs are compared with what the backend's backward computes from dy.
// The finite-difference tests beside each operation check the same things
// numerically; this oracle is exact to float64 and shares no code or
// derivation with the backend.
//
// Inputs are float32 values that both sides see exactly. The backend
// computes in float32 (with some float64 sums), so results agree to about
// 1e-6 relative; the tolerance is 1e-4 relative plus 1e-5 of the largest
// expected magnitude, which absorbs cancellation in near-zero entries.

import (
	"fmt"
	"math"
	"testing"

	"github.com/nlpodyssey/spago/ag"
	"github.com/nlpodyssey/spago/mat"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/tensor"
)

const (
	spagoRTol = 1e-4
	spagoATol = 1e-5 // times the largest expected magnitude
)

// sgLeaf is a spaGO matrix of the given values that collects a gradient.
func sgLeaf(vals []float64, rows, cols int) *mat.Dense[float64] {
	return mat.NewDense[float64](mat.WithShape(rows, cols), mat.WithBacking(append([]float64(nil), vals...)), mat.WithGrad(true))
}

// sgConst is a spaGO matrix that takes no part in differentiation.
func sgConst(vals []float64, rows, cols int) *mat.Dense[float64] {
	return mat.NewDense[float64](mat.WithShape(rows, cols), mat.WithBacking(append([]float64(nil), vals...)))
}

func sgScalar(v float64) *mat.Dense[float64] { return mat.Scalar(v) }

// sgDotLoss returns sum(y * dy): backpropagating it from 1 hands dy to y,
// so the input gradients spaGO finds are the vector-Jacobian products the
// backend's backward computes. (spaGO's ReduceSum and ReduceMean return a
// column-shaped gradient whatever their input's shape, so they are used
// on column vectors only; Dot keeps the shape.)
func sgDotLoss(y mat.Tensor, dy []float32) mat.Tensor {
	s := y.Value().Shape()
	return ag.Dot(y, sgConst(to64(dy), s[0], s[1]))
}

// sgBackward backpropagates the sum of the scalar losses.
func sgBackward(t *testing.T, losses ...mat.Tensor) {
	t.Helper()
	if err := ag.Backward(ag.Sum(losses...)); err != nil {
		t.Fatalf("spago backward: %v", err)
	}
}

// sgGrad returns the gradient accumulated in x (zeros when none reached it).
func sgGrad(x *mat.Dense[float64]) []float64 {
	if !x.HasGrad() {
		return make([]float64, x.Size())
	}
	return x.Grad().Data().F64()
}

func sgValue(x mat.Tensor) []float64 { return x.Value().Data().F64() }

// plus returns a + b elementwise: the expected content of a buffer that
// held a and had b accumulated into it.
func plus(a []float32, b []float64) []float64 {
	out := make([]float64, len(b))
	for i := range b {
		out[i] = float64(a[i]) + b[i]
	}
	return out
}

func scaled(x []float64, s float64) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = v * s
	}
	return out
}

func checkSpago(t *testing.T, what string, got []float32, want []float64) {
	t.Helper()
	assertClose(t, what, got, want, spagoRTol, spagoATol*maxAbs(want))
}

// nanFilled returns an F32 buffer full of NaN, to show that an operation
// documented to overwrite its output does not read it.
func nanFilled(t *testing.T, c *Backend, shape ...int) backend.Buffer {
	t.Helper()
	n := 1
	for _, d := range shape {
		n *= d
	}
	vals := make([]float32, n)
	for i := range vals {
		vals[i] = float32(math.NaN())
	}
	return upload(t, c, vals, shape...)
}

// matMulGrads computes the gradients of y = alpha op(a) op(b) with the
// backend's own MatMul, the way the model's backward does, accumulating
// them into da and db: d op(a) = dy op(b)^T and d op(b) = op(a)^T dy, each
// rearranged so that no operand needs an explicit transpose and b is only
// ever the second operand of da's product (it may be a quantized weight).
func matMulGrads(c *Backend, da, db, dy, a, b backend.Buffer, f backend.MatMul) {
	acc := backend.MatMul{Accumulate: true, Alpha: f.Alpha}
	flags := func(ta, tb bool) backend.MatMul { m := acc; m.TransA, m.TransB = ta, tb; return m }
	switch {
	case !f.TransA: // da [M,K] = dy [M,N] op(b)^T
		c.MatMul(da, dy, b, flags(false, !f.TransB))
	case !f.TransB: // da [K,M] = b [K,N] dy^T
		c.MatMul(da, b, dy, flags(false, true))
	default: // da [K,M] = b^T [K,N] dy^T
		c.MatMul(da, b, dy, flags(true, true))
	}
	if !f.TransB { // db [K,N] = op(a)^T dy
		c.MatMul(db, a, dy, flags(!f.TransA, false))
	} else { // db [N,K] = dy^T op(a)
		c.MatMul(db, dy, a, flags(true, f.TransA))
	}
}

func TestSpagoMatMulBackward(t *testing.T) {
	type tc struct {
		m, n, k int
		f       backend.MatMul
		bType   tensor.DType
	}
	var cases []tc
	for _, s := range []struct{ m, n, k int }{{3, 4, 5}, {9, 7, 37}} {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				cases = append(cases, tc{s.m, s.n, s.k, backend.MatMul{TransA: ta, TransB: tb}, tensor.F32})
				cases = append(cases, tc{s.m, s.n, s.k, backend.MatMul{TransA: ta, TransB: tb, Alpha: -0.75}, tensor.F32})
			}
		}
	}
	// The frozen-weight input gradient dx += dy W, with W in half precision.
	cases = append(cases,
		tc{6, 8, 10, backend.MatMul{TransB: true}, tensor.F16},
		tc{6, 8, 10, backend.MatMul{}, tensor.BF16},
	)
	for _, threads := range threadCounts {
		c := newTestBackend(threads)
		for i, cs := range cases {
			f := cs.f
			name := fmt.Sprintf("t%d/%dx%dx%d/transA=%v,transB=%v,alpha=%g,%v", threads, cs.m, cs.n, cs.k, f.TransA, f.TransB, f.Alpha, cs.bType)
			t.Run(name, func(t *testing.T) {
				r := newRand(uint64(100 + i))
				aShape, bShape := []int{cs.m, cs.k}, []int{cs.k, cs.n}
				if f.TransA {
					aShape = []int{cs.k, cs.m}
				}
				if f.TransB {
					bShape = []int{cs.n, cs.k}
				}
				aVals := randn(r, cs.m*cs.k, 1)
				a := upload(t, c, aVals, aShape...)
				b, bVals := uploadAs(t, c, cs.bType, randn(r, cs.k*cs.n, 1), bShape...)
				dyVals := randn(r, cs.m*cs.n, 1)
				dy := upload(t, c, dyVals, cs.m, cs.n)
				y := c.Zeros(cs.m, cs.n)
				c.MatMul(y, a, b, f)

				alpha := float64(f.Alpha)
				if alpha == 0 {
					alpha = 1
				}
				A, B := sgLeaf(to64(aVals), aShape[0], aShape[1]), sgLeaf(to64(bVals), bShape[0], bShape[1])
				opA, opB := mat.Tensor(A), mat.Tensor(B)
				if f.TransA {
					opA = ag.T(A)
				}
				if f.TransB {
					opB = ag.T(B)
				}
				Y := ag.ProdScalar(ag.Mul(opA, opB), sgScalar(alpha))
				checkSpago(t, "y", download(t, c, y), sgValue(Y))
				sgBackward(t, sgDotLoss(Y, dyVals))

				// Accumulate onto earlier gradients, as a trainer's
				// gradient accumulation does.
				da0, db0 := randn(r, cs.m*cs.k, 1), randn(r, cs.k*cs.n, 1)
				da, db := upload(t, c, da0, aShape...), upload(t, c, db0, bShape...)
				matMulGrads(c, da, db, dy, a, b, f)
				checkSpago(t, "da", download(t, c, da), plus(da0, sgGrad(A)))
				checkSpago(t, "db", download(t, c, db), plus(db0, sgGrad(B)))
			})
		}
	}
}

func TestSpagoRMSNormBackward(t *testing.T) {
	cases := []struct {
		rows, cols int
		wType      tensor.DType // 0: no weight
		dw         bool
		eps        float32
	}{
		{5, 16, tensor.F32, true, 1e-5},
		{3, 7, 0, false, 1e-6},
		{4, 12, tensor.F16, true, 1e-5},
		{2, 33, tensor.BF16, false, 1e-5},
	}
	for _, threads := range threadCounts {
		c := newTestBackend(threads)
		for i, cs := range cases {
			t.Run(fmt.Sprintf("t%d/%dx%d/w=%v,dw=%v", threads, cs.rows, cs.cols, cs.wType, cs.dw), func(t *testing.T) {
				r := newRand(uint64(200 + i))
				xVals := randn(r, cs.rows*cs.cols, 1)
				// A small row, where eps is a tenth of the mean square.
				for j := range cs.cols {
					xVals[j] *= 0.01
				}
				x := upload(t, c, xVals, cs.rows, cs.cols)
				var w backend.Buffer
				var wVals []float32
				if cs.wType != 0 {
					w, wVals = uploadAs(t, c, cs.wType, randn(r, cs.cols, 1), cs.cols)
				}
				dyVals := randn(r, cs.rows*cs.cols, 1)
				dy := upload(t, c, dyVals, cs.rows, cs.cols)
				y := c.Zeros(cs.rows, cs.cols)
				c.RMSNorm(y, x, w, cs.eps)

				X := sgLeaf(to64(xVals), cs.rows, cs.cols)
				var W *mat.Dense[float64]
				if w != nil {
					W = sgLeaf(to64(wVals), cs.cols, 1)
				}
				var ys, losses []mat.Tensor
				for row := range cs.rows {
					xr := ag.T(ag.RowView(X, row)) // [cols, 1]
					ms := ag.ReduceMean(ag.Square(xr))
					yr := ag.DivScalar(xr, ag.Sqrt(ag.AddScalar(ms, sgScalar(float64(cs.eps)))))
					if W != nil {
						yr = ag.Prod(yr, W)
					}
					ys = append(ys, yr)
					losses = append(losses, sgDotLoss(yr, dyVals[row*cs.cols:(row+1)*cs.cols]))
				}
				checkSpago(t, "y", download(t, c, y), sgValue(ag.Stack(ys...)))
				sgBackward(t, losses...)

				dx0 := randn(r, cs.rows*cs.cols, 1)
				dx := upload(t, c, dx0, cs.rows, cs.cols)
				var dw backend.Buffer
				dw0 := randn(r, cs.cols, 1)
				if cs.dw {
					dw = upload(t, c, dw0, cs.cols)
				}
				c.RMSNormBackward(dx, dw, dy, x, w, cs.eps)
				checkSpago(t, "dx", download(t, c, dx), plus(dx0, sgGrad(X)))
				if cs.dw {
					checkSpago(t, "dw", download(t, c, dw), plus(dw0, sgGrad(W)))
				}
			})
		}
	}
}

// ropeMatrix returns the [cols, cols] rotation that RoPE applies to a row at
// position pos, built from the definition: pair i of each head turns by
// pos * theta^(-2i/d).
func ropeMatrix(cols int, pos int32, r backend.RoPE) []float64 {
	d := r.Dims
	if d == 0 {
		d = r.HeadDim
	}
	m := make([]float64, cols*cols)
	for i := range cols {
		m[i*cols+i] = 1
	}
	for h := 0; h < cols; h += r.HeadDim {
		for i := range d / 2 {
			f := math.Pow(float64(r.Theta), -2*float64(i)/float64(d))
			if r.Freqs != nil {
				f = r.Freqs[i]
			}
			ang := float64(pos) * f
			s, co := math.Sincos(ang)
			lo, hi := h+2*i, h+2*i+1
			if r.Style == backend.RoPEHalf {
				lo, hi = h+i, h+i+d/2
			}
			// [y_lo, y_hi] = [[cos, -sin], [sin, cos]] [x_lo, x_hi]
			m[lo*cols+lo], m[lo*cols+hi] = co, -s
			m[hi*cols+lo], m[hi*cols+hi] = s, co
		}
	}
	return m
}

func TestSpagoRoPEBackward(t *testing.T) {
	cases := []struct {
		rows, cols int
		rope       backend.RoPE
	}{
		{5, 12, backend.RoPE{Style: backend.RoPEInterleaved, HeadDim: 6, Theta: 10000}},
		{5, 12, backend.RoPE{Style: backend.RoPEHalf, HeadDim: 6, Theta: 10000}},
		{4, 16, backend.RoPE{Style: backend.RoPEInterleaved, HeadDim: 8, Theta: 500000, Dims: 4}},
		{4, 16, backend.RoPE{Style: backend.RoPEHalf, HeadDim: 8, Freqs: []float64{1.1, 0.2, 3e-3, 1e-5}}},
		{4, 16, backend.RoPE{Style: backend.RoPEHalf, HeadDim: 8, Theta: 10000, Dims: 6}},
	}
	for _, threads := range threadCounts {
		c := newTestBackend(threads)
		for i, cs := range cases {
			t.Run(fmt.Sprintf("t%d/%s", threads, ropeName(cs.rows, cs.cols, cs.rope)), func(t *testing.T) {
				r := newRand(uint64(300 + i))
				pos := make([]int32, cs.rows)
				for j := range pos {
					pos[j] = int32(r.IntN(300)) // unordered, repeated positions are allowed
				}
				xVals := randn(r, cs.rows*cs.cols, 1)
				x := upload(t, c, xVals, cs.rows, cs.cols)
				c.ApplyRoPE(x, pos, cs.rope)
				dyVals := randn(r, cs.rows*cs.cols, 1)
				dx := upload(t, c, dyVals, cs.rows, cs.cols)
				c.ApplyRoPEBackward(dx, pos, cs.rope)

				X := sgLeaf(to64(xVals), cs.rows, cs.cols)
				var ys, losses []mat.Tensor
				for row := range cs.rows {
					R := sgConst(ropeMatrix(cs.cols, pos[row], cs.rope), cs.cols, cs.cols)
					yr := ag.Mul(R, ag.T(ag.RowView(X, row))) // [cols, 1]
					ys = append(ys, yr)
					losses = append(losses, sgDotLoss(yr, dyVals[row*cs.cols:(row+1)*cs.cols]))
				}
				// The forward agreeing shows the matrices are the backend's
				// rotation, so the backward check below is meaningful.
				checkSpago(t, "y", download(t, c, x), sgValue(ag.Stack(ys...)))
				sgBackward(t, losses...)
				checkSpago(t, "dx", download(t, c, dx), sgGrad(X))
			})
		}
	}
}

// sgAttention builds causal grouped-query attention from spaGO matrix
// products, an additive mask and row softmaxes, adds sum(out * dy) for
// every (sequence, head) to the returned losses and the output to want.
func sgAttention(p backend.Attention, Q, K, V mat.Tensor, dy []float32, want []float64) []mat.Tensor {
	stride := p.KVStride
	if stride == 0 {
		stride = p.SeqK
	}
	hd, qCols := p.HeadDim, p.Heads*p.HeadDim
	// Query row i sits at position SeqK-SeqQ+i and sees keys up to it.
	mask := make([]float64, p.SeqQ*p.SeqK)
	for i := range p.SeqQ {
		for j := p.SeqK - p.SeqQ + i + 1; j < p.SeqK; j++ {
			mask[i*p.SeqK+j] = -1e9
		}
		if p.Window > 0 { // and a sliding window sees only its last Window keys
			for j := 0; j <= p.SeqK-p.SeqQ+i-p.Window; j++ {
				mask[i*p.SeqK+j] = -1e9
			}
		}
	}
	M := sgConst(mask, p.SeqQ, p.SeqK)
	var losses []mat.Tensor
	for b := range p.Batch {
		for h := range p.Heads {
			kvh := h / (p.Heads / p.KVHeads)
			q := ag.Slice(Q, b*p.SeqQ, h*hd, (b+1)*p.SeqQ, (h+1)*hd)
			k := ag.Slice(K, b*stride, kvh*hd, b*stride+p.SeqK, (kvh+1)*hd)
			v := ag.Slice(V, b*stride, kvh*hd, b*stride+p.SeqK, (kvh+1)*hd)
			scores := ag.Add(ag.ProdScalar(ag.Mul(q, ag.T(k)), sgScalar(float64(p.Scale))), M)
			probs := make([]mat.Tensor, p.SeqQ)
			for i := range probs {
				probs[i] = ag.Softmax(ag.T(ag.RowView(scores, i)))
			}
			out := ag.Mul(ag.Stack(probs...), v) // [SeqQ, hd]
			g := make([]float32, p.SeqQ*hd)
			vals := sgValue(out)
			for i := range p.SeqQ {
				row := (b*p.SeqQ+i)*qCols + h*hd
				copy(g[i*hd:(i+1)*hd], dy[row:row+hd])
				copy(want[row:row+hd], vals[i*hd:(i+1)*hd])
			}
			losses = append(losses, sgDotLoss(out, g))
		}
	}
	return losses
}

func TestSpagoAttentionBackward(t *testing.T) {
	cases := []backend.Attention{
		attnCase(2, 5, 5, 0, 4, 2, 8),                // training shape, grouped-query
		attnCase(2, 4, 4, 0, 3, 1, 5),                // multi-query
		attnCase(1, 6, 6, 0, 2, 2, 6),                // multi-head
		attnCase(1, 3, 7, 9, 6, 2, 4),                // a KV cache with spare rows
		windowed(attnCase(2, 6, 6, 0, 4, 2, 8), 2),   // sliding window
		windowed(attnCase(1, 20, 22, 0, 2, 1, 4), 6), // sliding window, blocked kernels
	}
	cases[1].Scale = 0.7
	for _, threads := range threadCounts {
		c := newTestBackend(threads)
		for i, p := range cases {
			t.Run(fmt.Sprintf("t%d/%s", threads, attnName(p)), func(t *testing.T) {
				r := newRand(uint64(400 + i))
				stride := p.KVStride
				if stride == 0 {
					stride = p.SeqK
				}
				qN, kN := p.Batch*p.SeqQ*p.Heads*p.HeadDim, p.Batch*stride*p.KVHeads*p.HeadDim
				qShape, kShape := []int{p.Batch * p.SeqQ, p.Heads * p.HeadDim}, []int{p.Batch * stride, p.KVHeads * p.HeadDim}
				qVals, kVals, vVals, dyVals := randn(r, qN, 1), randn(r, kN, 1), randn(r, kN, 1), randn(r, qN, 1)
				q, k, v := upload(t, c, qVals, qShape...), upload(t, c, kVals, kShape...), upload(t, c, vVals, kShape...)
				dy := upload(t, c, dyVals, qShape...)
				y := c.Zeros(qShape...)
				c.Attention(y, q, k, v, p)

				Q, K, V := sgLeaf(to64(qVals), qShape[0], qShape[1]), sgLeaf(to64(kVals), kShape[0], kShape[1]), sgLeaf(to64(vVals), kShape[0], kShape[1])
				want := make([]float64, qN)
				sgBackward(t, sgAttention(p, Q, K, V, dyVals, want)...)
				checkSpago(t, "y", download(t, c, y), want)

				// All three gradients at once, accumulated onto earlier ones;
				// key rows past SeqK must keep what they had.
				dq0, dk0, dv0 := randn(r, qN, 1), randn(r, kN, 1), randn(r, kN, 1)
				dq, dk, dv := upload(t, c, dq0, qShape...), upload(t, c, dk0, kShape...), upload(t, c, dv0, kShape...)
				c.AttentionBackward(dq, dk, dv, dy, q, k, v, p)
				checkSpago(t, "dq", download(t, c, dq), plus(dq0, sgGrad(Q)))
				checkSpago(t, "dk", download(t, c, dk), plus(dk0, sgGrad(K)))
				checkSpago(t, "dv", download(t, c, dv), plus(dv0, sgGrad(V)))

				// Each gradient alone, the others nil.
				alone := []struct {
					name  string
					shape []int
					want  []float64
				}{{"dq", qShape, sgGrad(Q)}, {"dk", kShape, sgGrad(K)}, {"dv", kShape, sgGrad(V)}}
				for _, a := range alone {
					g := c.Zeros(a.shape...)
					bufs := map[string]backend.Buffer{a.name: g}
					c.AttentionBackward(bufs["dq"], bufs["dk"], bufs["dv"], dy, q, k, v, p)
					checkSpago(t, a.name+" alone", download(t, c, g), a.want)
				}
			})
		}
	}
}

func TestSpagoSiLUMulBackward(t *testing.T) {
	const rows, cols = 6, 9
	for _, threads := range threadCounts {
		c := newTestBackend(threads)
		t.Run(fmt.Sprintf("t%d", threads), func(t *testing.T) {
			r := newRand(500)
			gVals, uVals, dyVals := randn(r, rows*cols, 3), randn(r, rows*cols, 1), randn(r, rows*cols, 1)
			gate, up, dy := upload(t, c, gVals, rows, cols), upload(t, c, uVals, rows, cols), upload(t, c, dyVals, rows, cols)
			y := c.Zeros(rows, cols)
			c.SiLUMul(y, gate, up)

			G, U := sgLeaf(to64(gVals), rows, cols), sgLeaf(to64(uVals), rows, cols)
			Y := ag.Prod(ag.SiLU(G), U)
			checkSpago(t, "y", download(t, c, y), sgValue(Y))
			sgBackward(t, sgDotLoss(Y, dyVals))

			// SiLUMulBackward overwrites: NaN already there must vanish.
			dgate, dup := nanFilled(t, c, rows, cols), nanFilled(t, c, rows, cols)
			c.SiLUMulBackward(dgate, dup, dy, gate, up)
			checkSpago(t, "dgate", download(t, c, dgate), sgGrad(G))
			checkSpago(t, "dup", download(t, c, dup), sgGrad(U))

			dgate = nanFilled(t, c, rows, cols)
			c.SiLUMulBackward(dgate, nil, dy, gate, up)
			checkSpago(t, "dgate alone", download(t, c, dgate), sgGrad(G))
			dup = nanFilled(t, c, rows, cols)
			c.SiLUMulBackward(nil, dup, dy, gate, up)
			checkSpago(t, "dup alone", download(t, c, dup), sgGrad(U))
		})
	}
}

func TestSpagoCrossEntropyBackward(t *testing.T) {
	const rows, vocab = 6, 11
	cases := []struct {
		name      string
		weights   []float32
		gradScale float32
	}{
		{"unweighted", nil, 1},
		// Rows of weight 0 carry an ignore marker as target.
		{"weighted", []float32{1, 0, 0.5, 2, 0, 1}, 0.25},
	}
	for _, threads := range threadCounts {
		c := newTestBackend(threads)
		for i, cs := range cases {
			t.Run(fmt.Sprintf("t%d/%s", threads, cs.name), func(t *testing.T) {
				r := newRand(uint64(600 + i))
				lVals := randn(r, rows*vocab, 2)
				targets := make([]int32, rows)
				for j := range targets {
					targets[j] = int32(r.IntN(vocab))
					if cs.weights != nil && cs.weights[j] == 0 {
						targets[j] = -100
					}
				}
				logits := upload(t, c, lVals, rows, vocab)

				L := sgLeaf(to64(lVals), rows, vocab)
				var terms []mat.Tensor
				for row, tg := range targets {
					w := 1.0
					if cs.weights != nil {
						w = float64(cs.weights[row])
					}
					if w == 0 {
						continue
					}
					logp := ag.Log(ag.Softmax(ag.T(ag.RowView(L, row)))) // [vocab, 1]
					terms = append(terms, ag.ProdScalar(ag.At(logp, int(tg), 0), sgScalar(-w)))
				}
				loss := ag.Sum(terms...)
				sgBackward(t, loss)

				dlogits := nanFilled(t, c, rows, vocab)
				got := c.CrossEntropy(dlogits, logits, targets, cs.weights, cs.gradScale)
				// The exponentials are summed in float32 lanes: the loss is
				// as exact as the float32 logits it comes from, not more.
				if want := loss.Value().Item().F64(); math.Abs(got-want) > 1e-7*math.Abs(want) {
					t.Errorf("loss = %.12g, want %.12g", got, want)
				}
				checkSpago(t, "dlogits", download(t, c, dlogits), scaled(sgGrad(L), float64(cs.gradScale)))
				if got2 := c.CrossEntropy(nil, logits, targets, cs.weights, 0); got2 != got {
					t.Errorf("loss without gradient = %.12g, with = %.12g", got2, got)
				}
			})
		}
	}
}

func TestSpagoEmbeddingBackward(t *testing.T) {
	const vocab, dim = 9, 6
	ids := []int32{3, 1, 3, 8, 0, 3, 1} // repeats must add up; 2, 4-7 get nothing
	for _, threads := range threadCounts {
		c := newTestBackend(threads)
		t.Run(fmt.Sprintf("t%d", threads), func(t *testing.T) {
			r := newRand(700)
			tabVals, dyVals := randn(r, vocab*dim, 1), randn(r, len(ids)*dim, 1)
			table := upload(t, c, tabVals, vocab, dim)
			dy := upload(t, c, dyVals, len(ids), dim)
			y := c.Zeros(len(ids), dim)
			c.Embedding(y, table, ids)

			T := sgLeaf(to64(tabVals), vocab, dim)
			rows := make([]mat.Tensor, len(ids))
			for j, id := range ids {
				rows[j] = ag.RowView(T, int(id))
			}
			Y := ag.Stack(rows...)
			checkSpago(t, "y", download(t, c, y), sgValue(Y))
			sgBackward(t, sgDotLoss(Y, dyVals))

			dt0 := randn(r, vocab*dim, 1)
			dtable := upload(t, c, dt0, vocab, dim)
			c.EmbeddingBackward(dtable, dy, ids)
			checkSpago(t, "dtable", download(t, c, dtable), plus(dt0, sgGrad(T)))
		})
	}
}
