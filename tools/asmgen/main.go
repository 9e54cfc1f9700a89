// Command asmgen generates core/cpu's amd64 matrix-product kernels with avo
// (github.com/mmcloughlin/avo). Run it through go generate in core/cpu:
//
//	go generate ./core/cpu
//
// Each micro-kernel computes an mr x nr tile of alpha * A * B from packed
// panels (see core/cpu/gemm.go): a panel of A holds mr values per step of k,
// a panel of B nr values per step, and every step broadcasts each value of A
// once and multiplies it into nr/width accumulators. The accumulators stay in
// registers for the whole of k, so the tile shape is set by the register
// file: 16 YMM registers for AVX2, 32 ZMM registers for AVX-512.
//
// The dot kernels serve products with a single row (or few rows) of A, such
// as token-by-token generation, where packing would cost more than it saves:
// they stream rows of a weight matrix once and keep the input row in cache.
package main

import (
	"fmt"

	"github.com/mmcloughlin/avo/attr"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// kernelShape is one generated micro-kernel.
type kernelShape struct {
	name  string
	mr    int  // rows of the tile
	nvec  int  // vectors per row of the tile
	wide  bool // ZMM (16 floats) rather than YMM (8 floats)
	unrol int  // steps of k per loop iteration
}

func (s kernelShape) width() int {
	if s.wide {
		return 16
	}
	return 8
}

func (s kernelShape) vec() reg.VecVirtual {
	if s.wide {
		return ZMM()
	}
	return YMM()
}

// shapes are the kernels generated. AVX-512 tiles of 8x32, 6x64 and 14x32
// measured the same as 12x32 on operands in L1 (206-212 GFLOP/s per core
// on Zen 5); 12x32 keeps 24 of the 32 registers as accumulators, and its
// 12-row panels suit the packing.
var shapes = []kernelShape{
	{name: "gemmAVX2x6x16", mr: 6, nvec: 2, unrol: 4},
	// One vector of columns, for products eight columns wide (attention
	// with heads of 8, as in stories260K), where 6x16 would be half
	// padding: 12 accumulators, as many as 6x16's.
	{name: "gemmAVX2x12x8", mr: 12, nvec: 1, unrol: 4},
	{name: "gemmAVX512x12x32", mr: 12, nvec: 2, wide: true, unrol: 4},
}

// Every kernel is marked noescape: none keeps a pointer past its return,
// so the caller's slices and results can stay on the stack.
func main() {
	ConstraintExpr("!purego")
	for _, s := range shapes {
		gemmKernel(s)
	}
	dot4Kernel()
	dotKernel()
	maxKernel()
	axpyKernel()
	axpy4Kernel()
	expKernel()
	sigmoidKernel()
	decodeKernels()
	blockKernels()
	intDotKernels()
	transposeKernel()
	Generate()
}

// gemmKernel emits
//
//	func name(kc int, a, b, c *float32, ldc int, alpha float32, acc bool)
//
// computing c[i*ldc+j] = alpha*sum_p a[p*mr+i]*b[p*nr+j] (+ c[i*ldc+j] when
// acc) for the mr x nr tile. The caller guarantees kc >= 1 and the bounds.
func gemmKernel(s kernelShape) {
	nr := s.nvec * s.width()
	TEXT(s.name, NOSPLIT, "func(kc int, a, b, c *float32, ldc int, alpha float32, acc bool)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s computes a %dx%d tile of the packed matrix product.", s.name, s.mr, nr))
	kc := Load(Param("kc"), GP64())
	pa := Load(Param("a"), GP64())
	pb := Load(Param("b"), GP64())

	acc := make([][]reg.VecVirtual, s.mr)
	for i := range acc {
		acc[i] = make([]reg.VecVirtual, s.nvec)
		for v := range acc[i] {
			acc[i][v] = s.vec()
			VXORPS(acc[i][v], acc[i][v], acc[i][v])
		}
	}
	bv := make([]reg.VecVirtual, s.nvec)
	for v := range bv {
		bv[v] = s.vec()
	}
	av := s.vec()

	step := func(p int) {
		for v := range bv {
			VMOVUPS(Mem{Base: pb, Disp: 4 * (p*nr + v*s.width())}, bv[v])
		}
		for i := range s.mr {
			VBROADCASTSS(Mem{Base: pa, Disp: 4 * (p*s.mr + i)}, av)
			for v := range bv {
				VFMADD231PS(av, bv[v], acc[i][v])
			}
		}
	}

	Comment("Main loop: unrolled steps of k.")
	Label(s.name + "_loop")
	CMPQ(kc, Imm(uint64(s.unrol)))
	JL(LabelRef(s.name + "_tail"))
	for p := range s.unrol {
		step(p)
	}
	ADDQ(U32(4*s.unrol*s.mr), pa)
	ADDQ(U32(4*s.unrol*nr), pb)
	SUBQ(Imm(uint64(s.unrol)), kc)
	JMP(LabelRef(s.name + "_loop"))

	Label(s.name + "_tail")
	TESTQ(kc, kc)
	JZ(LabelRef(s.name + "_store"))
	step(0)
	ADDQ(U32(4*s.mr), pa)
	ADDQ(U32(4*nr), pb)
	DECQ(kc)
	JMP(LabelRef(s.name + "_tail"))

	Label(s.name + "_store")
	pc := Load(Param("c"), GP64())
	ldc := Load(Param("ldc"), GP64())
	SHLQ(Imm(2), ldc)
	alpha := s.vec()
	alphaArg, err := Param("alpha").Resolve()
	if err != nil {
		panic(err)
	}
	VBROADCASTSS(alphaArg.Addr, alpha)
	flag := Load(Param("acc"), GP8())
	TESTB(flag, flag)
	JZ(LabelRef(s.name + "_overwrite"))
	row := GP64()
	MOVQ(pc, row)
	for i := range s.mr {
		for v := range s.nvec {
			m := Mem{Base: row, Disp: 4 * v * s.width()}
			VFMADD213PS(m, alpha, acc[i][v])
			VMOVUPS(acc[i][v], m)
		}
		if i+1 < s.mr {
			ADDQ(ldc, row)
		}
	}
	VZEROUPPER()
	RET()

	Label(s.name + "_overwrite")
	for i := range s.mr {
		for v := range s.nvec {
			VMULPS(alpha, acc[i][v], acc[i][v])
			VMOVUPS(acc[i][v], Mem{Base: pc, Disp: 4 * v * s.width()})
		}
		if i+1 < s.mr {
			ADDQ(ldc, pc)
		}
	}
	VZEROUPPER()
	RET()
}

