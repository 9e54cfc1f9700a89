"""LoRA training throughput of a plain eager-mode Llama in PyTorch, written
the way a user tuning eager PyTorch would: the peer that bench/e2e measures
graft's training against.

The model is written out in full (RMSNorm, rotate-half RoPE, GQA attention
through matmul + softmax with a causal mask, SwiGLU MLP, untied lm_head) so
that nothing but stock eager PyTorch runs: no fused SDPA kernel, no
torch.compile. LoRA r=16, alpha=32 sits on q, k, v and o; AdamW updates the
LoRA parameters only, after clipping the global gradient norm to 1 (graft's
trainer does the same by default). Weights are random: the figure is speed,
not quality. What a tuned eager user does is done: frozen weights have
requires_grad=False (no gradient is computed for them), the frozen q/k/v and
gate/up projections are one matrix product each, RoPE runs once over q and k
together, GQA shares k and v by reshaping q instead of copying k and v per
head, and AdamW and the clipping use PyTorch's multi-tensor (foreach) paths.

Thread counts matter more than anything else on a small machine: PyTorch's
own intra-op pool (OpenMP) and the BLAS library's (OpenBLAS) each default to
every core, and the two spin against each other. So by default this script
tries every split of --threads into torch intra-op threads x BLAS threads
(1x1, 1x2, 2x1, 2x2 for 2, plus the untouched defaults), each in its own
subprocess because OpenBLAS reads OPENBLAS_NUM_THREADS only when it loads,
and reports the fastest, with every split's figures under "runs".

Usage:
  /usr/bin/python3 bench/torch_lora.py --preset stories260k|smol135m \\
      [--steps 4] [--warmup 1] [--batch 4] [--seq 256] [--threads 2] [--rounds 1]
      [--split TxB|default]

It prints one line per split to stderr and one JSON line to stdout:
preset, steps, warmup, batch, seq, tokens_per_s and step_ms (the fastest
split's, over the timed steps after the warmup), split, peak_rss_bytes (that
run's), torch, blas, threads, runs. --split runs one split in this process.
Needs Debian's python3-torch and OpenBLAS; without torch it exits with
status 3 and says to run
  apt-get install python3-torch libopenblas0-pthread
"""
import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

INSTALL_HINT = "apt-get install python3-torch libopenblas0-pthread"

# Architectures of the two benchmark models; stories260k matches
# models/stories260K/stories260K.gguf (`graft inspect` prints the same).
PRESETS = {
    "stories260k": dict(dim=64, layers=5, heads=8, kv_heads=4, ffn=172, vocab=512, theta=10000.0, eps=1e-5),
    "smol135m": dict(dim=576, layers=30, heads=9, kv_heads=3, ffn=1536, vocab=49152, theta=10000.0, eps=1e-5),
}

LORA_R, LORA_ALPHA = 16, 32


