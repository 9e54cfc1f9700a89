"""F32 matrix product GFLOP/s in PyTorch, for side-by-side comparison with
graft's `go test -bench MatMulF32 ./core/cpu` (run both in one go: the
machine is shared and noisy, so only ratios measured together mean much).

PyTorch's intra-op pool and OpenBLAS's each default to every core and can
spin against each other, so every split of the threads (torch intra-op x
OpenBLAS threads: 1x1, 1x2, 2x1, 2x2 for 2, and the untouched defaults) runs
in a subprocess of its own (OpenBLAS reads OPENBLAS_NUM_THREADS when it
loads). One line per split goes to stderr; stdout gets, per size and
product, the fastest split's line, named by its split.

Usage: /usr/bin/python3 bench/torch_matmul.py [threads] [n ...]
       /usr/bin/python3 bench/torch_matmul.py --split TxB|default [n ...]
Needs Debian's python3-torch: apt-get install python3-torch libopenblas0-pthread
"""
import json
import os
import subprocess
import sys
import time


def measure(split, sizes):
    """Times the products in this process; returns {row name: GFLOP/s}."""
    try:
        import torch
    except ImportError:
        sys.exit("torch is missing: run  sudo apt-get install python3-torch libopenblas0-pthread")
    if split != "default":
        torch.set_num_threads(int(split.split("x")[0]))
    out = {}
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
            out[f"{n}/{name}"] = 2 * n**3 / dt / 1e9
    return out


def main():
    args = sys.argv[1:]
    if args[:1] == ["--split"]:
        print(json.dumps(measure(args[1], [int(s) for s in args[2:]])))
        return
    threads = int(args[0]) if args else 2
    sizes = [int(s) for s in args[1:]] or [256, 512, 1024]
    splits = [f"{t}x{b}" for t in range(1, threads + 1) for b in range(1, threads + 1)] + ["default"]
    best = {}
    for split in splits:
        env = dict(os.environ)
        for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "MKL_NUM_THREADS"):
            env.pop(k, None)
        if split != "default":
            t, b = split.split("x")
            env["OMP_NUM_THREADS"], env["OPENBLAS_NUM_THREADS"] = t, b
        r = subprocess.run([sys.executable, os.path.abspath(__file__), "--split", split] + [str(n) for n in sizes],
                           env=env, stdout=subprocess.PIPE, text=True)
        if r.returncode != 0:
            sys.exit(r.returncode)
        for row, gflops in json.loads(r.stdout.strip().splitlines()[-1]).items():
            print(f"torch MatMulF32/{row} split={split} {gflops:.2f} GFLOP/s", file=sys.stderr)
            if row not in best or gflops > best[row][1]:
                best[row] = (split, gflops)
    for row, (split, gflops) in best.items():
        print(f"torch MatMulF32/{row} fastest split={split} (torch intra-op x BLAS threads) {gflops:.2f} GFLOP/s")


if __name__ == "__main__":
    main()
