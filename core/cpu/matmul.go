package cpu

import (
	"fmt"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/tensor"
)

// Tile sizes of the two matrix-product kernels. ntRows rows of b are
// dequantized together and reused against ntARows rows of a; nnCols is a
// multiple of every block size (256, the K-quants' super-block, the
// largest) so column tiles start on block boundaries.
const (
	minParallelFlops = 1 << 17 // below this a chunk of work is not worth a goroutine
	ntRows           = 8
	ntARows          = 64
	nnCols           = 256
	nnARows          = 32
	nnPanel          = 64
)

// MatMul computes dst (+)= alpha * op(a) * op(b). Shapes come from the
// buffers seen as matrices (outer dimensions folded into rows). b may be of
// any loaded dtype; a non-F32 b is dequantized a few rows at a time, never
// as a whole. Mismatched shapes, and a dst that overlaps a or b, panic.
//
// Where a SIMD micro-kernel is built in (amd64, arm64; see gemm.go), every product
// of at least gemmMinM rows and a few columns goes through the packed,
// cache-blocked path. The rest, and every product on other platforms, use
// the portable loops: TransB (x times a weight stored [out, in]) computes
// blocks of dot products and splits the work over columns of dst, so the
// matrix-vector products of token-by-token generation (M = 1) still use
// every thread; without TransB each row of dst is built from rank-1
// updates with rows of b; TransA is handled by transposing a into scratch
// first.
func (c *Backend) MatMul(dst, a, b backend.Buffer, f backend.MatMul) {
	const op = "MatMul"
	c.matmul(c.f32(dst, op, "dst"), c.f32(a, op, "a"), c.buf(b, op, "b"), f)
}

// matmul is MatMul on checked buffers.
func (c *Backend) matmul(d, x, w *buffer, f backend.MatMul) {
	ar, ac := x.dims()
	br, bc := w.dims()
	m, k := ar, ac
	if f.TransA {
		m, k = ac, ar
	}
	kb, n := br, bc
	if f.TransB {
		kb, n = bc, br
	}
	if dr, dc := d.dims(); k != kb || dr != m || dc != n {
		panic(fmt.Sprintf("cpu: MatMul: dst %v = op(a %v) * op(b %v) with TransA=%v TransB=%v: shapes do not fit",
			d.shape, x.shape, w.shape, f.TransA, f.TransB))
	}
	if d.overlaps(x) || (w.dtype == tensor.F32 && d.overlaps(w)) {
		panic("cpu: MatMul: dst must not overlap a or b")
	}
	alpha := f.Alpha
	if alpha == 0 {
		alpha = 1
	}
	out := d.data()
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		if !f.Accumulate {
			clear(out)
		}
		return
	}
	av := x.data()
	if hostMatMul(out, av, w, m, n, k, f.TransA, f.TransB, alpha, f.Accumulate) ||
		c.externalMatMul(out, av, w, m, n, k, f.TransA, f.TransB, alpha, f.Accumulate) {
		return
	}
	if kern := gemmKernelFor(n); kern != nil && m >= gemmMinM && n >= gemmMinNK && k >= gemmMinNK && m*n*k >= gemmMinWork {
		c.gemm(kern, out, gemmOperandA{data: av, trans: f.TransA}, w, f.TransB, m, n, k, alpha, f.Accumulate)
		return
	}
	if f.TransA {
		p := getScratch(m * k)
		defer putScratch(p)
		c.transpose(*p, av, ar, ac)
		av = *p
	}
	if f.TransB {
		c.matmulNT(out, av, w, m, n, k, alpha, f.Accumulate)
	} else {
		c.matmulNN(out, av, w, m, n, k, alpha, f.Accumulate)
	}
}

// transpose writes the [rows, cols] matrix src into dst as [cols, rows].
func (c *Backend) transpose(dst, src []float32, rows, cols int) {
	blocks := (cols + transposeBlock - 1) / transposeBlock
	runTask(c, &c.tasks.transpose, blocks, (1<<16)/(transposeBlock*rows)+1,
		transposeTask{dst: dst, src: src, rows: rows, cols: cols})
}

