//go:build !purego

#include "textflag.h"

// NEON (ASIMD) kernels for arm64, which every arm64 CPU has; see
// kernels_arm64.go for the Go side and gemm.go for the packed panels.
//
// Go's arm64 assembler has no mnemonic for several ASIMD instructions
// these kernels need (floating-point vector FADD/FMUL, FMLA by element,
// FCVTL, SCVTF, SXTL, SHLL). The macros below emit them as WORDs from
// the Arm ARM encodings; each is named as the Arm assembler writes it and
// takes register numbers in Arm's operand order (destination first), e.g.
// FMLA_E(0, 28, 24, 1) is "fmla v0.4s, v28.4s, v24.s[1]". The encodings
// are checked by disassembling a build (go tool objdump decodes them) and
// by the tests, which compare every kernel with the portable one.

// fmla vd.4s, vn.4s, vm.s[i]: vd += vn * vm[i]
#define FMLA_E(d, n, m, i) WORD $(0x4F801000 | (((i)&1)<<21) | (((i)>>1)<<11) | ((m)<<16) | ((n)<<5) | (d))
// fmul vd.4s, vn.4s, vm.s[i]: vd = vn * vm[i]
#define FMUL_E(d, n, m, i) WORD $(0x4F809000 | (((i)&1)<<21) | (((i)>>1)<<11) | ((m)<<16) | ((n)<<5) | (d))
// fadd vd.4s, vn.4s, vm.4s
#define FADD_V(d, n, m) WORD $(0x4E20D400 | ((m)<<16) | ((n)<<5) | (d))
// faddp vd.4s, vn.4s, vm.4s: pairwise sums, vn's pairs then vm's
#define FADDP_V(d, n, m) WORD $(0x6E20D400 | ((m)<<16) | ((n)<<5) | (d))
// faddp sd, vn.2s: the sum of vn's two low lanes
#define FADDP_S(d, n) WORD $(0x7E30D800 | ((n)<<5) | (d))
// fcvtl vd.4s, vn.4h: widen the four low half floats of vn
#define FCVTL(d, n) WORD $(0x0E217800 | ((n)<<5) | (d))
// fcvtl2 vd.4s, vn.8h: widen the four high half floats of vn
#define FCVTL2(d, n) WORD $(0x4E217800 | ((n)<<5) | (d))
// fcvt sd, hn: one half float to float32
#define FCVT_SH(d, n) WORD $(0x1EE24000 | ((n)<<5) | (d))
// scvtf vd.4s, vn.4s: int32 lanes to float32 (exact below 2^24)
#define SCVTF_V(d, n) WORD $(0x4E21D800 | ((n)<<5) | (d))
// sxtl vd.8h, vn.8b and sxtl2 vd.8h, vn.16b: sign-extend bytes to halves
#define SXTL_BH(d, n) WORD $(0x0F08A400 | ((n)<<5) | (d))
#define SXTL2_BH(d, n) WORD $(0x4F08A400 | ((n)<<5) | (d))
// sxtl vd.4s, vn.4h and sxtl2 vd.4s, vn.8h: sign-extend halves to words
#define SXTL_HS(d, n) WORD $(0x0F10A400 | ((n)<<5) | (d))
#define SXTL2_HS(d, n) WORD $(0x4F10A400 | ((n)<<5) | (d))
// shll vd.4s, vn.4h, #16 and shll2 vd.4s, vn.8h, #16: halves to the top of words
#define SHLL16(d, n) WORD $(0x2E613800 | ((n)<<5) | (d))
#define SHLL2_16(d, n) WORD $(0x6E613800 | ((n)<<5) | (d))
// dup vd.4s, vn.s[i]
#define DUP_E(d, n, i) WORD $(0x4E000400 | ((((i)<<3)|4)<<16) | ((n)<<5) | (d))

