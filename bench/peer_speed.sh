#!/usr/bin/env bash
# headscope against its speed peer, llama.cpp built from source with native CPU flags (bench/build_llama_cpp.sh),
# in one run on one machine: prefill (one forward over T tokens) at T = 128, 512, 2048 and decode (128 tokens with
# the KV cache after a 512-token prompt; headscope without and with --stats, every head's statistics of each step),
# same GGUF, same thread count; headscope with fp32 and with bf16 matmuls (decode steps read the GGUF's blocks).
# Prints a markdown table with the ratios, the machine and the peer's build. Runs take a few minutes.
# Usage: bench/peer_speed.sh [MODEL] [THREADS] [REPEATS]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:-$HOME/.cache/headscope/SmolLM2-135M-Instruct.Q4_1.gguf}"
THREADS="${2:-$(nproc)}"
REPEATS="${3:-3}"
LB=$(HEADSCOPE_MODEL="$MODEL" bench/build_llama_cpp.sh)
INFO="$(dirname "$(dirname "$(dirname "$LB")")")/build-info.txt"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$LB" -m "$MODEL" -t "$THREADS" -p 128,512,2048 -n 0 -r "$REPEATS" -o json > "$out/pp.json" 2>/dev/null
"$LB" -m "$MODEL" -t "$THREADS" -p 0 -n 128 -d 512 -r "$REPEATS" -o json > "$out/tg.json" 2>/dev/null
for mm in fp32 bf16; do
  build/headscope bench "$MODEL" --tokens 128,512,2048 --repeat "$REPEATS" --threads "$THREADS" --matmul "$mm" --json > "$out/hs-$mm.json"
  ids=$(python3 -c "import random; random.seed(0); print(','.join(str(random.randrange(1, 49152)) for _ in range(512)))")
  for r in $(seq "$REPEATS"); do
    build/headscope generate "$MODEL" --ids "$ids" --no-bos -n 128 --threads "$THREADS" --matmul "$mm" --json 2>/dev/null > "$out/gen-$mm-$r.json"
    build/headscope generate "$MODEL" --ids "$ids" --no-bos -n 128 --threads "$THREADS" --matmul "$mm" --stats --json 2>/dev/null > "$out/stats-$mm-$r.json"
  done
done
python3 - "$out" "$THREADS" "$INFO" <<'PY'
import json, sys, glob, statistics, platform
out, threads, info = sys.argv[1], int(sys.argv[2]), sys.argv[3]
pp = {r["n_prompt"]: (r["avg_ts"], r["stddev_ts"]) for r in json.load(open(f"{out}/pp.json"))}
tg = json.load(open(f"{out}/tg.json"))[0]
hs = {m: {r["tokens"]: r["tokens_per_s"] for r in json.load(open(f"{out}/hs-{m}.json"))["results"]} for m in ("fp32", "bf16")}
def rates(kind, m): return [json.load(open(f))["decode_tokens_per_s"] for f in sorted(glob.glob(f"{out}/{kind}-{m}-*.json"))]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
print(f"Machine: {cpu}, {threads} threads. Peer: " + "; ".join(l.strip() for l in open(info)))
print()
print("| T | llama.cpp tok/s | headscope fp32 | ratio | headscope bf16 | ratio |")
print("|---:|---:|---:|---:|---:|---:|")
for T in (128, 512, 2048):
    l, sd = pp[T]
    print(f"| prefill {T} | {l:.1f} ± {sd:.1f} | {hs['fp32'][T]:.1f} | {hs['fp32'][T] / l:.2f}× | {hs['bf16'][T]:.1f} | {hs['bf16'][T] / l:.2f}× |")
l, sd = tg["avg_ts"], tg["stddev_ts"]
for kind, label in (("gen", "decode 128 after 512"), ("stats", "decode, --stats on")):
    cells = []
    for m in ("fp32", "bf16"):
        r = rates(kind, m)
        cells.append(f"{statistics.median(r):.1f} (runs {min(r):.1f}–{max(r):.1f}) | {statistics.median(r) / l:.2f}×")
    print(f"| {label} | {l:.1f} ± {sd:.1f} | " + " | ".join(cells) + " |")
PY
