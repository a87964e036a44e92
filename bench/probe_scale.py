#!/usr/bin/env python3
"""Scoring heads at scale: wall time and peak memory of `headscope score` with the induction, sinks and preplan
probes, and how peak memory grows with the sequence length.

What it runs (each a separate `headscope score` process, so that its peak RSS is its own; the CLI binary is
build/headscope unless --headscope):

  1. the job: all three probes over --items items of --tokens tokens each, into one run file:
       induction  --rows ITEMS --repeat-len (TOKENS - 1) / 2   ([BOS] + r + r, T = TOKENS - 1 or TOKENS)
       sinks      --sink-input random --sink-items ITEMS --sink-tokens TOKENS
       preplan    --prompts: ITEMS slices of datasets/text/public_domain.txt, each cut to TOKENS - RESPONSE
                  tokens (by the model's own tokenizer), continued greedily by --response tokens
     and reports wall time, peak RSS, tokens scored and tokens per second;
  2. the scaling: each probe alone on --scale-items items at T = 512, 1024, 2048, 4096 (--scale-tokens), peak RSS
     per T beside what one item's T x T attention maps of every head would take (layers x heads x T^2 float32).
     Memory that grows as O(layers x heads x T) doubles at most when T doubles; T^2 maps would quadruple.

Peak RSS is the child's ru_maxrss (os.wait4): model weights included (SmolLM2-135M: about 0.6 GB of float32
weights). Standard library only.

    python3 bench/probe_scale.py ~/.cache/headscope/SmolLM2-135M-Instruct.Q4_1.gguf --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def run(cmd: list[str], log: Path) -> tuple[float, float, str]:
    """Runs cmd; returns (wall seconds, peak RSS in MiB, stdout). Exits with the command's stderr on failure."""
    t0 = time.perf_counter()
    with open(log, "w") as err:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        out = p.stdout.read()
        _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise benchlib.BenchError(f"{' '.join(cmd[:4])} ... failed ({code}): {log.read_text().strip().splitlines()[-1:]}")
    return wall, usage.ru_maxrss / 1024.0, out


def prompts_file(headscope: str, model: str, n: int, tokens: int, path: Path) -> int:
    """n prompts of about `tokens` tokens cut from the public-domain corpus (each slice tokenized once, cut to
    `tokens` tokens and joined back); returns the number of prompts."""
    text = (ROOT / "datasets" / "text" / "public_domain.txt").read_text()
    chars = tokens * 6  # English prose runs at about 4-5 characters a token: slices a little long, then cut
    with open(path, "w") as f:
        for i in range(n):
            start = (i * 9973) % max(1, len(text) - chars)
            piece = " ".join(text[start:start + chars].split())
            out = subprocess.run([headscope, "tokenize", model, "--no-bos", "--json", "--", piece], capture_output=True,
                                 text=True, check=True).stdout
            f.write(json.dumps({"text": "".join(json.loads(out)["tokens"][:tokens])}) + "\n")
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--headscope", default=str(ROOT / "build" / "headscope"))
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--items", type=int, default=50)
    ap.add_argument("--tokens", type=int, default=2000)
    ap.add_argument("--response", type=int, default=64)
    ap.add_argument("--scale-items", type=int, default=2)
    ap.add_argument("--scale-tokens", default="512,1024,2048,4096")
    ap.add_argument("--skip-job", action="store_true", help="only the scaling part")
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()
    log = benchlib.logger("probe_scale")
    info = json.loads(subprocess.run([a.headscope, "info", a.model, "--json"], capture_output=True, text=True, check=True).stdout)
    L, H = info["n_layers"], info["n_heads"]
    results: dict = {"model": a.model, "threads": a.threads, "layers": L, "heads": H, "cpu": benchlib.cpu_model()}
    common = ["--threads", str(a.threads)]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not a.skip_job:
            body = a.tokens - a.response
            prompts_file(a.headscope, a.model, a.items, body, tmp / "prompts.jsonl")
            cmd = [a.headscope, "score", a.model, "--probe", "induction,sinks,preplan", "--rows", str(a.items),
                   "--repeat-len", str((a.tokens - 1) // 2), "--sink-input", "random", "--sink-items", str(a.items),
                   "--sink-tokens", str(a.tokens), "--prompts", str(tmp / "prompts.jsonl"), "--response", str(a.response),
                   "-o", str(tmp / "run.h5"), "--json", *common]
            benchlib.wait_for_quiet(60, log)
            wall, rss, out = run(cmd, tmp / "job.log")
            j = json.loads(out)
            ind_T, sink_T = 2 * ((a.tokens - 1) // 2) + 1, a.tokens
            pre_T = sum(len(it["tokens"]) for p in j["probes"] if p["probe"] == "preplan" for it in p["items"])
            tokens = a.items * ind_T + a.items * sink_T + pre_T
            pre_lengths = [len(it["tokens"]) for p in j["probes"] if p["probe"] == "preplan" for it in p["items"]]
            results["job"] = {"items_per_probe": a.items, "tokens_per_item": a.tokens, "preplan_lengths": [min(pre_lengths), max(pre_lengths)],
                              "wall_s": wall, "peak_rss_mib": rss, "tokens": tokens, "tokens_per_s": tokens / wall,
                              "file_bytes": (tmp / "run.h5").stat().st_size}
            log(f"job: 3 probes x {a.items} items ({tokens} tokens: induction T = {ind_T}, sinks T = {sink_T}, preplan "
                f"{min(pre_lengths)}..{max(pre_lengths)} tokens with {a.response} generated): {wall:.1f} s, {tokens / wall:.0f} tok/s, "
                f"peak RSS {rss:.0f} MiB, run file {results['job']['file_bytes'] / 2**20:.1f} MiB")
        rows = []
        for T in [int(x) for x in a.scale_tokens.split(",")]:
            row = {"T": T, "tt_maps_mib": L * H * T * T * 4 / 2**20}
            for probe, args in (("induction", ["--rows", str(a.scale_items), "--repeat-len", str((T - 1) // 2)]),
                                ("sinks", ["--sink-input", "random", "--sink-items", str(a.scale_items), "--sink-tokens", str(T)])):
                benchlib.wait_for_quiet(60, log)
                wall, rss, _ = run([a.headscope, "score", a.model, "--probe", probe, *args, "--json", *common], tmp / "scale.log")
                row[probe] = {"wall_s": wall, "peak_rss_mib": rss}
            rows.append(row)
            log(f"T = {T:5d}: induction {row['induction']['peak_rss_mib']:6.0f} MiB ({row['induction']['wall_s']:5.1f} s), "
                f"sinks {row['sinks']['peak_rss_mib']:6.0f} MiB ({row['sinks']['wall_s']:5.1f} s); "
                f"one item's T x T maps would be {row['tt_maps_mib']:8.0f} MiB")
        results["scaling"] = rows
        if len(rows) >= 2:
            for probe in ("induction", "sinks"):
                growth = [(b[probe]["peak_rss_mib"] - rows[0][probe]["peak_rss_mib"]) / (b["T"] - rows[0]["T"]) for b in rows[1:]]
                log(f"{probe}: peak RSS grows by {', '.join(f'{g * 1024:.0f}' for g in growth)} KiB per token of T "
                    f"(from T = {rows[0]['T']}; constant: linear in T)")
    if a.json:
        benchlib.write_json_text(json.dumps(results, indent=1), a.json, log)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except benchlib.BenchError as e:
        print(f"probe_scale: {e}", file=sys.stderr)
        sys.exit(1)