// Vector forms on four float32 lanes: vd = vn op vm.
#define FSUB_V(d, n, m) WORD $(0x4EA0D400 | ((m)<<16) | ((n)<<5) | (d))
#define FMUL_V(d, n, m) WORD $(0x6E20DC00 | ((m)<<16) | ((n)<<5) | (d))
#define FDIV_V(d, n, m) WORD $(0x6E20FC00 | ((m)<<16) | ((n)<<5) | (d))
// fmax/fmin: a NaN in either operand gives NaN, so NaN propagates.
#define FMAX_V(d, n, m) WORD $(0x4E20F400 | ((m)<<16) | ((n)<<5) | (d))
#define FMIN_V(d, n, m) WORD $(0x4EA0F400 | ((m)<<16) | ((n)<<5) | (d))
// fmla/fmls vd.4s, vn.4s, vm.4s: vd += vn*vm, vd -= vn*vm (fused)
#define FMLA_V(d, n, m) WORD $(0x4E20CC00 | ((m)<<16) | ((n)<<5) | (d))
#define FMLS_V(d, n, m) WORD $(0x4EA0CC00 | ((m)<<16) | ((n)<<5) | (d))
// fneg vd.4s, vn.4s
#define FNEG_V(d, n) WORD $(0x6EA0F800 | ((n)<<5) | (d))
// frintn vd.4s, vn.4s: round to nearest, ties to even
#define FRINTN_V(d, n) WORD $(0x4E218800 | ((n)<<5) | (d))
// fcvtzs vd.4s, vn.4s: float32 to int32, toward zero
#define FCVTZS_V(d, n) WORD $(0x4EA1B800 | ((n)<<5) | (d))
// shl vd.4s, vn.4s, #23 and add vd.4s, vn.4s, vm.4s (integer lanes)
#define SHL23_V(d, n) WORD $(0x4F375400 | ((n)<<5) | (d))
#define ADD_V(d, n, m) WORD $(0x4EA08400 | ((m)<<16) | ((n)<<5) | (d))
// mov vd.16b, vn.16b (orr vd, vn, vn)
#define MOV_V(d, n) WORD $(0x4EA01C00 | ((n)<<16) | ((n)<<5) | (d))

// The 12x8 micro-kernel. Rows i of the tile live in V(2i) (columns 0-3)
// and V(2i+1) (columns 4-7): 24 accumulators. Each step of k loads the
// 12 values of a's panel into V24-V26 and the 8 of b's into V28-V29, and
// multiplies every lane of a into both vectors of b (FMLA by element),
// so 5 loads feed 24 FMLAs. V27, V30 and V31 are free.
#define ROW(i) \
	FMLA_E(2*(i), 28, 24+(i)/4, (i)&3); \
	FMLA_E(2*(i)+1, 29, 24+(i)/4, (i)&3)

// Stores row i: c = alpha*sum (alpha in V31.S[0]), or c += alpha*sum
// (fused, as the amd64 kernels do) when accumulating. R3 walks the rows
// of c, R4 is their distance in bytes.
#define STORE(i, VA, VB) \
	FMUL_E(2*(i), 2*(i), 31, 0); \
	FMUL_E(2*(i)+1, 2*(i)+1, 31, 0); \
	VST1.P [VA.S4, VB.S4], (R3)(R4)

#define ACCUM(i) \
	VLD1 (R3), [V24.S4, V25.S4]; \
	FMLA_E(24, 2*(i), 31, 0); \
	FMLA_E(25, 2*(i)+1, 31, 0); \
	VST1.P [V24.S4, V25.S4], (R3)(R4)

// func gemmNEON12x8(kc int, a, b, c *float32, ldc int, alpha float32, acc bool)
TEXT ·gemmNEON12x8(SB), NOSPLIT, $0-45
	MOVD kc+0(FP), R0
	MOVD a+8(FP), R1
	MOVD b+16(FP), R2
	MOVD c+24(FP), R3
	MOVD ldc+32(FP), R4
	LSL  $2, R4, R4
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16
	VEOR V4.B16, V4.B16, V4.B16
	VEOR V5.B16, V5.B16, V5.B16
	VEOR V6.B16, V6.B16, V6.B16
	VEOR V7.B16, V7.B16, V7.B16
	VEOR V8.B16, V8.B16, V8.B16
	VEOR V9.B16, V9.B16, V9.B16
	VEOR V10.B16, V10.B16, V10.B16
	VEOR V11.B16, V11.B16, V11.B16
	VEOR V12.B16, V12.B16, V12.B16
	VEOR V13.B16, V13.B16, V13.B16
	VEOR V14.B16, V14.B16, V14.B16
	VEOR V15.B16, V15.B16, V15.B16
	VEOR V16.B16, V16.B16, V16.B16
	VEOR V17.B16, V17.B16, V17.B16
	VEOR V18.B16, V18.B16, V18.B16
	VEOR V19.B16, V19.B16, V19.B16
	VEOR V20.B16, V20.B16, V20.B16
	VEOR V21.B16, V21.B16, V21.B16
	VEOR V22.B16, V22.B16, V22.B16
	VEOR V23.B16, V23.B16, V23.B16

gemm_loop:
	VLD1.P 48(R1), [V24.S4, V25.S4, V26.S4]
	VLD1.P 32(R2), [V28.S4, V29.S4]
	ROW(0)
	ROW(1)
	ROW(2)
	ROW(3)
	ROW(4)
	ROW(5)
	ROW(6)
	ROW(7)
	ROW(8)
	ROW(9)
	ROW(10)
	ROW(11)
	SUBS $1, R0, R0
	BNE  gemm_loop

	FMOVS    alpha+40(FP), F31
	MOVBU    acc+44(FP), R5
	CBNZ     R5, gemm_acc
	STORE(0, V0, V1)
	STORE(1, V2, V3)
	STORE(2, V4, V5)
	STORE(3, V6, V7)
	STORE(4, V8, V9)
	STORE(5, V10, V11)
	STORE(6, V12, V13)
	STORE(7, V14, V15)
	STORE(8, V16, V17)
	STORE(9, V18, V19)
	STORE(10, V20, V21)
	STORE(11, V22, V23)
	RET

