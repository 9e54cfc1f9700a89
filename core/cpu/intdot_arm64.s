//go:build !purego

#include "textflag.h"

// NEON integer dot kernels (intdot.go states what they compute): the
// weight blocks' quants meet the 8-bit activation blocks in SDOT (the
// ARMv8.2 dot-product extension: four int8 products summed into each
// int32 lane), which intdot_arm64.go checks for before switching them in.
// Each block's integer sums are exact, so their order is free; the float
// part is scalar FMUL/FADD/FSUB (never fused), in the portable kernel's
// order, so every kernel equals the portable one bit for bit. Their speed
// on arm64 hardware is unmeasured: they are tested under qemu-user, whose
// timings say nothing about it.
//
// The Go assembler has no mnemonic for these instructions; the macros
// emit them from the Arm ARM encodings (checked against llvm-mc), named
// as the Arm assembler writes them, registers in Arm's order (destination
// first): SDOT(8, 6, 2) is "sdot v8.4s, v6.16b, v2.16b".

// sdot vd.4s, vn.16b, vm.16b: each int32 lane of vd += the sum of the
// four products of the matching int8 lanes of vn and vm
#define SDOT(d, n, m) WORD $(0x4E809400 | ((m)<<16) | ((n)<<5) | (d))
// mul vd.4s, vn.4s, vm.4s and mla vd.4s, vn.4s, vm.4s (vd += vn*vm), int32
#define MUL_S(d, n, m) WORD $(0x4EA09C00 | ((m)<<16) | ((n)<<5) | (d))
#define MLA_S(d, n, m) WORD $(0x4EA09400 | ((m)<<16) | ((n)<<5) | (d))
// smull vd.4s, vn.4h, vm.4h and smlal2 vd.4s, vn.8h, vm.8h: int16
// products widened to int32 (the low four lanes; the high four,
// accumulated)
#define SMULL_H(d, n, m) WORD $(0x0E60C000 | ((m)<<16) | ((n)<<5) | (d))
#define SMLAL2_H(d, n, m) WORD $(0x4E608000 | ((m)<<16) | ((n)<<5) | (d))
// smlal vd.4s, vn.4h, vm.4h: as smlal2, from the low four lanes
#define SMLAL_H(d, n, m) WORD $(0x0E608000 | ((m)<<16) | ((n)<<5) | (d))
// scvtf sd, sn: the int32 in sn to float32 (exact: |sums| < 2^24 here)
#define SCVTF_S(d, n) WORD $(0x5E21D800 | ((n)<<5) | (d))
// fcvt sd, hn: one half float to float32 (exact)
#define FCVT_SH(d, n) WORD $(0x1EE24000 | ((n)<<5) | (d))
// sxtl vd.8h, vn.8b and sxtl2 vd.8h, vn.16b; sxtl vd.4s, vn.4h and
// sxtl2 vd.4s, vn.8h: sign-extend the low or high half of vn
#define SXTL_BH(d, n) WORD $(0x0F08A400 | ((n)<<5) | (d))
#define SXTL2_BH(d, n) WORD $(0x4F08A400 | ((n)<<5) | (d))
#define SXTL_HS(d, n) WORD $(0x0F10A400 | ((n)<<5) | (d))
#define SXTL2_HS(d, n) WORD $(0x4F10A400 | ((n)<<5) | (d))

// Every kernel is an intDotRows: for each of rows weight rows, at w,
// w+stride, ..., it sums the row's blocks against the one activation row
// at act and stores the sum to out (R12 counts the rows, R13 is blocks,
// R14 the row, R15 stride, R19 act, R20 out; R0-R2 walk the blocks of a
// row). The running float32 sum s of a row lives in F30 (V30 is no
// vector register of theirs); each block adds its term to it in order.

