package main

// The exponential kernels: softmax rows (attention's probabilities,
// cross-entropy's exponentials) and SiLU's gate, forward and backward.

// expVec sets the v128 local v to exp(v) lane by lane, in the steps and
// float32 operations of core/cpu's exp32 (Cephes' expf: x = n ln2 + r,
// a degree-7 polynomial in r, 2^n into the exponent bits; arguments below
// -87 give exp(-87); a NaN stays NaN). WebAssembly has no fused
// multiply-add and neither does Go's wasm code, so the two give the same
// bits. n, p and r are scratch v128 locals.
func (f *fn) expVec(v, n, p, r uint32) {
	// pmax(v, -87) keeps a NaN v.
	f.get(v)
	f.f32x4Const(-87)
	f.f32x4Pmax()
	f.set(v)
	// n = nearest(v * log2(e)), as exp32's add-and-subtract of 1.5*2^23.
	f.get(v)
	f.f32x4Const(1.44269504)
	f.f32x4Mul()
	f.f32x4Nearest()
	f.set(n)
	// r = v - n*ln2Hi - n*ln2Lo
	f.get(v)
	f.get(n)
	f.f32x4Const(0.693359375)
	f.f32x4Mul()
	f.f32x4Sub()
	f.get(n)
	f.f32x4Const(-2.12194440e-4)
	f.f32x4Mul()
	f.f32x4Sub()
	f.set(r)
	f.f32x4Const(1.9875691500e-4)
	for _, c := range []float32{1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1} {
		f.get(r)
		f.f32x4Mul()
		f.f32x4Const(c)
		f.f32x4Add()
	}
	// p*(r*r) + r + 1
	f.get(r)
	f.get(r)
	f.f32x4Mul()
	f.f32x4Mul()
	f.get(r)
	f.f32x4Add()
	f.f32x4Const(1)
	f.f32x4Add()
	f.set(p)
	// Add n to the exponent bits.
	f.get(p)
	f.get(n)
	f.i32x4TruncSat()
	f.i32c(23)
	f.i32x4Shl()
	f.i32x4Add()
	f.set(v)
}

// sigmoidVec sets the four float32 lanes of the v128 local v to
// float32(1 / (1 + exp(-float64(v)))), bit for bit what core/cpu's
// portable sigmoid computes with Go's math.Exp: two lanes at a time in
// float64 (sigmoid64). t holds seven scratch v128 locals.
func (f *fn) sigmoidVec(v uint32, t [7]uint32) {
	lo, hi := t[5], t[6]
	f.get(v)
	f.f64x2Promote()
	f.set(lo)
	f.get(v)
	f.get(v)
	f.shuffle([16]byte{8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15})
	f.f64x2Promote()
	f.set(hi)
	f.sigmoid64(lo, [5]uint32(t[:5]))
	f.sigmoid64(hi, [5]uint32(t[:5]))
	f.get(lo)
	f.f32x4Demote()
	f.get(hi)
	f.f32x4Demote()
	f.shuffle([16]byte{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23})
	f.set(v)
}