gemm_acc:
	ACCUM(0)
	ACCUM(1)
	ACCUM(2)
	ACCUM(3)
	ACCUM(4)
	ACCUM(5)
	ACCUM(6)
	ACCUM(7)
	ACCUM(8)
	ACCUM(9)
	ACCUM(10)
	ACCUM(11)
	RET

// Sums the four lanes of V(v) into F(v).
#define HSUM(v) \
	FADDP_V(v, v, v); \
	FADDP_S(v, v)

// func dotNEON(k int, x, y *float32) float32
// k is a multiple of 16; four accumulators hide the FMLA latency.
TEXT ·dotNEON(SB), NOSPLIT, $0-28
	MOVD k+0(FP), R0
	MOVD x+8(FP), R1
	MOVD y+16(FP), R2
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16

dot_loop:
	VLD1.P 64(R1), [V4.S4, V5.S4, V6.S4, V7.S4]
	VLD1.P 64(R2), [V16.S4, V17.S4, V18.S4, V19.S4]
	VFMLA  V4.S4, V16.S4, V0.S4
	VFMLA  V5.S4, V17.S4, V1.S4
	VFMLA  V6.S4, V18.S4, V2.S4
	VFMLA  V7.S4, V19.S4, V3.S4
	SUBS   $16, R0, R0
	BNE    dot_loop

	FADD_V(0, 0, 1)
	FADD_V(2, 2, 3)
	FADD_V(0, 0, 2)
	HSUM(0)
	FMOVS F0, ret+24(FP)
	RET

// func dot4NEON(k int, x, w0, w1, w2, w3, out *float32)
// The dot products of x with w0..w3 into out[0..3]; k is a multiple of
// 16. x's 16 values (V16-V19) meet each w in turn; w_r sums into V(2r)
// and V(2r+1).
#define DOT4ROW(R, VA, VB) \
	VLD1.P 64(R), [V20.S4, V21.S4, V22.S4, V23.S4]; \
	VFMLA  V16.S4, V20.S4, VA.S4; \
	VFMLA  V17.S4, V21.S4, VB.S4; \
	VFMLA  V18.S4, V22.S4, VA.S4; \
	VFMLA  V19.S4, V23.S4, VB.S4

TEXT ·dot4NEON(SB), NOSPLIT, $0-56
	MOVD k+0(FP), R0
	MOVD x+8(FP), R1
	MOVD w0+16(FP), R2
	MOVD w1+24(FP), R3
	MOVD w2+32(FP), R4
	MOVD w3+40(FP), R5
	MOVD out+48(FP), R6
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16
	VEOR V4.B16, V4.B16, V4.B16
	VEOR V5.B16, V5.B16, V5.B16
	VEOR V6.B16, V6.B16, V6.B16
	VEOR V7.B16, V7.B16, V7.B16

dot4_loop:
	VLD1.P 64(R1), [V16.S4, V17.S4, V18.S4, V19.S4]
	DOT4ROW(R2, V0, V1)
	DOT4ROW(R3, V2, V3)
	DOT4ROW(R4, V4, V5)
	DOT4ROW(R5, V6, V7)
	SUBS $16, R0, R0
	BNE  dot4_loop

	FADD_V(0, 0, 1)
	FADD_V(2, 2, 3)
	FADD_V(4, 4, 5)
	FADD_V(6, 6, 7)
	// Pairwise twice turns V0, V2, V4, V6 into their four sums.
	FADDP_V(0, 0, 2)
	FADDP_V(4, 4, 6)
	FADDP_V(0, 0, 4)
	VST1 [V0.S4], (R6)
	RET

// func axpyNEON(k int, dst, x *float32, alpha float32)
// dst += alpha*x (fused); k is a multiple of 16.
TEXT ·axpyNEON(SB), NOSPLIT, $0-28
	MOVD  k+0(FP), R0
	MOVD  dst+8(FP), R1
	MOVD  x+16(FP), R2
	FMOVS alpha+24(FP), F31

axpy_loop:
	VLD1   (R1), [V0.S4, V1.S4, V2.S4, V3.S4]
	VLD1.P 64(R2), [V4.S4, V5.S4, V6.S4, V7.S4]
	FMLA_E(0, 4, 31, 0)
	FMLA_E(1, 5, 31, 0)
	FMLA_E(2, 6, 31, 0)
	FMLA_E(3, 7, 31, 0)
	VST1.P [V0.S4, V1.S4, V2.S4, V3.S4], 64(R1)
	SUBS   $16, R0, R0
	BNE    axpy_loop
	RET