// Q4_K and Q5_K: a block's 12 bytes of 6-bit scales and mins at R1+4,
// unpacked as kScaleMins does, with 32-bit words (bytes j..j+3 at once):
// sc0-3 = w0&63, m0-3 = w1&63, sc4-7 = w2&15 | (w0>>6)<<4,
// m4-7 = w2>>4 | (w1>>6)<<4, per byte. Leaves sc0-7 as int32 in V24-V25
// and m0-7 as int16 in V26 (low half). R4-R11 are clobbered.
#define KSCALEMINS \
	MOVWU 4(R1), R4; \
	MOVWU 8(R1), R5; \
	MOVWU 12(R1), R6; \
	ANDW  $0x3f3f3f3f, R4, R7; \
	ANDW  $0x3f3f3f3f, R5, R8; \
	ANDW  $0x0f0f0f0f, R6, R9; \
	LSRW  $2, R4, R10; \
	ANDW  $0x30303030, R10, R10; \
	ORRW  R10, R9, R9; \
	LSRW  $4, R6, R11; \
	ANDW  $0x0f0f0f0f, R11, R11; \
	LSRW  $2, R5, R10; \
	ANDW  $0x30303030, R10, R10; \
	ORRW  R10, R11, R11; \
	ORR   R9<<32, R7, R7; \
	ORR   R11<<32, R8, R8; \
	VMOV  R7, V27.D[0]; \
	VMOV  R8, V28.D[0]; \
	VUXTL V27.B8, V27.H8; \
	VUXTL V28.B8, V26.H8; \
	VUXTL V27.H4, V24.S4; \
	VUXTL2 V27.H8, V25.S4

// Sums the 8 sub-block accumulators V8-V15 (four int32 lanes each) to
// V8 = the sums of sub-blocks 0-3, V12 = those of 4-7.
#define REDUCE8 \
	VADDP V9.S4, V8.S4, V8.S4; \
	VADDP V11.S4, V10.S4, V10.S4; \
	VADDP V13.S4, V12.S4, V12.S4; \
	VADDP V15.S4, V14.S4, V14.S4; \
	VADDP V10.S4, V8.S4, V8.S4; \
	VADDP V14.S4, V12.S4, V12.S4

#define ZERO8 \
	VEOR V8.B16, V8.B16, V8.B16; \
	VEOR V9.B16, V9.B16, V9.B16; \
	VEOR V10.B16, V10.B16, V10.B16; \
	VEOR V11.B16, V11.B16, V11.B16; \
	VEOR V12.B16, V12.B16, V12.B16; \
	VEOR V13.B16, V13.B16, V13.B16; \
	VEOR V14.B16, V14.B16, V14.B16; \
	VEOR V15.B16, V15.B16, V15.B16

// The end of a Q4_K or Q5_K block, once V8-V15 hold its sub-blocks'
// sums of q*a: sumi = sum sc_j*dj, summ = sum m_j*(bsums[2j]+bsums[2j+1])
// (the bsums of the activation block at R2), then, with d = f16(w.d)*a.d
// and m = f16(w.dmin)*a.d, s += d*float32(sumi) - m*float32(summ), each
// operation rounded, as dotKScaleMin does.
#define KSCALEMIN_END \
	REDUCE8; \
	MUL_S(8, 8, 24); \
	MLA_S(8, 12, 25); \
	VADDV V8.S4, V8; \
	SCVTF_S(8, 8); \
	ADD    $260, R2, R4; \
	VLD1   (R4), [V16.H8, V17.H8]; \
	VADDP  V17.H8, V16.H8, V16.H8; \
	SMULL_H(17, 16, 26); \
	SMLAL2_H(17, 16, 26); \
	VADDV  V17.S4, V17; \
	SCVTF_S(17, 17); \
	MOVWU  (R1), R4; \
	FMOVS  R4, F18; \
	LSRW   $16, R4, R4; \
	FMOVS  R4, F19; \
	FCVT_SH(18, 18); \
	FCVT_SH(19, 19); \
	FMOVS  (R2), F20; \
	FMULS  F20, F18, F18; \
	FMULS  F20, F19, F19; \
	FMULS  F8, F18, F18; \
	FMULS  F17, F19, F19; \
	FSUBS  F19, F18, F18; \
	FADDS  F18, F30, F30

