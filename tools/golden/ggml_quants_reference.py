#!/usr/bin/python3
"""Golden vectors for graft's ggml quantizers (core/tensor/quant*.go, kquant.go).

A NumPy transcription of ggml's reference quantizers and dequantizers
(ggml/src/ggml-quants.c in llama.cpp: quantize_row_{q4_0,q4_1,q5_0,q5_1,
q8_0,q2_K,q3_K,q4_K,q5_K,q6_K}_ref with nearest_int, make_qx_quants
(rmse_type 1, no importance weights), make_q3_quants and make_qkx2_quants;
quantize_iq4_nl and quantize_iq4_xs without importance weights, i.e.
quantize_row_iq4_nl_impl with ntry 7 and best_index_int8; and the matching
dequantize_row_* functions), written as plain scalar code
so that each C expression maps to one line here.

Every value is a numpy float32 and every operation is a float32 operation
rounded on its own, as C evaluates float expressions on x86-64 without
contraction (no fused multiply-add): a*b + c is round(round(a*b) + c).
f16 conversions round to nearest even, as GGML_FP32_TO_FP16 does.

The inputs are stored in the JSON with the outputs. Run

    /usr/bin/python3 tools/golden/ggml_quants_reference.py

from the repository root; it rewrites core/tensor/testdata/ggml_quants_golden.json.
"""

import base64
import json
import os
from fractions import Fraction

import numpy as np

F = np.float32
np.seterr(all="ignore")  # 1/0 is part of some algorithms (scales of zero blocks)

QK = 32
QK_K = 256


def lit(text):
    """A C float literal: the decimal rounded once to the nearest float32."""
    exact = Fraction(text)
    guess = F(float(exact))
    best = None
    for c in (np.nextafter(guess, F(-np.inf)), guess, np.nextafter(guess, F(np.inf))):
        err = abs(Fraction(float(c)) - exact)
        even = int(np.array([c], dtype=np.float32).view(np.uint32)[0]) % 2 == 0
        if best is None or err < best[0] or (err == best[0] and even):
            best = (err, c)
    return best[1]


GROUP_MAX_EPS = lit("1e-15")
FLT_MAX = F(np.finfo(np.float32).max)


def bits32(f):
    return int(np.array([f], dtype=np.float32).view(np.uint32)[0])


def nearest_int(f):
    v = F(f) + F(12582912.0)
    return (bits32(v) & 0x007FFFFF) - 0x00400000


def f16_bits(f):
    return int(np.array([F(f)], dtype=np.float32).astype(np.float16).view(np.uint16)[0])


def f16_val(h):
    return F(np.array([h], dtype=np.uint16).view(np.float16)[0])


def i8(v):
    return ((int(v) + 128) & 0xFF) - 128


def u8(v):
    return int(v) & 0xFF


def put16(buf, off, h):
    buf[off] = h & 0xFF
    buf[off + 1] = h >> 8


def get16(buf, off):
    return buf[off] | buf[off + 1] << 8


def C_MIN(a, b):
    return a if a < b else b


def C_MAX(a, b):
    return a if a > b else b


def fabsf(v):
    return F(abs(v))


# ---------------------------------------------------------------- blocks of 32