// sigmoid64 sets the f64x2 local x to 1 / (1 + exp(-x)), with exp in the
// steps and float64 operations of Go's math.Exp (its pure Go version,
// which wasm runs: k = int(log2(e)*x +- 0.5), x - k ln2 in two parts, the
// rational approximation of expmulti, then times 2^k). The argument is
// first clamped to [-700, 700], where 2^k is a normal float64 and the
// product exact as Ldexp's; beyond, the sigmoid is 0 or 1 in float32
// either way, as it is for Go's infinities and zeros. A NaN stays NaN.
func (f *fn) sigmoid64(x uint32, t [5]uint32) {
	kf, hi, lo, r, xc := t[0], t[1], t[2], t[3], t[4]
	f.get(x)
	f.f64x2Neg()
	f.f64x2Const(-700)
	f.f64x2Pmax()
	f.f64x2Const(700)
	f.f64x2Pmin()
	f.tee(xc)
	f.set(x)
	// k = trunc(log2(e)*x - 0.5) below 0, trunc(log2(e)*x + 0.5) above.
	f.get(x)
	f.f64x2Const(1.44269504088896338700e+00)
	f.f64x2Mul()
	f.f64x2Const(-0.5)
	f.f64x2Const(0.5)
	f.get(x)
	f.f64x2Const(0)
	f.f64x2Lt()
	f.bitselect()
	f.f64x2Add()
	f.f64x2Trunc()
	f.set(kf)
	// hi = x - k*Ln2Hi, lo = k*Ln2Lo, r = hi - lo.
	f.get(x)
	f.get(kf)
	f.f64x2Const(6.93147180369123816490e-01)
	f.f64x2Mul()
	f.f64x2Sub()
	f.set(hi)
	f.get(kf)
	f.f64x2Const(1.90821492927058770002e-10)
	f.f64x2Mul()
	f.set(lo)
	f.get(hi)
	f.get(lo)
	f.f64x2Sub()
	f.set(r)
	// c = r - t*(P1+t*(P2+t*(P3+t*(P4+t*P5)))) with t = r*r, which x
	// holds (the clamped argument is kept in xc).
	f.get(r)
	f.get(r)
	f.get(r)
	f.f64x2Mul() // t
	f.set(x)     // x is free now: it holds t
	f.get(x)
	f.f64x2Const(4.13813679705723846039e-08)
	f.f64x2Mul()
	f.f64x2Const(-1.65339022054652515390e-06)
	f.f64x2Add()
	f.get(x)
	f.f64x2Mul()
	f.f64x2Const(6.61375632143793436117e-05)
	f.f64x2Add()
	f.get(x)
	f.f64x2Mul()
	f.f64x2Const(-2.77777777770155933842e-03)
	f.f64x2Add()
	f.get(x)
	f.f64x2Mul()
	f.f64x2Const(1.66666666666666657415e-01)
	f.f64x2Add()
	f.get(x)
	f.f64x2Mul()
	f.f64x2Sub() // c = r - t*(...)
	f.set(x)     // x holds c
	// y = 1 - ((lo - (r*c)/(2-c)) - hi)
	f.f64x2Const(1)
	f.get(lo)
	f.get(r)
	f.get(x)
	f.f64x2Mul()
	f.f64x2Const(2)
	f.get(x)
	f.f64x2Sub()
	f.f64x2Div()
	f.f64x2Sub()
	f.get(hi)
	f.f64x2Sub()
	f.f64x2Sub()
	// times 2^k, built in the exponent bits: (k + 1023) << 52.
	f.get(kf)
	f.i32x4TruncSatF64()
	f.i64x2ExtendLow()
	f.i64x2Const(1023)
	f.i64x2Add()
	f.i32c(52)
	f.i64x2Shl()
	f.f64x2Mul()
	f.set(r) // e = exp(x)
	// Go's exp answers 1 + x for |x| < 2^-28.
	f.f64x2Const(1)
	f.get(xc)
	f.f64x2Add()
	f.get(r)
	f.get(xc)
	f.f64x2Abs()
	f.f64x2Const(0x1p-28)
	f.f64x2Lt()
	f.bitselect()
	f.set(r)
	// 1 / (1 + e)
	f.f64x2Const(1)
	f.f64x2Const(1)
	f.get(r)
	f.f64x2Add()
	f.f64x2Div()
	f.set(x)
}

// elementwise emits a loop over i in [0, n) four lanes at a time, then the
// last n%4 elements one at a time: body(load, store) computes with the
// lanes, where load(base) pushes the vector at base + 4i (for a lone
// element: that element in every lane) and store(base) stores the vector
// on the stack there (for a lone element: its first lane).
func (f *fn) elementwise(i, n uint32, body func(load, store func(base uint32))) {
	at := func(base uint32) {
		f.get(base)
		f.get(i)
		f.i32c(4)
		f.i32Mul()
		f.i32Add()
	}
	f.i32c(0)
	f.set(i)
	f.forStep(i, 4, func() { f.get(n) }, func() {
		body(func(base uint32) {
			at(base)
			f.v128Load(0)
		}, func(base uint32) {
			// The value is on the stack above where the address must
			// go: store through a swap local.
			f.set(swap(f))
			at(base)
			f.get(swap(f))
			f.v128Store(0)
		})
	})
	f.forStep(i, 1, func() { f.get(n) }, func() {
		body(func(base uint32) {
			at(base)
			f.load32Splat()
		}, func(base uint32) {
			f.f32x4Lane(0)
			f.set(swapF(f))
			at(base)
			f.get(swapF(f))
			f.f32Store()
		})
	})
}