// Q4_K's 32 bytes of quants for sub-blocks 2p (low nibbles) and 2p+1
// (high), at R3, against the activations at R4 (64 bytes), into V(8+2p)
// and V(9+2p). V31 is 0x0f in every byte.
#define Q4KPAIR(p) \
	VLD1.P 32(R3), [V0.B16, V1.B16]; \
	VLD1.P 64(R4), [V2.B16, V3.B16, V4.B16, V5.B16]; \
	VAND   V31.B16, V0.B16, V6.B16; \
	VAND   V31.B16, V1.B16, V7.B16; \
	VUSHR  $4, V0.B16, V0.B16; \
	VUSHR  $4, V1.B16, V1.B16; \
	SDOT(8+2*(p), 6, 2); \
	SDOT(8+2*(p), 7, 3); \
	SDOT(9+2*(p), 0, 4); \
	SDOT(9+2*(p), 1, 5)

// func q4kQ8KDotNEON(rows, blocks int, w *byte, stride int, act *byte, out *float32)
// Q4_K blocks of 144 bytes (f16 d and dmin, 12 bytes of scales and mins,
// 128 of nibbles) against Q8_K blocks of 292 (float32 d, 256 int8, 16
// int16 bsums).
TEXT ·q4kQ8KDotNEON(SB), NOSPLIT, $0-48
	MOVD  rows+0(FP), R12
	MOVD  blocks+8(FP), R13
	MOVD  w+16(FP), R14
	MOVD  stride+24(FP), R15
	MOVD  act+32(FP), R19
	MOVD  out+40(FP), R20
	VMOVI $15, V31.B16
	CBZ   R12, q4k_end

q4k_row:
	MOVD  R13, R0
	MOVD  R14, R1
	MOVD  R19, R2
	FMOVS ZR, F30
	CBZ   R0, q4k_done // no blocks: 0, as the portable kernels

q4k_loop:
	KSCALEMINS
	ADD $16, R1, R3 // the quants
	ADD $4, R2, R4  // the activations' quants
	ZERO8
	Q4KPAIR(0)
	Q4KPAIR(1)
	Q4KPAIR(2)
	Q4KPAIR(3)
	KSCALEMIN_END
	ADD  $144, R1, R1
	ADD  $292, R2, R2
	SUBS $1, R0, R0
	BNE  q4k_loop

q4k_done:
	FMOVS.P F30, 4(R20)
	ADD     R15, R14, R14 // the next weight row
	SUBS    $1, R12, R12
	BNE     q4k_row

q4k_end:
	RET

// Q5_K's pair of sub-blocks 2p and 2p+1 as Q4KPAIR, with the fifth bits
// from qh (V20-V21, shifted right by 2 after each pair, so the pair's bits
// are bits 0 and 1): value l of sub-block 2p gets 16 when bit 2p of qh[l]
// is set, of 2p+1 when bit 2p+1 is. The fifth bits are moved to bit 4 and
// masked first; BIT then takes the low nibble from the quants, SRI shifts
// the high nibble in. V29 is 0x10 in every byte, V31 0x0f.
#define Q5KPAIR(p) \
	VLD1.P 32(R3), [V0.B16, V1.B16]; \
	VLD1.P 64(R4), [V2.B16, V3.B16, V4.B16, V5.B16]; \
	VSHL   $4, V20.B16, V6.B16; \
	VSHL   $4, V21.B16, V7.B16; \
	VSHL   $3, V20.B16, V22.B16; \
	VSHL   $3, V21.B16, V23.B16; \
	VAND   V29.B16, V6.B16, V6.B16; \
	VAND   V29.B16, V7.B16, V7.B16; \
	VAND   V29.B16, V22.B16, V22.B16; \
	VAND   V29.B16, V23.B16, V23.B16; \
	VBIT   V31.B16, V0.B16, V6.B16; \
	VBIT   V31.B16, V1.B16, V7.B16; \
	VSRI   $4, V0.B16, V22.B16; \
	VSRI   $4, V1.B16, V23.B16; \
	VUSHR  $2, V20.B16, V20.B16; \
	VUSHR  $2, V21.B16, V21.B16; \
	SDOT(8+2*(p), 6, 2); \
	SDOT(8+2*(p), 7, 3); \
	SDOT(9+2*(p), 22, 4); \
	SDOT(9+2*(p), 23, 5)