// func axpy4NEON(k int, dst, x0, x1, x2, x3 *float32, a0, a1, a2, a3 float32)
// dst += a0*x0 + a1*x1 + a2*x2 + a3*x3, the four products summed first
// as axpy4Go writes it; k is a multiple of 16. a0..a3 sit in V31's lanes.
#define AXPY4TERM(R, lane) \
	VLD1.P 64(R), [V4.S4, V5.S4, V6.S4, V7.S4]; \
	FMLA_E(8, 4, 31, lane); \
	FMLA_E(9, 5, 31, lane); \
	FMLA_E(10, 6, 31, lane); \
	FMLA_E(11, 7, 31, lane)

TEXT ·axpy4NEON(SB), NOSPLIT, $0-64
	MOVD  k+0(FP), R0
	MOVD  dst+8(FP), R1
	MOVD  x0+16(FP), R2
	MOVD  x1+24(FP), R3
	MOVD  x2+32(FP), R4
	MOVD  x3+40(FP), R5
	FMOVS a0+48(FP), F31
	FMOVS a1+52(FP), F30
	VMOV  V30.S[0], V31.S[1]
	FMOVS a2+56(FP), F30
	VMOV  V30.S[0], V31.S[2]
	FMOVS a3+60(FP), F30
	VMOV  V30.S[0], V31.S[3]

axpy4_loop:
	VLD1.P 64(R2), [V4.S4, V5.S4, V6.S4, V7.S4]
	FMUL_E(8, 4, 31, 0)
	FMUL_E(9, 5, 31, 0)
	FMUL_E(10, 6, 31, 0)
	FMUL_E(11, 7, 31, 0)
	AXPY4TERM(R3, 1)
	AXPY4TERM(R4, 2)
	AXPY4TERM(R5, 3)
	VLD1   (R1), [V0.S4, V1.S4, V2.S4, V3.S4]
	FADD_V(0, 0, 8)
	FADD_V(1, 1, 9)
	FADD_V(2, 2, 10)
	FADD_V(3, 3, 11)
	VST1.P [V0.S4, V1.S4, V2.S4, V3.S4], 64(R1)
	SUBS   $16, R0, R0
	BNE    axpy4_loop
	RET

// The constants of the exp kernels, as in core/cpu/exp.go (exp32, whose
// steps these kernels take four lanes at a time): log2(e), ln 2 in a high
// and a low part, the polynomial from its highest degree, 1, the lowest
// argument (-87: exp stays a normal float32) and the highest sigmoid
// passes to exp (88: exp stays finite).
DATA neonexp<>+0(SB)/4, $0x3fb8aa3b  // log2(e)
DATA neonexp<>+4(SB)/4, $0x3f318000  // ln 2, high part
DATA neonexp<>+8(SB)/4, $0xb95e8083  // ln 2, low part
DATA neonexp<>+12(SB)/4, $0x39506967 // 1.9875691500e-4
DATA neonexp<>+16(SB)/4, $0x3ab743ce // 1.3981999507e-3
DATA neonexp<>+20(SB)/4, $0x3c088908 // 8.3334519073e-3
DATA neonexp<>+24(SB)/4, $0x3d2aa9c1 // 4.1665795894e-2
DATA neonexp<>+28(SB)/4, $0x3e2aaaaa // 1.6666665459e-1
DATA neonexp<>+32(SB)/4, $0x3f000000 // 5.0000001201e-1
DATA neonexp<>+36(SB)/4, $0x3f800000 // 1
DATA neonexp<>+40(SB)/4, $0xc2ae0000 // -87
DATA neonexp<>+44(SB)/4, $0x42b00000 // 88
GLOBL neonexp<>(SB), RODATA|NOPTR, $48

// Broadcasts the exp constants into V16-V27, one per register, in the
// table's order: V16 log2(e), V17-V18 ln 2, V19-V24 the polynomial, V25
// one, V26 the lowest argument, V27 the highest. R5 is clobbered.
#define EXPCONSTS \
	MOVD $neonexp<>(SB), R5; \
	VLD1 (R5), [V28.S4, V29.S4, V30.S4]; \
	VDUP V28.S[0], V16.S4; \
	VDUP V28.S[1], V17.S4; \
	VDUP V28.S[2], V18.S4; \
	VDUP V28.S[3], V19.S4; \
	VDUP V29.S[0], V20.S4; \
	VDUP V29.S[1], V21.S4; \
	VDUP V29.S[2], V22.S4; \
	VDUP V29.S[3], V23.S4; \
	VDUP V30.S[0], V24.S4; \
	VDUP V30.S[1], V25.S4; \
	VDUP V30.S[2], V26.S4; \
	VDUP V30.S[3], V27.S4

