"""F32 matrix product GFLOP/s in PyTorch, for side-by-side comparison with
graft's `go test -bench MatMulF32 ./core/cpu` (run both in one go: the
machine is shared and noisy, so only ratios measured together mean much).

Usage: /usr/bin/python3 bench/torch_matmul.py [threads] [n ...]
Needs Debian's python3-torch: apt-get install python3-torch libopenblas0-pthread
"""
import sys
import time

try:
    import torch
except ImportError:
    sys.exit("torch is missing: run  sudo apt-get install python3-torch libopenblas0-pthread")

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
sizes = [int(s) for s in sys.argv[2:]] or [256, 512, 1024]
torch.set_num_threads(threads)
for n in sizes:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    for name, f in (("NN", lambda: a @ b), ("NT", lambda: a @ b.t()), ("TN", lambda: a.t() @ b)):
        reps = max(3, int(2e9 / (2 * n**3)))
        t = time.perf_counter()
        for _ in range(reps):
            f()
        dt = (time.perf_counter() - t) / reps
        print(f"torch MatMulF32/{n}/{name} threads={threads} {2 * n**3 / dt / 1e9:.2f} GFLOP/s")
