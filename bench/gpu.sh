#!/usr/bin/env bash
# LoRA training throughput on --device gpu against cpu.
#
#   bench/gpu.sh [model.gguf|hf-dir] [steps]
#
# Give it a 135M-parameter Llama (for example SmolLM2-135M as GGUF or a
# Hugging Face directory) to measure at that shape; without an argument it
# uses the bundled stories260K. It trains LoRA r=8 on q,k,v,o with batches
# of 4 x 128 tokens from examples/lora/data and prints tokens/s for each
# device (the first step, which compiles the GPU kernels, is not timed).
# Without a hardware GPU the gpu row says "no GPU" and why.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/stories260K/stories260K.gguf}
steps=${2:-20}
[ -e "$model" ] || { echo "bench/gpu.sh: $model does not exist" >&2; exit 2; }
case "$model" in /*) ;; *) model="$PWD/$model" ;; esac
echo "model: $model, $steps timed steps per device"
GRAFT_BENCH_MODEL="$model" go test ./gpu -run '^$' -bench '^BenchmarkLoRATrain$' \
	-benchtime="${steps}x" -count=1 -timeout 0 -v 2>&1 |
	grep -E '^(Benchmark|--- SKIP|    bench_test|ok|FAIL)|no GPU' || true