// The vector primitives below are AVX2 (8 floats per register): they
// stream their operands once, so memory, not vector width, bounds them.
// Each takes a count of floats that is a multiple of 16 (two registers per
// step, for two independent chains of FMAs); the Go wrappers in
// kernels_amd64.go finish any remainder.

// hsum reduces the 8 lanes of y into the low lane of its XMM half.
func hsum(y reg.VecVirtual) reg.Register {
	hi := XMM()
	VEXTRACTF128(Imm(1), y, hi)
	lo := y.AsX()
	VADDPS(hi, lo, lo)
	VHADDPS(lo, lo, lo)
	VHADDPS(lo, lo, lo)
	return lo
}

// dot4Kernel emits func dot4AVX2(k int, x, w0, w1, w2, w3, out *float32)
// setting out[r] = sum_p x[p]*wr[p]: four dot products sharing each load
// of x, the inner step of a matrix times a few vectors.
func dot4Kernel() {
	TEXT("dot4AVX2", NOSPLIT, "func(k int, x, w0, w1, w2, w3, out *float32)")
	Pragma("noescape")
	Doc("dot4AVX2 computes the dot products of x with w0..w3 into out[0..3]; k is a multiple of 16.")
	k := Load(Param("k"), GP64())
	px := Load(Param("x"), GP64())
	rows := []reg.Register{Load(Param("w0"), GP64()), Load(Param("w1"), GP64()), Load(Param("w2"), GP64()), Load(Param("w3"), GP64())}
	var acc [4][2]reg.VecVirtual
	for r := range acc {
		for u := range acc[r] {
			acc[r][u] = YMM()
			VXORPS(acc[r][u], acc[r][u], acc[r][u])
		}
	}
	xv := [2]reg.VecVirtual{YMM(), YMM()}
	off := GP64()
	XORQ(off, off)
	SHLQ(Imm(2), k)
	Label("dot4_loop")
	CMPQ(off, k)
	JGE(LabelRef("dot4_reduce"))
	for u := range xv {
		VMOVUPS(Mem{Base: px, Index: off, Scale: 1, Disp: 32 * u}, xv[u])
	}
	for r, w := range rows {
		for u := range xv {
			VFMADD231PS(Mem{Base: w, Index: off, Scale: 1, Disp: 32 * u}, xv[u], acc[r][u])
		}
	}
	ADDQ(U32(64), off)
	JMP(LabelRef("dot4_loop"))

	Label("dot4_reduce")
	out := Load(Param("out"), GP64())
	for r := range acc {
		VADDPS(acc[r][1], acc[r][0], acc[r][0])
		VMOVSS(hsum(acc[r][0]), Mem{Base: out, Disp: 4 * r})
	}
	VZEROUPPER()
	RET()
}

