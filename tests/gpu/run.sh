#!/bin/bash
# The GPU benchmark, run on a GPU box from the bundle `cargo xtask gpu-bundle` made (this file's
# folder): builds ggml's CUDA backend and llama-bench from the bundled sources, then measures the
# drafting engine — Scribe's (`scribe-draft-bench`, the `cuda` build) and llama.cpp's own
# llama-bench — on the GPU and on this box's CPUs, same model, same threads. Writes JSON and a log
# to RESULTS; `cargo xtask gpu-report RESULTS` turns them into docs/bench/gpu.md.
#
#   run.sh RESULTS
set -uo pipefail
bundle=$(cd "$(dirname "$0")" && pwd)
results=${1:?usage: run.sh RESULTS}
mkdir -p "$results"
exec > >(tee "$results/log.txt") 2>&1

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$results/gpu.txt"
{ nproc; grep -m1 'model name' /proc/cpuinfo; nvcc --version | tail -n2; } | tee "$results/host.txt"

# The model: its header as shipped, tensors as zeros up to the real size (see gpu-bundle).
model=/tmp/scribe-bench-model.gguf
cp "$bundle/model.head" "$model" && truncate -s "$(cat "$bundle/model.size")" "$model"

started=$(date +%s)
"$bundle/build-cuda-backend.sh" "$bundle/llama.cpp" "$bundle/worker" "$bundle/llama-bench-src" ||
    { echo "CUDA build failed"; exit 1; }
echo "cuda_build_s=$(($(date +%s) - started))" | tee "$results/build.txt"

threads=$(nproc)
scribe=("$bundle/worker/scribe-draft-bench" --model "$model" --threads "$threads" --prompt 512 --generate 128 --reps 5)
llama=("$bundle/worker/llama-bench/llama-bench" -m "$model" -t "$threads" -p 512 -n 128 -d 0,512 -r 5 -o json)
# Each run is bounded, so one hung run cannot eat the rest of the lease.
timeout 180 "${scribe[@]}" > "$results/scribe-gpu.json"; echo "scribe gpu rc=$?"
timeout 180 "${llama[@]}" > "$results/llama-bench-gpu.json"; echo "llama-bench gpu rc=$?"
# The same on the CPUs alone: with no visible GPU the CUDA module registers no device.
CUDA_VISIBLE_DEVICES= timeout 240 "${scribe[@]}" > "$results/scribe-cpu.json"; echo "scribe cpu rc=$?"
CUDA_VISIBLE_DEVICES= timeout 240 "${llama[@]}" > "$results/llama-bench-cpu.json"; echo "llama-bench cpu rc=$?"
head -c 600 "$results"/*.json
