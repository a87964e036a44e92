#!/usr/bin/env bash
# headscope against its speed peer, llama.cpp built from source with native CPU flags (bench/build_llama_cpp.sh),
# in one run on one machine: prefill (one forward over T tokens) at T = 128, 512, 2048 and decode (128 tokens with
# the KV cache after a 512-token prompt; headscope without and with --stats, every head's statistics of each step),
# same GGUF, same thread count; headscope with fp32 matmuls and, where the CPU has bf16 instructions, bf16
# (decode steps read the GGUF's blocks).
# Prints a markdown table with the ratios, the machine and the peer's build. Runs take a few minutes.
# Usage: bench/peer_speed.sh [MODEL] [THREADS] [ROUNDS]   (default: the cached SmolLM2, all cores, 5 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:-$HOME/.cache/headscope/SmolLM2-135M-Instruct.Q4_1.gguf}"
THREADS="${2:-$(nproc)}"
REPEATS="${3:-5}"
LB=$(HEADSCOPE_MODEL="$MODEL" bench/build_llama_cpp.sh)
INFO="$(dirname "$(dirname "$(dirname "$LB")")")/build-info.txt"
# bf16 matmuls only where the CPU has bf16 instructions: elsewhere LibTorch emulates them, minutes per prefill.
MODES="fp32"
if grep -qE 'avx512_bf16|amx_bf16' /proc/cpuinfo; then MODES="fp32 bf16"; else echo "bf16 left out: this CPU has no bf16 instructions" >&2; fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
ids=$(python3 -c "import random; random.seed(0); print(','.join(str(random.randrange(1, 49152)) for _ in range(512)))")
# Rounds, each timing every cell once, so that a slow spell of a shared machine hits both tools alike; the table
# gives medians over rounds, and each ratio's range over the rounds' own ratios.
for r in $(seq "$REPEATS"); do
  "$LB" -m "$MODEL" -t "$THREADS" -p 128,512,2048 -n 0 -r 1 -o json > "$out/pp-$r.json" 2>/dev/null
  "$LB" -m "$MODEL" -t "$THREADS" -p 0 -n 128 -d 512 -r 1 -o json > "$out/tg-$r.json" 2>/dev/null
  for mm in $MODES; do
    build/headscope bench "$MODEL" --tokens 128,512,2048 --repeat 1 --threads "$THREADS" --matmul "$mm" --json > "$out/hs-$mm-$r.json"
    build/headscope generate "$MODEL" --ids "$ids" --no-bos -n 128 --threads "$THREADS" --matmul "$mm" --json 2>/dev/null > "$out/gen-$mm-$r.json"
    build/headscope generate "$MODEL" --ids "$ids" --no-bos -n 128 --threads "$THREADS" --matmul "$mm" --stats --json 2>/dev/null > "$out/stats-$mm-$r.json"
  done
done
python3 - "$out" "$THREADS" "$INFO" "$REPEATS" "$MODES" <<'PY'
import json, sys, statistics, platform
out, threads, info, rounds, modes = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5].split()
R = range(1, rounds + 1)
load = lambda f: json.load(open(f"{out}/{f}"))
cells = {}  # (row, engine) -> [tok/s per round]
for r in R:
    for x in load(f"pp-{r}.json"): cells.setdefault((f"prefill {x['n_prompt']}", "llama"), []).append(x["avg_ts"])
    cells.setdefault(("decode 128 after 512", "llama"), []).append(load(f"tg-{r}.json")[0]["avg_ts"])
    cells.setdefault(("decode, --stats on", "llama"), []).append(load(f"tg-{r}.json")[0]["avg_ts"])
    for m in modes:
        for x in load(f"hs-{m}-{r}.json")["results"]: cells.setdefault((f"prefill {x['tokens']}", m), []).append(x["tokens_per_s"])
        cells.setdefault(("decode 128 after 512", m), []).append(load(f"gen-{m}-{r}.json")["decode_tokens_per_s"])
        cells.setdefault(("decode, --stats on", m), []).append(load(f"stats-{m}-{r}.json")["decode_tokens_per_s"])
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
print(f"Machine: {cpu}, {threads} threads, {rounds} rounds. Peer: " + "; ".join(l.strip() for l in open(info)))
print()
print("| | llama.cpp tok/s |" + "".join(f" headscope {m} | ratio (range) |" for m in modes))
print("|---|---:|" + "---:|---:|" * len(modes))
for row in ("prefill 128", "prefill 512", "prefill 2048", "decode 128 after 512", "decode, --stats on"):
    l = cells[(row, "llama")]
    line = f"| {row} | {statistics.median(l):.1f} ({min(l):.1f}–{max(l):.1f}) |"
    for m in modes:
        h = cells[(row, m)]
        ratios = [a / b for a, b in zip(h, l)]
        line += f" {statistics.median(h):.1f} ({min(h):.1f}–{max(h):.1f}) | {statistics.median(h) / statistics.median(l):.2f}× ({min(ratios):.2f}–{max(ratios):.2f}) |"
    print(line)
PY