// transposeBlock is how many columns transpose moves together: a block
// keeps that many destination rows in cache.
const transposeBlock = 32

// transposeTask transposes a range of column blocks.
type transposeTask struct {
	dst, src   []float32
	rows, cols int
}

func (t *transposeTask) run(lo, hi int) {
	const bs = transposeBlock
	dst, src, rows, cols := t.dst, t.src, t.rows, t.cols
	for j0 := lo * bs; j0 < min(cols, hi*bs); j0 += bs {
		j1 := min(j0+bs, cols)
		for i := range rows {
			for j, v := range src[i*cols+j0 : i*cols+j1] {
				dst[(j0+j)*rows+i] = v
			}
		}
	}
}

// matmulNT computes out[i, j] (+)= alpha * dot(a[i, :], w[j, :]) for a
// [m, k] and w [n, k]. Work tiles are ntRows rows of w by ntARows rows of a,
// ordered so a worker moving along its range reuses the rows it decoded.
func (c *Backend) matmulNT(out, a []float32, w *buffer, m, n, k int, alpha float32, acc bool) {
	if c.matVecInt(out, a, w, m, n, k, alpha, acc) {
		return
	}
	nJ := (n + ntRows - 1) / ntRows
	iTile := min(m, ntARows)
	nI := (m + iTile - 1) / iTile
	grain := minParallelFlops/(2*iTile*ntRows*k) + 1
	// Rows of b are copied into scratch when they will be reused against
	// several rows of a. The copy's row stride is padded when it is a
	// multiple of 1 KiB, because rows a power of two apart compete for the
	// same few cache sets. A lone row of a (generation) reads b in place.
	pack := w.dtype != tensor.F32 || m > 4
	var kern blockDotKernel
	if m <= matVecRows {
		var fused bool
		if kern, fused = fusedMatVec(w, k); fused {
			pack = false
		}
	}
	stride := k
	if k >= 256 && k%256 == 0 {
		stride = k + 16
	}
	runTask(c, &c.tasks.matmulNT, nJ*nI, grain, matmulNTTask{
		out: out, a: a, w: w, m: m, n: n, k: k, nI: nI, iTile: iTile, stride: stride, pack: pack, alpha: alpha, acc: acc,
		fused: !pack && w.dtype != tensor.F32, kern: kern,
	})
}

// matmulNTTask is matmulNT over a range of its work tiles.
type matmulNTTask struct {
	out, a            []float32
	w                 *buffer
	m, n, k           int
	nI, iTile, stride int // tiles down a, rows per tile, row stride of packed b
	pack              bool
	alpha             float32
	acc               bool
	// fused reads a quantized w as stored, through kern where set, else
	// the portable quantDotGo (see matvec.go).
	fused bool
	kern  blockDotKernel
}

func (mt *matmulNTTask) run(lo, hi int) {
	out, a, w, m, n, k := mt.out, mt.a, mt.w, mt.m, mt.n, mt.k
	nI, iTile, stride, pack, alpha, acc := mt.nI, mt.iTile, mt.stride, mt.pack, mt.alpha, mt.acc
	if mt.fused {
		for t := lo; t < hi; t++ {
			jt, it := t/nI, t%nI
			j0, i0 := jt*ntRows, it*iTile
			mt.matVec(j0, min(ntRows, n-j0), i0, min(m, i0+iTile))
		}
		return
	}
	var rows [ntRows][]float32
	var scratch []float32
	if pack {
		p := getScratch(ntRows * stride)
		defer putScratch(p)
		scratch = *p
	}
	cur := -1
	for t := lo; t < hi; t++ {
		jt, it := t/nI, t%nI
		j0 := jt * ntRows
		nj := min(ntRows, n-j0)
		if jt != cur {
			for r := range nj {
				if pack {
					rows[r] = scratch[r*stride : r*stride+k]
					w.decode((j0+r)*k, rows[r])
				} else {
					rows[r] = w.row(j0+r, nil)
				}
			}
			cur = jt
		}
		i0 := it * iTile
		ntTile(out, a, rows[:nj], i0, min(m, i0+iTile), j0, n, k, alpha, acc)
	}
}

