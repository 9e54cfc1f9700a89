package main

// kernels is the module: the import of Go's memory and every kernel. The
// names and signatures are the contract with wasm/simd, which calls them.
func kernels() *module {
	return &module{memModule: "go", memName: "mem", funcs: []*fn{gemm(), softmaxRows(), softmaxBackRows(), silu(), siluBack()}}
}

// Tile of gemm's micro-kernel: gemmMR rows by gemmNV vectors of four
// columns. 4 x 2 vectors keeps 8 accumulators, 2 columns of b, a
// broadcast element of a and the product in 12 registers, inside the 15 of
// 16 XMM registers V8 allocates on x86-64 (it keeps one as scratch), so
// the loop never spills; 4 x 4 or 6 x 2 measured slower for that reason.
const (
	gemmMR = 4
	gemmNV = 2
)

// gemm(args) takes its arguments from twelve 32-bit words at the byte
// offset args: c, a, b, t, m, n, k, flags, ldc, lda, ldb (i32) and alpha
// (f32). It computes the [m, n] product c (+)= alpha * op(a) * op(b), as
// core/cpu's MatMul, on strided matrices: c, a, b and t are byte offsets
// of float32 arrays in the imported memory, whose rows are ldc, lda and
// ldb floats apart; op(a) is a [m, k], or its transpose stored [k, m]
// (flags&1); op(b) is b [k, n], or its transpose stored [n, k] (flags&2),
// which is first transposed into t (k*n floats, rows n apart) so that
// every product reads b along rows; flags&4 adds to c rather than
// overwriting it. m, n and k are at least 1.
//
// Each element of c is summed over k in order, a product at a time, then
// scaled by alpha and (with flags&4) added to c.
func gemm() *fn {
	f := newFn("gemm", i32)
	args := f.args(11)
	c, a, b, t, m, n, k, flags, ldc, lda, ldb := args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7], args[8], args[9], args[10]
	alpha := f.local(f32)
	f.get(0)
	f.f32LoadAt(4 * 11)
	f.set(alpha)
	sai, sap, sbp, scp := f.local(i32), f.local(i32), f.local(i32), f.local(i32)
	i, j, cnt := f.local(i32), f.local(i32), f.local(i32)
	var pa [gemmMR]uint32
	for r := range pa {
		pa[r] = f.local(i32)
	}
	pb, pc, accum := f.local(i32), f.local(i32), f.local(i32)
	var acc [gemmMR][gemmNV]uint32
	for r := range acc {
		for w := range acc[r] {
			acc[r][w] = f.local(v128)
		}
	}
	var bv [gemmNV]uint32
	for w := range bv {
		bv[w] = f.local(v128)
	}
	av, alphaV := f.local(v128), f.local(v128)
	var sacc [gemmMR]uint32
	for r := range sacc {
		sacc[r] = f.local(f32)
	}
	bs := f.local(f32)

	// sbp, scp: the byte strides of op(b)'s rows and of c's.
	f.get(ldb)
	f.i32c(4)
	f.i32Mul()
	f.set(sbp)
	f.get(ldc)
	f.i32c(4)
	f.i32Mul()
	f.set(scp)
	f.get(flags)
	f.i32c(4)
	f.i32And()
	f.set(accum)
	f.get(alpha)
	f.f32x4Splat()
	f.set(alphaV)

	// op(a)[i, p] sits at a + i*sai + p*sap.
	f.get(flags)
	f.i32c(1)
	f.i32And()
	f.ifElse(func() {
		f.i32c(4)
		f.set(sai)
		f.get(lda)
		f.i32c(4)
		f.i32Mul()
		f.set(sap)
	}, func() {
		f.get(lda)
		f.i32c(4)
		f.i32Mul()
		f.set(sai)
		f.i32c(4)
		f.set(sap)
	})

	// b stored [n, k]: transpose it into t, row j of b into column j.
	f.get(flags)
	f.i32c(2)
	f.i32And()
	f.ifElse(func() {
		f.i32c(0)
		f.set(j)
		f.get(n)
		f.i32c(4)
		f.i32Mul()
		f.set(sbp)
		f.forStep(j, 1, func() { f.get(n) }, func() {
			f.get(b)
			f.get(j)
			f.get(ldb)
			f.i32Mul()
			f.i32c(4)
			f.i32Mul()
			f.i32Add()
			f.set(pb)
			f.get(t)
			f.get(j)
			f.i32c(4)
			f.i32Mul()
			f.i32Add()
			f.set(pc)
			f.get(k)
			f.set(cnt)
			f.loop(func() {
				f.get(pc)
				f.get(pb)
				f.f32Load()
				f.f32Store()
				f.get(pb)
				f.i32c(4)
				f.i32Add()
				f.set(pb)
				f.addTo(pc, sbp)
				f.get(cnt)
				f.i32c(1)
				f.i32Sub()
				f.tee(cnt)
				f.brIf(0)
			})
		})
		f.get(t)
		f.set(b)
	}, nil)

	// micro computes the tile of rows [i, i+rows) and columns [j, j+4*nv)
	// (one column when nv is 0, in scalar arithmetic).
	micro := func(rows, nv int) {
		// pa[r] = a + (i+r)*sai; pb = b + 4j.
		f.get(a)
		f.get(i)
		f.get(sai)
		f.i32Mul()
		f.i32Add()
		f.set(pa[0])
		for r := 1; r < rows; r++ {
			f.get(pa[r-1])
			f.get(sai)
			f.i32Add()
			f.set(pa[r])
		}
		f.get(b)
		f.get(j)
		f.i32c(4)
		f.i32Mul()
		f.i32Add()
		f.set(pb)
		for r := range rows {
			if nv == 0 {
				f.f32c(0)
				f.set(sacc[r])
				continue
			}
			for w := range nv {
				f.v128Zero()
				f.set(acc[r][w])
			}
		}
		f.get(k)
		f.set(cnt)
		f.loop(func() {
			if nv == 0 {
				f.get(pb)
				f.f32Load()
				f.set(bs)
			}
			for w := range nv {
				f.get(pb)
				f.v128Load(uint32(16 * w))
				f.set(bv[w])
			}
			for r := range rows {
				if nv == 0 {
					f.get(sacc[r])
					f.get(pa[r])
					f.f32Load()
					f.get(bs)
					f.f32Mul()
					f.f32Add()
					f.set(sacc[r])
				} else {
					f.get(pa[r])
					f.load32Splat()
					f.set(av)
					for w := range nv {
						f.get(acc[r][w])
						f.get(av)
						f.get(bv[w])
						f.f32x4Mul()
						f.f32x4Add()
						f.set(acc[r][w])
					}
				}
				f.addTo(pa[r], sap)
			}
			f.addTo(pb, sbp)
			f.get(cnt)
			f.i32c(1)
			f.i32Sub()
			f.tee(cnt)
			f.brIf(0)
		})
		// pc = c + 4*(i*ldc + j), then row by row.
		f.get(c)
		f.get(i)
		f.get(ldc)
		f.i32Mul()
		f.get(j)
		f.i32Add()
		f.i32c(4)
		f.i32Mul()
		f.i32Add()
		f.set(pc)
		store := func(add bool) {
			for r := range rows {
				if nv == 0 {
					f.get(pc)
					if add {
						f.get(pc)
						f.f32Load()
					}
					f.get(alpha)
					f.get(sacc[r])
					f.f32Mul()
					if add {
						f.f32Add()
					}
					f.f32Store()
				}
				for w := range nv {
					f.get(pc)
					if add {
						f.get(pc)
						f.v128Load(uint32(16 * w))
					}
					f.get(alphaV)
					f.get(acc[r][w])
					f.f32x4Mul()
					if add {
						f.f32x4Add()
					}
					f.v128Store(uint32(16 * w))
				}
				if r+1 < rows {
					f.addTo(pc, scp)
				}
			}
		}
		f.get(accum)
		f.ifElse(func() { store(true) }, func() { store(false) })
	}

	// Columns of one block of rows: tiles of 8, then 4, then one at a time.
	columns := func(rows int) {
		f.i32c(0)
		f.set(j)
		for _, nv := range []int{gemmNV, 1, 0} {
			step := int32(4 * nv)
			if nv == 0 {
				step = 1
			}
			f.forStep(j, step, func() { f.get(n) }, func() { micro(rows, nv) })
		}
	}
	f.i32c(0)
	f.set(i)
	f.forStep(i, gemmMR, func() { f.get(m) }, func() { columns(gemmMR) })
	f.forStep(i, 1, func() { f.get(m) }, func() { columns(1) })
	return f
}
