package main

import (
	"fmt"

	"github.com/mmcloughlin/avo/attr"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// ggml's block types, two kernels each from one description of the
// block: a decoder (q4kDecodeAVX2) that widens blocks to float32 for the
// packed product, and a fused dot product (q4kDotAVX2) that multiplies
// each decoded vector straight into the accumulators of the mat-vec of
// generation, so a weight row is read once and never written out.
//
// Both compute every value with the arithmetic of core/tensor's portable
// decoders lane for lane: scale factors are float32 products formed in a
// scalar register and broadcast, each value one conversion, one product
// (and, for the scale-and-min types, one subtraction), never fused; so the
// decoders equal tensor.Decode bit for bit. The dot kernels then sum as
// dotAVX2 does over the decoded row: two accumulators, value i going to
// accumulator (i/8)%2 in increasing order, each FMA'd with its input, and
// the same final reduction; so they equal decode-then-dot bit for bit.
// That fixes the order a block's body hands out its vectors: every
// accumulator must see its values in increasing offset.

// blockType describes one block type to the generator.
type blockType struct {
	name  string // kernel name prefix: q4k gives q4kDecodeAVX2 and q4kDotAVX2
	what  string // the doc's description of a block
	bytes int    // bytes per block
	elems int    // values per block
	// body emits the decoding of the block at ps, handing each vector of
	// 8 values to sink with the offset (in values) of its first value.
	body func(ps reg.Register, sink func(v reg.VecVirtual, off int))
}

// blockConsts are the vector constants the block bodies read, each eight
// lanes wide, emitted on first use.
var blockConsts *Mem

const (
	bcNibble    = iota // 0x0f
	bcTwoBit           // 3
	bcOne              // 1
	bcEight            // Q4_0's offset
	bcThirtyTwo        // Q6_K's offset
	bcFour             // Q3_K's offset
	bcBit0             // 1<<0..1<<7: per-lane masks selecting bits of a 32-bit qh
	bcBit8             // 1<<8..1<<15
	bcBit16            // 1<<16..1<<23
	bcBit24            // 1<<24..1<<31
	bcCount
)

func blockConst(i int) Mem {
	if blockConsts == nil {
		m := GLOBL("blockconsts", attr.RODATA|attr.NOPTR)
		for c := range bcCount {
			for l := range 8 {
				var v uint32
				switch c {
				case bcNibble:
					v = 0x0f
				case bcTwoBit:
					v = 3
				case bcOne:
					v = 1
				case bcEight:
					v = 8
				case bcThirtyTwo:
					v = 32
				case bcFour:
					v = 4
				default:
					v = 1 << (8*(c-bcBit0) + l)
				}
				DATA(32*c+4*l, U32(v))
			}
		}
		blockConsts = &m
	}
	return blockConsts.Offset(32 * i)
}

// scaledBroadcast sets y to the float32 product of scale's low lane and
// the integer in r, in every lane.
func scaledBroadcast(r reg.GPVirtual, scale reg.VecVirtual, y reg.VecVirtual) {
	x := y.AsX()
	VXORPS(x, x, x)
	VCVTSI2SSL(r, x, x)
	VMULSS(scale.AsX(), x, x)
	VBROADCASTSS(x, y)
}

// halfScale sets y to the half float at m, widened, in every lane.
func halfScale(m Mem, y reg.VecVirtual) {
	half := XMM()
	VPBROADCASTW(m, half)
	VCVTPH2PS(half, y)
}

// blockTypes are the types with generated kernels: the 32-value types of
// Q8_0, Q4_0 and Q4_K_M files (Q5_0 is what llama.cpp's Q4_K_M falls back
// to on rows that are not whole super-blocks) and every K-quant (Q2_K and
// Q3_K are most of Q2_K and Q3_K_M files).
var blockTypes = []blockType{
	{name: "q8", what: "Q8_0 blocks (34 bytes: half scale, 32 int8)", bytes: 34, elems: 32, body: q8Body},
	{name: "q4", what: "Q4_0 blocks (18 bytes: half scale, 32 nibbles offset by 8)", bytes: 18, elems: 32, body: q4Body},
	{name: "q5", what: "Q5_0 blocks (22 bytes: half scale, 32 high bits, 32 nibbles; offset 16)", bytes: 22, elems: 32, body: q5Body},
	{name: "q4k", what: "Q4_K super-blocks (144 bytes: half d and dmin, 6-bit scales and mins, 256 nibbles)", bytes: 144, elems: 256,
		body: func(ps reg.Register, sink func(reg.VecVirtual, int)) { kScaleMinBody(ps, false, sink) }},
	{name: "q5k", what: "Q5_K super-blocks (176 bytes: half d and dmin, 6-bit scales and mins, 256 high bits and nibbles)", bytes: 176, elems: 256,
		body: func(ps reg.Register, sink func(reg.VecVirtual, int)) { kScaleMinBody(ps, true, sink) }},
	{name: "q6k", what: "Q6_K super-blocks (210 bytes: 6-bit values in nibbles and pairs, int8 scales, half d)", bytes: 210, elems: 256, body: q6kBody},
	{name: "q2k", what: "Q2_K super-blocks (84 bytes: 4-bit scales and mins, 256 2-bit values, half d and dmin)", bytes: 84, elems: 256, body: q2kBody},
	{name: "q3k", what: "Q3_K super-blocks (110 bytes: 256 high bits, 256 2-bit values, 6-bit scales, half d)", bytes: 110, elems: 256, body: q3kBody},
}

// blockKernels emits the decoder and the dot kernel of every block type.
func blockKernels() {
	for _, t := range blockTypes {
		blockDecoder(t)
		blockDot(t)
	}
}

// blockDecoder emits func <name>DecodeAVX2(blocks int, dst *float32, src *byte).
func blockDecoder(t blockType) {
	name := t.name + "DecodeAVX2"
	TEXT(name, NOSPLIT, "func(blocks int, dst *float32, src *byte)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s dequantizes %s to float32.", name, t.what))
	n := Load(Param("blocks"), GP64())
	pd := Load(Param("dst"), GP64())
	ps := Load(Param("src"), GP64())
	Label(name + "_loop")
	TESTQ(n, n)
	JZ(LabelRef(name + "_done"))
	t.body(ps, func(v reg.VecVirtual, off int) {
		VMOVUPS(v, Mem{Base: pd, Disp: 4 * off})
	})
	ADDQ(U32(uint32(t.bytes)), ps)
	ADDQ(U32(uint32(4*t.elems)), pd)
	DECQ(n)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

// blockDot emits func <name>DotAVX2(blocks int, x *float32, src *byte) float32
// returning the dot product of x with the decoded blocks.
func blockDot(t blockType) {
	name := t.name + "DotAVX2"
	TEXT(name, NOSPLIT, "func(blocks int, x *float32, src *byte) float32")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s returns the dot product of x with %s, decoded in registers; equal to decoding, then dotAVX2.", name, t.what))
	n := Load(Param("blocks"), GP64())
	px := Load(Param("x"), GP64())
	ps := Load(Param("src"), GP64())
	acc := [2]reg.VecVirtual{YMM(), YMM()}
	for _, a := range acc {
		VXORPS(a, a, a)
	}
	Label(name + "_loop")
	TESTQ(n, n)
	JZ(LabelRef(name + "_reduce"))
	last := [2]int{-1, -1}
	t.body(ps, func(v reg.VecVirtual, off int) {
		// A body that handed an accumulator its values out of order would
		// lose the equality with decode-then-dot: refuse to generate it.
		u := (off / 8) % 2
		if off <= last[u] {
			panic(fmt.Sprintf("%s: value %d reaches accumulator %d after value %d", name, off, u, last[u]))
		}
		last[u] = off
		VFMADD231PS(Mem{Base: px, Disp: 4 * off}, v, acc[u])
	})
	ADDQ(U32(uint32(t.bytes)), ps)
	ADDQ(U32(uint32(4*t.elems)), px)
	DECQ(n)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_reduce")
	VADDPS(acc[1], acc[0], acc[0])
	Store(hsum(acc[0]), ReturnIndex(0))
	VZEROUPPER()
	RET()
}

// q8Body: value = d*q for 32 int8 q after the half scale d.
func q8Body(ps reg.Register, sink func(reg.VecVirtual, int)) {
	scale := YMM()
	halfScale(Mem{Base: ps}, scale)
	for g := range 4 {
		q := YMM()
		VPMOVSXBD(Mem{Base: ps, Disp: 2 + 8*g}, q)
		VCVTDQ2PS(q, q)
		VMULPS(scale, q, q)
		sink(q, 8*g)
	}
}

// q4Body: 16 bytes whose low nibbles are values 0-15 and high nibbles
// 16-31, value = d*(q-8).
func q4Body(ps reg.Register, sink func(reg.VecVirtual, int)) {
	scale := YMM()
	halfScale(Mem{Base: ps}, scale)
	for g := range 2 {
		q, hi := YMM(), YMM()
		VPMOVZXBD(Mem{Base: ps, Disp: 2 + 8*g}, q)
		VPSRLD(Imm(4), q, hi)
		VPAND(blockConst(bcNibble), q, q)
		for _, part := range []struct {
			v   reg.VecVirtual
			off int
		}{{q, 8 * g}, {hi, 16 + 8*g}} {
			VPSUBD(blockConst(bcEight), part.v, part.v)
			VCVTDQ2PS(part.v, part.v)
			VMULPS(scale, part.v, part.v)
			sink(part.v, part.off)
		}
	}
}

// q5Body: as Q4_0, with value j's fifth bit in bit j of the 32-bit qh
// (the high nibble of byte j is value j+16); value = d*(q-16). With the
// fifth bit b, q-16 is the nibble minus 16*(1-b): a compare of qh's bit
// with zero gives -1 where b is clear, which shifted left by 4 is the
// -16 to add, four integer operations instead of five.
func q5Body(ps reg.Register, sink func(reg.VecVirtual, int)) {
	scale := YMM()
	halfScale(Mem{Base: ps}, scale)
	qh, zero := YMM(), YMM()
	VPBROADCASTD(Mem{Base: ps, Disp: 2}, qh)
	VPXOR(zero, zero, zero)
	for g := range 2 {
		q, hi := YMM(), YMM()
		VPMOVZXBD(Mem{Base: ps, Disp: 6 + 8*g}, q)
		VPSRLD(Imm(4), q, hi)
		VPAND(blockConst(bcNibble), q, q)
		for _, part := range []struct {
			v    reg.VecVirtual
			off  int
			bits int
		}{{q, 8 * g, bcBit0 + g}, {hi, 16 + 8*g, bcBit16 + g}} {
			h := YMM()
			VPAND(blockConst(part.bits), qh, h)
			VPCMPEQD(zero, h, h)
			VPSLLD(Imm(4), h, h)
			VPADDD(h, part.v, part.v)
			VCVTDQ2PS(part.v, part.v)
			VMULPS(scale, part.v, part.v)
			sink(part.v, part.off)
		}
	}
}

// scaleMinK4 loads get_scale_min_k4(j) of the 12 scale bytes at ps+4
// into sc and m (t is scratch).
func scaleMinK4(ps reg.Register, j int, sc, m, t reg.GPVirtual) {
	if j < 4 {
		MOVBLZX(Mem{Base: ps, Disp: 4 + j}, sc)
		ANDL(U32(63), sc)
		MOVBLZX(Mem{Base: ps, Disp: 8 + j}, m)
		ANDL(U32(63), m)
		return
	}
	MOVBLZX(Mem{Base: ps, Disp: 8 + j}, sc)
	ANDL(U32(0x0f), sc)
	MOVBLZX(Mem{Base: ps, Disp: j}, t)
	SHRL(U8(6), t)
	SHLL(U8(4), t)
	ORL(t, sc)
	MOVBLZX(Mem{Base: ps, Disp: 8 + j}, m)
	SHRL(U8(4), m)
	MOVBLZX(Mem{Base: ps, Disp: 4 + j}, t)
	SHRL(U8(6), t)
	SHLL(U8(4), t)
	ORL(t, m)
}

// kScaleMinBody is Q4_K and Q5_K: f16 d, f16 dmin, 12 bytes of 6-bit
// scales and mins, (Q5_K: 32 bytes of high bits,) 128 bytes of nibbles;
// sub-block j of 32 values is the low (j even) or high (j odd) nibbles of
// bytes 32*(j/2)..+32 (plus 16 times bit j of qh byte l for Q5_K), value
// d*sc_j*q - dmin*m_j.
func kScaleMinBody(ps reg.Register, five bool, sink func(reg.VecVirtual, int)) {
	qs := 16
	if five {
		qs = 48
	}
	d, dmin := YMM(), YMM()
	halfScale(Mem{Base: ps}, d)
	halfScale(Mem{Base: ps, Disp: 2}, dmin)
	sc, m, t := GP32(), GP32(), GP32()
	for j := range 8 {
		dj, mj := YMM(), YMM()
		scaleMinK4(ps, j, sc, m, t)
		scaledBroadcast(sc, d, dj)
		scaledBroadcast(m, dmin, mj)
		for g := range 4 {
			q := YMM()
			VPMOVZXBD(Mem{Base: ps, Disp: qs + 32*(j/2) + 8*g}, q)
			if j%2 == 0 {
				VPAND(blockConst(bcNibble), q, q)
			} else {
				VPSRLD(Imm(4), q, q)
			}
			if five {
				hb := YMM()
				VPMOVZXBD(Mem{Base: ps, Disp: 16 + 8*g}, hb)
				if j > 0 {
					VPSRLD(Imm(uint64(j)), hb, hb)
				}
				VPAND(blockConst(bcOne), hb, hb)
				VPSLLD(Imm(4), hb, hb)
				VPOR(hb, q, q)
			}
			VCVTDQ2PS(q, q)
			VMULPS(dj, q, q)
			VSUBPS(mj, q, q)
			sink(q, 32*j+8*g)
		}
	}
}

// q2kBody is Q2_K: 16 bytes of scales (low nibble the scale, high the
// min, of 16 values each), 64 bytes of 2-bit values, f16 d and dmin. In
// each half of 128 values, the 16 values from 32*p+h (h 0 or 16) are bits
// 2p..2p+1 of bytes h..h+15 of the half's 32 bytes; value =
// d*sc*q - dmin*m, the product rounded before the difference. Vectors go
// out in offset order.
func q2kBody(ps reg.Register, sink func(reg.VecVirtual, int)) {
	d, dmin := YMM(), YMM()
	halfScale(Mem{Base: ps, Disp: 80}, d)
	halfScale(Mem{Base: ps, Disp: 82}, dmin)
	sc, m := GP32(), GP32()
	for j := range 16 { // sub-blocks of 16 values, in offset order
		nh, p, h := j/8, j%8/2, 16*(j%2)
		MOVBLZX(Mem{Base: ps, Disp: j}, sc)
		MOVL(sc, m)
		ANDL(U32(0x0f), sc)
		SHRL(U8(4), m)
		dj, mj := YMM(), YMM()
		scaledBroadcast(sc, d, dj)
		scaledBroadcast(m, dmin, mj)
		for l0 := 0; l0 < 16; l0 += 8 {
			q := YMM()
			VPMOVZXBD(Mem{Base: ps, Disp: 16 + 32*nh + h + l0}, q)
			if p > 0 {
				VPSRLD(Imm(uint64(2*p)), q, q)
			}
			VPAND(blockConst(bcTwoBit), q, q)
			VCVTDQ2PS(q, q)
			VMULPS(dj, q, q)
			VSUBPS(mj, q, q)
			sink(q, 128*nh+32*p+h+l0)
		}
	}
}

// q3kBody is Q3_K: 32 bytes of high bits, 64 bytes of 2-bit values laid
// out as Q2_K's, 12 bytes of 16 6-bit scales (offset 32; low nibbles in
// bytes 0-7, high pairs in bytes 8-11), f16 d. Value 32*p+h+l of half nh
// is its 2 bits minus 4 unless bit 4*nh+p of hmask byte h+l is set;
// value = d*sc*v. Vectors go out in offset order.
func q3kBody(ps reg.Register, sink func(reg.VecVirtual, int)) {
	d := YMM()
	halfScale(Mem{Base: ps, Disp: 108}, d)
	sc, t := GP32(), GP32()
	zero := YMM()
	VPXOR(zero, zero, zero)
	for j := range 16 {
		nh, p, h := j/8, j%8/2, 16*(j%2)
		// q3Scale: the low nibble of byte j%8 (high nibble for j >= 8),
		// two bits of byte 8+j%4, minus 32.
		MOVBLZX(Mem{Base: ps, Disp: 96 + j%8}, sc)
		if j >= 8 {
			SHRL(U8(4), sc)
		}
		ANDL(U32(0x0f), sc)
		MOVBLZX(Mem{Base: ps, Disp: 96 + 8 + j%4}, t)
		if s := 2 * (j / 4); s > 0 {
			SHRL(U8(s), t)
		}
		ANDL(U32(3), t)
		SHLL(U8(4), t)
		ORL(t, sc)
		SUBL(U32(32), sc)
		dj := YMM()
		scaledBroadcast(sc, d, dj)
		bit := 4*nh + p
		for l0 := 0; l0 < 16; l0 += 8 {
			q, hm := YMM(), YMM()
			VPMOVZXBD(Mem{Base: ps, Disp: 32 + 32*nh + h + l0}, q)
			if p > 0 {
				VPSRLD(Imm(uint64(2*p)), q, q)
			}
			VPAND(blockConst(bcTwoBit), q, q)
			// 4 where the high bit is clear: (hmask >> bit) & 1 == 0.
			VPMOVZXBD(Mem{Base: ps, Disp: h + l0}, hm)
			if bit > 0 {
				VPSRLD(Imm(uint64(bit)), hm, hm)
			}
			VPAND(blockConst(bcOne), hm, hm)
			VPCMPEQD(zero, hm, hm)
			VPAND(blockConst(bcFour), hm, hm)
			VPSUBD(hm, q, q)
			VCVTDQ2PS(q, q)
			VMULPS(dj, q, q)
			sink(q, 128*nh+32*p+h+l0)
		}
	}
}

// q6kBody is Q6_K: 128 bytes of low nibbles, 64 bytes of high 2-bit
// pairs, 16 int8 scales, f16 d. In each half of 128 values, value l+32p
// takes its low nibble from byte l (p even) or l+32 (p odd), low or high
// nibble as p < 2 or not, its high bits from pair p of qh byte l; value =
// d*sc*(q-32), sc the scale of its 16 values. Vectors go out in offset
// order (p outer), as the dot kernel needs.
func q6kBody(ps reg.Register, sink func(reg.VecVirtual, int)) {
	d := YMM()
	halfScale(Mem{Base: ps, Disp: 208}, d)
	s := GP32()
	for nh := range 2 {
		for p := range 4 {
			var sv reg.VecVirtual
			for l0 := 0; l0 < 32; l0 += 8 {
				v, tt := YMM(), YMM()
				lowAt := 64*nh + l0
				if p%2 == 1 {
					lowAt += 32
				}
				VPMOVZXBD(Mem{Base: ps, Disp: lowAt}, v)
				if p < 2 {
					VPAND(blockConst(bcNibble), v, v)
				} else {
					VPSRLD(Imm(4), v, v)
				}
				VPMOVZXBD(Mem{Base: ps, Disp: 128 + 32*nh + l0}, tt)
				if p > 0 {
					VPSRLD(Imm(uint64(2*p)), tt, tt)
				}
				VPAND(blockConst(bcTwoBit), tt, tt)
				VPSLLD(Imm(4), tt, tt)
				VPOR(tt, v, v)
				VPSUBD(blockConst(bcThirtyTwo), v, v)
				VCVTDQ2PS(v, v)
				if l0%16 == 0 { // one scale per 16 values
					sv = YMM()
					MOVBLSX(Mem{Base: ps, Disp: 192 + 8*nh + l0/16 + 2*p}, s)
					scaledBroadcast(s, d, sv)
				}
				VMULPS(sv, v, v)
				sink(v, 128*nh+32*p+l0)
			}
		}
	}
}