def q4_0(x):
    out = bytearray()
    for b in range(0, len(x), QK):
        xb = x[b:b + QK]
        amax, mx = F(0), F(0)
        for v in xb:
            if amax < fabsf(v):
                amax, mx = fabsf(v), v
        d = mx / F(-8)
        idv = F(1) / d if d != 0 else F(0)
        blk = bytearray(18)
        put16(blk, 0, f16_bits(d))
        for j in range(QK // 2):
            x0 = xb[j] * idv
            x1 = xb[j + 16] * idv
            xi0 = C_MIN(15, int(x0 + F(8.5)))
            xi1 = C_MIN(15, int(x1 + F(8.5)))
            blk[2 + j] = xi0 | xi1 << 4
        out += blk
    return bytes(out)


def dq4_0(q, n):
    y = []
    for b in range(n // QK):
        blk = q[b * 18:(b + 1) * 18]
        d = f16_val(get16(blk, 0))
        lo = [F((blk[2 + j] & 0xF) - 8) * d for j in range(16)]
        hi = [F((blk[2 + j] >> 4) - 8) * d for j in range(16)]
        y += lo + hi
    return y


def min_max(xb):
    mn, mx = FLT_MAX, -FLT_MAX
    for v in xb:
        if v < mn:
            mn = v
        if v > mx:
            mx = v
    return mn, mx


def q4_1(x):
    out = bytearray()
    for b in range(0, len(x), QK):
        xb = x[b:b + QK]
        mn, mx = min_max(xb)
        d = (mx - mn) / F(15)
        idv = F(1) / d if d != 0 else F(0)
        blk = bytearray(20)
        put16(blk, 0, f16_bits(d))
        put16(blk, 2, f16_bits(mn))
        for j in range(16):
            x0 = (xb[j] - mn) * idv
            x1 = (xb[j + 16] - mn) * idv
            xi0 = C_MIN(15, int(x0 + F(0.5)))
            xi1 = C_MIN(15, int(x1 + F(0.5)))
            blk[4 + j] = xi0 | xi1 << 4
        out += blk
    return bytes(out)


def dq4_1(q, n):
    y = []
    for b in range(n // QK):
        blk = q[b * 20:(b + 1) * 20]
        d, m = f16_val(get16(blk, 0)), f16_val(get16(blk, 2))
        y += [F(blk[4 + j] & 0xF) * d + m for j in range(16)]
        y += [F(blk[4 + j] >> 4) * d + m for j in range(16)]
    return y


def q5_0(x):
    out = bytearray()
    for b in range(0, len(x), QK):
        xb = x[b:b + QK]
        amax, mx = F(0), F(0)
        for v in xb:
            if amax < fabsf(v):
                amax, mx = fabsf(v), v
        d = mx / F(-16)
        idv = F(1) / d if d != 0 else F(0)
        blk = bytearray(22)
        put16(blk, 0, f16_bits(d))
        qh = 0
        for j in range(16):
            xi0 = C_MIN(31, int(xb[j] * idv + F(16.5)))
            xi1 = C_MIN(31, int(xb[j + 16] * idv + F(16.5)))
            blk[6 + j] = (xi0 & 0xF) | (xi1 & 0xF) << 4
            qh |= ((xi0 & 0x10) >> 4) << j
            qh |= ((xi1 & 0x10) >> 4) << (j + 16)
        blk[2:6] = qh.to_bytes(4, "little")
        out += blk
    return bytes(out)


def dq5_0(q, n):
    y = []
    for b in range(n // QK):
        blk = q[b * 22:(b + 1) * 22]
        d = f16_val(get16(blk, 0))
        qh = int.from_bytes(blk[2:6], "little")
        lo, hi = [], []
        for j in range(16):
            xh0 = ((qh >> j) << 4) & 0x10
            xh1 = (qh >> (j + 12)) & 0x10
            lo.append(F(((blk[6 + j] & 0xF) | xh0) - 16) * d)
            hi.append(F(((blk[6 + j] >> 4) | xh1) - 16) * d)
        y += lo + hi
    return y


def q5_1(x):
    out = bytearray()
    for b in range(0, len(x), QK):
        xb = x[b:b + QK]
        mn, mx = min_max(xb)
        d = (mx - mn) / F(31)
        idv = F(1) / d if d != 0 else F(0)
        blk = bytearray(24)
        put16(blk, 0, f16_bits(d))
        put16(blk, 2, f16_bits(mn))
        qh = 0
        for j in range(16):
            xi0 = u8(int((xb[j] - mn) * idv + F(0.5)))
            xi1 = u8(int((xb[j + 16] - mn) * idv + F(0.5)))
            blk[8 + j] = (xi0 & 0xF) | (xi1 & 0xF) << 4
            qh |= ((xi0 & 0x10) >> 4) << j
            qh |= ((xi1 & 0x10) >> 4) << (j + 16)
        blk[4:8] = qh.to_bytes(4, "little")
        out += blk
    return bytes(out)


def dq5_1(q, n):
    y = []
    for b in range(n // QK):
        blk = q[b * 24:(b + 1) * 24]
        d, m = f16_val(get16(blk, 0)), f16_val(get16(blk, 2))
        qh = int.from_bytes(blk[4:8], "little")
        lo, hi = [], []
        for j in range(16):
            xh0 = ((qh >> j) << 4) & 0x10
            xh1 = (qh >> (j + 12)) & 0x10
            lo.append(F((blk[8 + j] & 0xF) | xh0) * d + m)
            hi.append(F((blk[8 + j] >> 4) | xh1) * d + m)
        y += lo + hi
    return y


def q8_0(x):
    out = bytearray()
    for b in range(0, len(x), QK):
        xb = x[b:b + QK]
        amax = F(0)
        for v in xb:
            amax = C_MAX(amax, fabsf(v))
        d = amax / F(127)
        idv = F(1) / d if d != 0 else F(0)
        blk = bytearray(34)
        put16(blk, 0, f16_bits(d))
        for j in range(QK):
            x0 = xb[j] * idv
            # roundf: halves away from zero, exact in float64 for a float32
            r = int(np.floor(abs(float(x0)) + 0.5)) * (1 if x0 >= 0 else -1)
            blk[2 + j] = r & 0xFF
        out += blk
    return bytes(out)


def dq8_0(q, n):
    y = []
    for b in range(n // QK):
        blk = q[b * 34:(b + 1) * 34]
        d = f16_val(get16(blk, 0))
        y += [F(i8(blk[2 + j])) * d for j in range(QK)]
    return y


# ---------------------------------------------------------------- K-quant helpers

def make_qx_quants(n, nmax, x, L):
    """rmse_type 1, quant_weights NULL: w = x*x."""
    mx, amax = F(0), F(0)
    for i in range(n):
        ax = fabsf(x[i])
        if ax > amax:
            amax, mx = ax, x[i]
    if amax < GROUP_MAX_EPS:
        for i in range(n):
            L[i] = 0
        return F(0)
    iscale = F(-nmax) / mx
    sumlx, suml2 = F(0), F(0)
    for i in range(n):
        l = nearest_int(iscale * x[i])
        l = C_MAX(-nmax, C_MIN(nmax - 1, l))
        L[i] = l + nmax
        w = x[i] * x[i]
        sumlx = sumlx + w * x[i] * F(l)
        suml2 = suml2 + w * F(l) * F(l)
    scale = sumlx / suml2 if suml2 != 0 else F(0)
    best = scale * sumlx
    for its in range(-9, 10):
        if its == 0:
            continue
        iscale = -(F(nmax) + lit("0.1") * F(its)) / mx
        sumlx, suml2 = F(0), F(0)
        for i in range(n):
            l = nearest_int(iscale * x[i])
            l = C_MAX(-nmax, C_MIN(nmax - 1, l))
            w = x[i] * x[i]
            sumlx = sumlx + w * x[i] * F(l)
            suml2 = suml2 + w * F(l) * F(l)
        if suml2 > 0 and sumlx * sumlx > best * suml2:
            for i in range(n):
                l = nearest_int(iscale * x[i])
                L[i] = nmax + C_MAX(-nmax, C_MIN(nmax - 1, l))
            scale = sumlx / suml2
            best = scale * sumlx
    return scale


def make_q3_quants(n, nmax, x, L):
    """do_rmse true."""
    mx, amax = F(0), F(0)
    for i in range(n):
        ax = fabsf(x[i])
        if ax > amax:
            amax, mx = ax, x[i]
    if amax < GROUP_MAX_EPS:
        for i in range(n):
            L[i] = 0
        return F(0)
    iscale = F(-nmax) / mx
    sumlx, suml2 = F(0), F(0)
    for i in range(n):
        l = nearest_int(iscale * x[i])
        l = C_MAX(-nmax, C_MIN(nmax - 1, l))
        L[i] = l
        w = x[i] * x[i]
        sumlx = sumlx + w * x[i] * F(l)
        suml2 = suml2 + w * F(l) * F(l)
    for _ in range(5):
        n_changed = 0
        for i in range(n):
            w = x[i] * x[i]
            slx = sumlx - w * x[i] * F(L[i])
            if slx > 0:
                sl2 = suml2 - w * F(L[i]) * F(L[i])
                new_l = nearest_int(x[i] * sl2 / slx)
                new_l = C_MAX(-nmax, C_MIN(nmax - 1, new_l))
                if new_l != L[i]:
                    slx = slx + w * x[i] * F(new_l)
                    sl2 = sl2 + w * F(new_l) * F(new_l)
                    if sl2 > 0 and slx * slx * suml2 > sumlx * sumlx * sl2:
                        L[i] = new_l
                        sumlx, suml2 = slx, sl2
                        n_changed += 1
        if not n_changed:
            break
    for i in range(n):
        L[i] += nmax
    return sumlx / suml2 if suml2 > 0 else F(0)


def make_qkx2_quants(n, nmax, x, weights, L, rmin, rdelta, nstep, use_mad):
    """Returns (scale, the_min) with the_min = -min as ggml stores it."""
    mn = mx = x[0]
    sum_w = weights[0]
    sum_x = sum_w * x[0]
    for i in range(1, n):
        if x[i] < mn:
            mn = x[i]
        if x[i] > mx:
            mx = x[i]
        w = weights[i]
        sum_w = sum_w + w
        sum_x = sum_x + w * x[i]
    if mn > 0:
        mn = F(0)
    if mx == mn:
        for i in range(n):
            L[i] = 0
        return F(0), -mn
    iscale = F(nmax) / (mx - mn)
    scale = F(1) / iscale
    best_error = F(0)
    for i in range(n):
        l = nearest_int(iscale * (x[i] - mn))
        L[i] = C_MAX(0, C_MIN(nmax, l))
        diff = scale * F(L[i]) + mn - x[i]
        diff = fabsf(diff) if use_mad else diff * diff
        best_error = best_error + weights[i] * diff
    if nstep < 1:
        return scale, -mn
    Laux = [0] * n
    for its in range(nstep + 1):
        iscale = (rmin + rdelta * F(its) + F(nmax)) / (mx - mn)
        sum_l, sum_l2, sum_xl = F(0), F(0), F(0)
        for i in range(n):
            l = nearest_int(iscale * (x[i] - mn))
            l = C_MAX(0, C_MIN(nmax, l))
            Laux[i] = l
            w = weights[i]
            sum_l = sum_l + w * F(l)
            sum_l2 = sum_l2 + w * F(l) * F(l)
            sum_xl = sum_xl + w * F(l) * x[i]
        D = sum_w * sum_l2 - sum_l * sum_l
        if D > 0:
            this_scale = (sum_w * sum_xl - sum_x * sum_l) / D
            this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D
            if this_min > 0:
                this_min = F(0)
                this_scale = sum_xl / sum_l2
            cur_error = F(0)
            for i in range(n):
                diff = this_scale * F(Laux[i]) + this_min - x[i]
                diff = fabsf(diff) if use_mad else diff * diff
                cur_error = cur_error + weights[i] * diff
            if cur_error < best_error:
                L[:n] = Laux[:n]
                best_error = cur_error
                scale = this_scale
                mn = this_min
    return scale, -mn


def get_scale_min_k4(j, q):
    if j < 4:
        return q[j] & 63, q[j + 4] & 63
    return (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4)


def pack_2bit(L):
    qs = bytearray(64)
    for j in range(0, QK_K, 128):
        for l in range(32):
            qs[j // 4 + l] = L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6)
    return qs


# ---------------------------------------------------------------- K-quants

def q2_K(x):
    out = bytearray()
    for b in range(0, len(x), QK_K):
        xb = x[b:b + QK_K]
        L = [0] * QK_K
        scales, mins = [F(0)] * 16, [F(0)] * 16
        max_scale, max_min = F(0), F(0)
        for j in range(16):
            sub = xb[16 * j:16 * j + 16]
            weights = [fabsf(v) for v in sub]
            Lj = [0] * 16
            scales[j], mins[j] = make_qkx2_quants(16, 3, sub, weights, Lj, lit("-0.5"), lit("0.1"), 15, True)
            L[16 * j:16 * j + 16] = Lj
            if scales[j] > max_scale:
                max_scale = scales[j]
            if mins[j] > max_min:
                max_min = mins[j]
        sc = bytearray(16)
        dh = mh = 0
        if max_scale > 0:
            iscale = F(15) / max_scale
            for j in range(16):
                sc[j] = u8(nearest_int(iscale * scales[j]))
            dh = f16_bits(max_scale / F(15))
        if max_min > 0:
            iscale = F(15) / max_min
            for j in range(16):
                sc[j] = u8(sc[j] | (nearest_int(iscale * mins[j]) << 4))
            mh = f16_bits(max_min / F(15))
        for j in range(16):
            d = f16_val(dh) * F(sc[j] & 0xF)
            if d == 0:
                continue
            dm = f16_val(mh) * F(sc[j] >> 4)
            for ii in range(16):
                l = nearest_int((xb[16 * j + ii] + dm) / d)
                L[16 * j + ii] = C_MAX(0, C_MIN(3, l))
        blk = bytearray(84)
        blk[0:16] = sc
        blk[16:80] = pack_2bit(L)
        put16(blk, 80, dh)
        put16(blk, 82, mh)
        out += blk
    return bytes(out)


def dq2_K(q, n):
    y = []
    for b in range(n // QK_K):
        blk = q[b * 84:(b + 1) * 84]
        d, mn = f16_val(get16(blk, 80)), f16_val(get16(blk, 82))
        isc = 0
        for nn in range(0, QK_K, 128):
            qq = blk[16 + nn // 4:16 + nn // 4 + 32]
            shift = 0
            for _ in range(4):
                for half in (0, 16):
                    s = blk[isc]
                    isc += 1
                    dl, ml = d * F(s & 0xF), mn * F(s >> 4)
                    for l in range(16):
                        y.append(dl * F((qq[l + half] >> shift) & 3) - ml)
                shift += 2
    return y


def q3_K(x):
    out = bytearray()
    for b in range(0, len(x), QK_K):
        xb = x[b:b + QK_K]
        L = [0] * QK_K
        scales = [F(0)] * 16
        max_scale, amax = F(0), F(0)
        for j in range(16):
            Lj = [0] * 16
            scales[j] = make_q3_quants(16, 4, xb[16 * j:16 * j + 16], Lj)
            L[16 * j:16 * j + 16] = Lj
            s = fabsf(scales[j])
            if s > amax:
                amax, max_scale = s, scales[j]
        sc = bytearray(12)
        if max_scale != 0:
            iscale = F(-32) / max_scale
            for j in range(16):
                l = i8(nearest_int(iscale * scales[j]))
                l = C_MAX(-32, C_MIN(31, l)) + 32
                if j < 8:
                    sc[j] = l & 0xF
                else:
                    sc[j - 8] |= (l & 0xF) << 4
                l >>= 4
                sc[j % 4 + 8] |= l << (2 * (j // 4))
            dh = f16_bits(F(1) / iscale)
        else:
            dh = f16_bits(F(0))
        for j in range(16):
            s = (sc[j] & 0xF) if j < 8 else (sc[j - 8] >> 4)
            s = (s | (((sc[8 + j % 4] >> (2 * (j // 4))) & 3) << 4)) - 32
            d = f16_val(dh) * F(s)
            if d == 0:
                continue
            for ii in range(16):
                l = nearest_int(xb[16 * j + ii] / d)
                L[16 * j + ii] = C_MAX(-4, C_MIN(3, l)) + 4
        hmask = bytearray(32)
        m, hm = 0, 1
        for j in range(QK_K):
            if L[j] > 3:
                hmask[m] |= hm
                L[j] -= 4
            m += 1
            if m == 32:
                m, hm = 0, hm << 1
        blk = bytearray(110)
        blk[0:32] = hmask
        blk[32:96] = pack_2bit(L)
        blk[96:108] = sc
        put16(blk, 108, dh)
        out += blk
    return bytes(out)


def dq3_K(q, n):
    y = []
    for b in range(n // QK_K):
        blk = q[b * 110:(b + 1) * 110]
        hmask, sc = blk[0:32], blk[96:108]
        d_all = f16_val(get16(blk, 108))
        # the 16 6-bit scales, unpacked as ggml's kmask shuffle does
        aux = [int.from_bytes(sc[4 * i:4 * i + 4], "little") for i in range(3)]
        k1, k2 = 0x03030303, 0x0F0F0F0F
        tmp = aux[2]
        words = [
            (aux[0] & k2) | (((tmp >> 0) & k1) << 4),
            (aux[1] & k2) | (((tmp >> 2) & k1) << 4),
            ((aux[0] >> 4) & k2) | (((tmp >> 4) & k1) << 4),
            ((aux[1] >> 4) & k2) | (((tmp >> 6) & k1) << 4),
        ]
        scales = [i8(b_) for w in words for b_ in w.to_bytes(4, "little")]
        isc, m = 0, 1
        for nn in range(0, QK_K, 128):
            qq = blk[32 + nn // 4:32 + nn // 4 + 32]
            shift = 0
            for _ in range(4):
                for half in (0, 16):
                    dl = d_all * F(scales[isc] - 32)
                    isc += 1
                    for l in range(16):
                        v = ((qq[l + half] >> shift) & 3) - (0 if hmask[l + half] & m else 4)
                        y.append(dl * F(v))
                shift += 2
                m <<= 1
    return y


def scale_min_k4_quant(xb, nmax, rmin, rdelta, nstep):
    """The common first half of quantize_row_q4_K_ref and q5_K_ref."""
    L = [0] * QK_K
    scales, mins = [F(0)] * 8, [F(0)] * 8
    max_scale, max_min = F(0), F(0)
    for j in range(8):
        sub = xb[32 * j:32 * j + 32]
        sum_x2 = F(0)
        for v in sub:
            sum_x2 = sum_x2 + v * v
        av_x = F(np.sqrt(sum_x2 / F(32)))
        weights = [av_x + fabsf(v) for v in sub]
        Lj = [0] * 32
        scales[j], mins[j] = make_qkx2_quants(32, nmax, sub, weights, Lj, rmin, rdelta, nstep, False)
        L[32 * j:32 * j + 32] = Lj
        if scales[j] > max_scale:
            max_scale = scales[j]
        if mins[j] > max_min:
            max_min = mins[j]
    inv_scale = F(63) / max_scale if max_scale > 0 else F(0)
    inv_min = F(63) / max_min if max_min > 0 else F(0)
    sc = bytearray(12)
    for j in range(8):
        ls = C_MIN(63, u8(nearest_int(inv_scale * scales[j])))
        lm = C_MIN(63, u8(nearest_int(inv_min * mins[j])))
        if j < 4:
            sc[j] = ls
            sc[j + 4] = lm
        else:
            sc[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4)
            sc[j - 4] |= (ls >> 4) << 6
            sc[j] |= (lm >> 4) << 6
    dh, mh = f16_bits(max_scale / F(63)), f16_bits(max_min / F(63))
    for j in range(8):
        s, m = get_scale_min_k4(j, sc)
        d = f16_val(dh) * F(s)
        if d == 0:
            continue
        dm = f16_val(mh) * F(m)
        for ii in range(32):
            l = nearest_int((xb[32 * j + ii] + dm) / d)
            L[32 * j + ii] = C_MAX(0, C_MIN(nmax, l))
    head = bytearray(16)
    put16(head, 0, dh)
    put16(head, 2, mh)
    head[4:16] = sc
    return head, L


def q4_K(x):
    out = bytearray()
    for b in range(0, len(x), QK_K):
        head, L = scale_min_k4_quant(x[b:b + QK_K], 15, lit("-1"), lit("0.1"), 20)
        qs = bytearray(128)
        for j in range(0, QK_K, 64):
            for l in range(32):
                qs[j // 2 + l] = L[j + l] | (L[j + l + 32] << 4)
        out += head + qs
    return bytes(out)


def dq4_K(q, n):
    y = []
    for b in range(n // QK_K):
        blk = q[b * 144:(b + 1) * 144]
        d, mn = f16_val(get16(blk, 0)), f16_val(get16(blk, 2))
        sc = blk[4:16]
        qq = blk[16:144]
        isc = 0
        for j in range(0, QK_K, 64):
            s, m = get_scale_min_k4(isc, sc)
            d1, m1 = d * F(s), mn * F(m)
            s, m = get_scale_min_k4(isc + 1, sc)
            d2, m2 = d * F(s), mn * F(m)
            part = qq[j // 2:j // 2 + 32]
            y += [d1 * F(v & 0xF) - m1 for v in part]
            y += [d2 * F(v >> 4) - m2 for v in part]
            isc += 2
    return y


def q5_K(x):
    out = bytearray()
    for b in range(0, len(x), QK_K):
        head, L = scale_min_k4_quant(x[b:b + QK_K], 31, lit("-0.5"), lit("0.1"), 15)
        qh = bytearray(32)
        ql = bytearray(128)
        m1, m2 = 1, 2
        for nn in range(0, QK_K, 64):
            for j in range(32):
                l1 = L[nn + j]
                if l1 > 15:
                    l1 -= 16
                    qh[j] |= m1
                l2 = L[nn + j + 32]
                if l2 > 15:
                    l2 -= 16
                    qh[j] |= m2
                ql[nn // 2 + j] = l1 | (l2 << 4)
            m1 <<= 2
            m2 <<= 2
        out += head + qh + ql
    return bytes(out)


def dq5_K(q, n):
    y = []
    for b in range(n // QK_K):
        blk = q[b * 176:(b + 1) * 176]
        d, mn = f16_val(get16(blk, 0)), f16_val(get16(blk, 2))
        sc, qh, ql = blk[4:16], blk[16:48], blk[48:176]
        isc, u1, u2 = 0, 1, 2
        for j in range(0, QK_K, 64):
            s, m = get_scale_min_k4(isc, sc)
            d1, m1 = d * F(s), mn * F(m)
            s, m = get_scale_min_k4(isc + 1, sc)
            d2, m2 = d * F(s), mn * F(m)
            part = ql[j // 2:j // 2 + 32]
            y += [d1 * F((part[l] & 0xF) + (16 if qh[l] & u1 else 0)) - m1 for l in range(32)]
            y += [d2 * F((part[l] >> 4) + (16 if qh[l] & u2 else 0)) - m2 for l in range(32)]
            isc += 2
            u1 <<= 2
            u2 <<= 2
    return y


def q6_K(x):
    out = bytearray()
    for b in range(0, len(x), QK_K):
        xb = x[b:b + QK_K]
        L = [0] * QK_K
        scales = [F(0)] * 16
        max_scale, max_abs = F(0), F(0)
        for ib in range(16):
            Lj = [0] * 16
            scales[ib] = make_qx_quants(16, 32, xb[16 * ib:16 * ib + 16], Lj)
            L[16 * ib:16 * ib + 16] = Lj
            a = fabsf(scales[ib])
            if a > max_abs:
                max_abs, max_scale = a, scales[ib]
        if max_abs < GROUP_MAX_EPS:
            out += bytes(210)
            continue
        iscale = F(-128) / max_scale
        dh = f16_bits(F(1) / iscale)
        sc = [i8(C_MIN(127, nearest_int(iscale * scales[ib]))) for ib in range(16)]
        for j in range(16):
            d = f16_val(dh) * F(sc[j])
            if d == 0:
                continue
            for ii in range(16):
                l = nearest_int(xb[16 * j + ii] / d)
                L[16 * j + ii] = C_MAX(-32, C_MIN(31, l)) + 32
        ql = bytearray(128)
        qh = bytearray(64)
        for j in range(0, QK_K, 128):
            for l in range(32):
                q1, q2, q3, q4 = L[j + l], L[j + l + 32], L[j + l + 64], L[j + l + 96]
                ql[j // 2 + l] = (q1 & 0xF) | ((q3 & 0xF) << 4)
                ql[j // 2 + l + 32] = (q2 & 0xF) | ((q4 & 0xF) << 4)
                qh[j // 4 + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6)
        blk = bytearray(210)
        blk[0:128] = ql
        blk[128:192] = qh
        blk[192:208] = bytes(s & 0xFF for s in sc)
        put16(blk, 208, dh)
        out += blk
    return bytes(out)


def dq6_K(q, n):
    y = []
    for b in range(n // QK_K):
        blk = q[b * 210:(b + 1) * 210]
        d = f16_val(get16(blk, 208))
        for half in range(2):
            ql = blk[64 * half:64 * half + 64]
            qh = blk[128 + 32 * half:128 + 32 * half + 32]
            sc = [i8(v) for v in blk[192 + 8 * half:192 + 8 * half + 8]]
            part = [F(0)] * 128
            for l in range(32):
                isc = l // 16
                q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32
                q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32
                q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32
                q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32
                part[l] = d * F(sc[isc]) * F(q1)
                part[l + 32] = d * F(sc[isc + 2]) * F(q2)
                part[l + 64] = d * F(sc[isc + 4]) * F(q3)
                part[l + 96] = d * F(sc[isc + 6]) * F(q4)
            y += part
    return y


# ---------------------------------------------------------------- IQ4_NL, IQ4_XS

KVALUES_IQ4NL = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]


def best_index_int8(val, x):
    x2 = x + x
    idx = 0
    step = len(val) >> 1
    while step > 0:
        j = idx + step
        if x2 >= F(val[j - 1] + val[j]):
            idx = j
        step >>= 1
    return idx


def iq4_block(xb, L):
    """quantize_row_iq4_nl_impl's per-block fit, ntry = 7, no quant_weights."""
    values = KVALUES_IQ4NL
    amax, mx = F(0), F(0)
    for v in xb:
        ax = fabsf(v)
        if ax > amax:
            amax, mx = ax, v
    if amax < GROUP_MAX_EPS:
        for j in range(32):
            L[j] = 0
        return F(0)
    d = -mx / F(values[0])
    idv = F(1) / d
    sumqx, sumq2 = F(0), F(0)
    for j in range(32):
        al = idv * xb[j]
        l = best_index_int8(values, al)
        L[j] = l
        q = F(values[l])
        w = xb[j] * xb[j]
        sumqx = sumqx + w * q * xb[j]
        sumq2 = sumq2 + w * q * q
    d = sumqx / sumq2 if sumq2 > 0 else F(0)
    best = d * sumqx
    for itry in range(-7, 8):
        idv = F(itry + values[0]) / mx
        sumqx, sumq2 = F(0), F(0)
        for j in range(32):
            al = idv * xb[j]
            l = best_index_int8(values, al)
            q = F(values[l])
            w = xb[j] * xb[j]
            sumqx = sumqx + w * q * xb[j]
            sumq2 = sumq2 + w * q * q
        if sumq2 > 0 and sumqx * sumqx > best * sumq2:
            d = sumqx / sumq2
            best = d * sumqx
    return d


def pack_iq4(L):
    q = bytearray(len(L) // 2)
    for i in range(len(L) // 32):
        for j in range(16):
            q[16 * i + j] = L[32 * i + j] | (L[32 * i + 16 + j] << 4)
    return q


def iq4_nl(x):
    out = bytearray()
    for b in range(0, len(x), QK):
        xb = x[b:b + QK]
        L = [0] * 32
        d = iq4_block(xb, L)
        idv = F(1) / d if d != 0 else F(0)
        L = [best_index_int8(KVALUES_IQ4NL, idv * v) for v in xb]
        blk = bytearray(18)
        put16(blk, 0, f16_bits(d))
        blk[2:] = pack_iq4(L)
        out += blk
    return bytes(out)


def diq4_nl(q, n):
    y = []
    for b in range(n // QK):
        blk = q[b * 18:(b + 1) * 18]
        d = f16_val(get16(blk, 0))
        y += [d * F(KVALUES_IQ4NL[blk[2 + j] & 0xF]) for j in range(16)]
        y += [d * F(KVALUES_IQ4NL[blk[2 + j] >> 4]) for j in range(16)]
    return y


def iq4_xs(x):
    out = bytearray()
    for b in range(0, len(x), QK_K):
        xb = x[b:b + QK_K]
        L = [0] * QK_K
        scales = [F(0)] * 8
        max_scale, amax_scale = F(0), F(0)
        for ib in range(8):
            Lb = [0] * 32
            scales[ib] = iq4_block(xb[32 * ib:32 * ib + 32], Lb)
            a = fabsf(scales[ib])
            if a > amax_scale:
                amax_scale, max_scale = a, scales[ib]
        d = -max_scale / F(32)
        idv = F(1) / d if d != 0 else F(0)
        sl = bytearray(4)
        sh = 0
        for ib in range(8):
            l = nearest_int(idv * scales[ib])
            l = C_MAX(-32, C_MIN(31, l))
            dl = d * F(l)
            idl = F(1) / dl if dl != 0 else F(0)
            for j in range(32):
                L[32 * ib + j] = best_index_int8(KVALUES_IQ4NL, idl * xb[32 * ib + j])
            l += 32
            if ib % 2 == 0:
                sl[ib // 2] = l & 0xF
            else:
                sl[ib // 2] |= (l & 0xF) << 4
            sh |= (l >> 4) << (2 * ib)
        blk = bytearray(136)
        put16(blk, 0, f16_bits(d))
        put16(blk, 2, sh)
        blk[4:8] = sl
        blk[8:] = pack_iq4(L)
        out += blk
    return bytes(out)


def diq4_xs(q, n):
    y = []
    for b in range(n // QK_K):
        blk = q[b * 136:(b + 1) * 136]
        d = f16_val(get16(blk, 0))
        sh = get16(blk, 2)
        for ib in range(8):
            ls = ((blk[4 + ib // 2] >> (4 * (ib % 2))) & 0xF) | (((sh >> (2 * ib)) & 3) << 4)
            dl = d * F(ls - 32)
            qq = blk[8 + 16 * ib:8 + 16 * ib + 16]
            y += [dl * F(KVALUES_IQ4NL[v & 0xF]) for v in qq]
            y += [dl * F(KVALUES_IQ4NL[v >> 4]) for v in qq]
    return y


TYPES = {
    "Q4_0": (q4_0, dq4_0),
    "Q4_1": (q4_1, dq4_1),
    "Q5_0": (q5_0, dq5_0),
    "Q5_1": (q5_1, dq5_1),
    "Q8_0": (q8_0, dq8_0),
    "Q2_K": (q2_K, dq2_K),
    "Q3_K": (q3_K, dq3_K),
    "Q4_K": (q4_K, dq4_K),
    "Q5_K": (q5_K, dq5_K),
    "Q6_K": (q6_K, dq6_K),
    "IQ4_NL": (iq4_nl, diq4_nl),
    "IQ4_XS": (iq4_xs, diq4_xs),
}


def inputs():
    """Super-blocks of 256 that reach the branches of the algorithms."""
    rng = np.random.default_rng(20261207)
    cases = {}
    cases["normal"] = (rng.standard_normal(512) * 0.05).astype(np.float32)
    special = []
    b = rng.uniform(-1, 1, 256).astype(np.float32)
    b[0:32] = 0                      # an all-zero sub-block
    b[32:64] = 0.5                   # a constant sub-block
    b[64:80] = 0
    b[70] = 3.0                      # a lone outlier
    b[80:96] = -0.25
    b[81] = -0.0
    special.append(b)
    special.append(rng.uniform(0.1, 1.0, 256).astype(np.float32))     # all positive: min > 0
    special.append(-rng.uniform(0.1, 1.0, 256).astype(np.float32))    # all negative
    special.append(np.zeros(256, np.float32))                         # an all-zero super-block
    special.append((rng.standard_normal(256) * 1e-6).astype(np.float32))  # f16 subnormal scales
    special.append((rng.laplace(0, 30, 256) * (rng.uniform(0, 1, 256) < 0.9)).astype(np.float32))  # heavy tails, zeros
    ties = (rng.integers(-8, 8, 256) * 0.25).astype(np.float32)     # values on rounding ties
    ties[::7] = 2.0
    special.append(ties)
    mixed = (rng.standard_normal(256) * np.repeat(rng.uniform(0.001, 2, 16), 16)).astype(np.float32)
    special.append(mixed)                                             # sub-block scales spread widely
    cases["special"] = np.concatenate(special)
    return cases


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    doc = {"inputs": {}, "types": {}}
    cases = inputs()
    for name, vals in cases.items():
        doc["inputs"][name] = base64.b64encode(vals.astype("<f4").tobytes()).decode()
    for tname, (quant, dequant) in TYPES.items():
        entries = []
        for name, vals in cases.items():
            x = [F(v) for v in vals]
            q = quant(x)
            y = np.array(dequant(q, len(x)), dtype=np.float32)
            entries.append({
                "input": name,
                "quant": base64.b64encode(q).decode(),
                "dequant": base64.b64encode(y.astype("<f4").tobytes()).decode(),
            })
        doc["types"][tname] = entries
    path = os.path.join(root, "core", "tensor", "testdata", "ggml_quants_golden.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
    print("wrote", path)


if __name__ == "__main__":
    main()