// func q5kQ8KDotNEON(rows, blocks int, w *byte, stride int, act *byte, out *float32)
// Q5_K blocks of 176 bytes (f16 d and dmin, 12 bytes of scales and mins,
// 32 of fifth bits qh, 128 of nibbles) against Q8_K blocks.
TEXT ·q5kQ8KDotNEON(SB), NOSPLIT, $0-48
	MOVD  rows+0(FP), R12
	MOVD  blocks+8(FP), R13
	MOVD  w+16(FP), R14
	MOVD  stride+24(FP), R15
	MOVD  act+32(FP), R19
	MOVD  out+40(FP), R20
	VMOVI $15, V31.B16
	VMOVI $0x10, V29.B16
	CBZ   R12, q5k_end

q5k_row:
	MOVD  R13, R0
	MOVD  R14, R1
	MOVD  R19, R2
	FMOVS ZR, F30
	CBZ   R0, q5k_done // no blocks: 0, as the portable kernels

q5k_loop:
	KSCALEMINS
	ADD  $16, R1, R3
	VLD1.P 32(R3), [V20.B16, V21.B16] // qh; R3 moves on to the quants
	ADD  $4, R2, R4
	ZERO8
	Q5KPAIR(0)
	Q5KPAIR(1)
	Q5KPAIR(2)
	Q5KPAIR(3)
	KSCALEMIN_END
	ADD  $176, R1, R1
	ADD  $292, R2, R2
	SUBS $1, R0, R0
	BNE  q5k_loop

q5k_done:
	FMOVS.P F30, 4(R20)
	ADD     R15, R14, R14 // the next weight row
	SUBS    $1, R12, R12
	BNE     q5k_row

q5k_end:
	RET

// One group of 16 Q6_K quants q (0..63) into V6: Q6KLO from the low
// nibbles of ql and the high pair that a left shift by sh moves to bits
// 4-5 of qh (BIT takes the low four bits from ql); Q6KHI and Q6KHI2 from
// the high nibbles (SRI shifts them into the low four bits), with the
// pair at bits 4-5 of qh as it is, or shifted right by 2. V28 is 0x30 in
// every byte, V31 0x0f.
#define Q6KLO(ql, qh, sh) \
	VSHL $sh, qh.B16, V6.B16; \
	VAND V28.B16, V6.B16, V6.B16; \
	VBIT V31.B16, ql.B16, V6.B16

#define Q6KHI(ql, qh) \
	VAND V28.B16, qh.B16, V6.B16; \
	VSRI $4, ql.B16, V6.B16

#define Q6KHI2(ql, qh) \
	VUSHR $2, qh.B16, V6.B16; \
	VAND  V28.B16, V6.B16, V6.B16; \
	VSRI  $4, ql.B16, V6.B16