// Sets V(x) = exp(V(x)) lane by lane as exp32 does, with V(n), V(p) and
// V(t) as scratch: x = max(x, -87) (NaN kept); n = round(x*log2e); r = x -
// n*ln2 (two fused steps); p = the polynomial in r by Horner's rule, each
// step fused (t and p take turns, as FMLA adds into its destination);
// then (p*r + 1)*r + 1, and n added to the exponent bits.
#define EXP(x, n, p, t) \
	FMAX_V(x, x, 26); \
	FMUL_V(n, x, 16); \
	FRINTN_V(n, n); \
	FMLS_V(x, n, 17); \
	FMLS_V(x, n, 18); \
	MOV_V(p, 20); \
	FMLA_V(p, 19, x); \
	MOV_V(t, 21); \
	FMLA_V(t, p, x); \
	MOV_V(p, 22); \
	FMLA_V(p, t, x); \
	MOV_V(t, 23); \
	FMLA_V(t, p, x); \
	MOV_V(p, 24); \
	FMLA_V(p, t, x); \
	MOV_V(t, 25); \
	FMLA_V(t, p, x); \
	MOV_V(p, 25); \
	FMLA_V(p, t, x); \
	FCVTZS_V(n, n); \
	SHL23_V(n, n); \
	ADD_V(x, n, p)

// func expShiftNEON(k int, x *float32, m float32) float32
// x[i] = exp(x[i] - m), returning their sum; k is a multiple of 8, taken
// as two vectors per step.
TEXT ·expShiftNEON(SB), NOSPLIT, $0-28
	MOVD  k+0(FP), R0
	MOVD  x+8(FP), R1
	FMOVS m+16(FP), F9
	VDUP  V9.S[0], V9.S4
	VEOR  V8.B16, V8.B16, V8.B16
	EXPCONSTS

exp_loop:
	VLD1   (R1), [V0.S4, V1.S4]
	FSUB_V(0, 0, 9)
	FSUB_V(1, 1, 9)
	EXP(0, 2, 4, 6)
	EXP(1, 3, 5, 7)
	FADD_V(8, 8, 0)
	FADD_V(8, 8, 1)
	VST1.P [V0.S4, V1.S4], 32(R1)
	SUBS   $8, R0, R0
	BNE    exp_loop

	HSUM(8)
	FMOVS F8, ret+24(FP)
	RET

// func sigmoidNEON(k int, dst, x *float32)
// dst[i] = 1/(1+exp(-x[i])), exp's argument capped at 88 so the result is
// never 0/0; k is a multiple of 8. A NaN stays NaN.
TEXT ·sigmoidNEON(SB), NOSPLIT, $0-24
	MOVD k+0(FP), R0
	MOVD dst+8(FP), R1
	MOVD x+16(FP), R2
	EXPCONSTS

sigmoid_loop:
	VLD1.P 32(R2), [V0.S4, V1.S4]
	FNEG_V(0, 0)
	FNEG_V(1, 1)
	FMIN_V(0, 0, 27)
	FMIN_V(1, 1, 27)
	EXP(0, 2, 4, 6)
	EXP(1, 3, 5, 7)
	FADD_V(0, 0, 25)
	FADD_V(1, 1, 25)
	FDIV_V(0, 25, 0)
	FDIV_V(1, 25, 1)
	VST1.P [V0.S4, V1.S4], 32(R1)
	SUBS   $8, R0, R0
	BNE    sigmoid_loop
	RET

// func f16DecodeNEON(k int, dst *float32, src *byte)
// Widens k half floats (k a multiple of 8) with FCVTL, exactly as
// tensor.F16ToF32 (subnormals included) except that a signalling NaN
// comes out quiet, as with the amd64 kernels' F16C.
TEXT ·f16DecodeNEON(SB), NOSPLIT, $0-24
	MOVD k+0(FP), R0
	MOVD dst+8(FP), R1
	MOVD src+16(FP), R2

f16_loop:
	VLD1.P 16(R2), [V0.H8]
	FCVTL(1, 0)
	FCVTL2(2, 0)
	VST1.P [V1.S4, V2.S4], 32(R1)
	SUBS   $8, R0, R0
	BNE    f16_loop
	RET

// func bf16DecodeNEON(k int, dst *float32, src *byte)
// Widens k bfloat16 values (k a multiple of 8): each is the top half of
// its float32, so SHLL by 16 is exact.
TEXT ·bf16DecodeNEON(SB), NOSPLIT, $0-24
	MOVD k+0(FP), R0
	MOVD dst+8(FP), R1
	MOVD src+16(FP), R2