// maxKernel emits func maxAVX2(k int, x *float32) float32.
func maxKernel() {
	TEXT("maxAVX2", NOSPLIT, "func(k int, x *float32) float32")
	Pragma("noescape")
	Doc("maxAVX2 returns the largest of x's k values (k a positive multiple of 8), starting from x[0]: a NaN elsewhere is skipped, a NaN x[0] is the result.")
	k := Load(Param("k"), GP64())
	px := Load(Param("x"), GP64())
	acc := YMM()
	VBROADCASTSS(Mem{Base: px}, acc)
	xv := YMM()
	off := GP64()
	XORQ(off, off)
	SHLQ(Imm(2), k)
	// Each step keeps x where x > acc, else acc (vmaxps returns its
	// second source when either is NaN): the comparisons of Go's maxOf.
	Label("max_loop")
	VMOVUPS(Mem{Base: px, Index: off, Scale: 1}, xv)
	VMAXPS(acc, xv, acc)
	ADDQ(U32(32), off)
	CMPQ(off, k)
	JL(LabelRef("max_loop"))
	hi := XMM()
	VEXTRACTF128(Imm(1), acc, hi)
	lo := acc.AsX()
	VMAXPS(hi, lo, lo)
	t := XMM()
	VPERMILPS(Imm(0x4e), lo, t)
	VMAXPS(t, lo, lo)
	VPERMILPS(Imm(0xb1), lo, t)
	VMAXPS(t, lo, lo)
	Store(lo, ReturnIndex(0))
	VZEROUPPER()
	RET()
}

// dotKernel emits func dotAVX2(k int, x, y *float32) float32.
func dotKernel() {
	TEXT("dotAVX2", NOSPLIT, "func(k int, x, y *float32) float32")
	Pragma("noescape")
	Doc("dotAVX2 returns the dot product of x and y; k is a multiple of 16.")
	k := Load(Param("k"), GP64())
	px := Load(Param("x"), GP64())
	py := Load(Param("y"), GP64())
	acc := [2]reg.VecVirtual{YMM(), YMM()}
	for _, a := range acc {
		VXORPS(a, a, a)
	}
	xv := YMM()
	off := GP64()
	XORQ(off, off)
	SHLQ(Imm(2), k)
	Label("dot_loop")
	CMPQ(off, k)
	JGE(LabelRef("dot_reduce"))
	for u, a := range acc {
		VMOVUPS(Mem{Base: px, Index: off, Scale: 1, Disp: 32 * u}, xv)
		VFMADD231PS(Mem{Base: py, Index: off, Scale: 1, Disp: 32 * u}, xv, a)
	}
	ADDQ(U32(64), off)
	JMP(LabelRef("dot_loop"))
	Label("dot_reduce")
	VADDPS(acc[1], acc[0], acc[0])
	Store(hsum(acc[0]), ReturnIndex(0))
	VZEROUPPER()
	RET()
}

// axpyKernel emits func axpyAVX2(k int, dst, x *float32, alpha float32)
// setting dst[i] += alpha*x[i].
func axpyKernel() {
	TEXT("axpyAVX2", NOSPLIT, "func(k int, dst, x *float32, alpha float32)")
	Pragma("noescape")
	Doc("axpyAVX2 adds alpha*x to dst; k is a multiple of 16.")
	k := Load(Param("k"), GP64())
	pd := Load(Param("dst"), GP64())
	px := Load(Param("x"), GP64())
	alphaArg, err := Param("alpha").Resolve()
	if err != nil {
		panic(err)
	}
	alpha := YMM()
	VBROADCASTSS(alphaArg.Addr, alpha)
	d := [2]reg.VecVirtual{YMM(), YMM()}
	off := GP64()
	XORQ(off, off)
	SHLQ(Imm(2), k)
	Label("axpy_loop")
	CMPQ(off, k)
	JGE(LabelRef("axpy_done"))
	for u := range d {
		VMOVUPS(Mem{Base: pd, Index: off, Scale: 1, Disp: 32 * u}, d[u])
		VFMADD231PS(Mem{Base: px, Index: off, Scale: 1, Disp: 32 * u}, alpha, d[u])
		VMOVUPS(d[u], Mem{Base: pd, Index: off, Scale: 1, Disp: 32 * u})
	}
	ADDQ(U32(64), off)
	JMP(LabelRef("axpy_loop"))
	Label("axpy_done")
	VZEROUPPER()
	RET()
}

