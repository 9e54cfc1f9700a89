#!/usr/bin/env bash
# The WebGPU backend on this machine's GPU (`make bench-gpu`): the adapter
# (name, backend, driver), matmul GFLOP/s at 1024^3 and 4096^3 beside the
# adapter's FP32 peak (a table of vendors' figures; "unknown" otherwise),
# LoRA r=8 training tokens/s at SmolLM-135M's shape (random init, written
# once to the user cache) on the GPU against graft's CPU backend, greedy
# generation tokens/s, and the most device memory the backend held.
#
#   bench/gpu.sh [gpubench flags]      (bench/gpu.sh -h lists them)
#
# Without a GPU it stops at "no adapter" or "software adapter"; to measure
# lavapipe anyway, at sizes it finishes in minutes:
#   bench/gpu.sh -allow-software -sizes 256,512 -shape tiny
set -euo pipefail
cd "$(dirname "$0")/.."
echo "host: $(uname -srm), load: $(uptime | sed 's/.*load average: //')"
exec go run ./bench/gpubench "$@"