def build_model(torch, c, seq):
    """The Llama of preset c with LoRA on q, k, v and o, for sequences up to
    seq. torch is passed in because it is imported only once the thread
    environment of the split is set."""
    F = torch.nn.functional

    def frozen(d_out, d_in, std):
        return torch.nn.Parameter(torch.randn(d_out, d_in) * std, requires_grad=False)

    class Lora(torch.nn.Module):
        """The trainable pair of one projection: delta = (alpha/r) x A^T B^T."""

        def __init__(self, d_in, d_out):
            super().__init__()
            # PEFT's default init: A Kaiming-uniform, B zero.
            bound = 1 / math.sqrt(d_in)
            self.a = torch.nn.Parameter(torch.empty(LORA_R, d_in).uniform_(-bound, bound))
            self.b = torch.nn.Parameter(torch.zeros(d_out, LORA_R))

    class Block(torch.nn.Module):
        def __init__(self, std):
            super().__init__()
            dim, hd = c["dim"], c["dim"] // c["heads"]
            self.heads, self.kv_heads, self.head_dim = c["heads"], c["kv_heads"], hd
            self.q_out, self.kv_out = c["heads"] * hd, c["kv_heads"] * hd
            self.eps = c["eps"]
            # RMSNorm weights are frozen (ones, as a fresh model has them).
            self.attn_norm = torch.nn.Parameter(torch.ones(dim), requires_grad=False)
            self.ffn_norm = torch.nn.Parameter(torch.ones(dim), requires_grad=False)
            # Frozen q, k, v in one matrix, and gate, up in another: one
            # product each instead of three and two.
            self.wqkv = frozen(self.q_out + 2 * self.kv_out, dim, std)
            self.wo = frozen(dim, self.q_out, std)
            self.wgate_up = frozen(2 * c["ffn"], dim, std)
            self.wdown = frozen(dim, c["ffn"], std)
            self.lq, self.lk = Lora(dim, self.q_out), Lora(dim, self.kv_out)
            self.lv, self.lo = Lora(dim, self.kv_out), Lora(self.q_out, dim)
            self.scale = LORA_ALPHA / LORA_R

        def norm(self, x, w):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

        def forward(self, x, cos, sin, mask):
            B, T, _ = x.shape
            H, KV, hd = self.heads, self.kv_heads, self.head_dim
            h = self.norm(x, self.attn_norm)
            # The three LoRA A products share their input: one product, then
            # the scale on the r-wide result (cheaper than on the output).
            a = F.linear(h, torch.cat((self.lq.a, self.lk.a, self.lv.a))) * self.scale
            aq, ak, av = a.split(LORA_R, dim=-1)
            delta = torch.cat((F.linear(aq, self.lq.b), F.linear(ak, self.lk.b), F.linear(av, self.lv.b)), dim=-1)
            qkv = F.linear(h, self.wqkv) + delta
            # RoPE (rotate-half) once over the q and k heads together.
            qk = qkv[..., : self.q_out + self.kv_out].view(B, T, H + KV, hd)
            half = hd // 2
            qk = qk * cos + torch.cat((-qk[..., half:], qk[..., :half]), dim=-1) * sin
            group = H // KV
            # GQA without copying k and v per head: the query heads of one
            # kv head become extra rows, [B, KV, group*T, hd].
            q = qk[:, :, :H].transpose(1, 2).reshape(B, KV, group * T, hd)
            k = qk[:, :, H:].transpose(1, 2)
            v = qkv[..., self.q_out + self.kv_out :].view(B, T, KV, hd).transpose(1, 2)
            # Scaling q rather than the T x T scores is the cheaper order.
            scores = (q * (1 / math.sqrt(hd))) @ k.transpose(-2, -1) + mask
            attn = (torch.softmax(scores, dim=-1) @ v).view(B, H, T, hd).transpose(1, 2).reshape(B, T, -1)
            x = x + F.linear(attn, self.wo) + F.linear(F.linear(attn, self.lo.a) * self.scale, self.lo.b)
            h = self.norm(x, self.ffn_norm)
            gate, up = F.linear(h, self.wgate_up).chunk(2, dim=-1)
            return x + F.linear(F.silu(gate) * up, self.wdown)

    class Llama(torch.nn.Module):
        def __init__(self):
            super().__init__()
            std = 0.02
            self.embed = frozen(c["vocab"], c["dim"], std)
            self.blocks = torch.nn.ModuleList(Block(std) for _ in range(c["layers"]))
            self.norm_w = torch.nn.Parameter(torch.ones(c["dim"]), requires_grad=False)
            self.lm_head = frozen(c["vocab"], c["dim"], std)
            hd = c["dim"] // c["heads"]
            inv = 1.0 / (c["theta"] ** (torch.arange(0, hd, 2).float() / hd))
            ang = torch.outer(torch.arange(seq).float(), inv)
            ang = torch.cat((ang, ang), dim=-1)
            # [T, 1, hd]: broadcast over the heads of [B, T, heads, hd].
            self.register_buffer("cos", ang.cos().unsqueeze(1))
            self.register_buffer("sin", ang.sin().unsqueeze(1))
            self.group = c["heads"] // c["kv_heads"]
            self.register_buffer("mask", torch.full((seq, seq), float("-inf")).triu(1))

        def forward(self, ids):
            T = ids.shape[1]
            x = F.embedding(ids, self.embed)
            cos, sin = self.cos[:T], self.sin[:T]
            # The causal mask repeated for the group's query rows.
            mask = self.mask[:T, :T].repeat(self.group, 1)
            for b in self.blocks:
                x = b(x, cos, sin, mask)
            x = self.blocks[0].norm(x, self.norm_w)
            return F.linear(x, self.lm_head)

    return Llama()