// swap and swapF are per-function scratch locals (v128 and f32) for
// storing a computed value below its address.
var swaps = map[*fn][2]uint32{}

func swap(f *fn) uint32  { return swapLocals(f)[0] }
func swapF(f *fn) uint32 { return swapLocals(f)[1] }

func swapLocals(f *fn) [2]uint32 {
	s, ok := swaps[f]
	if !ok {
		s = [2]uint32{f.local(v128), f.local(f32)}
		swaps[f] = s
	}
	return s
}

// scratch7 declares seven v128 scratch locals.
func scratch7(f *fn) (t [7]uint32) {
	for i := range t {
		t[i] = f.local(v128)
	}
	return t
}

// silu(args): dst, gate, up, n (i32 words at args) sets dst[i] =
// gate[i] * sigmoid(gate[i]) * up[i], multiplied in that order as
// core/cpu's SiLUMul does. dst may be gate or up.
func silu() *fn {
	f := newFn("silu", i32)
	a := f.args(4)
	dst, gate, up, n := a[0], a[1], a[2], a[3]
	i := f.local(i32)
	g, s := f.local(v128), f.local(v128)
	t := scratch7(f)
	f.elementwise(i, n, func(load, store func(uint32)) {
		load(gate)
		f.tee(g)
		f.set(s)
		f.sigmoidVec(s, t)
		f.get(g)
		f.get(s)
		f.f32x4Mul()
		load(up)
		f.f32x4Mul()
		store(dst)
	})
	return f
}

// siluBack(args): dgate, dup, dy, gate, up, n sets dup = dy * gate * s
// and dgate = dy * up * s * (1 + gate*(1-s)), s = sigmoid(gate), in
// core/cpu's order; a zero dgate or dup is not wanted. Either may alias an
// input: each element is read before it is written.
func siluBack() *fn {
	f := newFn("siluBack", i32)
	a := f.args(6)
	dgate, dup, dy, gate, up, n := a[0], a[1], a[2], a[3], a[4], a[5]
	i := f.local(i32)
	x, s, d, u := f.local(v128), f.local(v128), f.local(v128), f.local(v128)
	t := scratch7(f)
	f.elementwise(i, n, func(load, store func(uint32)) {
		load(gate)
		f.tee(x)
		f.set(s)
		f.sigmoidVec(s, t)
		load(dy)
		f.set(d)
		load(up)
		f.set(u)
		f.get(dup)
		f.ifElse(func() {
			f.get(d)
			f.get(x)
			f.f32x4Mul()
			f.get(s)
			f.f32x4Mul()
			store(dup)
		}, nil)
		f.get(dgate)
		f.ifElse(func() {
			f.get(d)
			f.get(u)
			f.f32x4Mul()
			f.get(s)
			f.f32x4Mul()
			f.f32x4Const(1)
			f.get(x)
			f.f32x4Const(1)
			f.get(s)
			f.f32x4Sub()
			f.f32x4Mul()
			f.f32x4Add()
			f.f32x4Mul()
			store(dgate)
		}, nil)
	})
	return f
}

// rowRange sets lo and hi to the columns row r sees (see softmaxRows):
// [0, n) without flags&2, else [lo, hi0 + r) with lo = max(0, hi -
// window) when window > 0, else 0.
func (f *fn) rowRange(r, n, flags, hi0, window, lo, hi uint32) {
	// hi = flags&2 ? hi0 + r : n; lo = window > 0 && flags&2 ? max(0, hi - window) : 0.
	f.get(hi0)
	f.get(r)
	f.i32Add()
	f.get(n)
	f.get(flags)
	f.i32c(2)
	f.i32And()
	f.selectV()
	f.set(hi)
	f.i32c(0)
	f.set(lo)
	f.get(flags)
	f.i32c(2)
	f.i32And()
	f.i32c(0)
	f.i32Ne()
	f.get(window)
	f.i32c(0)
	f.i32GtS()
	f.i32And()
	f.ifElse(func() {
		f.get(hi)
		f.get(window)
		f.i32Sub()
		f.i32c(0)
		f.get(hi)
		f.get(window)
		f.i32Sub()
		f.i32c(0)
		f.i32GtS()
		f.selectV()
		f.set(lo)
	}, nil)
}

