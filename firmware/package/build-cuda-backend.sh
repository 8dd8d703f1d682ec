#!/bin/sh
# Builds ggml's CUDA backend for the drafting worker on a GPU box, where nvcc and CMake are (no
# Rust needed): the worker built with `--features cuda` loads libggml-cuda.so from its own folder
# at start and puts every layer on the GPU; without the module it runs on the CPU as before.
#
#   build-cuda-backend.sh LLAMA_CPP_DIR WORKER_DIR [LLAMA_BENCH_DIR]
#
# LLAMA_CPP_DIR: the llama.cpp tree vendored in llama-cpp-sys-2 (the worker's exact sources).
# WORKER_DIR: where scribe-draft-worker and its libllama/libggml libraries are installed; the
# module is copied there. With LLAMA_BENCH_DIR, llama.cpp's llama-bench is built from the same
# sources and copied there too. CUDA_ARCHITECTURES (default: the GPUs in this box) and
# BUILD_DIR (default: WORKER_DIR/.cuda-build, kept so a rebuild is incremental) override.
set -eu
[ $# -ge 2 ] || { echo "usage: $0 LLAMA_CPP_DIR WORKER_DIR [LLAMA_BENCH_DIR]" >&2; exit 2; }
src=$(cd "$1" && pwd)
worker=$(cd "$2" && pwd)
bench=${3:+$(cd "$3" && pwd)}
here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD_DIR:-$worker/.cuda-build}
command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || { echo "nvcc not found: install the CUDA toolkit" >&2; exit 1; }
export PATH="$PATH:/usr/local/cuda/bin"
generator=""
command -v ninja >/dev/null && generator="-G Ninja"
# shellcheck disable=SC2086 # $generator is zero or two words
cmake -S "$here/cuda" -B "$build" $generator -DCMAKE_BUILD_TYPE=Release \
    -DLLAMA_CPP_DIR="$src" -DLLAMA_BENCH_DIR="$bench" \
    -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHITECTURES:-native}"
targets="ggml-cuda"
[ -n "$bench" ] && targets="$targets llama-bench"
# shellcheck disable=SC2086 # one word per target
cmake --build "$build" -j"$(nproc)" --target $targets
cp "$(find "$build" -name libggml-cuda.so -type f | head -n1)" "$worker/"
if [ -n "$bench" ]; then
    mkdir -p "$worker/llama-bench"
    cp "$(find "$build" -name llama-bench -type f -perm -u+x | head -n1)" "$worker/llama-bench/"
    # llama-bench runs on its own build's libraries, not the worker's.
    find "$build" -name 'lib*.so*' \( -type f -o -type l \) -exec cp -P {} "$worker/llama-bench/" \;
    # Left out of the worker too: AMX, advertised but not granted on virtualised Xeons (SIGILL).
    rm -f "$worker/llama-bench/libggml-cpu-sapphirerapids.so"
fi
echo "libggml-cuda.so installed in $worker"
