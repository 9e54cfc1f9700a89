package cpu

import (
	"fmt"
	"math"
	"testing"

	"github.com/graft-ml/graft/core/backend"
)

// refRoPE rotates a copy of x in float64: pair i of each head, (2i, 2i+1)
// or (i, i+d/2), turns by pos * theta^(-2i/d), or by pos * Freqs[i].
func refRoPE(x []float64, pos []int32, cols int, p backend.RoPE) []float64 {
	out := append([]float64(nil), x...)
	d := p.Dims
	if d == 0 {
		d = p.HeadDim
	}
	for r := range pos {
		for h := 0; h < cols; h += p.HeadDim {
			base := r*cols + h
			for i := range d / 2 {
				a, b := base+2*i, base+2*i+1
				if p.Style == backend.RoPEHalf {
					a, b = base+i, base+i+d/2
				}
				f := math.Pow(float64(p.Theta), -2*float64(i)/float64(d))
				if p.Freqs != nil {
					f = p.Freqs[i]
				}
				ang := float64(pos[r]) * f
				c, s := math.Cos(ang), math.Sin(ang)
				out[a], out[b] = x[a]*c-x[b]*s, x[a]*s+x[b]*c
			}
		}
	}
	return out
}

var ropeCases = []struct {
	rows, cols int
	p          backend.RoPE
}{
	{3, 8, backend.RoPE{Style: backend.RoPEInterleaved, HeadDim: 8, Theta: 10000}},
	{3, 8, backend.RoPE{Style: backend.RoPEHalf, HeadDim: 8, Theta: 10000}},
	{5, 24, backend.RoPE{Style: backend.RoPEInterleaved, HeadDim: 6, Theta: 500000}},
	{5, 24, backend.RoPE{Style: backend.RoPEHalf, HeadDim: 6, Theta: 500000}},
	{4, 32, backend.RoPE{Style: backend.RoPEInterleaved, HeadDim: 16, Theta: 10000, Dims: 8}},
	{4, 32, backend.RoPE{Style: backend.RoPEHalf, HeadDim: 16, Theta: 10000, Dims: 8}},
	// A frequency table (scaled RoPE) replaces Theta.
	{3, 16, backend.RoPE{Style: backend.RoPEInterleaved, HeadDim: 8, Freqs: []float64{1, 0.3, 0.01, 1e-4}}},
	{3, 16, backend.RoPE{Style: backend.RoPEHalf, HeadDim: 8, Dims: 4, Freqs: []float64{0.7, 2e-3}}},
}

func ropePositions(rows int) []int32 {
	pos := make([]int32, rows)
	for i := range pos {
		pos[i] = int32(i*37 + i*i*101) // spread out, up to a few thousand
	}
	return pos
}

func ropeName(rows, cols int, p backend.RoPE) string {
	style := "interleaved"
	if p.Style == backend.RoPEHalf {
		style = "half"
	}
	return fmt.Sprintf("%s/%dx%d/head%d/dims%d", style, rows, cols, p.HeadDim, p.Dims)
}

func TestApplyRoPE(t *testing.T) {
	for _, tc := range ropeCases {
		for _, threads := range threadCounts {
			t.Run(ropeName(tc.rows, tc.cols, tc.p)+fmt.Sprintf("/%dthreads", threads), func(t *testing.T) {
				c := newTestBackend(threads)
				xv := randn(newRand(5), tc.rows*tc.cols, 1)
				pos := ropePositions(tc.rows)
				x := upload(t, c, xv, tc.rows, tc.cols)
				c.ApplyRoPE(x, pos, tc.p)
				assertClose(t, "rotated", download(t, c, x), refRoPE(to64(xv), pos, tc.cols, tc.p), 1e-5, 1e-6)
				c.ApplyRoPEBackward(x, pos, tc.p)
				assertClose(t, "rotated back", download(t, c, x), to64(xv), 1e-5, 1e-6)
			})
		}
	}
}

// TestApplyRoPEBackward checks the backward against finite differences of
// the float64 reference: the gradient of sum(dy * rope(x)) is rope^T(dy).
func TestApplyRoPEBackward(t *testing.T) {
	for _, tc := range ropeCases {
		t.Run(ropeName(tc.rows, tc.cols, tc.p), func(t *testing.T) {
			r := newRand(6)
			xv, dyv := randn(r, tc.rows*tc.cols, 1), randn(r, tc.rows*tc.cols, 1)
			pos := ropePositions(tc.rows)
			x64 := to64(xv)
			want := numGrad(func(x []float64) float64 { return weighted(dyv, refRoPE(x, pos, tc.cols, tc.p)) }, x64)
			c := newTestBackend(3)
			dx := upload(t, c, dyv, tc.rows, tc.cols)
			c.ApplyRoPEBackward(dx, pos, tc.p)
			assertClose(t, "dx", download(t, c, dx), want, 1e-5, 1e-6)
		})
	}
}