bf16_loop:
	VLD1.P 16(R2), [V0.H8]
	SHLL16(1, 0)
	SHLL2_16(2, 0)
	VST1.P [V1.S4, V2.S4], 32(R1)
	SUBS   $8, R0, R0
	BNE    bf16_loop
	RET

// Reads a block's f16 scale at R2 (advancing R2) into V30.S[0] as float32.
#define BLOCKSCALE \
	MOVHU.P 2(R2), R5; \
	FMOVS   R5, F30; \
	FCVT_SH(30, 30)

// Widens the 16 int8 lanes of V(q) to float32, multiplies them by the
// block scale (V30.S[0]) and stores them at R1 (advancing it): d*q, one
// rounding, as tensor.Decode computes it. V2-V7 are clobbered.
#define WIDEN16(q) \
	SXTL_BH(6, q); \
	SXTL2_BH(7, q); \
	SXTL_HS(2, 6); \
	SXTL2_HS(3, 6); \
	SXTL_HS(4, 7); \
	SXTL2_HS(5, 7); \
	SCVTF_V(2, 2); \
	SCVTF_V(3, 3); \
	SCVTF_V(4, 4); \
	SCVTF_V(5, 5); \
	FMUL_E(2, 2, 30, 0); \
	FMUL_E(3, 3, 30, 0); \
	FMUL_E(4, 4, 30, 0); \
	FMUL_E(5, 5, 30, 0); \
	VST1.P [V2.S4, V3.S4, V4.S4, V5.S4], 64(R1)

// func q8DecodeNEON(blocks int, dst *float32, src *byte)
// Q8_0 blocks: an f16 scale d, then 32 int8 q; value d*q.
TEXT ·q8DecodeNEON(SB), NOSPLIT, $0-24
	MOVD blocks+0(FP), R0
	MOVD dst+8(FP), R1
	MOVD src+16(FP), R2

q8_loop:
	BLOCKSCALE
	VLD1.P 32(R2), [V0.B16, V1.B16]
	WIDEN16(0)
	WIDEN16(1)
	SUBS   $1, R0, R0
	BNE    q8_loop
	RET

// func q4DecodeNEON(blocks int, dst *float32, src *byte)
// Q4_0 blocks: an f16 scale d, then 16 bytes; element j < 16 is byte j's
// low nibble, element j+16 its high nibble; value d*(q-8).
TEXT ·q4DecodeNEON(SB), NOSPLIT, $0-24
	MOVD  blocks+0(FP), R0
	MOVD  dst+8(FP), R1
	MOVD  src+16(FP), R2
	VMOVI $15, V31.B16
	VMOVI $8, V29.B16

q4_loop:
	BLOCKSCALE
	VLD1.P 16(R2), [V0.B16]
	VAND   V31.B16, V0.B16, V1.B16
	VUSHR  $4, V0.B16, V0.B16
	VSUB   V29.B16, V1.B16, V1.B16
	VSUB   V29.B16, V0.B16, V0.B16
	WIDEN16(1)
	WIDEN16(0)
	SUBS   $1, R0, R0
	BNE    q4_loop
	RET

// The K-quant decoders take each super-block's sub-block scales already
// multiplied out by the Go wrapper (decodeKQuantNEON), in float32 exactly
// as tensor.Decode rounds them, 16 per block at R3; the assembly does the
// 256 values.

// Widens the 16 int8 lanes of V(q) to float32 into V8-V11 and multiplies
// them by lane i of V(m). V12-V13 are clobbered.
#define WIDENSC(q, m, i) \
	SXTL_BH(12, q); \
	SXTL2_BH(13, q); \
	SXTL_HS(8, 12); \
	SXTL2_HS(9, 12); \
	SXTL_HS(10, 13); \
	SXTL2_HS(11, 13); \
	SCVTF_V(8, 8); \
	SCVTF_V(9, 9); \
	SCVTF_V(10, 10); \
	SCVTF_V(11, 11); \
	FMUL_E(8, 8, m, i); \
	FMUL_E(9, 9, m, i); \
	FMUL_E(10, 10, m, i); \
	FMUL_E(11, 11, m, i)

#define STORE16 VST1.P [V8.S4, V9.S4, V10.S4, V11.S4], 64(R1)

// Q4_K sub-block s (32 values) from the nibbles in V(q0), V(q1): the
// scales are V20-V21 (d*sc per sub-block), the offsets V22-V23
// (dmin*m); value = d*sc*q - dmin*m, rounded after the product as
// tensor.Decode does (no fused multiply-subtract).
#define Q4KSUB16(q, s) \
	WIDENSC(q, 20+(s)/4, (s)&3); \
	DUP_E(24, 22+(s)/4, (s)&3); \
	FSUB_V(8, 8, 24); \
	FSUB_V(9, 9, 24); \
	FSUB_V(10, 10, 24); \
	FSUB_V(11, 11, 24); \
	STORE16