// One half (128 values, sub-blocks 8h..8h+7) of a Q6_K block: ql's 64
// bytes at R3 (V0-V3), qh's 32 at R5 (V4-V5), the activations' 128 at R4
// (V8-V15); group k of the half (values 16k..16k+15, as q6kDecodeNEON
// walks them) is sub-block 8h+k, its sum of q*a into V(16+k), all
// eight reduced to V16 (sub-blocks 8h..8h+3) and V20 (8h+4..8h+7).
#define Q6KHALF(h) \
	VLD1.P 64(R3), [V0.B16, V1.B16, V2.B16, V3.B16]; \
	VLD1.P 32(R5), [V4.B16, V5.B16]; \
	VLD1.P 64(R4), [V8.B16, V9.B16, V10.B16, V11.B16]; \
	VLD1.P 64(R4), [V12.B16, V13.B16, V14.B16, V15.B16]; \
	VEOR   V16.B16, V16.B16, V16.B16; \
	VEOR   V17.B16, V17.B16, V17.B16; \
	VEOR   V18.B16, V18.B16, V18.B16; \
	VEOR   V19.B16, V19.B16, V19.B16; \
	VEOR   V20.B16, V20.B16, V20.B16; \
	VEOR   V21.B16, V21.B16, V21.B16; \
	VEOR   V22.B16, V22.B16, V22.B16; \
	VEOR   V23.B16, V23.B16, V23.B16; \
	Q6KLO(V0, V4, 4); \
	SDOT(16, 6, 8); \
	Q6KLO(V1, V5, 4); \
	SDOT(17, 6, 9); \
	Q6KLO(V2, V4, 2); \
	SDOT(18, 6, 10); \
	Q6KLO(V3, V5, 2); \
	SDOT(19, 6, 11); \
	Q6KHI(V0, V4); \
	SDOT(20, 6, 12); \
	Q6KHI(V1, V5); \
	SDOT(21, 6, 13); \
	Q6KHI2(V2, V4); \
	SDOT(22, 6, 14); \
	Q6KHI2(V3, V5); \
	SDOT(23, 6, 15); \
	VADDP  V17.S4, V16.S4, V16.S4; \
	VADDP  V19.S4, V18.S4, V18.S4; \
	VADDP  V21.S4, V20.S4, V20.S4; \
	VADDP  V23.S4, V22.S4, V22.S4; \
	VADDP  V18.S4, V16.S4, V16.S4; \
	VADDP  V22.S4, V20.S4, V20.S4

// func q6kQ8KDotNEON(rows, blocks int, w *byte, stride int, act *byte, out *float32)
// Q6_K blocks of 210 bytes (128 of low nibbles ql, 64 of high bit pairs
// qh, 16 int8 scales, f16 d) against Q8_K blocks. dotQ6KQ8KGo's
// sumi = sum_j sc_j*(dj - 32*bsums[j]) is taken as
// sum_j sc_j*dj - 32*sum_j sc_j*bsums[j] (exact int32 either way:
// |sum sc_j*dj| < 2^29), which spares subtracting 32 from every quant.
TEXT ·q6kQ8KDotNEON(SB), NOSPLIT, $0-48
	MOVD  rows+0(FP), R12
	MOVD  blocks+8(FP), R13
	MOVD  w+16(FP), R14
	MOVD  stride+24(FP), R15
	MOVD  act+32(FP), R19
	MOVD  out+40(FP), R20
	VMOVI $15, V31.B16
	VMOVI $0x30, V28.B16
	CBZ   R12, q6k_end

q6k_row:
	MOVD  R13, R0
	MOVD  R14, R1
	MOVD  R19, R2
	FMOVS ZR, F30
	CBZ   R0, q6k_done // no blocks: 0, as the portable kernels

q6k_loop:
	// The 16 scales, sign-extended to int32 in V24-V27.
	ADD  $192, R1, R3
	VLD1 (R3), [V6.B16]
	SXTL_BH(7, 6)
	SXTL2_BH(6, 6)
	SXTL_HS(24, 7)
	SXTL2_HS(25, 7)
	SXTL_HS(26, 6)
	SXTL2_HS(27, 6)
	// sum_j sc_j*bsums[j] in the lanes of V29, from the int16 scales
	// (V7: 0-7, V6: 8-15) and the activation block's bsums.
	ADD  $260, R2, R3
	VLD1 (R3), [V8.H8, V9.H8]
	SMULL_H(29, 7, 8)
	SMLAL2_H(29, 7, 8)
	SMLAL_H(29, 6, 9)
	SMLAL2_H(29, 6, 9)
	MOVD R1, R3      // ql
	ADD  $128, R1, R5 // qh
	ADD  $4, R2, R4
	// sum_j sc_j * sum q*a over the 16 sub-blocks, in the lanes of V24
	// (each half's scales are dead once they are used).
	Q6KHALF(0)
	MUL_S(24, 16, 24)
	MLA_S(24, 20, 25)
	Q6KHALF(1)
	MLA_S(24, 16, 26)
	MLA_S(24, 20, 27)
	VSHL  $5, V29.S4, V29.S4
	VSUB  V29.S4, V24.S4, V24.S4 // sumi, in four lanes
	VADDV V24.S4, V24
	SCVTF_S(24, 24)
	// d = f16(w.d) * a.d; s += d*float32(sumi)
	MOVHU 208(R1), R4
	FMOVS R4, F6
	FCVT_SH(6, 6)
	FMOVS (R2), F7
	FMULS F7, F6, F6
	FMULS F24, F6, F6
	FADDS F6, F30, F30
	ADD   $210, R1, R1
	ADD   $292, R2, R2
	SUBS  $1, R0, R0
	BNE   q6k_loop

