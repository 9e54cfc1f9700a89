#!/usr/bin/env python3
"""Independent reference for graft's LoHa and LoKr golden tests.

Transcribes, from Hugging Face PEFT's tuners/loha and tuners/lokr, what a
LoHa or LoKr adapter adds to an nn.Linear, y = x W^T + x dW^T, with

    LoHa: dW = (w1_a @ w1_b) * (w2_a @ w2_b) * alpha / r
    LoKr: dW = kron(w1, w2) * alpha / r, where w1 = w1_a @ w1_b and
          w2 = w2_a @ w2_b when a factor is decomposed

and LoKr's factorization() of the layer sizes, which decides the factor
shapes (use_w1, use_w2). For small random matrices with fixed seeds it
writes the inputs, dW, y and the gradients of sum(dy * y) with respect to x
and every factor (torch autograd, float64) as JSON. Nothing here shares
code with graft.

Usage: /usr/bin/python3 tools/golden/lycoris_reference.py core/peft/testdata/lycoris_golden.json
Needs Debian's python3-torch and python3-numpy.
"""
import json
import sys

import numpy
import torch


def factorization(dimension, factor=-1):
    """PEFT's lokr.layer.factorization: two factors of dimension, the
    first no larger than the second, near factor (or the square root)."""
    if factor > 0 and dimension % factor == 0:
        return factor, dimension // factor
    if factor == -1:
        factor = dimension
    m, n = 1, dimension
    length = m + n
    while m < n:
        new_m = m + 1
        while dimension % new_m != 0:
            new_m += 1
        new_n = dimension // new_m
        if new_m + new_n > length or new_m > factor:
            break
        m, n = new_m, new_n
    if m > n:
        m, n = n, m
    return m, n


def lokr_shapes(out_dim, in_dim, r, decompose_both, decompose_factor):
    """The parameter shapes PEFT's LoKr Linear creates, by name."""
    in_m, in_n = factorization(in_dim, decompose_factor)
    out_l, out_k = factorization(out_dim, decompose_factor)
    use_w1 = not (decompose_both and r < max(out_l, in_m) / 2)
    use_w2 = not (r < max(out_k, in_n) / 2)
    shapes = {}
    if use_w1:
        shapes["lokr_w1"] = (out_l, in_m)
    else:
        shapes["lokr_w1_a"] = (out_l, r)
        shapes["lokr_w1_b"] = (r, in_m)
    if use_w2:
        shapes["lokr_w2"] = (out_k, in_n)
    else:
        shapes["lokr_w2_a"] = (out_k, r)
        shapes["lokr_w2_b"] = (r, in_n)
    return shapes


def f32(t):
    """Rounds to float32 values (what graft stores), kept in float64."""
    return t.to(torch.float32).to(torch.float64)


def values(t):
    """float32 values as the shortest decimals that read back to them."""
    return [float(repr(numpy.float32(v))) for v in t.detach().to(torch.float32).reshape(-1).tolist()]


def run_case(name, method, out_dim, in_dim, rows, r, alpha, seed, **kw):
    g = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=1.0):
        return f32((torch.rand(*shape, generator=g, dtype=torch.float64) * 2 - 1) * scale)

    if method == "loha":
        shapes = {"hada_w1_a": (out_dim, r), "hada_w1_b": (r, in_dim), "hada_w2_a": (out_dim, r), "hada_w2_b": (r, in_dim)}
    else:
        shapes = lokr_shapes(out_dim, in_dim, r, kw["decompose_both"], kw["decompose_factor"])
    weight = rand(out_dim, in_dim, scale=0.5)
    params = {k: rand(*s, scale=0.7).requires_grad_(True) for k, s in shapes.items()}
    x = rand(rows, in_dim).requires_grad_(True)
    dy = rand(rows, out_dim)
    scale = alpha / r

    if method == "loha":
        p = params
        delta = (p["hada_w1_a"] @ p["hada_w1_b"]) * (p["hada_w2_a"] @ p["hada_w2_b"]) * scale
    else:
        p = params
        w1 = p["lokr_w1"] if "lokr_w1" in p else p["lokr_w1_a"] @ p["lokr_w1_b"]
        w2 = p["lokr_w2"] if "lokr_w2" in p else p["lokr_w2_a"] @ p["lokr_w2_b"]
        delta = torch.kron(w1, w2) * scale
    assert delta.shape == (out_dim, in_dim)
    y = x @ weight.T + x @ delta.T
    (y * dy).sum().backward()

    case = {
        "name": name, "method": method, "out": out_dim, "in": in_dim, "rows": rows, "r": r, "alpha": alpha,
        "weight": values(weight), "x": values(x), "dy": values(dy),
        "params": {k: {"shape": list(s), "values": values(params[k])} for k, s in shapes.items()},
        "delta": values(delta), "y": values(y), "dx": values(x.grad),
        "grads": {k: values(params[k].grad) for k in shapes},
    }
    case.update(kw)
    return case


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    cases = [
        run_case("loha", "loha", 6, 10, 4, 3, 4.0, 1),
        run_case("loha rank 1", "loha", 5, 3, 2, 1, 2.0, 2),
        # out 12 = 3x4, in 8 = 2x4; r 8 >= 4/2: both factors whole.
        run_case("lokr whole factors", "lokr", 12, 8, 3, 8, 2.0, 3, decompose_both=False, decompose_factor=-1),
        # out 12 = 3x4, in 10 = 2x5; r 2 < 5/2: w2 = w2_a w2_b.
        run_case("lokr low-rank w2", "lokr", 12, 10, 3, 2, 3.0, 4, decompose_both=False, decompose_factor=-1),
        # decompose_both with r 1 < 3/2: w1 = w1_a w1_b too.
        run_case("lokr decompose both", "lokr", 12, 10, 2, 1, 1.0, 5, decompose_both=True, decompose_factor=-1),
        # decompose_factor 2: out 12 = 2x6, in 8 = 2x4.
        run_case("lokr decompose factor", "lokr", 12, 8, 3, 4, 8.0, 6, decompose_both=False, decompose_factor=2),
        # a prime input size: in 7 = 1x7.
        run_case("lokr prime", "lokr", 6, 7, 2, 16, 16.0, 7, decompose_both=False, decompose_factor=-1),
    ]
    fact = []
    for dim in [1, 2, 7, 12, 32, 64, 127, 128, 172, 256, 768, 4096, 11008, 14336]:
        for factor in [-1, 0, 2, 3, 4, 8, 16, 100]:
            fact.append([dim, factor, *factorization(dim, factor)])
    out = {"generator": "tools/golden/lycoris_reference.py", "cases": cases, "factorization": fact}
    with open(sys.argv[1], "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