def split_env(split, threads):
    """The environment of a child running split ("TxB" or "default")."""
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(k, None)
    if split != "default":
        t, b = parse_split(split)
        env["OMP_NUM_THREADS"] = str(t)
        env["OPENBLAS_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(b)
    return env


def parse_split(split):
    t, b = split.split("x")
    return int(t), int(b)


def blas_library():
    """The BLAS shared library this process loaded (torch links libblas.so.3,
    which Debian's alternatives point at OpenBLAS or the slow reference)."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if "blas" in os.path.basename(path):
                    return os.path.realpath(path)
    except OSError:
        pass
    return "unknown"


def run_split(a):
    """Trains in this process with a.split's threads; returns the result."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as err:
        # Exit status 3 tells bench/e2e that torch itself is missing.
        print(f"torch_lora.py: cannot import torch ({err}): run  {INSTALL_HINT}", file=sys.stderr)
        sys.exit(3)
    if a.split != "default":
        torch.set_num_threads(parse_split(a.split)[0])
    torch.manual_seed(1)
    c = PRESETS[a.preset]
    model = build_model(torch, c, a.seq)
    params = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0, foreach=True)
    gen = torch.Generator().manual_seed(2)

    def step():
        ids = torch.randint(0, c["vocab"], (a.batch, a.seq + 1), generator=gen)
        logits = model(ids[:, :-1])
        loss = F.cross_entropy(logits.view(-1, c["vocab"]), ids[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        # clip_grad_norm_(params, 1.0) with multi-tensor ops (torch 2's
        # foreach path; 1.13's clip_grad_norm_ loops over the tensors).
        grads = [q.grad for q in params]
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        torch._foreach_mul_(grads, torch.clamp(1.0 / (norm + 1e-6), max=1.0).item())
        opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    dt = time.perf_counter() - t0
    if not math.isfinite(loss):
        sys.exit(f"torch_lora.py: loss is {loss}")
    return {
        "preset": a.preset,
        "steps": a.steps,
        "warmup": a.warmup,
        "batch": a.batch,
        "seq": a.seq,
        "tokens_per_s": a.batch * a.seq * a.steps / dt,
        "step_ms": dt / a.steps * 1e3,
        "loss": loss,
        "split": a.split,
        "intra_op_threads": torch.get_num_threads(),
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
        "blas": blas_library(),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "torch": torch.__version__,
    }


def main():
    p = argparse.ArgumentParser(description="LoRA training tokens/s of an eager PyTorch Llama, at its fastest thread split")
    p.add_argument("--preset", choices=sorted(PRESETS), required=True)
    p.add_argument("--steps", type=int, default=4, help="timed optimizer steps")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps before them")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--threads", type=int, default=2, help="most threads a split may use (torch's and BLAS's each)")
    p.add_argument("--rounds", type=int, default=1, help="times every split runs (the best run of each counts)")
    p.add_argument("--split", help="run one split here: TxB (torch intra-op x BLAS threads) or default")
    a = p.parse_args()
    if a.steps < 1 or a.warmup < 0 or a.batch < 1 or a.seq < 2 or a.threads < 1 or a.rounds < 1:
        p.error("steps, batch, threads and rounds must be >= 1, seq >= 2 and warmup >= 0")
    if a.split is not None:
        if a.split != "default":
            try:
                t, b = parse_split(a.split)
            except ValueError:
                p.error(f"--split {a.split}: want TxB (e.g. 2x1) or default")
            if t < 1 or b < 1:
                p.error(f"--split {a.split}: thread counts must be >= 1")
        print(json.dumps(run_split(a)))
        return

    splits = [f"{t}x{b}" for t in range(1, a.threads + 1) for b in range(1, a.threads + 1)] + ["default"]
    best = {}
    for _ in range(a.rounds):
        for split in splits:
            cmd = [sys.executable, os.path.abspath(__file__), "--preset", a.preset, "--steps", str(a.steps),
                   "--warmup", str(a.warmup), "--batch", str(a.batch), "--seq", str(a.seq), "--split", split]
            r = subprocess.run(cmd, env=split_env(split, a.threads), stdout=subprocess.PIPE, text=True)
            if r.returncode != 0:
                # 3: torch is missing, the same for every split.
                sys.exit(r.returncode)
            res = json.loads(r.stdout.strip().splitlines()[-1])
            print(f"torch_lora.py: {a.preset} split {split} (torch intra-op x BLAS threads): "
                  f"{res['tokens_per_s']:.1f} tokens/s, {res['step_ms']:.1f} ms/step", file=sys.stderr)
            if split not in best or res["tokens_per_s"] > best[split]["tokens_per_s"]:
                best[split] = res
    runs = [{k: best[s][k] for k in ("split", "intra_op_threads", "blas_threads", "tokens_per_s", "step_ms", "peak_rss_bytes")}
            for s in splits]
    win = max(best.values(), key=lambda r: r["tokens_per_s"])
    if "openblas" not in win["blas"]:
        print(f"torch_lora.py: warning: torch runs on {win['blas']}, not OpenBLAS, so its matrix products are slow: "
              f"run  {INSTALL_HINT}", file=sys.stderr)
    print(f"torch_lora.py: {a.preset} fastest split {win['split']}: {win['tokens_per_s']:.1f} tokens/s", file=sys.stderr)
    print(json.dumps(dict(win, threads=a.threads, rounds=a.rounds, runs=runs)))


if __name__ == "__main__":
    main()
