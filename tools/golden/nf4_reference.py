#!/usr/bin/python3
"""Golden vectors for graft's NF4 quantization (core/tensor/nf4*.go).

A NumPy transcription of bitsandbytes' 4-bit NF4 path, written from the
algorithm, not from its code:

  quantize_4bit(A, blocksize=64, quant_type="nf4", compress_statistics=...)
    absmax per block of 64 over the flattened tensor (a running fmaxf from
    -FLT_MAX, zero padding in a partial block), r = 1/absmax in float32,
    code = the CUDA kernel's comparison tree applied to float32(x * r),
    two codes per byte, the first in the high nibble.
  compress_statistics: offset = mean(absmax); quantize_blockwise(absmax -
    offset, blocksize=256) with create_dynamic_map(signed=True): per block
    absmax, then the kernel's binary search plus midpoint rule.
  dequantize_4bit: nf4[q] * absmax, absmax = dynamic[q] * nested + offset
    (two float32 roundings) under double quantization.

Everything is float32 arithmetic, one operation at a time, as on the GPU.
The mean is summed in float64 in order and rounded once (torch's float32
reduction order is unspecified).

Inputs come from a splitmix64 generator that the Go test reimplements, so
the JSON holds only the expected outputs. Run:

    /usr/bin/python3 tools/golden/nf4_reference.py

from the repository root; it rewrites core/tensor/testdata/nf4_golden.json.
"""

import hashlib
import json
import os
from fractions import Fraction

import numpy as np

f32 = np.float32
np.seterr(all="ignore")  # 1/0 and 0*inf are part of the algorithm


def f32_literal(text):
    """A C float literal (1.5f): the decimal rounded once, to nearest float32
    with ties to even. np.float32(float(text)) would round twice (through
    float64) and differs for some of the thresholds below."""
    exact = Fraction(text)
    guess = f32(float(exact))
    best = None
    for c in (np.nextafter(guess, f32(-2)), guess, np.nextafter(guess, f32(2))):
        err = abs(Fraction(float(c)) - exact)
        even = int(np.array([c], dtype=np.float32).view(np.uint32)[0]) % 2 == 0
        if best is None or err < best[0] or (err == best[0] and even):
            best = (err, c)
    return best[1]


NF4 = np.array([f32_literal(v) for v in [
    "-1.0", "-0.6961928009986877", "-0.5250730514526367", "-0.39491748809814453",
    "-0.28444138169288635", "-0.18477343022823334", "-0.09105003625154495", "0.0",
    "0.07958029955625534", "0.16093020141124725", "0.24611230194568634",
    "0.33791524171829224", "0.44070982933044434", "0.5626170039176941",
    "0.7229568362236023", "1.0"]], dtype=np.float32)

# Thresholds of the kernel's NF4 decision tree, float32 literals there.
T = {k: f32_literal(v) for k, v in {
    "root": "0.03979014977812767",
    "1": "0.3893125355243683", "11": "0.6427869200706482", "111": "0.8614784181118011",
    "110": "0.5016634166240692", "10": "0.2035212516784668", "101": "0.2920137718319893",
    "100": "0.1202552504837513", "0": "-0.33967943489551544", "01": "-0.13791173323988914",
    "011": "-0.045525018125772476", "010": "-0.23460740596055984", "00": "-0.6106329262256622",
    "001": "-0.4599952697753906", "000": "-0.8480964004993439",
}.items()}


def nf4_tree(x):
    """The kernel's nested comparisons, node by node."""
    if x > T["root"]:
        if x > T["1"]:
            if x > T["11"]:
                return 15 if x > T["111"] else 14
            return 13 if x > T["110"] else 12
        if x > T["10"]:
            return 11 if x > T["101"] else 10
        return 9 if x > T["100"] else 8
    if x > T["0"]:
        if x > T["01"]:
            return 7 if x > T["011"] else 6
        return 5 if x > T["010"] else 4
    if x > T["00"]:
        return 3 if x > T["001"] else 2
    return 1 if x > T["000"] else 0


def fmax_absmax(block, size):
    """Running fmaxf(|x|) from -FLT_MAX over a zero-padded block."""
    padded = np.zeros(size, dtype=np.float32)
    padded[:len(block)] = block
    m = f32(-np.finfo(np.float32).max)
    for v in padded:
        a = f32(abs(v))
        if a > m:  # fmaxf ignores NaN
            m = a
    return m


