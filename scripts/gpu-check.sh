#!/usr/bin/env bash
# The GPU path in one command: on a machine with an NVIDIA GPU, builds headscope against the LibTorch that PyTorch
# ships (no apt, no internet needed beyond what is in the tree) and runs
#   1. the CUDA attention kernel's parity test against the materialising reference (headscope_tests "[cuda]"),
#   2. SmolLM2-135M's logits with --device cuda against --device cpu (every position, top-20 logits),
#   3. the attention benchmark's CUDA rows,
# and prints one summary. Without a GPU it runs its CPU half: the same build steps on this build tree, the CPU parity
# test, the clear error of --device cuda, and the CPU benchmark rows of one shape.
# Usage: scripts/gpu-check.sh [MODEL]
#        scripts/gpu-check.sh --fetch-deps   (here, with apt: downloads the -dev packages a bare GPU machine lacks into
#                                             .deps/, which a GPU run unpacks into its own prefix)
# A machine without the system libraries headscope needs (HDF5, PCRE2, utf8proc, nlohmann-json, CLI11, Catch2, Google
# Benchmark, OpenSSL) gets them from .deps/*.deb when present.
set -uo pipefail
cd "$(dirname "$0")/.."
DEPS=(libhdf5-dev libhdf5-103-1 libhdf5-cpp-103-1 libsz2 libaec0 libpcre2-dev libpcre2-8-0 libutf8proc-dev libutf8proc2
      nlohmann-json3-dev libcli11-dev catch2 libbenchmark-dev libbenchmark1debian libssl-dev libcurl4 zlib1g-dev)
if [ "${1:-}" = "--fetch-deps" ]; then
  mkdir -p .deps  # ignored by .gitignore
  (cd .deps && apt-get download "${DEPS[@]}") && ls -la .deps
  exit $?