// axpy4Kernel emits
//
//	func axpy4AVX2(k int, dst, x0, x1, x2, x3 *float32, a0, a1, a2, a3 float32)
//
// setting dst[i] += a0*x0[i] + a1*x1[i] + a2*x2[i] + a3*x3[i]: four rank-1
// updates for one load and store of dst.
func axpy4Kernel() {
	TEXT("axpy4AVX2", NOSPLIT, "func(k int, dst, x0, x1, x2, x3 *float32, a0, a1, a2, a3 float32)")
	Pragma("noescape")
	Doc("axpy4AVX2 adds a0*x0 + a1*x1 + a2*x2 + a3*x3 to dst; k is a multiple of 16.")
	k := Load(Param("k"), GP64())
	pd := Load(Param("dst"), GP64())
	xs := []reg.Register{Load(Param("x0"), GP64()), Load(Param("x1"), GP64()), Load(Param("x2"), GP64()), Load(Param("x3"), GP64())}
	var as [4]reg.VecVirtual
	for i := range as {
		arg, err := Param(fmt.Sprintf("a%d", i)).Resolve()
		if err != nil {
			panic(err)
		}
		as[i] = YMM()
		VBROADCASTSS(arg.Addr, as[i])
	}
	d := [2]reg.VecVirtual{YMM(), YMM()}
	off := GP64()
	XORQ(off, off)
	SHLQ(Imm(2), k)
	Label("axpy4_loop")
	CMPQ(off, k)
	JGE(LabelRef("axpy4_done"))
	for u := range d {
		VMOVUPS(Mem{Base: pd, Index: off, Scale: 1, Disp: 32 * u}, d[u])
	}
	for i, x := range xs {
		for u := range d {
			VFMADD231PS(Mem{Base: x, Index: off, Scale: 1, Disp: 32 * u}, as[i], d[u])
		}
	}
	for u := range d {
		VMOVUPS(d[u], Mem{Base: pd, Index: off, Scale: 1, Disp: 32 * u})
	}
	ADDQ(U32(64), off)
	JMP(LabelRef("axpy4_loop"))
	Label("axpy4_done")
	VZEROUPPER()
	RET()
}

// expConsts are the constants of expShiftAVX2, in this order; see
// core/cpu/exp.go for the algorithm, which expShiftGo follows in Go.
var expConsts = []float32{
	1.44269504,      // log2(e)
	0.693359375,     // ln 2, high part
	-2.12194440e-4,  // ln 2, low part
	1.9875691500e-4, // polynomial, highest degree first
	1.3981999507e-3,
	8.3334519073e-3,
	4.1665795894e-2,
	1.6666665459e-1,
	5.0000001201e-1,
	1,
	-87, // lowest argument: exp stays a normal float32
	88,  // highest argument sigmoid passes to exp: exp stays finite
}

// expData returns the vector-wide constants of the exp kernels, emitting
// them on first use: each constant is stored eight times over, so FMAs read
// them from memory and the 16 YMM registers are left to the data.
var expData *Mem

func expVec(i int) Mem {
	if expData == nil {
		consts := GLOBL("expconsts", attr.RODATA|attr.NOPTR)
		for i, c := range expConsts {
			for lane := range 8 {
				DATA(32*i+4*lane, F32(c))
			}
		}
		expData = &consts
	}
	return expData.Offset(32 * i)
}

// emitExp sets x = exp(x) lane by lane, with x at least lowest (and NaN
// kept); n and p are scratch registers.
func emitExp(x, lowest, n, p reg.VecVirtual) {
	// With x as the second source (Intel order), MAXPS returns x when it
	// is NaN, so a NaN propagates instead of being clamped away.
	VMAXPS(x, lowest, x)
	VMULPS(expVec(0), x, n)
	VROUNDPS(Imm(0), n, n) // to nearest
	VFNMADD231PS(expVec(1), n, x)
	VFNMADD231PS(expVec(2), n, x)
	VMOVUPS(expVec(3), p)
	for i := 4; i <= 8; i++ {
		VFMADD213PS(expVec(i), x, p)
	}
	VFMADD213PS(expVec(9), x, p) // p*r + 1, then (p*r + 1)*r + 1 = ...
	VFMADD213PS(expVec(9), x, p)
	VCVTPS2DQ(n, n)
	VPSLLD(Imm(23), n, n)
	VPADDD(n, p, x)
}