// TestRoPEStylesAgreeUnderPermutation checks the relation between Meta's
// interleaved layout and Hugging Face's rotate-half layout: permuting a
// head's dimensions (HF index j < d/2 is Meta index 2j, HF index j >= d/2
// is Meta index 2(j-d/2)+1) turns one rotation into the other.
func TestRoPEStylesAgreeUnderPermutation(t *testing.T) {
	const rows, heads, hd = 6, 3, 8
	cols := heads * hd
	metaIndex := func(j int) int {
		if j < hd/2 {
			return 2 * j
		}
		return 2*(j-hd/2) + 1
	}
	permute := func(meta []float32) []float32 {
		hf := make([]float32, len(meta))
		for r := range rows {
			for h := range heads {
				for j := range hd {
					hf[r*cols+h*hd+j] = meta[r*cols+h*hd+metaIndex(j)]
				}
			}
		}
		return hf
	}
	c := New()
	xv := randn(newRand(8), rows*cols, 1)
	pos := ropePositions(rows)
	meta, hf := upload(t, c, xv, rows, cols), upload(t, c, permute(xv), rows, cols)
	c.ApplyRoPE(meta, pos, backend.RoPE{Style: backend.RoPEInterleaved, HeadDim: hd, Theta: 10000})
	c.ApplyRoPE(hf, pos, backend.RoPE{Style: backend.RoPEHalf, HeadDim: hd, Theta: 10000})
	assertClose(t, "permuted interleaved vs half", download(t, c, hf), to64(permute(download(t, c, meta))), 0, 0)
}

func TestApplyRoPERejectsBadParameters(t *testing.T) {
	c := New()
	x := c.Zeros(2, 12)
	pos := []int32{0, 1}
	mustPanic(t, "does not divide", func() { c.ApplyRoPE(x, pos, backend.RoPE{HeadDim: 5, Theta: 1e4}) })
	mustPanic(t, "must be even", func() { c.ApplyRoPE(x, pos, backend.RoPE{HeadDim: 6, Dims: 3, Theta: 1e4}) })
	mustPanic(t, "positive", func() { c.ApplyRoPE(x, pos, backend.RoPE{HeadDim: 6}) })
	mustPanic(t, "3 Freqs for 2 rotated pairs", func() { c.ApplyRoPE(x, pos, backend.RoPE{HeadDim: 6, Dims: 4, Freqs: []float64{1, 2, 3}}) })
	mustPanic(t, "2 rows", func() { c.ApplyRoPE(x, pos[:1], backend.RoPE{HeadDim: 6, Theta: 1e4}) })
}

// TestRoPETableSameBits: a batch whose rows repeat positions (each
// sequence runs 0..T-1) takes the shared table of sines and cosines, and
// gets the bits of computing them row by row, forward and backward.
func TestRoPETableSameBits(t *testing.T) {
	const seqs, T, heads, hd = 3, 16, 2, 8
	c := NewWithThreads(2)
	pos := make([]int32, seqs*T)
	for i := range pos {
		pos[i] = int32(5 + i%T)
	}
	for _, sign := range []float64{1, -1} {
		for _, style := range []backend.RoPEStyle{backend.RoPEInterleaved, backend.RoPEHalf} {
			p := backend.RoPE{Style: style, HeadDim: hd, Theta: 10000}
			xv := randn(newRand(11), seqs*T*heads*hd, 1)
			x := upload(t, c, xv, seqs*T, heads*hd)
			if sign > 0 {
				c.ApplyRoPE(x, pos, p)
			} else {
				c.ApplyRoPEBackward(x, pos, p)
			}
			freq := make([]float64, hd/2)
			for i := range freq {
				freq[i] = math.Pow(10000, -2*float64(i)/hd)
			}
			want := append([]float32(nil), xv...)
			rowByRow := ropeTask{x: want, pos: pos, freq: freq, cols: heads * hd, headDim: hd, dims: hd, halfStyle: style == backend.RoPEHalf, sign: sign}
			rowByRow.run(0, len(pos))
			for i, v := range download(t, c, x) {
				if math.Float32bits(v) != math.Float32bits(want[i]) {
					t.Fatalf("sign %v, style %v: element %d is %v with the table, %v row by row", sign, style, i, v, want[i])
				}
			}
		}
	}
}