// softmaxRows(args): x, out, n, rows, stats, flags, hi0, window (i32
// words at args). For each of rows rows of n floats (row r of x at
// x + 4rn, of out likewise), over the columns [lo, hi) it sees: out =
// exp(x - max), max and sum of those exponentials to stats (two floats a
// row; a zero stats skips them). flags&2 makes the columns causal: row r
// sees [lo, hi0 + r), with lo = max(0, hi - window) when window > 0, else
// 0; without, every row sees [0, n). flags&1 then normalizes: out =
// exp(x - max) / sum on the columns seen and 0 on the rest (attention's
// probabilities). x may be out. The maximum propagates a NaN, as
// core/cpu's rowMax does; exp is exp32's and the sum is taken in order,
// so the results are core/cpu's portable ones bit for bit.
func softmaxRows() *fn {
	f := newFn("softmaxRows", i32)
	a := f.args(8)
	x, out, n, rows, stats, flags, hi0, window := a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]
	r, lo, hi, px, po, j := f.local(i32), f.local(i32), f.local(i32), f.local(i32), f.local(i32), f.local(i32)
	mx, sum := f.local(f32), f.local(f32)
	v, vm, vs, t1, t2, t3 := f.local(v128), f.local(v128), f.local(v128), f.local(v128), f.local(v128), f.local(v128)
	at := func(base uint32) { // base + 4j
		f.get(base)
		f.get(j)
		f.i32c(4)
		f.i32Mul()
		f.i32Add()
	}
	f.i32c(0)
	f.set(r)
	f.forStep(r, 1, func() { f.get(rows) }, func() {
		f.rowRange(r, n, flags, hi0, window, lo, hi)
		// px, po: the row's starts.
		f.get(r)
		f.get(n)
		f.i32Mul()
		f.i32c(4)
		f.i32Mul()
		f.tee(po)
		f.get(x)
		f.i32Add()
		f.set(px)
		f.get(po)
		f.get(out)
		f.i32Add()
		f.set(po)

		// The maximum.
		f.f32x4Const(float32Inf(-1))
		f.set(vm)
		f.get(lo)
		f.set(j)
		f.forStep(j, 4, func() { f.get(hi) }, func() {
			f.get(vm)
			at(px)
			f.v128Load(0)
			f.f32x4Max()
			f.set(vm)
		})
		f.get(vm)
		f.f32x4Lane(0)
		f.get(vm)
		f.f32x4Lane(1)
		f.f32Max()
		f.get(vm)
		f.f32x4Lane(2)
		f.get(vm)
		f.f32x4Lane(3)
		f.f32Max()
		f.f32Max()
		f.set(mx)
		f.forStep(j, 1, func() { f.get(hi) }, func() {
			f.get(mx)
			at(px)
			f.f32Load()
			f.f32Max()
			f.set(mx)
		})

		// The exponentials and their sum.
		f.get(mx)
		f.f32x4Splat()
		f.set(vm)
		f.v128Zero()
		f.set(vs)
		f.get(lo)
		f.set(j)
		f.forStep(j, 4, func() { f.get(hi) }, func() {
			at(px)
			f.v128Load(0)
			f.get(vm)
			f.f32x4Sub()
			f.set(v)
			f.expVec(v, t1, t2, t3)
			at(po)
			f.get(v)
			f.v128Store(0)
		})
		f.forStep(j, 1, func() { f.get(hi) }, func() {
			at(px)
			f.load32Splat()
			f.get(vm)
			f.f32x4Sub()
			f.set(v)
			f.expVec(v, t1, t2, t3)
			at(po)
			f.get(v)
			f.f32x4Lane(0)
			f.f32Store()
		})
		// Their sum, one at a time in order as core/cpu's expShiftGo
		// adds them, so that the two agree bit for bit.
		f.f32c(0)
		f.set(sum)
		f.get(lo)
		f.set(j)
		f.forStep(j, 1, func() { f.get(hi) }, func() {
			f.get(sum)
			at(po)
			f.f32Load()
			f.f32Add()
			f.set(sum)
		})
		f.get(stats)
		f.ifElse(func() {
			f.get(stats)
			f.get(r)
			f.i32c(8)
			f.i32Mul()
			f.i32Add()
			f.tee(j)
			f.get(mx)
			f.f32StoreAt(0)
			f.get(j)
			f.get(sum)
			f.f32StoreAt(4)
		}, nil)

		// Normalized: out *= 1/sum on [lo, hi), zero elsewhere.
		f.get(flags)
		f.i32c(1)
		f.i32And()
		f.ifElse(func() {
			f.f32c(1)
			f.get(sum)
			f.f32Div()
			f.f32x4Splat()
			f.set(vs)
			f.get(lo)
			f.set(j)
			f.forStep(j, 4, func() { f.get(hi) }, func() {
				at(po)
				at(po)
				f.v128Load(0)
				f.get(vs)
				f.f32x4Mul()
				f.v128Store(0)
			})
			f.forStep(j, 1, func() { f.get(hi) }, func() {
				at(po)
				at(po)
				f.f32Load()
				f.get(vs)
				f.f32x4Lane(0)
				f.f32Mul()
				f.f32Store()
			})
			zero := func() {
				at(po)
				f.f32c(0)
				f.f32Store()
			}
			f.i32c(0)
			f.set(j)
			f.forStep(j, 1, func() { f.get(lo) }, zero)
			f.get(hi)
			f.set(j)
			f.forStep(j, 1, func() { f.get(n) }, zero)
		}, nil)
	})
	return f
}

