#!/usr/bin/env bash
# Builds the speed peer: llama.cpp from source with native CPU flags (GGML_NATIVE=ON: -march=native, so AVX-512,
# VNNI, BF16 and AMX where the CPU has them), its llama-bench tool only. The source is the llama.cpp that the PyPI
# sdist of llama-cpp-python vendors (PyPI is reachable where GitHub may not be); its commit and build flags are
# written beside the binary (build-info.txt) and printed by bench/peer_speed.sh.
# Usage: bench/build_llama_cpp.sh [DIR]   (default ~/.cache/headscope/llama.cpp-native; re-running reuses it)
set -euo pipefail
DIR="${1:-$HOME/.cache/headscope/llama.cpp-native}"
VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
if [ -x "$DIR/build/bin/llama-bench" ] && [ -s "$DIR/build-info.txt" ]; then echo "$DIR/build/bin/llama-bench"; exit 0; fi
mkdir -p "$DIR"
if [ ! -d "$DIR/src" ]; then
  tmp=$(mktemp -d)
  python3 -m pip download --no-deps --no-binary :all: --quiet --dest "$tmp" "llama-cpp-python==$VERSION" >&2
  tar -xzf "$tmp"/llama_cpp_python-*.tar.gz -C "$tmp"
  mv "$tmp"/llama_cpp_python-*/vendor/llama.cpp "$DIR/src"
  rm -rf "$tmp"
fi
# AMX tiles need the kernel's per-process permission (arch_prctl XCOMP_PERM); where a sandbox or VM does not grant
# it, ggml's AMX matmul dies with SIGILL at its first ldtilecfg. Then the build is redone without AMX (everything
# else still native): the best build that runs on this machine.
NOAMX="${NOAMX:-}"
cmake -S "$DIR/src" -B "$DIR/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
  -DCMAKE_C_FLAGS="$NOAMX" -DCMAKE_CXX_FLAGS="$NOAMX" \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=ON >&2
cmake --build "$DIR/build" --target llama-bench -j"$(nproc)" >&2
MODEL="${HEADSCOPE_MODEL:-$HOME/.cache/headscope/SmolLM2-135M-Instruct.Q4_1.gguf}"
if [ -z "$NOAMX" ] && grep -q amx_tile /proc/cpuinfo && [ -s "$MODEL" ] && \
   ! "$DIR/build/bin/llama-bench" -m "$MODEL" -t 1 -p 32 -n 0 -r 1 >/dev/null 2>&1; then
  echo "llama-bench dies on this machine's AMX: rebuilding without it" >&2
  rm -rf "$DIR/build"
  NOAMX="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" exec "$0" "$DIR"
fi
{
  echo "llama.cpp source: llama-cpp-python $VERSION sdist (vendor/llama.cpp)"
  grep -m1 -o 'LLAMA_BUILD_COMMIT.*' "$DIR/build/common/build-info.cpp" 2>/dev/null || true
  grep -m1 -o 'LLAMA_BUILD_NUMBER.*' "$DIR/build/common/build-info.cpp" 2>/dev/null || true
  # (an sdist holds no git history: its commit is llama-cpp-python's pinned submodule, and ggml's version says which)
  echo "ggml version: $(sed -n 's/^set(GGML_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\))/\2/p' "$DIR/src/ggml/CMakeLists.txt" | paste -sd.)"
  echo "cmake: -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON${NOAMX:+ (the AMX matmul of ggml stops with SIGILL on this machine, so: $NOAMX)}"
  echo "compiler flags: $(grep -m1 -o 'CMAKE_C_FLAGS_RELEASE:STRING=.*' "$DIR/build/CMakeCache.txt") -march=native $NOAMX"
} > "$DIR/build-info.txt"
echo "$DIR/build/bin/llama-bench"
