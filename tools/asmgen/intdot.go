package main

import (
	"github.com/mmcloughlin/avo/attr"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// Integer dot products of quantized weight rows with activations rounded
// to 8-bit blocks (core/tensor's ActQ8K and ActQ8_0; core/cpu/intdot.go
// states their semantics and holds the portable versions these equal bit
// for bit). Each block's quants meet the activation bytes in vpmaddubsw
// (unsigned weight byte times signed activation byte, pairs summed to
// int16, which never saturates for these ranges) and vpmaddwd (times the
// sub-block scale, pairs summed to int32); the int32 sums are exact, so
// their order is free. The float part is scalar and in the portable
// order: per block one or two products, rounded, then one addition to a
// single running sum.

// Layout of the activation blocks.
const (
	q8kBytes = 292 // float32 d, 256 int8 qs, 16 int16 bsums
	q8kQs    = 4
	q8kBsums = 260
	// Behind a row's Q8_K blocks, core/cpu's quantizeActs puts for each
	// block the 8 int16 sums of its pairs of bsums (the sums of each
	// sub-block of 32 that Q4_K's and Q5_K's mins multiply), so that the
	// kernels do not add them again for every weight row.
	q8kPairBytes = 16
	q80Bytes     = 34 // f16 d, 32 int8 qs
)

var intConsts *Mem

// prefetchAhead is how far ahead of the block being multiplied the
// K-quant kernels prefetch weight bytes. Measured with
// BenchmarkMatVecBandwidthPaired on the 2-core Zen 3 development machine
// (median stream/x over three rounds each): no prefetch Q4_K 1.21-1.27,
// Q6_K 1.32-1.37; 1 KiB 1.18-1.25, 1.08-1.12; 2 KiB 1.06-1.18,
// 0.96-1.03; 4 KiB 1.02-1.10, 0.96-1.08.
const prefetchAhead = 2048

// Offsets into intconsts.
const (
	icNibble   = 0   // 32 bytes 0x0f
	icOne      = 32  // 32 bytes 0x01
	icBits01   = 64  // 32 bytes 0x03
	icBits23   = 96  // 32 bytes 0x0c
	icBits45   = 128 // 32 bytes 0x30
	icBits67   = 160 // 32 bytes 0xc0
	icOnes16   = 192 // 16 int16 ones
	icK4Shuf   = 256 // 8 masks of 32 bytes: byte j zero-extended into every int16 lane
	icQ6Pair   = 512 // 4 masks of 32 bytes: int16 lane 2p in the low half, 2p+1 in the high
	icQhShuf   = 640 // byte i of each half: byte i/8 (+2 in the high half) of a broadcast dword
	icBitSel   = 672 // byte i: 1<<(i%8)
	icK4Shift  = 736 // dwords 0, 0, 0, 4: per-lane shifts of the scale unpack
	icK4Low    = 752 // dwords 0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f
	icK4High   = 768 // dwords 0, 0x30303030, 0, 0x30303030
	icFifth    = 784 // 32 bytes 0x10
	icZero     = 816 // 16 zero bytes
	icConstEnd = 832
)

func intConst(off int) Mem {
	if intConsts == nil {
		m := GLOBL("intconsts", attr.RODATA|attr.NOPTR)
		b := make([]byte, icConstEnd)
		fill := func(off, n int, v byte) {
			for i := range n {
				b[off+i] = v
			}
		}
		fill(icNibble, 32, 0x0f)
		fill(icOne, 32, 0x01)
		fill(icBits01, 32, 0x03)
		fill(icBits23, 32, 0x0c)
		fill(icBits45, 32, 0x30)
		fill(icBits67, 32, 0xc0)
		for i := range 16 {
			b[icOnes16+2*i] = 1
		}
		for j := range 8 {
			for i := range 16 {
				b[icK4Shuf+32*j+2*i] = byte(j)
				b[icK4Shuf+32*j+2*i+1] = 0x80 // vpshufb: a zero byte
			}
		}
		for i := range 32 {
			b[icQhShuf+i] = byte(i%16/8 + 2*(i/16))
			b[icBitSel+i] = 1 << (i % 8)
		}
		b[icK4Shift+12] = 4
		fill(icK4Low, 4, 0x3f)
		fill(icK4Low+4, 4, 0x0f)
		fill(icK4Low+8, 4, 0x3f)
		fill(icK4Low+12, 4, 0x0f)
		fill(icK4High+4, 4, 0x30)
		fill(icK4High+12, 4, 0x30)
		fill(icFifth, 32, 0x10)
		for p := range 4 {
			for i := range 16 {
				b[icQ6Pair+32*p+i] = byte(2*(2*p) + i%2)
				b[icQ6Pair+32*p+16+i] = byte(2*(2*p+1) + i%2)
			}
		}
		for i := 0; i < len(b); i += 4 {
			DATA(i, U32(uint32(b[i])|uint32(b[i+1])<<8|uint32(b[i+2])<<16|uint32(b[i+3])<<24))
		}
		intConsts = &m
	}
	return intConsts.Offset(off)
}

// hsumInt sums the 8 int32 lanes of y into the low lane of its XMM half.
func hsumInt(y reg.VecVirtual) reg.Register {
	hi := XMM()
	VEXTRACTI128(Imm(1), y, hi)
	lo := y.AsX()
	VPADDD(hi, lo, lo)
	t := XMM()
	VPSHUFD(Imm(0x4e), lo, t)
	VPADDD(t, lo, lo)
	VPSHUFD(Imm(0xb1), lo, t)
	VPADDD(t, lo, lo)
	return lo
}

func intDotKernels() {
	for _, k := range []struct {
		name, what string
		wBytes     int
		body       intBody
	}{
		{"q4kQ8K", "Q4_K blocks with Q8_K activation blocks", 144, kScaleMinIntBody(false)},
		{"q5kQ8K", "Q5_K blocks with Q8_K activation blocks", 176, kScaleMinIntBody(true)},
		{"q6kQ8K", "Q6_K blocks with Q8_K activation blocks", 210, intBody{prep: q6kPrep, ints: q6kInts, finish: q6kFinish}},
	} {
		intDotKernel(k.name+"DotAVX2", k.what, k.wBytes, q8kBytes, k.body)
	}
	intDot32Kernel("q8Q80DotAVX2", "Q8_0 blocks with Q8_0 activation blocks", q8Weight)
	intDot32Kernel("q4Q80DotAVX2", "Q4_0 blocks with Q8_0 activation blocks", q4Weight)
	intDot32Kernel("q5Q80DotAVX2", "Q5_0 blocks with Q8_0 activation blocks", q5Weight)
}

// intBody is one weight block's contribution to a dot product.
type intBody struct {
	// prep, if set, computes from the block at pw+disp values main needs
	// (unpacked scales): the kernel runs it one block ahead, so that its
	// chain of dependent shuffles is done when main's multiply-adds want
	// its results instead of holding them up.
	prep func(pw reg.Register, disp int) []reg.VecVirtual
	// pairSums says main reads the activation block's bsum pair sums
	// (q8kPairBytes each, after the row's blocks) at paux.
	pairSums bool
	// ints computes the integer sums and the scales of the block at pw
	// against the activation block at pa (pre is prep's result for it)
	// and returns them; finish reduces and scales them and adds them to
	// the low lane of s. The kernel finishes each block during the next
	// one's integer work, so that the long chain of the reduction
	// overlaps it rather than filling the scheduler.
	ints   func(pw, pa, paux reg.Register, pre []reg.VecVirtual) []reg.VecVirtual
	finish func(carry []reg.VecVirtual, s reg.VecVirtual)
}

// hoisted holds, while a kernel's loop is emitted, the constants that it
// keeps in registers: the loops AND, shuffle and compare with a few masks
// several times a block, and as memory operands each use is one more
// load, on the load pipes these kernels are bound by (llvm-mca, znver3).
var hoisted = map[int]reg.VecVirtual{}

// hoist loads the constants at offs into registers for the loop about to
// be emitted; the returned function drops them after it.
func hoist(offs ...int) (drop func()) {
	for _, off := range offs {
		r := YMM()
		VMOVDQU(intConst(off), r)
		hoisted[off] = r
	}
	return func() { clear(hoisted) }
}

// cst is the constant at off: its register if hoisted, else memory.
func cst(off int) Op {
	if r, ok := hoisted[off]; ok {
		return r
	}
	return intConst(off)
}

// intRowsSig is the signature of every integer kernel: out[r] is the dot
// product of the weight row at w+r*stride (blocks blocks) with the
// activation row at act, for r < rows; rows and blocks are at least 1.
// One call per run of rows, rather than per row, because a row of a
// small model is a few dozen blocks, and the call, the bounds checks and
// the store around each would be a tenth of its time.
const intRowsSig = "func(rows, blocks int, w *byte, stride int, act *byte, out *float32)"

// rowLoop emits the loop over rows around row, which computes the row at
// pw (the activation row at act, blocks blocks) into the low lane of s;
// the parameters are loaded here.
func rowLoop(name string, row func(pw, act, nb reg.Register, s reg.VecVirtual)) {
	rows := Load(Param("rows"), GP64())
	nb := Load(Param("blocks"), GP64())
	prow := Load(Param("w"), GP64())
	pout := Load(Param("out"), GP64())
	Label(name + "_row")
	s := XMM()
	VXORPS(s, s, s)
	act := Load(Param("act"), GP64())
	pw := GP64()
	MOVQ(prow, pw)
	row(pw, act, nb, s)
	VMOVSS(s, Mem{Base: pout})
	ADDQ(Imm(4), pout)
	stride := Load(Param("stride"), GP64())
	ADDQ(stride, prow)
	DECQ(rows)
	JNZ(LabelRef(name + "_row"))
	VZEROUPPER()
	RET()
}

// intDotKernel emits name (intRowsSig) looping body over each row's
// blocks.
func intDotKernel(name, what string, wBytes, aBytes int, body intBody) {
	TEXT(name, NOSPLIT, intRowsSig)
	Pragma("noescape")
	Doc(name + " sets out[r] to the integer dot product of the row of " + what + " at w+r*stride with the activation row at act, for r < rows (see core/cpu/intdot.go).")
	defer hoist(icNibble)()
	rowLoop(name, func(pw, pa, nb reg.Register, s reg.VecVirtual) {
		n := GP64()
		MOVQ(nb, n)
		var paux reg.Register
		if body.pairSums {
			paux = GP64()
			IMUL3Q(U32(uint32(aBytes)), n, paux)
			ADDQ(pa, paux)
		}
		var pre []reg.VecVirtual
		if body.prep != nil {
			pre = body.prep(pw, 0)
		}
		// take returns this block's prepared values and prepares the
		// next block's, unless this is the last (never read past the
		// row).
		take := func(last string) []reg.VecVirtual {
			if body.prep == nil {
				return nil
			}
			var cur []reg.VecVirtual
			for _, v := range pre {
				c := YMM()
				VMOVDQA(v, c)
				cur = append(cur, c)
			}
			CMPQ(n, Imm(1))
			JE(LabelRef(name + last))
			for i, v := range body.prep(pw, wBytes) {
				VMOVDQA(v, pre[i])
			}
			Label(name + last)
			return cur
		}
		advance := func() {
			// The mat-vec reads each weight once, row after row: fetch
			// the lines prefetchAhead bytes on (into the next rows at a
			// row's end; a prefetch never faults), so that memory keeps
			// streaming while the core computes on this block.
			for off := 0; off < wBytes; off += 64 {
				PREFETCHT0(Mem{Base: pw, Disp: prefetchAhead + off})
			}
			ADDQ(U32(uint32(wBytes)), pw)
			ADDQ(U32(uint32(aBytes)), pa)
			if body.pairSums {
				ADDQ(U32(q8kPairBytes), paux)
			}
			DECQ(n)
		}
		// Block 0's integer work, then each block's beside the previous
		// one's finish, then the last finish.
		var carry []reg.VecVirtual
		for _, v := range body.ints(pw, pa, paux, take("_last0")) {
			c := YMM()
			VMOVDQA(v.AsY(), c)
			carry = append(carry, c)
		}
		advance()
		Label(name + "_loop")
		JZ(LabelRef(name + "_tail"))
		body.finish(carry, s)
		for i, v := range body.ints(pw, pa, paux, take("_last")) {
			VMOVDQA(v.AsY(), carry[i])
		}
		advance()
		JMP(LabelRef(name + "_loop"))
		Label(name + "_tail")
		body.finish(carry, s)
	})
}

// kScaleMinIntBody is one Q4_K (or Q5_K) block: f16 d and dmin, 12 bytes
// of 6-bit scales and mins, (Q5_K: 32 bytes of fifth bits,) 128 bytes of
// nibbles; sub-block j of 32 values is the low (j even) or high (j odd)
// nibbles of bytes 32*(j/2)..+32. Its prep unpacks the scales and mins.
func kScaleMinIntBody(five bool) intBody {
	return intBody{
		prep:     kScaleMinPrep,
		pairSums: true,
		ints: func(pw, pa, paux reg.Register, pre []reg.VecVirtual) []reg.VecVirtual {
			return kScaleMinInts(pw, pa, paux, pre[0], pre[1], five)
		},
		finish: kScaleMinFinish,
	}
}

// kScaleMinPrep unpacks the scales and mins of the Q4_K or Q5_K block at
// pw+disp (get_scale_min_k4) and returns the scale bytes sc0-7 in every
// quadword (the products pick scale j out with one vpshufb) and the mins
// as int16 in the low half. With A0, A1, A2 the three dwords of scale
// bytes, lanes [u0 u1 u2 u3] = sc0-3, sc4-7, m0-3, m4-7 are
//
//	u0 = A0 & 0x3f..        u1 = A2 & 0x0f.. | (A0 >> 2) & 0x30..
//	u2 = A1 & 0x3f..        u3 = (A2 >> 4) & 0x0f.. | (A1 >> 2) & 0x30..
func kScaleMinPrep(pw reg.Register, disp int) []reg.VecVirtual {
	raw, packed, hi6 := XMM(), XMM(), XMM()
	VMOVDQU(Mem{Base: pw, Disp: disp + 4}, raw)
	VPSHUFD(Imm(0x98), raw, packed) // A0 A2 A1 A2
	VPSRLVD(intConst(icK4Shift), packed, packed)
	VPAND(intConst(icK4Low), packed, packed)
	VPSHUFD(Imm(0x50), raw, hi6) // A0 A0 A1 A1
	VPSRLD(Imm(2), hi6, hi6)
	VPAND(intConst(icK4High), hi6, hi6)
	VPOR(hi6, packed, packed)
	scales, mins := YMM(), YMM()
	VPBROADCASTQ(packed, scales)
	VPUNPCKHBW(intConst(icZero), packed, mins.AsX()) // int16 m0-7
	return []reg.VecVirtual{scales, mins}
}

// kScaleMinInts is the integer work of a Q4_K or Q5_K block, with scales
// and mins from kScaleMinPrep: it returns the 8 lanes of sumi, the 4 of
// summ and [f16(d), f16(dmin)] * a.d.
func kScaleMinInts(pw, pa, paux reg.Register, scales, mins reg.VecVirtual, five bool) []reg.VecVirtual {
	qs := 16
	if five {
		qs = 48
	}
	// summ = sum_j m_j * (bsums[2j] + bsums[2j+1]).
	bs := XMM()
	VMOVDQU(Mem{Base: paux}, bs)
	VPMADDWD(mins.AsX(), bs, bs) // 4 partial sums of summ

	var qh reg.VecVirtual
	if five {
		qh = YMM()
		VMOVDQU(Mem{Base: pw, Disp: 16}, qh)
	}
	// The eight sub-blocks' products add up in two sums, of the even and
	// the odd pairs of sub-blocks, each pair added first: a chain of four
	// dependent additions instead of eight.
	var sums [2]reg.VecVirtual
	for jj := range 4 {
		bits := YMM()
		VMOVDQU(Mem{Base: pw, Disp: qs + 32*jj}, bits)
		var pair reg.VecVirtual
		for half := range 2 {
			j := 2*jj + half
			q := YMM()
			if half == 0 {
				VPAND(cst(icNibble), bits, q)
			} else {
				VPSRLW(Imm(4), bits, q)
				VPAND(cst(icNibble), q, q)
			}
			if five {
				h := YMM()
				if j > 0 {
					VPSRLW(Imm(uint64(j)), qh, h)
					VPAND(intConst(icOne), h, h)
				} else {
					VPAND(intConst(icOne), qh, h)
				}
				VPSLLW(Imm(4), h, h)
				VPOR(h, q, q)
			}
			VPMADDUBSW(Mem{Base: pa, Disp: q8kQs + 32*j}, q, q)
			sc := YMM()
			VPSHUFB(intConst(icK4Shuf+32*j), scales, sc)
			VPMADDWD(sc, q, q)
			if pair == nil {
				pair = q
			} else {
				VPADDD(q, pair, pair)
			}
		}
		if acc := &sums[jj%2]; *acc == nil {
			*acc = pair
		} else {
			VPADDD(pair, *acc, *acc)
		}
	}
	sumi := sums[0]
	VPADDD(sums[1], sumi, sumi)
	// [d, dmin] * a.d, each rounded.
	dd, ad := XMM(), XMM()
	VMOVD(Mem{Base: pw}, dd)
	VCVTPH2PS(dd, dd)
	VBROADCASTSS(Mem{Base: pa}, ad)
	VMULPS(ad, dd, dd)
	return []reg.VecVirtual{sumi, bs, dd}
}

// kScaleMinFinish adds a Q4_K or Q5_K block's d*sumi - dmin*summ to s,
// from kScaleMinInts' results.
func kScaleMinFinish(carry []reg.VecVirtual, s reg.VecVirtual) {
	sumi, bs, dd := carry[0], carry[1].AsX(), carry[2].AsX()
	// sumi's 8 lanes to 4 (s0-s3), then with summ's (b0-b3):
	// [s0+s2 s1+s3 b0+b2 b1+b3], its lanes paired both ways and added,
	// so lanes 0 and 1 hold sumi and summ (shuffles and adds: vphaddd
	// costs four operations on this path).
	shi := XMM()
	VEXTRACTI128(Imm(1), sumi, shi)
	si := sumi.AsX()
	VPADDD(shi, si, si)
	lo, hi := XMM(), XMM()
	VPUNPCKLQDQ(bs, si, lo)
	VPUNPCKHQDQ(bs, si, hi)
	VPADDD(hi, lo, lo)
	VPSHUFD(Imm(0xd8), lo, si) // a0 b0 a1 b1
	VPSHUFD(Imm(0x8d), lo, hi) // a1 b1 a0 b0
	VPADDD(hi, si, si)
	VCVTDQ2PS(si, si)
	// Times [sumi, summ], then the difference into s.
	t, m := XMM(), XMM()
	VMULPS(si, dd, t)
	VMOVSHDUP(t, m)
	VSUBSS(m, t, t)
	VADDSS(t, s, s)
}

// q6kInts and q6kFinish are one Q6_K block: 128 bytes of low nibbles, 64 bytes of high
// bit pairs, 16 int8 scales, f16 d. In each half of 128 values, value
// l+32p takes its low nibble from byte l (p even) or l+32 (p odd), low or
// high as p < 2 or not, its high bits from pair p of qh byte l. The -32
// offset comes off through the bsums: sum sc_j*(sum q*a - 32*bsums_j).
//
// q6kInts returns the block's 8 lanes of sumi and f16(d) * a.d.
func q6kInts(pw, pa, _ reg.Register, pre []reg.VecVirtual) []reg.VecVirtual {
	sc16, sub := pre[0], YMM()
	VMOVDQU(Mem{Base: pa, Disp: q8kBsums}, sub)
	VPMADDWD(sc16, sub, sub)
	VPSLLD(Imm(5), sub, sub)
	scHalves := pre[1:]
	var sumi reg.VecVirtual // the first vector's products, then the sum
	highMask := []int{icBits01, icBits23, icBits45, icBits67}
	for h := range 2 {
		b1, b2, hb := YMM(), YMM(), YMM()
		VMOVDQU(Mem{Base: pw, Disp: 64 * h}, b1)
		VMOVDQU(Mem{Base: pw, Disp: 64*h + 32}, b2)
		VMOVDQU(Mem{Base: pw, Disp: 128 + 32*h}, hb)
		for p := range 4 {
			q, hi := YMM(), YMM()
			src := b1
			if p%2 == 1 {
				src = b2
			}
			if p < 2 {
				VPAND(cst(icNibble), src, q)
			} else {
				VPSRLW(Imm(4), src, q)
				VPAND(cst(icNibble), q, q)
			}
			VPAND(intConst(highMask[p]), hb, hi)
			switch p {
			case 0:
				VPSLLW(Imm(4), hi, hi)
			case 1:
				VPSLLW(Imm(2), hi, hi)
			case 3:
				VPSRLW(Imm(2), hi, hi)
			}
			VPOR(hi, q, q)
			VPMADDUBSW(Mem{Base: pa, Disp: q8kQs + 128*h + 32*p}, q, q)
			// Sub-blocks 8h+2p and 8h+2p+1: their scales' int16 lanes of
			// half h, spread over the low and the high 16 bytes.
			sc := YMM()
			VPSHUFB(intConst(icQ6Pair+32*p), scHalves[h], sc)
			VPMADDWD(sc, q, q)
			if sumi == nil {
				sumi = q
			} else {
				VPADDD(q, sumi, sumi)
			}
		}
	}
	VPSUBD(sub, sumi, sumi)
	d, ad := XMM(), XMM()
	VPBROADCASTW(Mem{Base: pw, Disp: 208}, d)
	VCVTPH2PS(d, d)
	VMOVSS(Mem{Base: pa}, ad)
	VMULSS(ad, d, d)
	return []reg.VecVirtual{sumi, d}
}

// q6kFinish adds a Q6_K block's d*sumi to s, from q6kInts' results.
func q6kFinish(carry []reg.VecVirtual, s reg.VecVirtual) {
	si := hsumInt(carry[0])
	VCVTDQ2PS(si, si)
	t := XMM()
	VMULSS(si, carry[1].AsX(), t)
	VADDSS(t, s, s)
}

// q6kPrep widens the 16 int8 scales of the Q6_K block at pw+disp to
// int16 and returns them, then scales 0-7 and 8-15 each in both halves.
func q6kPrep(pw reg.Register, disp int) []reg.VecVirtual {
	sc16, lo, hi := YMM(), YMM(), YMM()
	VPMOVSXBW(Mem{Base: pw, Disp: disp + 192}, sc16)
	VPERMQ(Imm(0x44), sc16, lo)
	VPERMQ(Imm(0xee), sc16, hi)
	return []reg.VecVirtual{sc16, lo, hi}
}

// The 32-value types (Q8_0, Q4_0, Q5_0 against Q8_0 activations) take
// four blocks a step (then two, then one): their int32 sums are reduced
// together and their scales converted together, but the products still
// go into the running sum one after the other, in block order, as the
// portable code adds them. They read, after the row's activation blocks
// (at the next multiple of 4 bytes), each block's scale as float32 and
// the sum of its quants as int32 (core/cpu's quantizeActs writes them):
// the offset types (Q4_0, Q5_0) multiply their unsigned quants q, and
// take off offset*sum(a) per block, which is sum((q-offset)*a).

// weight32 describes a 32-value weight type to intDot32Kernel.
type weight32 struct {
	bytes  int // per block
	offset int // subtracted from each quant: 0 (signed quants), 8 or 16
	// load sets w to the block at pw+off's 32 quants: int8 without an
	// offset, else unsigned.
	load func(pw reg.Register, off int, w reg.VecVirtual)
	// consts are the constants load uses, kept in registers.
	consts []int
}

var (
	// Q8_0: int8 quants after the f16 d.
	q8Weight = weight32{bytes: 34, load: func(pw reg.Register, off int, w reg.VecVirtual) {
		VMOVDQU(Mem{Base: pw, Disp: off + 2}, w)
	}}
	// Q4_0: 16 bytes after d; byte l holds value l in its low nibble and
	// l+16 in its high.
	q4Weight = weight32{bytes: 18, offset: 8, load: func(pw reg.Register, off int, w reg.VecVirtual) {
		nibbles(Mem{Base: pw, Disp: off + 2}, w)
	}, consts: []int{icNibble}}
	// Q5_0: f16 d, 32 fifth bits (value j's in bit j of the little-endian
	// dword), 16 bytes of nibbles as in Q4_0.
	q5Weight = weight32{bytes: 22, offset: 16, load: func(pw reg.Register, off int, w reg.VecVirtual) {
		h := YMM()
		nibbles(Mem{Base: pw, Disp: off + 6}, w)
		VPBROADCASTD(Mem{Base: pw, Disp: off + 2}, h)
		VPSHUFB(cst(icQhShuf), h, h)
		VPAND(cst(icBitSel), h, h)
		VPCMPEQB(cst(icBitSel), h, h) // 0xff where the bit is set
		VPAND(cst(icFifth), h, h)
		VPOR(h, w, w)
	}, consts: []int{icNibble, icQhShuf, icBitSel, icFifth}}
)

// nibbles sets w's 32 bytes to the nibbles of the 16 bytes at m: low
// nibbles in the low half (values 0-15), high nibbles in the high half.
func nibbles(m Mem, w reg.VecVirtual) {
	lo, hi := XMM(), XMM()
	VMOVDQU(m, lo)
	VPSRLW(Imm(4), lo, hi)
	VINSERTI128(Imm(1), hi, lo.AsY(), w)
	VPAND(cst(icNibble), w, w)
}

// products returns the 8 int32 partial sums of w times the activation
// quants at pa+off. vpmaddubsw wants one unsigned operand: unsigned
// quants go in as they are; signed ones as their magnitudes, with their
// signs moved onto the activations (vpsignb), as ggml does. Activations
// never hold -128, so no product saturates.
func products(pa reg.Register, off int, w reg.VecVirtual, signed bool) reg.VecVirtual {
	if signed {
		a := YMM()
		VMOVDQU(Mem{Base: pa, Disp: off + 2}, a)
		VPSIGNB(w, a, a)
		VPSIGNB(w, w, w)
		VPMADDUBSW(a, w, w)
	} else {
		VPMADDUBSW(Mem{Base: pa, Disp: off + 2}, w, w)
	}
	VPMADDWD(cst(icOnes16), w, w)
	return w
}

// scalesOf sets lanes 0 to len(ms)-1 (1, 2 or 4) of x to the widened
// f16 values at ms. The halves are gathered in a general register and
// moved over once: vpinsrw from memory would take the vector load pipes
// these kernels are short of.
func scalesOf(ms []Mem, x reg.VecVirtual) {
	if len(ms) == 1 {
		VPBROADCASTW(ms[0], x)
		VCVTPH2PS(x, x)
		return
	}
	acc := GP64()
	MOVWQZX(ms[0], acc)
	for i, m := range ms[1:] {
		h := GP64()
		MOVWQZX(m, h)
		SHLQ(Imm(uint64(16*(i+1))), h)
		ORQ(h, acc)
	}
	VMOVQ(acc, x)
	VCVTPH2PS(x, x)
}

// lanes loads k (1, 2 or 4) dwords at m into the low lanes of x.
func lanes(m Mem, k int, x reg.VecVirtual) {
	switch k {
	case 1:
		VMOVD(m, x)
	case 2:
		VMOVQ(m, x)
	default:
		VMOVDQU(m, x)
	}
}

// addLanes adds lanes 0 to n-1 of p to the low lane of s, in lane order.
func addLanes(p, s reg.VecVirtual, n int) {
	VADDSS(p, s, s)
	t := XMM()
	for i := 1; i < n; i++ {
		VPERMILPS(Imm(uint64(i)), p, t)
		VADDSS(t, s, s)
	}
}

// intDot32Kernel emits func name(blocks int, w, act *byte) float32 for a
// 32-value weight type: four blocks a step, then two, then one.
func intDot32Kernel(name, what string, t weight32) {
	TEXT(name, NOSPLIT, intRowsSig)
	Pragma("noescape")
	Doc(name + " sets out[r] to the integer dot product of the row of " + what + " at w+r*stride with the activation row at act, for r < rows (see core/cpu/intdot.go).")
	defer hoist(append([]int{icOnes16}, t.consts...)...)()
	signed := t.offset == 0
	shift := map[int]uint64{8: 3, 16: 4}[t.offset]
	rowLoop(name, func(pw, pa, nb reg.Register, s reg.VecVirtual) {
		n := GP64()
		MOVQ(nb, n)
		// pd: the blocks' float32 activation scales; ps: their int32 sums.
		pd, ps := GP64(), GP64()
		IMUL3Q(Imm(q80Bytes), n, pd)
		ADDQ(Imm(3), pd)
		ANDQ(I32(-4), pd)
		ADDQ(pa, pd)
		MOVQ(n, ps)
		SHLQ(Imm(2), ps)
		ADDQ(pd, ps)
		// finish takes the int32 block sums in lanes 0 to k-1 of sums to
		// float, scales them and adds them to s.
		finish := func(sums reg.Register, k int) {
			if !signed {
				off := XMM()
				lanes(Mem{Base: ps}, k, off)
				VPSLLD(Imm(shift), off, off)
				VPSUBD(off, sums, sums)
			}
			VCVTDQ2PS(sums, sums)
			dw, da := XMM(), XMM()
			var mw []Mem
			for b := range k {
				mw = append(mw, Mem{Base: pw, Disp: b * t.bytes})
			}
			scalesOf(mw, dw)
			lanes(Mem{Base: pd}, k, da)
			VMULPS(da, dw, dw)
			VMULPS(sums, dw, dw)
			addLanes(dw, s, k)
		}
		advance := func(k int) {
			ADDQ(U32(uint32(k*t.bytes)), pw)
			ADDQ(U32(uint32(k*q80Bytes)), pa)
			ADDQ(U32(uint32(4*k)), pd)
			ADDQ(U32(uint32(4*k)), ps)
			SUBQ(Imm(uint64(k)), n)
		}
		next := map[int]string{4: "_pairs", 2: "_tail"}
		step := func(label string, k int) {
			Label(name + label)
			CMPQ(n, Imm(uint64(k)))
			JL(LabelRef(name + next[k]))
			var v []reg.VecVirtual
			for b := range k {
				w := YMM()
				t.load(pw, b*t.bytes, w)
				v = append(v, products(pa, b*q80Bytes, w, signed))
			}
			// Pairwise horizontal adds, then the halves added: lane b
			// holds block b's sum. Two blocks give [x01 x23 y01 y23 | x45
			// x67 y45 y67]; four, the same again of two such vectors.
			VPHADDD(v[1], v[0], v[0])
			if k == 4 {
				VPHADDD(v[3], v[2], v[2])
				VPHADDD(v[2], v[0], v[0])
			}
			hi := XMM()
			VEXTRACTI128(Imm(1), v[0], hi)
			VPADDD(hi, v[0].AsX(), v[0].AsX())
			if k == 2 {
				VPHADDD(v[0].AsX(), v[0].AsX(), v[0].AsX())
			}
			finish(v[0].AsX(), k)
			advance(k)
			JMP(LabelRef(name + label))
		}
		step("_quads", 4)
		step("_pairs", 2)

		Label(name + "_tail")
		TESTQ(n, n)
		JZ(LabelRef(name + "_rowdone"))
		w := YMM()
		t.load(pw, 0, w)
		finish(hsumInt(products(pa, 0, w, signed)), 1)
		Label(name + "_rowdone")
	})
}