// softmaxBackRows(args): p, dp, n, rows, flags, hi0, window (i32 words at
// args) is attention's softmax backward on a block of rows of n floats:
// for the columns [lo, hi) row r sees (flags&2 and the rest as in
// softmaxRows), D = sum of p*dp in float64, one product at a time in
// order, then dp = p * (dp - float32(D)); dp is 0 on the other columns.
// These are core/cpu's operations in its order, so the results are the
// same bits.
func softmaxBackRows() *fn {
	f := newFn("softmaxBackRows", i32)
	a := f.args(7)
	p, dp, n, rows, flags, hi0, window := a[0], a[1], a[2], a[3], a[4], a[5], a[6]
	r, lo, hi, pp, pd, j := f.local(i32), f.local(i32), f.local(i32), f.local(i32), f.local(i32), f.local(i32)
	d := f.local(0x7C) // f64
	dv := f.local(v128)
	at := func(base uint32) { // base + 4j
		f.get(base)
		f.get(j)
		f.i32c(4)
		f.i32Mul()
		f.i32Add()
	}
	f.i32c(0)
	f.set(r)
	f.forStep(r, 1, func() { f.get(rows) }, func() {
		f.rowRange(r, n, flags, hi0, window, lo, hi)
		f.get(r)
		f.get(n)
		f.i32Mul()
		f.i32c(4)
		f.i32Mul()
		f.tee(pd)
		f.get(p)
		f.i32Add()
		f.set(pp)
		f.get(pd)
		f.get(dp)
		f.i32Add()
		f.set(pd)
		f.f64c(0)
		f.set(d)
		f.get(lo)
		f.set(j)
		f.forStep(j, 1, func() { f.get(hi) }, func() {
			f.get(d)
			at(pp)
			f.f32Load()
			f.f64PromoteF32()
			at(pd)
			f.f32Load()
			f.f64PromoteF32()
			f.f64Mul()
			f.f64Add()
			f.set(d)
		})
		f.get(d)
		f.f32DemoteF64()
		f.f32x4Splat()
		f.set(dv)
		f.get(lo)
		f.set(j)
		f.forStep(j, 4, func() { f.get(hi) }, func() {
			at(pd)
			at(pp)
			f.v128Load(0)
			at(pd)
			f.v128Load(0)
			f.get(dv)
			f.f32x4Sub()
			f.f32x4Mul()
			f.v128Store(0)
		})
		f.forStep(j, 1, func() { f.get(hi) }, func() {
			at(pd)
			at(pp)
			f.f32Load()
			at(pd)
			f.f32Load()
			f.get(dv)
			f.f32x4Lane(0)
			f.f32Sub()
			f.f32Mul()
			f.f32Store()
		})
		zero := func() {
			at(pd)
			f.f32c(0)
			f.f32Store()
		}
		f.i32c(0)
		f.set(j)
		f.forStep(j, 1, func() { f.get(lo) }, zero)
		f.get(hi)
		f.set(j)
		f.forStep(j, 1, func() { f.get(n) }, zero)
	})
	return f
}