// expKernel emits func expShiftAVX2(k int, x *float32, m float32) float32
// setting x[i] = exp(x[i] - m) in place and returning their sum.
func expKernel() {
	TEXT("expShiftAVX2", NOSPLIT, "func(k int, x *float32, m float32) float32")
	Pragma("noescape")
	Doc("expShiftAVX2 sets x[i] = exp(x[i]-m) and returns their sum; k is a multiple of 8. A NaN stays NaN.")
	k := Load(Param("k"), GP64())
	px := Load(Param("x"), GP64())
	mArg, err := Param("m").Resolve()
	if err != nil {
		panic(err)
	}
	m := YMM()
	VBROADCASTSS(mArg.Addr, m)
	lowest := YMM()
	VMOVUPS(expVec(10), lowest)
	sum := YMM()
	VXORPS(sum, sum, sum)
	x, n, p := YMM(), YMM(), YMM()
	off := GP64()
	XORQ(off, off)
	SHLQ(Imm(2), k)
	Label("exp_loop")
	CMPQ(off, k)
	JGE(LabelRef("exp_done"))
	at := Mem{Base: px, Index: off, Scale: 1}
	VMOVUPS(at, x)
	VSUBPS(m, x, x)
	emitExp(x, lowest, n, p)
	VMOVUPS(x, at)
	VADDPS(x, sum, sum)
	ADDQ(U32(32), off)
	JMP(LabelRef("exp_loop"))
	Label("exp_done")
	Store(hsum(sum), ReturnIndex(0))
	VZEROUPPER()
	RET()
}

// sigmoidKernel emits func sigmoidAVX2(k int, dst, x *float32) setting
// dst[i] = 1 / (1 + exp(-x[i])), the gate of SiLU. exp's argument is
// capped at 88 (where exp is still finite), so the result is never 0/0.
func sigmoidKernel() {
	TEXT("sigmoidAVX2", NOSPLIT, "func(k int, dst, x *float32)")
	Pragma("noescape")
	Doc("sigmoidAVX2 sets dst[i] = 1/(1+exp(-x[i])); k is a multiple of 8. A NaN stays NaN.")
	k := Load(Param("k"), GP64())
	pd := Load(Param("dst"), GP64())
	px := Load(Param("x"), GP64())
	lowest, highest, zero, one := YMM(), YMM(), YMM(), YMM()
	VMOVUPS(expVec(10), lowest)
	VMOVUPS(expVec(11), highest)
	VMOVUPS(expVec(9), one)
	VXORPS(zero, zero, zero)
	x, n, p := YMM(), YMM(), YMM()
	off := GP64()
	XORQ(off, off)
	SHLQ(Imm(2), k)
	Label("sigmoid_loop")
	CMPQ(off, k)
	JGE(LabelRef("sigmoid_done"))
	VSUBPS(Mem{Base: px, Index: off, Scale: 1}, zero, x) // -x
	VMINPS(x, highest, x)                                // NaN kept, as in emitExp
	emitExp(x, lowest, n, p)
	VADDPS(one, x, x)
	VDIVPS(x, one, x) // 1 / (1 + e)
	VMOVUPS(x, Mem{Base: pd, Index: off, Scale: 1})
	ADDQ(U32(32), off)
	JMP(LabelRef("sigmoid_loop"))
	Label("sigmoid_done")
	VZEROUPPER()
	RET()
}

// The decoders below widen stored weights to float32 for the kernels:
// they run once per row (or tile) a product reads, so their speed is the
// speed of generation with a quantized or half-precision model.