// Q4_K's 32 bytes of quants for sub-blocks 2j (low nibbles) and 2j+1
// (high nibbles).
#define Q4KPAIR(j) \
	VLD1.P 32(R2), [V0.B16, V1.B16]; \
	VAND   V31.B16, V0.B16, V2.B16; \
	VAND   V31.B16, V1.B16, V3.B16; \
	VUSHR  $4, V0.B16, V4.B16; \
	VUSHR  $4, V1.B16, V5.B16; \
	Q4KSUB16(2, 2*(j)); \
	Q4KSUB16(3, 2*(j)); \
	Q4KSUB16(4, 2*(j)+1); \
	Q4KSUB16(5, 2*(j)+1)

// func q4kDecodeNEON(blocks int, dst *float32, src *byte, scales *float32)
// Q4_K super-blocks of 144 bytes: f16 d and dmin, 12 bytes of packed
// 6-bit scales and mins (unpacked by the caller into scales: per block
// d*sc for the 8 sub-blocks, then dmin*m), 128 bytes of nibbles.
TEXT ·q4kDecodeNEON(SB), NOSPLIT, $0-32
	MOVD  blocks+0(FP), R0
	MOVD  dst+8(FP), R1
	MOVD  src+16(FP), R2
	MOVD  scales+24(FP), R3
	VMOVI $15, V31.B16

q4k_loop:
	ADD    $16, R2, R2 // past d, dmin and the packed scales
	VLD1.P 64(R3), [V20.S4, V21.S4, V22.S4, V23.S4]
	Q4KPAIR(0)
	Q4KPAIR(1)
	Q4KPAIR(2)
	Q4KPAIR(3)
	SUBS   $1, R0, R0
	BNE    q4k_loop
	RET

// Q5_K's 32 bytes of low nibbles for sub-blocks 2j and 2j+1, with their
// fifth bits from qh (V26-V27, shifted right by 2 after each pair, so the
// pair's bits are always bits 0 and 1): value l of sub-block 2j gets 16
// when bit 2j of qh[l] is set, of 2j+1 when bit 2j+1 is. V25 is 0x10 in
// every byte.
#define Q5KPAIR(j) \
	VLD1.P 32(R2), [V0.B16, V1.B16]; \
	VAND   V31.B16, V0.B16, V2.B16; \
	VAND   V31.B16, V1.B16, V3.B16; \
	VUSHR  $4, V0.B16, V4.B16; \
	VUSHR  $4, V1.B16, V5.B16; \
	VSHL   $4, V26.B16, V6.B16; \
	VSHL   $4, V27.B16, V7.B16; \
	VAND   V25.B16, V6.B16, V6.B16; \
	VAND   V25.B16, V7.B16, V7.B16; \
	VORR   V6.B16, V2.B16, V2.B16; \
	VORR   V7.B16, V3.B16, V3.B16; \
	VSHL   $3, V26.B16, V6.B16; \
	VSHL   $3, V27.B16, V7.B16; \
	VAND   V25.B16, V6.B16, V6.B16; \
	VAND   V25.B16, V7.B16, V7.B16; \
	VORR   V6.B16, V4.B16, V4.B16; \
	VORR   V7.B16, V5.B16, V5.B16; \
	VUSHR  $2, V26.B16, V26.B16; \
	VUSHR  $2, V27.B16, V27.B16; \
	Q4KSUB16(2, 2*(j)); \
	Q4KSUB16(3, 2*(j)); \
	Q4KSUB16(4, 2*(j)+1); \
	Q4KSUB16(5, 2*(j)+1)

// func q5kDecodeNEON(blocks int, dst *float32, src *byte, scales *float32)
// Q5_K super-blocks of 176 bytes: f16 d and dmin, 12 bytes of packed
// scales and mins (unpacked by the caller as for Q4_K), 32 bytes of fifth
// bits (qh), 128 bytes of nibbles; value = d*sc*q - dmin*m.
TEXT ·q5kDecodeNEON(SB), NOSPLIT, $0-32
	MOVD  blocks+0(FP), R0
	MOVD  dst+8(FP), R1
	MOVD  src+16(FP), R2
	MOVD  scales+24(FP), R3
	VMOVI $15, V31.B16
	VMOVI $0x10, V25.B16

q5k_loop:
	ADD    $16, R2, R2 // past d, dmin and the packed scales
	VLD1.P 32(R2), [V26.B16, V27.B16]
	VLD1.P 64(R3), [V20.S4, V21.S4, V22.S4, V23.S4]
	Q5KPAIR(0)
	Q5KPAIR(1)
	Q5KPAIR(2)
	Q5KPAIR(3)
	SUBS   $1, R0, R0
	BNE    q5k_loop
	RET