def torch_linspace(start, end, steps):
    """torch.linspace(start, end, steps, dtype=float32) on the CPU, scalar path."""
    start, end = f32(start), f32(end)
    step = f32(f32(end - start) / f32(steps - 1))
    out = []
    for i in range(steps):
        if i < steps // 2:
            out.append(f32(start + f32(step * f32(i))))
        else:
            out.append(f32(end - f32(step * f32(steps - i - 1))))
    return np.array(out, dtype=np.float32)


def create_dynamic_map():
    """create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)."""
    data = []
    for i in range(7):
        bounds = torch_linspace(0.1, 1.0, 2 ** i + 1)
        means = (bounds[:-1] + bounds[1:]) / f32(2.0)
        scale = f32(10.0 ** (i - 6))
        data += list(scale * means)
        data += list(f32(-scale) * means)
    data += [f32(0.0), f32(1.0)]
    assert len(data) == 256
    return np.array(sorted(data), dtype=np.float32)


DYN = create_dynamic_map()


def dquantize(x):
    """The 8-bit kernel's search: 7 halving steps from 127, then a midpoint."""
    pivot, upper_pivot, lower_pivot = 127, 255, 0
    lower, upper = f32(-1.0), f32(1.0)
    val = DYN[pivot]
    i = 64
    while i > 0:
        if x > val:
            lower_pivot, lower = pivot, val
            pivot += i
        else:
            upper_pivot, upper = pivot, val
            pivot -= i
        val = DYN[pivot]
        i >>= 1
    if upper_pivot == 255:
        upper = DYN[255]
    if lower_pivot == 0:
        lower = DYN[0]
    if x > val:
        mid = f32(f32(upper + val) * f32(0.5))
        return upper_pivot if x > mid else pivot
    mid = f32(f32(lower + val) * f32(0.5))
    return lower_pivot if x < mid else pivot


def quantize_blockwise(a, blocksize):
    n = len(a)
    nb = (n + blocksize - 1) // blocksize
    codes = np.zeros(n, dtype=np.uint8)
    absmax = np.zeros(nb, dtype=np.float32)
    for b in range(nb):
        blk = a[b * blocksize:(b + 1) * blocksize]
        m = fmax_absmax(blk, blocksize)
        absmax[b] = m
        r = f32(f32(1.0) / m)
        for j, v in enumerate(blk):
            codes[b * blocksize + j] = dquantize(f32(v * r))
    return codes, absmax


def quantize_4bit(a, double_quant):
    n = len(a)
    nb = (n + 63) // 64
    q = np.zeros(nb * 64, dtype=np.uint8)
    absmax = np.zeros(nb, dtype=np.float32)
    for b in range(nb):
        blk = a[b * 64:(b + 1) * 64]
        m = fmax_absmax(blk, 64)
        absmax[b] = m
        r = f32(f32(1.0) / m)
        padded = np.zeros(64, dtype=np.float32)
        padded[:len(blk)] = blk
        for j, v in enumerate(padded):
            q[b * 64 + j] = nf4_tree(f32(v * r))
    q = q[:n + (n % 2)]
    packed = ((q[0::2] << 4) | q[1::2]).astype(np.uint8)
    out = {"packed": packed, "absmax": absmax}
    if double_quant:
        s = 0.0
        for v in absmax:
            s += float(v)
        offset = f32(s / nb) if nb else f32(np.nan)  # torch: the mean of nothing is NaN
        codes, nested = quantize_blockwise((absmax - offset).astype(np.float32), 256)
        out.update(absmax_codes=codes, nested=nested, offset=offset)
    return out