fi
MODEL=${1:-${HEADSCOPE_MODEL_DIR:-$HOME/.cache/headscope}/SmolLM2-135M-Instruct.Q4_1.gguf}
summary=()
say() { summary+=("$1"); echo "== $1"; }
t0=$(date +%s)

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  gpu=$(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | head -n 1)
  say "GPU: $gpu"
  torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)') || { say "FAIL: python3 has no torch"; exit 1; }
  prefix="$torch_prefix"
  if ls .deps/*.deb >/dev/null 2>&1; then  # system libraries this machine lacks, unpacked into a private root
    root=$PWD/build-gpu/deps
    mkdir -p "$root"
    for f in .deps/*.deb; do dpkg -x "$f" "$root"; done
    prefix="$prefix;$root/usr"
    export LD_LIBRARY_PATH="$root/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
    export PKG_CONFIG_PATH="$root/usr/lib/x86_64-linux-gnu/pkgconfig:$root/usr/share/pkgconfig:${PKG_CONFIG_PATH:-}"
    export CPATH="$root/usr/include:$root/usr/include/hdf5/serial:${CPATH:-}"
    export LIBRARY_PATH="$root/usr/lib/x86_64-linux-gnu:$root/usr/lib/x86_64-linux-gnu/hdf5/serial:${LIBRARY_PATH:-}"
  fi
  arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1 | tr -d .)
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" -DHEADSCOPE_CUDA=ON \
        -DCMAKE_CUDA_ARCHITECTURES="$arch" -DHEADSCOPE_GUI=OFF -DHEADSCOPE_FUZZ=OFF > build-gpu.log 2>&1 \
    || { tail -n 30 build-gpu.log; say "FAIL: configure (see build-gpu.log; missing libraries: run --fetch-deps where apt works and carry .deps)"; exit 1; }
  cmake --build build-gpu -j"$(nproc)" --target headscope headscope_tests attention_bench >> build-gpu.log 2>&1 \
    || { tail -n 30 build-gpu.log; say "FAIL: build (see build-gpu.log)"; exit 1; }
  B=build-gpu
else
  say "no NVIDIA GPU here: running the CPU half"
  if [ ! -f build/build.ninja ]; then cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null || exit 1; fi
  cmake --build build -j"$(nproc)" --target headscope headscope_tests attention_bench >/dev/null || { say "FAIL: build"; exit 1; }
  B=build
  gpu=""
fi

# 1. Parity of the kernels against the float64 reference.
if "$B"/tests/headscope_tests "the CPU attention kernel matches the materialising reference over the shape grid" >/tmp/gpu-check-cpu.txt 2>&1; then
  say "CPU kernel parity: $(grep -E 'All tests passed|test cases' /tmp/gpu-check-cpu.txt | tail -n 1)"
else
  say "FAIL: CPU kernel parity"; cat /tmp/gpu-check-cpu.txt
fi
"$B"/tests/headscope_tests "[cuda]" >/tmp/gpu-check-cuda.txt 2>&1
case $? in
  0) say "CUDA kernel parity: $(grep -E 'All tests passed|test cases' /tmp/gpu-check-cuda.txt | tail -n 1)" ;;
  77) say "CUDA kernel parity: skipped ($(grep -m1 'SKIPPED' /tmp/gpu-check-cuda.txt | sed 's/.*SKIPPED: //'))" ;;
  *) say "FAIL: CUDA kernel parity"; cat /tmp/gpu-check-cuda.txt ;;
esac

# 2. Logits on the GPU against the CPU.
if [ -n "$gpu" ]; then
  if [ -s "$MODEL" ]; then
    ids=$(python3 -c "import random; random.seed(7); print(','.join(str(random.randrange(3, 49000)) for _ in range(300)))")
    "$B"/headscope predict "$MODEL" --ids "$ids" --all-positions --top-k 20 --json --device cpu > /tmp/gpu-check-cpu.json &&
    "$B"/headscope predict "$MODEL" --ids "$ids" --all-positions --top-k 20 --json --device cuda > /tmp/gpu-check-gpu.json &&
    say "logits, cuda vs cpu, SmolLM2-135M, 300 tokens: $(python3 - <<'PY'
import json
a = json.load(open("/tmp/gpu-check-cpu.json"))["positions"]; b = json.load(open("/tmp/gpu-check-gpu.json"))["positions"]
top1 = sum(x["top"][0]["id"] == y["top"][0]["id"] for x, y in zip(a, b))
worst = 0.0
for x, y in zip(a, b):
    ly = {t["id"]: t["logit"] for t in y["top"]}
    worst = max([worst] + [abs(t["logit"] - ly[t["id"]]) for t in x["top"] if t["id"] in ly])
print("top-1 agrees at %d/%d positions, max |logit diff| %.2e" % (top1, len(a), worst))
PY
)" || say "FAIL: --device cuda predict"
  else
    say "logits comparison skipped: $MODEL is absent (scripts/setup.sh downloads it)"
  fi
else
  msg=$("$B"/headscope predict "${MODEL}" --ids 1,2,3 --device cuda 2>&1 >/dev/null); rc=$?
  [ $rc = 1 ] && say "--device cuda without a GPU: exit 1, '$msg'" || say "FAIL: --device cuda without a GPU gave exit $rc"
fi

# 3. The attention benchmark, same process, same inputs: with a GPU the CUDA kernel against the CPU kernel with every
# statistic (both layers, T = 1K and 4K); without, the CPU kernel's plain, per-query and all-statistics rows at 1K.
filter=$([ -n "$gpu" ] && echo 'attention/.*/(instrumented|cuda)/[01]/(1024|4096)/' || echo 'attention/smollm2/(plain|per-query|instrumented)/0/1024/')
"$B"/attention_bench --benchmark_filter="$filter" 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g' > /tmp/gpu-check-bench.txt
say "attention benchmark ($filter):"
grep -E "^attention/" /tmp/gpu-check-bench.txt | awk '{print "    " $1, $2, $3}'
for line in $(grep -E "^attention/" /tmp/gpu-check-bench.txt | awk '{print $1 "=" $2}'); do summary+=("  $line ms"); done
echo
echo "== summary ($(($(date +%s) - t0)) s)"
for line in "${summary[@]}"; do echo "  $line"; done
grep -q "^FAIL" <(printf '%s\n' "${summary[@]}") && exit 1
exit 0