// ntTile computes the dst block rows [i0, i1) x columns [j0, j0+len(rows)):
// four dot products at a time share each load of a row of a.
func ntTile(out, a []float32, rows [][]float32, i0, i1, j0, n, k int, alpha float32, acc bool) {
	nj := len(rows)
	for i := i0; i < i1; i++ {
		ai := a[i*k : (i+1)*k]
		o := out[i*n+j0 : i*n+j0+nj]
		j := 0
		for ; j+4 <= nj; j += 4 {
			s0, s1, s2, s3 := dot1x4(ai, rows[j], rows[j+1], rows[j+2], rows[j+3])
			store(&o[j], s0, alpha, acc)
			store(&o[j+1], s1, alpha, acc)
			store(&o[j+2], s2, alpha, acc)
			store(&o[j+3], s3, alpha, acc)
		}
		for ; j < nj; j++ {
			store(&o[j], dot(ai, rows[j]), alpha, acc)
		}
	}
}

// store writes or accumulates one scaled result.
func store(dst *float32, s, alpha float32, acc bool) {
	if acc {
		*dst += alpha * s
	} else {
		*dst = alpha * s
	}
}

// matmulNN computes out (+)= alpha * a * w for a [m, k] and w [k, n]. A work
// tile is nnCols columns of out by nnARows rows; it walks k in panels of
// nnPanel rows of w (dequantized once per panel) and adds four rank-1
// updates per pass over a row of out.
func (c *Backend) matmulNN(out, a []float32, w *buffer, m, n, k int, alpha float32, acc bool) {
	nJ := (n + nnCols - 1) / nnCols
	iTile := min(m, nnARows)
	nI := (m + iTile - 1) / iTile
	grain := minParallelFlops/(2*iTile*min(n, nnCols)*k) + 1
	runTask(c, &c.tasks.matmulNN, nJ*nI, grain, matmulNNTask{
		out: out, a: a, w: w, m: m, n: n, k: k, nI: nI, iTile: iTile, alpha: alpha, acc: acc,
	})
}

// matmulNNTask is matmulNN over a range of its work tiles.
type matmulNNTask struct {
	out, a    []float32
	w         *buffer
	m, n, k   int
	nI, iTile int // tiles down a, rows per tile
	alpha     float32
	acc       bool
}

func (mt *matmulNNTask) run(lo, hi int) {
	out, a, w, m, n, k := mt.out, mt.a, mt.w, mt.m, mt.n, mt.k
	nI, iTile, alpha, acc := mt.nI, mt.iTile, mt.alpha, mt.acc
	// Panels are always copied into contiguous scratch: rows of b that sit
	// a power of two apart would otherwise fight over the same cache sets.
	var panel [nnPanel][]float32
	p := getScratch(nnPanel * nnCols)
	defer putScratch(p)
	scratch := *p
	for t := lo; t < hi; t++ {
		jt, it := t/nI, t%nI
		j0 := jt * nnCols
		j1 := min(n, j0+nnCols)
		i0 := it * iTile
		i1 := min(m, i0+iTile)
		if !acc {
			for i := i0; i < i1; i++ {
				clear(out[i*n+j0 : i*n+j1])
			}
		}
		for k0 := 0; k0 < k; k0 += nnPanel {
			kk := min(nnPanel, k-k0)
			for r := range kk {
				panel[r] = scratch[r*nnCols : r*nnCols+j1-j0]
				w.decode((k0+r)*n+j0, panel[r])
			}
			for i := i0; i < i1; i++ {
				o := out[i*n+j0 : i*n+j1]
				ai := a[i*k+k0 : i*k+k0+kk]
				r := 0
				for ; r+4 <= kk; r += 4 {
					axpy4(o, panel[r], panel[r+1], panel[r+2], panel[r+3],
						alpha*ai[r], alpha*ai[r+1], alpha*ai[r+2], alpha*ai[r+3])
				}
				for ; r < kk; r++ {
					axpy(o, panel[r], alpha*ai[r])
				}
			}
		}
	}
}