def dequantize_4bit(st, n):
    if "offset" in st:
        nb = len(st["absmax_codes"])
        scales = np.array([
            f32(f32(DYN[st["absmax_codes"][b]] * st["nested"][b // 256]) + st["offset"])
            for b in range(nb)], dtype=np.float32)
    else:
        scales = st["absmax"]
    codes = np.zeros(2 * len(st["packed"]), dtype=np.uint8)
    codes[0::2] = st["packed"] >> 4
    codes[1::2] = st["packed"] & 15
    codes = codes[:n]
    return (NF4[codes] * scales[np.arange(n) // 64]).astype(np.float32)


# --- deterministic inputs shared with the Go test ---------------------------

MASK = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.s = seed & MASK

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & MASK
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def uniform(self):
        """A float32 in [-1, 1) with 24 random bits (exact)."""
        return f32((self.next() >> 40) * 2.0 ** -23 - 1.0)


def generated(seed, n):
    """Bell-shaped values: the sum of three uniforms times a per-block
    scale in [2^-9, 2^-4), float32 throughout."""
    g = SplitMix64(seed)
    out = np.zeros(n, dtype=np.float32)
    scale = f32(0)
    for i in range(n):
        if i % 64 == 0:
            scale = f32(2.0 ** -(4 + (g.next() % 6)))
        s = f32(f32(g.uniform() + g.uniform()) + g.uniform())
        out[i] = f32(s * scale)
    return out


def bits(a):
    return [int(v) for v in np.asarray(a, dtype=np.float32).view(np.uint32)]


def sha(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def state_json(st, n, full):
    deq = dequantize_4bit(st, n)
    out = {"codes_sha256": sha(st["packed"]), "dequant_sha256": sha(deq.astype("<f4"))}
    if full:
        out["codes_hex"] = st["packed"].tobytes().hex()
        out["dequant_bits"] = bits(deq)
    if "offset" in st:
        out["absmax_codes_hex"] = st["absmax_codes"].tobytes().hex()
        out["nested_bits"] = bits(st["nested"])
        out["offset_bits"] = bits([st["offset"]])[0]
    else:
        out["absmax_bits"] = bits(st["absmax"])
    return out


def explicit_cases():
    """Hand-built inputs: exact thresholds and their neighbours (absmax 1,
    so the scaled value is the input), the codes themselves, a zero block,
    and non-finite values."""
    th = np.array(sorted(T.values()), dtype=np.float32)
    up = np.nextafter(th, f32(2))
    down = np.nextafter(th, f32(-2))
    ties = np.concatenate([[f32(1.0)], th, up, down, NF4, -NF4[1:-1]]).astype(np.float32)
    zeros = np.zeros(64, dtype=np.float32)
    neg_zero_nan = np.array([-0.0, np.nan, 0.5, -0.25, 0.0], dtype=np.float32)
    with_inf = np.array([np.inf, 1.0, -1.0], dtype=np.float32)
    odd = np.array([0.3, -0.7, 0.01], dtype=np.float32)
    return [
        ("ties", ties), ("zeros", zeros), ("nan", neg_zero_nan),
        ("inf", with_inf), ("odd", odd), ("empty", np.zeros(0, dtype=np.float32)),
    ]


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out_path = os.path.join(root, "core", "tensor", "testdata", "nf4_golden.json")

    # Independent sanity checks of the transcription.
    lut = [nf4_tree(f32(v)) for v in NF4]
    assert lut == list(range(16)), lut
    # The tree is a nearest-code rule except within float32 rounding of the
    # thresholds; report how often it disagrees with argmin on a grid.
    grid = np.linspace(-1, 1, 20001, dtype=np.float32)
    nearest = np.argmin(np.abs(grid[:, None] - NF4[None, :]), axis=1)
    tree = np.array([nf4_tree(v) for v in grid])
    print("tree vs argmin disagreements on a grid:", int((tree != nearest).sum()))
    assert DYN[0] < 0 and DYN[255] == 1.0 and len(set(DYN.tolist())) == 256

    doc = {
        "about": "generated by tools/golden/nf4_reference.py; inputs are explicit bits or SplitMix64(seed)",
        "nf4_code_bits": bits(NF4),
        "nf4_threshold_bits": bits(sorted(T.values())),
        "dynamic_map_bits": bits(DYN),
        "explicit": [],
        "generated": [],
    }
    for name, a in explicit_cases():
        for dq in (False, True):
            st = quantize_4bit(a, dq)
            case = {"name": name, "double_quant": dq, "input_bits": bits(a), "n": len(a)}
            case.update(state_json(st, len(a), True))
            doc["explicit"].append(case)
    for seed, n, dq in [(1, 1001, False), (2, 64 * 600 + 37, False), (2, 64 * 600 + 37, True), (3, 64 * 256, True)]:
        a = generated(seed, n)
        st = quantize_4bit(a, dq)
        case = {"seed": seed, "n": n, "double_quant": dq, "input_sha256": sha(a.astype("<f4"))}
        case.update(state_json(st, n, False))
        doc["generated"].append(case)

    # quantize_blockwise on its own, at the dynamic map's own midpoints.
    mids = np.array([f32(f32(DYN[i] + DYN[i + 1]) * f32(0.5)) for i in range(255)], dtype=np.float32)
    dyn_in = np.concatenate([[f32(1.0)], mids, np.nextafter(mids, f32(2)), np.nextafter(mids, f32(-2)),
                             DYN, [f32(np.nan)]]).astype(np.float32)
    codes, absmax = quantize_blockwise(dyn_in, 256)
    doc["blockwise"] = {"input_bits": bits(dyn_in), "codes_hex": codes.tobytes().hex(), "absmax_bits": bits(absmax)}

    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    tmp = out_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    os.replace(tmp, out_path)
    print("wrote", out_path, os.path.getsize(out_path), "bytes")


if __name__ == "__main__":
    main()