q6k_done:
	FMOVS.P F30, 4(R20)
	ADD     R15, R14, R14 // the next weight row
	SUBS    $1, R12, R12
	BNE     q6k_row

q6k_end:
	RET

// The end of a 32-value block, once V2 holds its sum of q*a in four
// lanes: d = f16(w.d) * f16(a.d) (R1, R2 at the blocks); s += d*float32(sumi).
#define Q80END \
	VADDV V2.S4, V2; \
	SCVTF_S(2, 2); \
	MOVHU (R1), R4; \
	MOVHU (R2), R5; \
	FMOVS R4, F3; \
	FMOVS R5, F4; \
	FCVT_SH(3, 3); \
	FCVT_SH(4, 4); \
	FMULS F4, F3, F3; \
	FMULS F2, F3, F3; \
	FADDS F3, F30, F30

// func q8Q80DotNEON(rows, blocks int, w *byte, stride int, act *byte, out *float32)
// Q8_0 blocks of 34 bytes (f16 d, 32 int8) against Q8_0 activation
// blocks of the same layout.
TEXT ·q8Q80DotNEON(SB), NOSPLIT, $0-48
	MOVD  rows+0(FP), R12
	MOVD  blocks+8(FP), R13
	MOVD  w+16(FP), R14
	MOVD  stride+24(FP), R15
	MOVD  act+32(FP), R19
	MOVD  out+40(FP), R20
	CBZ   R12, q8_end

q8_row:
	MOVD  R13, R0
	MOVD  R14, R1
	MOVD  R19, R2
	FMOVS ZR, F30
	CBZ   R0, q8_done // no blocks: 0, as the portable kernels

q8_loop:
	ADD  $2, R1, R3
	ADD  $2, R2, R4
	VLD1 (R3), [V0.B16, V1.B16]
	VLD1 (R4), [V5.B16, V6.B16]
	VEOR V2.B16, V2.B16, V2.B16
	SDOT(2, 0, 5)
	SDOT(2, 1, 6)
	Q80END
	ADD  $34, R1, R1
	ADD  $34, R2, R2
	SUBS $1, R0, R0
	BNE  q8_loop

q8_done:
	FMOVS.P F30, 4(R20)
	ADD     R15, R14, R14 // the next weight row
	SUBS    $1, R12, R12
	BNE     q8_row

q8_end:
	RET

// func q4Q80DotNEON(rows, blocks int, w *byte, stride int, act *byte, out *float32)
// Q4_0 blocks of 18 bytes (f16 d, 16 bytes: value l in byte l's low
// nibble, l+16 in its high one, each offset by 8) against Q8_0 blocks.
TEXT ·q4Q80DotNEON(SB), NOSPLIT, $0-48
	MOVD  rows+0(FP), R12
	MOVD  blocks+8(FP), R13
	MOVD  w+16(FP), R14
	MOVD  stride+24(FP), R15
	MOVD  act+32(FP), R19
	MOVD  out+40(FP), R20
	VMOVI $15, V31.B16
	VMOVI $8, V29.B16
	CBZ   R12, q4_end

q4_row:
	MOVD  R13, R0
	MOVD  R14, R1
	MOVD  R19, R2
	FMOVS ZR, F30
	CBZ   R0, q4_done // no blocks: 0, as the portable kernels

