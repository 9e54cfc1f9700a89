"""LoRA training throughput of a plain eager-mode Llama in PyTorch: the peer
that bench/e2e measures graft's training against.

The model is written out in full (RMSNorm, rotate-half RoPE, GQA attention
through matmul + softmax with a causal mask, SwiGLU MLP, untied lm_head) so
that nothing but stock eager PyTorch runs: no fused SDPA kernel, no
torch.compile. LoRA r=16, alpha=32 sits on q, k, v and o; AdamW updates the
LoRA parameters only, after clipping the global gradient norm to 1 (graft's
trainer does the same by default). Weights are random: the figure is speed,
not quality.

Usage:
  /usr/bin/python3 bench/torch_lora.py --preset stories260k|smol135m \\
      [--steps 4] [--warmup 1] [--batch 4] [--seq 256] [--threads 2]

It prints one JSON line: preset, steps, warmup, batch, seq, tokens_per_s
(over the timed steps after the warmup), step_ms, peak_rss_bytes, torch,
threads. Needs Debian's python3-torch; without it, it exits with status 3
and says to run
  apt-get install python3-torch libopenblas0-pthread
"""
import argparse
import json
import math
import resource
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError as err:
    # Exit status 3 tells bench/e2e that torch itself is missing.
    print(f"torch_lora.py: cannot import torch ({err}): run  apt-get install python3-torch libopenblas0-pthread", file=sys.stderr)
    sys.exit(3)

# Architectures of the two benchmark models; stories260k matches
# models/stories260K/stories260K.gguf (`graft inspect` prints the same).
PRESETS = {
    "stories260k": dict(dim=64, layers=5, heads=8, kv_heads=4, ffn=172, vocab=512, theta=10000.0, eps=1e-5),
    "smol135m": dict(dim=576, layers=30, heads=9, kv_heads=3, ffn=1536, vocab=49152, theta=10000.0, eps=1e-5),
}

LORA_R, LORA_ALPHA = 16, 32


class LoraLinear(torch.nn.Module):
    """y = x W^T + (alpha/r) x A^T B^T with W frozen and A, B trainable."""

    def __init__(self, d_in, d_out, r, alpha, std):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(d_out, d_in) * std, requires_grad=False)
        # PEFT's default init: A Kaiming-uniform, B zero.
        bound = 1 / math.sqrt(d_in)
        self.lora_a = torch.nn.Parameter(torch.empty(r, d_in).uniform_(-bound, bound))
        self.lora_b = torch.nn.Parameter(torch.zeros(d_out, r))
        self.scale = alpha / r

    def forward(self, x):
        return x @ self.weight.t() + (x @ self.lora_a.t() @ self.lora_b.t()) * self.scale


class Frozen(torch.nn.Module):
    """A plain linear layer without bias whose weight is not trained."""

    def __init__(self, d_in, d_out, std):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(d_out, d_in) * std, requires_grad=False)

    def forward(self, x):
        return x @ self.weight.t()


class RMSNorm(torch.nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(dim), requires_grad=False)
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Block(torch.nn.Module):
    def __init__(self, c, std):
        super().__init__()
        dim, hd = c["dim"], c["dim"] // c["heads"]
        self.heads, self.kv_heads, self.head_dim = c["heads"], c["kv_heads"], hd
        self.attn_norm = RMSNorm(dim, c["eps"])
        self.q = LoraLinear(dim, c["heads"] * hd, LORA_R, LORA_ALPHA, std)
        self.k = LoraLinear(dim, c["kv_heads"] * hd, LORA_R, LORA_ALPHA, std)
        self.v = LoraLinear(dim, c["kv_heads"] * hd, LORA_R, LORA_ALPHA, std)
        self.o = LoraLinear(c["heads"] * hd, dim, LORA_R, LORA_ALPHA, std)
        self.ffn_norm = RMSNorm(dim, c["eps"])
        self.gate = Frozen(dim, c["ffn"], std)
        self.up = Frozen(dim, c["ffn"], std)
        self.down = Frozen(c["ffn"], dim, std)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        h = self.attn_norm(x)
        q = self.q(h).view(B, T, self.heads, self.head_dim).transpose(1, 2)
        k = self.k(h).view(B, T, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v(h).view(B, T, self.kv_heads, self.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        group = self.heads // self.kv_heads
        k = k.repeat_interleave(group, dim=1)
        v = v.repeat_interleave(group, dim=1)
        # Scaling q rather than the T x T scores is the cheaper order.
        scores = (q * (1 / math.sqrt(self.head_dim))) @ k.transpose(-2, -1) + mask
        attn = torch.softmax(scores, dim=-1) @ v
        x = x + self.o(attn.transpose(1, 2).reshape(B, T, -1))
        h = self.ffn_norm(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Llama(torch.nn.Module):
    def __init__(self, c, seq):
        super().__init__()
        std = 0.02
        self.embed = torch.nn.Parameter(torch.randn(c["vocab"], c["dim"]) * std, requires_grad=False)
        self.blocks = torch.nn.ModuleList(Block(c, std) for _ in range(c["layers"]))
        self.norm = RMSNorm(c["dim"], c["eps"])
        self.lm_head = Frozen(c["dim"], c["vocab"], std)
        hd = c["dim"] // c["heads"]
        inv = 1.0 / (c["theta"] ** (torch.arange(0, hd, 2).float() / hd))
        ang = torch.outer(torch.arange(seq).float(), inv)
        ang = torch.cat((ang, ang), dim=-1)
        self.register_buffer("cos", ang.cos())
        self.register_buffer("sin", ang.sin())
        self.register_buffer("mask", torch.full((seq, seq), float("-inf")).triu(1))

    def forward(self, ids):
        T = ids.shape[1]
        x = self.embed[ids]
        cos, sin, mask = self.cos[:T], self.sin[:T], self.mask[:T, :T]
        for b in self.blocks:
            x = b(x, cos, sin, mask)
        return self.lm_head(self.norm(x))


def main():
    p = argparse.ArgumentParser(description="LoRA training tokens/s of an eager PyTorch Llama")
    p.add_argument("--preset", choices=sorted(PRESETS), required=True)
    p.add_argument("--steps", type=int, default=4, help="timed optimizer steps")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps before them")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    if a.steps < 1 or a.warmup < 0 or a.batch < 1 or a.seq < 2 or a.threads < 1:
        p.error("steps, batch and threads must be >= 1, seq >= 2 and warmup >= 0")

    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    c = PRESETS[a.preset]
    model = Llama(c, a.seq)
    params = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0)
    gen = torch.Generator().manual_seed(2)

    def step():
        ids = torch.randint(0, c["vocab"], (a.batch, a.seq + 1), generator=gen)
        logits = model(ids[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, c["vocab"]), ids[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
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
    print(json.dumps({
        "preset": a.preset,
        "steps": a.steps,
        "warmup": a.warmup,
        "batch": a.batch,
        "seq": a.seq,
        "tokens_per_s": a.batch * a.seq * a.steps / dt,
        "step_ms": dt / a.steps * 1e3,
        "loss": loss,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "torch": torch.__version__,
        "threads": a.threads,
    }))


if __name__ == "__main__":
    main()
