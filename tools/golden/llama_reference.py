#!/usr/bin/env python3
"""Independent reference forward pass for graft's golden tests.

Reads a GGUF v2/v3 file of a Llama model with F32 tensors (the bundled
stories260K), runs a plain PyTorch implementation of the Llama decoder
(interleaved "Meta" RoPE, as GGUF stores q/k), greedily decodes from BOS and
writes the generated ids and the logits at a few positions as JSON.

Nothing here shares code with graft: the GGUF parsing and the model are
written from the specifications, so agreement is evidence of correctness.

Usage: /usr/bin/python3 tools/golden/llama_reference.py MODEL.gguf OUT.json
Needs Debian's python3-torch and python3-numpy.
"""
import json
import struct
import sys

import numpy as np
import torch

SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


def read_gguf(path):
    data = open(path, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return v[0]

    def string():
        nonlocal pos
        n = take("<Q")
        s = data[pos:pos + n].decode("utf-8")
        pos += n
        return s

    def value(t):
        if t in SCALAR:
            return take(SCALAR[t])
        if t == 8:
            return string()
        if t == 9:
            et = take("<I")
            n = take("<Q")
            return [value(et) for _ in range(n)]
        raise ValueError(f"unknown gguf type {t}")

    assert data[:4] == b"GGUF", "not a GGUF file"
    pos = 4
    version = take("<I")
    assert version in (2, 3), "this reference reads GGUF v2/v3"
    n_tensors = take("<Q")
    n_kv = take("<Q")
    meta = {}
    for _ in range(n_kv):
        k = string()
        meta[k] = value(take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = string()
        nd = take("<I")
        ne = [take("<Q") for _ in range(nd)]
        typ = take("<I")
        off = take("<Q")
        infos.append((name, ne, typ, off))
    align = meta.get("general.alignment", 32)
    start = (pos + align - 1) // align * align
    tensors = {}
    for name, ne, typ, off in infos:
        assert typ == 0, f"{name}: only F32 tensors are supported here"
        n = int(np.prod(ne))
        arr = np.frombuffer(data, dtype="<f4", count=n, offset=start + off)
        tensors[name] = torch.from_numpy(arr.copy()).reshape(list(reversed(ne)))
    return meta, tensors


def rms_norm(x, w, eps):
    x64 = x.double()
    return (x64 * torch.rsqrt(x64.pow(2).mean(-1, keepdim=True) + eps)).float() * w


def rope_interleaved(x, pos, theta):
    # x: [T, heads, hd]; pairs (2i, 2i+1) rotate by pos * theta^(-2i/hd).
    T, H, hd = x.shape
    inv = theta ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    ang = pos[:, None].double() * inv[None, :]
    cos, sin = ang.cos().float()[:, None, :], ang.sin().float()[:, None, :]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = x0 * cos - x1 * sin
    out[..., 1::2] = x0 * sin + x1 * cos
    return out


def forward(meta, t, ids):
    arch = meta["general.architecture"]
    n_layer = meta[f"{arch}.block_count"]
    n_head = meta[f"{arch}.attention.head_count"]
    n_kv = meta[f"{arch}.attention.head_count_kv"]
    eps = meta[f"{arch}.attention.layer_norm_rms_epsilon"]
    theta = meta.get(f"{arch}.rope.freq_base", 10000.0)
    emb = t["token_embd.weight"]
    x = emb[torch.tensor(ids)]
    T, dim = x.shape
    hd = dim // n_head
    pos = torch.arange(T)
    mask = torch.full((T, T), float("-inf")).triu(1)
    for l in range(n_layer):
        p = f"blk.{l}."
        h = rms_norm(x, t[p + "attn_norm.weight"], eps)
        q = (h @ t[p + "attn_q.weight"].T).view(T, n_head, hd)
        k = (h @ t[p + "attn_k.weight"].T).view(T, n_kv, hd)
        v = (h @ t[p + "attn_v.weight"].T).view(T, n_kv, hd)
        q, k = rope_interleaved(q, pos, theta), rope_interleaved(k, pos, theta)
        rep = n_head // n_kv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        att = torch.einsum("qhd,khd->hqk", q, k) / (hd ** 0.5) + mask
        o = torch.einsum("hqk,khd->qhd", att.softmax(-1), v).reshape(T, dim)
        x = x + o @ t[p + "attn_output.weight"].T
        h = rms_norm(x, t[p + "ffn_norm.weight"], eps)
        g = h @ t[p + "ffn_gate.weight"].T
        u = h @ t[p + "ffn_up.weight"].T
        x = x + (torch.nn.functional.silu(g) * u) @ t[p + "ffn_down.weight"].T
    x = rms_norm(x, t["output_norm.weight"], eps)
    out = t.get("output.weight", emb)
    return x @ out.T


def main():
    path, out_path = sys.argv[1], sys.argv[2]
    torch.set_grad_enabled(False)
    meta, t = read_gguf(path)
    bos = meta["tokenizer.ggml.bos_token_id"]
    ids = [bos]
    n_new = 256
    for _ in range(n_new):  # full recompute each step: slow but obviously right
        logits = forward(meta, t, ids)
        ids.append(int(logits[-1].argmax()))
    logits = forward(meta, t, ids[:-1])
    positions = [0, 1, 7, 31, 100, 255]
    vocab = meta["tokenizer.ggml.tokens"]
    text = "".join(vocab[i] for i in ids[1:]).replace("\u2581", " ")
    golden = {
        "model": path.split("/")[-1],
        "prompt_ids": [bos],
        "generated_ids": ids[1:],
        "text_preview": text[:200],
        "positions": positions,
        "logits": [[round(float(v), 7) for v in logits[p]] for p in positions],
    }
    with open(out_path, "w") as f:
        json.dump(golden, f)
        f.write("\n")
    print(text[:300])


if __name__ == "__main__":
    main()