// Q6_K: V6 holds 16 six-bit quants (0-63); subtracts 32 and stores them
// times the scale of group g (V20-V23, d*sc per 16 values).
#define Q6KOUT(g) \
	VSUB V29.B16, V6.B16, V6.B16; \
	WIDENSC(6, 20+(g)/4, (g)&3); \
	STORE16

// One half (128 values) of a Q6_K super-block, as dequantize_row_q6_K
// walks it: with ql the half's 64 bytes of low nibbles (V0-V3) and qh its
// 32 bytes of high bit pairs (V4-V5), value l of each quarter is
//   q1 = ql[l]&15    | (qh[l]&3)<<4        (values 0-31)
//   q2 = ql[l+32]&15 | (qh[l]>>2&3)<<4     (32-63)
//   q3 = ql[l]>>4    | (qh[l]>>4&3)<<4     (64-95)
//   q4 = ql[l+32]>>4 | (qh[l]>>6)<<4       (96-127)
// V28 is 0x30 in every byte, V31 0x0f; the high pairs are moved to bits
// 4-5 and masked with V28.
#define Q6KHALF(n) \
	VLD1.P 64(R2), [V0.B16, V1.B16, V2.B16, V3.B16]; \
	VLD1.P 32(R4), [V4.B16, V5.B16]; \
	VAND   V31.B16, V0.B16, V6.B16; \
	VSHL   $4, V4.B16, V7.B16; \
	VAND   V28.B16, V7.B16, V7.B16; \
	VORR   V7.B16, V6.B16, V6.B16; \
	Q6KOUT(8*(n)+0); \
	VAND   V31.B16, V1.B16, V6.B16; \
	VSHL   $4, V5.B16, V7.B16; \
	VAND   V28.B16, V7.B16, V7.B16; \
	VORR   V7.B16, V6.B16, V6.B16; \
	Q6KOUT(8*(n)+1); \
	VAND   V31.B16, V2.B16, V6.B16; \
	VSHL   $2, V4.B16, V7.B16; \
	VAND   V28.B16, V7.B16, V7.B16; \
	VORR   V7.B16, V6.B16, V6.B16; \
	Q6KOUT(8*(n)+2); \
	VAND   V31.B16, V3.B16, V6.B16; \
	VSHL   $2, V5.B16, V7.B16; \
	VAND   V28.B16, V7.B16, V7.B16; \
	VORR   V7.B16, V6.B16, V6.B16; \
	Q6KOUT(8*(n)+3); \
	VUSHR  $4, V0.B16, V6.B16; \
	VAND   V28.B16, V4.B16, V7.B16; \
	VORR   V7.B16, V6.B16, V6.B16; \
	Q6KOUT(8*(n)+4); \
	VUSHR  $4, V1.B16, V6.B16; \
	VAND   V28.B16, V5.B16, V7.B16; \
	VORR   V7.B16, V6.B16, V6.B16; \
	Q6KOUT(8*(n)+5); \
	VUSHR  $4, V2.B16, V6.B16; \
	VUSHR  $2, V4.B16, V7.B16; \
	VAND   V28.B16, V7.B16, V7.B16; \
	VORR   V7.B16, V6.B16, V6.B16; \
	Q6KOUT(8*(n)+6); \
	VUSHR  $4, V3.B16, V6.B16; \
	VUSHR  $2, V5.B16, V7.B16; \
	VAND   V28.B16, V7.B16, V7.B16; \
	VORR   V7.B16, V6.B16, V6.B16; \
	Q6KOUT(8*(n)+7)

// func q6kDecodeNEON(blocks int, dst *float32, src *byte, scales *float32)
// Q6_K super-blocks of 210 bytes: 128 bytes of low nibbles (ql), 64 of
// high bit pairs (qh), 16 int8 scales and an f16 d (multiplied out by the
// caller into scales: d*sc, 16 per block); value = d*sc*(q-32).
TEXT ·q6kDecodeNEON(SB), NOSPLIT, $0-32
	MOVD  blocks+0(FP), R0
	MOVD  dst+8(FP), R1
	MOVD  src+16(FP), R2
	MOVD  scales+24(FP), R3
	VMOVI $15, V31.B16
	VMOVI $0x30, V28.B16
	VMOVI $32, V29.B16

q6k_loop:
	ADD    $128, R2, R4 // qh
	VLD1.P 64(R3), [V20.S4, V21.S4, V22.S4, V23.S4]
	Q6KHALF(0)
	Q6KHALF(1)
	ADD    $82, R2, R2 // past qh, the scales and d to the next block
	SUBS   $1, R0, R0
	BNE    q6k_loop
	RET
