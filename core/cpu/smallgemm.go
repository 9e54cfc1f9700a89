package cpu

// A single-goroutine matrix product on strided views, for operations that
// are themselves split over goroutines (attention runs one per batch row
// and head). It packs into caller scratch and runs the same micro-kernels
// as MatMul's packed path.

// strided is a row-major matrix view: element (i, j) is data[i*ld+j].
// Views of one head's columns inside a [rows, heads*headDim] buffer are
// strided with ld = heads*headDim.
type strided struct {
	data []float32
	ld   int
}

// at returns the view starting at row i, column j.
func (s strided) at(i, j int) strided { return strided{data: s.data[i*s.ld+j:], ld: s.ld} }

// smallGemmScratch is the scratch smallGemm needs, in floats, for an
// m x n product (any k) with kern.
func smallGemmScratch(kern *gemmKernel, m, n int) int {
	mp := (m + kern.mr - 1) / kern.mr * kern.mr
	np := (n + kern.nr - 1) / kern.nr * kern.nr
	return (mp+np)*gemmKC + gemmMaxTile
}

// smallGemm computes out (+)= alpha * op(a) * op(b) for out [m, n], op(a)
// [m, k] and op(b) [k, n], where op transposes when trans is set (a stored
// [k, m], b stored [n, k]). scratch holds at least smallGemmScratch floats.
func smallGemm(kern *gemmKernel, out strided, a strided, transA bool, b strided, transB bool, m, n, k int, alpha float32, acc bool, scratch []float32) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		if !acc {
			for i := range m {
				clear(out.data[i*out.ld : i*out.ld+n])
			}
		}
		return
	}
	if externalSmallGemm(out, a, transA, b, transB, m, n, k, alpha, acc, scratch) {
		return
	}
	mr, nr := kern.mr, kern.nr
	mPanels, nPanels := (m+mr-1)/mr, (n+nr-1)/nr
	// The edge-tile scratch is the end of scratch: an array here would
	// escape through the kernel's function value and be allocated.
	tmp := scratch[len(scratch)-gemmMaxTile:]
	for p0 := 0; p0 < k; p0 += gemmKC {
		kc := min(gemmKC, k-p0)
		ap := scratch[:mPanels*mr*kc]
		bp := scratch[len(ap) : len(ap)+nPanels*nr*kc]
		packStridedA(ap, a, transA, mr, m, p0, kc)
		packStridedB(bp, b, transB, nr, n, p0, kc)
		accBlock := acc || p0 > 0
		for jp := range nPanels {
			bpanel := bp[jp*nr*kc : (jp+1)*nr*kc]
			col := jp * nr
			nrr := min(nr, n-col)
			for ip := range mPanels {
				apanel := ap[ip*mr*kc : (ip+1)*mr*kc]
				row := ip * mr
				mrr := min(mr, m-row)
				kern.tileAt(kc, apanel, bpanel, out.data[row*out.ld+col:], out.ld, mrr, nrr, alpha, accBlock, tmp)
			}
		}
	}
}

// smallGemmPackedA is smallGemm with op(a) already in panels: panel ip
// (rows ip*mr on) at ap[ip*mr*k:], its step p at p*mr, rows past m zero.
// Attention writes its probabilities this way as it computes them, so the
// products with them copy only the narrow operand b.
func smallGemmPackedA(kern *gemmKernel, out strided, ap []float32, b strided, transB bool, m, n, k int, alpha float32, acc bool, scratch []float32) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		if !acc {
			for i := range m {
				clear(out.data[i*out.ld : i*out.ld+n])
			}
		}
		return
	}
	mr, nr := kern.mr, kern.nr
	mPanels, nPanels := (m+mr-1)/mr, (n+nr-1)/nr
	tmp := scratch[len(scratch)-gemmMaxTile:]
	for p0 := 0; p0 < k; p0 += gemmKC {
		kc := min(gemmKC, k-p0)
		bp := scratch[:nPanels*nr*kc]
		packStridedB(bp, b, transB, nr, n, p0, kc)
		accBlock := acc || p0 > 0
		for jp := range nPanels {
			bpanel := bp[jp*nr*kc : (jp+1)*nr*kc]
			col := jp * nr
			nrr := min(nr, n-col)
			for ip := range mPanels {
				apanel := ap[ip*mr*k+p0*mr : ip*mr*k+(p0+kc)*mr]
				row := ip * mr
				mrr := min(mr, m-row)
				kern.tileAt(kc, apanel, bpanel, out.data[row*out.ld+col:], out.ld, mrr, nrr, alpha, accBlock, tmp)
			}
		}
	}
}

// packStridedA packs steps [p0, p0+kc) of op(a)'s m rows into panels of mr
// rows: panel ip at ip*mr*kc, with row r of step p at p*mr+r. Rows past m
// are zero.
func packStridedA(dst []float32, a strided, trans bool, mr, m, p0, kc int) {
	for ip := range (m + mr - 1) / mr {
		i0 := ip * mr
		packPanelA(dst[ip*mr*kc:(ip+1)*mr*kc], a, trans, mr, i0, min(mr, m-i0), p0, kc)
	}
}

// packStridedB packs steps [p0, p0+kc) of op(b)'s n columns into panels of
// nr columns: panel jp at jp*nr*kc, with column c of step p at p*nr+c.
// Columns past n are zero.
func packStridedB(dst []float32, b strided, trans bool, nr, n, p0, kc int) {
	for jp := range (n + nr - 1) / nr {
		d := dst[jp*nr*kc : (jp+1)*nr*kc]
		j0 := jp * nr
		cols := min(nr, n-j0)
		if !trans {
			// op(b) step p is a row segment of b.
			if cols == 8 && nr == 8 {
				// Heads of 8 into the thin kernel: an array copy is two
				// vector moves, where copy would call memmove.
				for p := range kc {
					o := (p0+p)*b.ld + j0
					*(*[8]float32)(d[p*8 : p*8+8]) = *(*[8]float32)(b.data[o : o+8])
				}
				continue
			}
			for p := range kc {
				src := b.data[(p0+p)*b.ld+j0 : (p0+p)*b.ld+j0+cols]
				dp := d[p*nr : p*nr+nr]
				copy(dp, src)
				clear(dp[cols:])
			}
			continue
		}
		packRows(d, b.data[j0*b.ld+p0:], b.ld, nr, cols, kc)
	}
}

// thinSmallKernel is the kernel for smallGemm products of at most n
// columns: thinKernel where there is one and n fits it, else smallKernel.
func thinSmallKernel(n int) *gemmKernel {
	if thinKernel != nil && n <= thinKernel.nr {
		return thinKernel
	}
	return smallKernel()
}

// smallKernel is the micro-kernel smallGemm runs with: the SIMD one where
// there is one, else the portable one.
func smallKernel() *gemmKernel {
	if fastKernel != nil {
		return fastKernel
	}
	return goKernel
}
