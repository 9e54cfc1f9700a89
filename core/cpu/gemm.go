package cpu

import "github.com/graft-ml/graft/core/tensor"

// The packed matrix product. Both operands are copied into panels laid out
// in the exact order a register-blocked micro-kernel reads them: a panel of
// op(a) is gemmMR rows interleaved along k, a panel of op(b) is gemmNR
// columns interleaved along k, both cut into blocks of gemmKC steps of k so
// one panel of b stays in L1 while it meets every panel of a in a tile.
// Packing absorbs the transposes (NN, NT and TN read the same panels) and
// the dequantization of a non-F32 b, so the kernel only ever sees
// contiguous float32s. The micro-kernel itself is SIMD code behind a build
// tag (gemm_simd_amd64.go); without it MatMul uses the portable loops in
// matmul.go, and gemmGoKernel keeps this driver tested on every platform.
const (
	gemmMR = 4      // rows of a register tile
	gemmAW = gemmMR // floats per step of k in a packed panel of a
	gemmNR = 16     // columns of a register tile (two 8-wide vectors)
	gemmKC = 256    // steps of k per packed block: a b panel is 16 KiB
	gemmMC = 64     // rows of a per work tile
	gemmNC = 256    // columns per work tile
	gemmNB = 2048   // columns of b packed at once, so a vocabulary-wide b is never copied whole
)

// microKernel computes the gemmMR x gemmNR tile c = alpha*sum + (acc ? c : 0),
// where sum[i][j] = sum over p < kc of a[p*gemmAW+i] * b[p*gemmNR+j]; c's
// rows are ldc apart.
type microKernel func(kc int, a, b, c []float32, ldc int, alpha float32, acc bool)

// fastKernel is the SIMD micro-kernel, set at init when the build and the
// CPU support one; nil means MatMul uses the portable loops.
var fastKernel microKernel

// gemmMinM is the smallest row count worth packing for: below it (token by
// token generation) the cost of packing b exceeds the product itself.
const gemmMinM = 4

// Smaller products (LoRA's rank-16 factors, a 64-wide model) spend more
// on packing than they gain from the kernel: measured on stories260K, a
// LoRA step through the packed path ran 15% slower than the portable one.
const (
	gemmMinNK   = 32
	gemmMinWork = 1 << 20
)

// gemmOperandA describes op(a): a [m, k] matrix stored row-major, or its
// transpose stored [k, m].
type gemmOperandA struct {
	data  []float32
	trans bool
}

// pack copies rows [i0, i0+gemmMR) and steps [p0, p0+kc) of op(a) into
// dst (kc*gemmAW floats); rows past m are zero.
func (x gemmOperandA) pack(dst []float32, i0, p0, kc, m, k int) {
	rows := min(gemmMR, m-i0)
	if x.trans {
		for p := range kc {
			src := x.data[(p0+p)*m+i0 : (p0+p)*m+i0+rows]
			d := dst[p*gemmAW : p*gemmAW+gemmAW]
			copy(d, src)
			clear(d[rows:])
		}
		return
	}
	for r := range gemmMR {
		if r >= rows {
			for p := range kc {
				dst[p*gemmAW+r] = 0
			}
			continue
		}
		src := x.data[(i0+r)*k+p0 : (i0+r)*k+p0+kc]
		for p, v := range src {
			dst[p*gemmAW+r] = v
		}
	}
}

// packBT writes columns [j0, j0+nr) of op(b) for b stored [n, k] (so a
// column of op(b) is a row of w), all of k, zero padded to gemmNR columns,
// as panel jp of every block: block p0 starts at p0*ncp and the panel within
// it at jp*gemmNR*kcb. row is scratch of k floats for dequantizing.
func packBT(dst []float32, w *buffer, j0, nr, jp, ncp, k int, row []float32) {
	for jj := range gemmNR {
		var src []float32
		if jj < nr {
			src = w.rowRange(j0+jj, 0, k, row)
		}
		for p0 := 0; p0 < k; p0 += gemmKC {
			kcb := min(gemmKC, k-p0)
			d := dst[p0*ncp+jp*gemmNR*kcb:]
			if src == nil {
				for p := range kcb {
					d[p*gemmNR+jj] = 0
				}
				continue
			}
			for p, v := range src[p0 : p0+kcb] {
				d[p*gemmNR+jj] = v
			}
		}
	}
}

