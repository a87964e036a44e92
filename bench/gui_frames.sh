#!/usr/bin/env bash
# headscope-gui under load: frame times while a forward pass with statistics runs in the background, and the time
# from selecting a head to its pattern on screen (one head's rows from the kept attention inputs, no new forward),
# on a long prompt. Runs the real app under Xvfb with a script; prints frame_times.json (median, p99, worst ms).
# Usage: bench/gui_frames.sh [MODEL] [CHARS]   (default: SmolLM2-135M, the first 8,200 characters of the
# public-domain text: 2,000 tokens)
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:-$HOME/.cache/headscope/SmolLM2-135M-Instruct.Q4_1.gguf}"
CHARS="${2:-8200}"
out=$(mktemp -d)
head -c "$CHARS" datasets/text/public_domain.txt > "$out/prompt.txt"
cat > "$out/script.txt" <<SCRIPT
open $MODEL
prompt-file $out/prompt.txt
run
wait
select 20.3
wait
frames 5
select 5.1
wait
frames 5
select 29.8
wait
frames 5
key down
key left
wait
frames 30
SCRIPT
xvfb-run -a -s "-screen 0 1600x900x24" build/headscope-gui --script "$out/script.txt" --screenshot-dir "$out"
echo "tokens: $(build/headscope tokenize "$MODEL" "$(cat "$out/prompt.txt")" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["ids"]))')"
cat "$out/frame_times.json"
rm -rf "$out"