// decodeKernels emits f16DecodeAVX2 and bf16DecodeAVX2.
func decodeKernels() {
	TEXT("f16DecodeAVX2", NOSPLIT, "func(k int, dst *float32, src *byte)")
	Pragma("noescape")
	Doc("f16DecodeAVX2 widens k IEEE half floats to float32 (F16C); k is a multiple of 8.")
	k := Load(Param("k"), GP64())
	pd := Load(Param("dst"), GP64())
	ps := Load(Param("src"), GP64())
	y := YMM()
	Label("f16_loop")
	TESTQ(k, k)
	JZ(LabelRef("f16_done"))
	VCVTPH2PS(Mem{Base: ps}, y)
	VMOVUPS(y, Mem{Base: pd})
	ADDQ(U32(16), ps)
	ADDQ(U32(32), pd)
	SUBQ(U32(8), k)
	JMP(LabelRef("f16_loop"))
	Label("f16_done")
	VZEROUPPER()
	RET()

	TEXT("bf16DecodeAVX2", NOSPLIT, "func(k int, dst *float32, src *byte)")
	Pragma("noescape")
	Doc("bf16DecodeAVX2 widens k bfloat16 values to float32; k is a multiple of 8.")
	k = Load(Param("k"), GP64())
	pd = Load(Param("dst"), GP64())
	ps = Load(Param("src"), GP64())
	y = YMM()
	Label("bf16_loop")
	TESTQ(k, k)
	JZ(LabelRef("bf16_done"))
	VPMOVZXWD(Mem{Base: ps}, y)
	VPSLLD(Imm(16), y, y)
	VMOVUPS(y, Mem{Base: pd})
	ADDQ(U32(16), ps)
	ADDQ(U32(32), pd)
	SUBQ(U32(8), k)
	JMP(LabelRef("bf16_loop"))
	Label("bf16_done")
	VZEROUPPER()
	RET()

}

// transposeKernel emits
//
//	func transpose8AVX2(chunks int, src *float32, ld int, dst *float32, ldd int)
//
// packing 8 rows of 8*chunks floats (rows ld floats apart) into dst, where
// step p's 8 values (one per row) land at dst[p*ldd : p*ldd+8]: the
// interleaving a panel of a packed matrix product needs, eight steps at a
// time through an 8x8 transpose in registers.
func transposeKernel() {
	TEXT("transpose8AVX2", NOSPLIT, "func(chunks int, src *float32, ld int, dst *float32, ldd int)")
	Pragma("noescape")
	Doc("transpose8AVX2 interleaves 8 rows of 8*chunks floats into panels: step p of the rows goes to dst[p*ldd:p*ldd+8].")
	n := Load(Param("chunks"), GP64())
	src := Load(Param("src"), GP64())
	ld := Load(Param("ld"), GP64())
	SHLQ(Imm(2), ld)
	pd := Load(Param("dst"), GP64())
	ldd := Load(Param("ldd"), GP64())
	SHLQ(Imm(2), ldd)
	rows := make([]reg.Register, 8)
	rows[0] = src
	for r := 1; r < 8; r++ {
		rows[r] = GP64()
		LEAQ(Mem{Base: rows[r-1], Index: ld, Scale: 1}, rows[r])
	}
	Label("transpose_loop")
	TESTQ(n, n)
	JZ(LabelRef("transpose_done"))
	in := make([]reg.VecVirtual, 8)
	for r := range in {
		in[r] = YMM()
		VMOVUPS(Mem{Base: rows[r]}, in[r])
	}
	// Pairs of rows interleaved, then pairs of pairs, then the halves of
	// the four-row groups exchanged: Intel's 8x8 float transpose.
	t := make([]reg.VecVirtual, 8)
	for i := 0; i < 8; i += 2 {
		t[i], t[i+1] = YMM(), YMM()
		VUNPCKLPS(in[i+1], in[i], t[i])
		VUNPCKHPS(in[i+1], in[i], t[i+1])
	}
	u := make([]reg.VecVirtual, 8)
	for g := 0; g < 8; g += 4 {
		for h := range 2 {
			lo, hi := t[g+h], t[g+2+h]
			u[g+2*h], u[g+2*h+1] = YMM(), YMM()
			VSHUFPS(Imm(0x44), hi, lo, u[g+2*h])
			VSHUFPS(Imm(0xEE), hi, lo, u[g+2*h+1])
		}
	}
	out := GP64()
	MOVQ(pd, out)
	for p := range 8 {
		v := YMM()
		a, b := u[p%4], u[4+p%4]
		imm := uint64(0x20)
		if p >= 4 {
			imm = 0x31
		}
		VPERM2F128(Imm(imm), b, a, v)
		VMOVUPS(v, Mem{Base: out})
		ADDQ(ldd, out)
	}
	MOVQ(out, pd)
	for _, r := range rows {
		ADDQ(U32(32), r)
	}
	DECQ(n)
	JMP(LabelRef("transpose_loop"))
	Label("transpose_done")
	VZEROUPPER()
	RET()
}
