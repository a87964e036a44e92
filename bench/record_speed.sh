#!/usr/bin/env bash
# Recording benchmark: 100 prompts of ~512 tokens of English text through SmolLM2-135M, every statistic of every
# head recorded into an HDF5 run file, against the same prompts through the plain forward in the same process
# (`headscope record --compare-plain`). Prints tokens/s of both, their ratio and the file size per token.
# Usage: bench/record_speed.sh [MODEL] [N_PROMPTS]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-$HOME/.cache/headscope/SmolLM2-135M-Instruct.Q4_1.gguf}
N=${2:-100}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Prompts: ~1,570-character windows of this repository's README (about 512 SmolLM2 tokens each).
python3 - "$tmp/prompts.jsonl" "$N" <<'PY'
import json, sys
text = open("README.md", encoding="utf-8").read().replace("\n", " ")
out, n = sys.argv[1], int(sys.argv[2])
with open(out, "w", encoding="utf-8") as f:
    for i in range(n):
        start = (i * 997) % max(1, len(text) - 1570)
        f.write(json.dumps({"text": text[start:start + 1570], "meta": {"i": i}}) + "\n")
PY
build/headscope record "$MODEL" --data "$tmp/prompts.jsonl" -o "$tmp/run.h5" --compare-plain