// gemm computes out (+)= alpha * op(a) * op(b) for out [m, n], with kern
// as the micro-kernel. b may be any loaded dtype.
func (c *Backend) gemm(kern microKernel, out []float32, a gemmOperandA, w *buffer, transB bool, m, n, k int, alpha float32, acc bool) {
	mPanels := (m + gemmMR - 1) / gemmMR
	mp := mPanels * gemmAW
	ap := getScratch(mp * k)
	defer putScratch(ap)
	apack := *ap
	// Pack all of op(a): panel ip of block p0 sits at p0*mp + ip*gemmAW*kcb.
	c.parallelFor(mPanels, max(1, (1<<14)/(gemmMR*k+1)), func(lo, hi int) {
		for ip := lo; ip < hi; ip++ {
			for p0 := 0; p0 < k; p0 += gemmKC {
				kcb := min(gemmKC, k-p0)
				a.pack(apack[p0*mp+ip*gemmAW*kcb:], ip*gemmMR, p0, kcb, m, k)
			}
		}
	})
	nbMax := min(n, gemmNB)
	ncpMax := (nbMax + gemmNR - 1) / gemmNR * gemmNR
	bp := getScratch(ncpMax * k)
	defer putScratch(bp)
	bpack := *bp
	for c0 := 0; c0 < n; c0 += gemmNB {
		nc := min(gemmNB, n-c0)
		nPanels := (nc + gemmNR - 1) / gemmNR
		ncp := nPanels * gemmNR
		c.packChunk(bpack, w, transB, c0, nc, ncp, n, k)
		mTiles := (m + gemmMC - 1) / gemmMC
		nTiles := (nc + gemmNC - 1) / gemmNC
		grain := max(1, (1<<18)/(2*gemmMC*gemmNC*k+1))
		c.parallelFor(mTiles*nTiles, grain, func(lo, hi int) {
			var tmp [gemmMR * gemmNR]float32
			for t := lo; t < hi; t++ {
				ti, tj := t%mTiles, t/mTiles
				ip0, ip1 := ti*gemmMC/gemmMR, min(mPanels, (ti+1)*gemmMC/gemmMR)
				jp0, jp1 := tj*gemmNC/gemmNR, min(nPanels, (tj+1)*gemmNC/gemmNR)
				for p0 := 0; p0 < k; p0 += gemmKC {
					kcb := min(gemmKC, k-p0)
					accBlock := acc || p0 > 0
					for jp := jp0; jp < jp1; jp++ {
						bpanel := bpack[p0*ncp+jp*gemmNR*kcb : p0*ncp+(jp+1)*gemmNR*kcb]
						j := c0 + jp*gemmNR
						nr := min(gemmNR, c0+nc-j)
						for ip := ip0; ip < ip1; ip++ {
							apanel := apack[p0*mp+ip*gemmAW*kcb : p0*mp+(ip+1)*gemmAW*kcb]
							i := ip * gemmMR
							mr := min(gemmMR, m-i)
							if mr == gemmMR && nr == gemmNR {
								kern(kcb, apanel, bpanel, out[i*n+j:], n, alpha, accBlock)
								continue
							}
							// An edge tile: compute the full tile aside
							// and keep the part inside out.
							kern(kcb, apanel, bpanel, tmp[:], gemmNR, alpha, false)
							for r := range mr {
								o := out[(i+r)*n+j : (i+r)*n+j+nr]
								s := tmp[r*gemmNR : r*gemmNR+nr]
								if accBlock {
									for q, v := range s {
										o[q] += v
									}
								} else {
									copy(o, s)
								}
							}
						}
					}
				}
			}
		})
	}
}

// packChunk packs columns [c0, c0+nc) of op(b), all of k, into dst with
// ncp (nc rounded up to gemmNR) columns per block.
func (c *Backend) packChunk(dst []float32, w *buffer, trans bool, c0, nc, ncp, n, k int) {
	nPanels := ncp / gemmNR
	if trans {
		c.parallelFor(nPanels, max(1, (1<<14)/(gemmNR*k+1)), func(lo, hi int) {
			var rp *[]float32
			var row []float32
			if w.dtype != tensor.F32 {
				rp = getScratch(k)
				defer putScratch(rp)
				row = *rp
			}
			for jp := lo; jp < hi; jp++ {
				j0 := c0 + jp*gemmNR
				packBT(dst, w, j0, min(gemmNR, c0+nc-j0), jp, ncp, k, row)
			}
		})
		return
	}
	// b is [k, n]: read each step of k once, as a row segment, and deal
	// its values out to the panels.
	c.parallelFor(k, max(1, (1<<14)/(nc+1)), func(lo, hi int) {
		var rp *[]float32
		var row []float32
		if w.dtype != tensor.F32 {
			rp = getScratch(nc)
			defer putScratch(rp)
			row = *rp
		}
		for p := lo; p < hi; p++ {
			src := w.rowRange(p, c0, c0+nc, row)
			p0 := p / gemmKC * gemmKC
			kcb := min(gemmKC, k-p0)
			base := dst[p0*ncp+(p-p0)*gemmNR:]
			for jp := range nPanels {
				d := base[jp*gemmNR*kcb : jp*gemmNR*kcb+gemmNR]
				s := src[jp*gemmNR : min(len(src), (jp+1)*gemmNR)]
				copy(d, s)
				clear(d[len(s):])
			}
		}
	})
}

// gemmGoKernel is the micro-kernel in plain Go: the reference the SIMD
// kernels are tested against, and what drives the packed path in tests on
// platforms without one.
func gemmGoKernel(kc int, a, b, c []float32, ldc int, alpha float32, acc bool) {
	var sum [gemmMR][gemmNR]float32
	a, b = a[:kc*gemmAW], b[:kc*gemmNR]
	for p := range kc {
		ap := a[p*gemmAW : p*gemmAW+gemmAW]
		bp := b[p*gemmNR : p*gemmNR+gemmNR]
		for i := range gemmMR {
			x := ap[i]
			for j, y := range bp {
				sum[i][j] += x * y
			}
		}
	}
	for i := range gemmMR {
		row := c[i*ldc : i*ldc+gemmNR]
		for j := range row {
			if acc {
				row[j] += alpha * sum[i][j]
			} else {
				row[j] = alpha * sum[i][j]
			}
		}
	}
}
