#!/usr/bin/env bash
# Patching benchmark: activation patching of every head at every position (`headscope patch --per-position`) over
# IOI pairs of one length on SmolLM2-135M, for growing numbers of pairs: wall time, patched forwards per second,
# and the ratio against one plain forward per patched variant (the baseline, timed in the same process).
# Usage: bench/patching_scale.sh [MODEL] [PAIRS...]   (default pairs: 1 5 25 100)
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-$HOME/.cache/headscope/SmolLM2-135M-Instruct.Q4_1.gguf}
shift || true
PAIRS=("$@")
[ ${#PAIRS[@]} -eq 0 ] && PAIRS=(1 5 25 100)
printf '%-6s %-7s %-9s %-10s %-11s %-13s %s\n' pairs tokens forwards seconds forwards/s plain_fwd_ms vs_plain
for n in "${PAIRS[@]}"; do
  build/headscope patch "$MODEL" --task ioi --pairs "$n" --per-position --json 2>/dev/null | python3 -c '
import json, sys
j = json.load(sys.stdin)
print("%-6d %-7s %-9d %-10.1f %-11.1f %-13.1f %.2fx" % (j["pairs"], j.get("tokens", "-"), j["forwards"], j["seconds"], j["forwards_per_s"],
      1e3 * j["plain_forward_seconds"], j["speedup_vs_plain_forwards"]))'
done