q4_loop:
	ADD  $2, R1, R3
	ADD  $2, R2, R4
	VLD1 (R3), [V0.B16]
	VLD1 (R4), [V5.B16, V6.B16]
	VAND  V31.B16, V0.B16, V1.B16
	VUSHR $4, V0.B16, V0.B16
	VSUB  V29.B16, V1.B16, V1.B16
	VSUB  V29.B16, V0.B16, V0.B16
	VEOR V2.B16, V2.B16, V2.B16
	SDOT(2, 1, 5)
	SDOT(2, 0, 6)
	Q80END
	ADD  $18, R1, R1
	ADD  $34, R2, R2
	SUBS $1, R0, R0
	BNE  q4_loop

q4_done:
	FMOVS.P F30, 4(R20)
	ADD     R15, R14, R14 // the next weight row
	SUBS    $1, R12, R12
	BNE     q4_row

q4_end:
	RET

// q5bits spreads a Q5_0 block's 32 fifth bits over 32 byte lanes: TBL
// with the first 16 bytes copies qh's byte l/8 to lane l (the next 16
// bytes do the same for lanes 16-31), CMTST with the last 16 picks bit
// l%8 of it.
DATA q5bits<>+0(SB)/8, $0x0000000000000000
DATA q5bits<>+8(SB)/8, $0x0101010101010101
DATA q5bits<>+16(SB)/8, $0x0202020202020202
DATA q5bits<>+24(SB)/8, $0x0303030303030303
DATA q5bits<>+32(SB)/8, $0x8040201008040201
DATA q5bits<>+40(SB)/8, $0x8040201008040201
GLOBL q5bits<>(SB), RODATA|NOPTR, $48

// func q5Q80DotNEON(rows, blocks int, w *byte, stride int, act *byte, out *float32)
// Q5_0 blocks of 22 bytes (f16 d, 32 fifth bits qh, value l's in bit l,
// then nibbles as Q4_0's; each value offset by 16) against Q8_0 blocks.
TEXT ·q5Q80DotNEON(SB), NOSPLIT, $0-48
	MOVD  rows+0(FP), R12
	MOVD  blocks+8(FP), R13
	MOVD  w+16(FP), R14
	MOVD  stride+24(FP), R15
	MOVD  act+32(FP), R19
	MOVD  out+40(FP), R20
	MOVD  $q5bits<>(SB), R3
	VLD1  (R3), [V24.B16, V25.B16, V26.B16]
	VMOVI $15, V31.B16
	VMOVI $16, V29.B16
	CBZ   R12, q5_end

q5_row:
	MOVD  R13, R0
	MOVD  R14, R1
	MOVD  R19, R2
	FMOVS ZR, F30
	CBZ   R0, q5_done // no blocks: 0, as the portable kernels

q5_loop:
	MOVWU 2(R1), R3
	VMOV  R3, V7.S[0]
	VTBL  V24.B16, [V7.B16], V8.B16
	VTBL  V25.B16, [V7.B16], V9.B16
	VCMTST V26.B16, V8.B16, V8.B16
	VCMTST V26.B16, V9.B16, V9.B16
	VAND  V29.B16, V8.B16, V8.B16
	VAND  V29.B16, V9.B16, V9.B16
	ADD   $6, R1, R3
	ADD   $2, R2, R4
	VLD1  (R3), [V0.B16]
	VLD1  (R4), [V5.B16, V6.B16]
	VAND  V31.B16, V0.B16, V1.B16
	VUSHR $4, V0.B16, V0.B16
	VORR  V8.B16, V1.B16, V1.B16
	VORR  V9.B16, V0.B16, V0.B16
	VSUB  V29.B16, V1.B16, V1.B16
	VSUB  V29.B16, V0.B16, V0.B16
	VEOR  V2.B16, V2.B16, V2.B16
	SDOT(2, 1, 5)
	SDOT(2, 0, 6)
	Q80END
	ADD  $22, R1, R1
	ADD  $34, R2, R2
	SUBS $1, R0, R0
	BNE  q5_loop

q5_done:
	FMOVS.P F30, 4(R20)
	ADD     R15, R14, R14 // the next weight row
	SUBS    $1, R12, R12
	BNE     q5_row

q5_end:
	RET
