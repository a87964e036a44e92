#!/usr/bin/env python3
"""Side-by-side peak memory and wall time of per-head attention statistics: HF transformers vs headscope.

What it measures
----------------
The job: for EVERY attention head of a model (SmolLM2-135M-Instruct, Q4_1 GGUF: 30 layers x 9 heads) and one
forward pass over T random token ids, a per-head summary of the attention pattern:
  mean entropy       mean over query positions t of -sum_s p[t,s] ln p[t,s]   (nats)
  mass on key 0      mean over t of p[t,0]                                     (attention-sink mass)
  mean distance      mean over t of sum_s p[t,s] (t - s)                       (backward distance, tokens)
For each T (--tokens, default 512,2048,8192,16384,32768) and each engine, the job runs in its OWN fresh child
process, and the script records that child's peak resident memory and its wall time:

  hf         Hugging Face transformers, eager attention, fp32 weights dequantised from the same GGUF, i.e.
             what TransformerLens and nnsight do underneath when you ask for attention patterns:
               AutoModelForCausalLM.from_pretrained(dir, gguf_file=name, dtype=torch.float32,
                                                    attn_implementation="eager")
               with torch.inference_mode():
                   out = model(ids, output_attentions=True, use_cache=False, logits_to_keep=1)
             then out.attentions (one [1, H, T, T] fp32 map per layer, all kept alive, as returned) is reduced,
             layer by layer and head by head, to the same per-head summary. ids: numpy
             default_rng(seed 0).integers(0, vocab_size, T). torch.set_num_threads(N) in the child.
             logits_to_keep=1: only the last position goes through the LM head (the statistics need no logits;
             all-position logits would add T x 49152 x 4 bytes that the attention job does not need). One
             untimed 16-token warm-up forward precedes the timed one (lazy one-time initialisation).
  headscope  the C++ CLI of this repo:
               build/headscope attn MODEL --random-tokens T --seed 0 --stats --json --threads N
             which prints one JSON document with at least "tokens" (== T), "seconds" (its own timing of the
             job) and a per-head table. headscope picks its own random ids (same seed, its own generator), so
             its per-head numbers need not equal HF's; the means over all heads are printed side by side as a
             sanity check that both did the same job. (Checked once at T=512 with identical ids,
             `headscope attn MODEL --ids <HF's ids> --no-bos --stats --json`: all 270 heads agreed with HF
             to 3.4e-6 in entropy, 1.0e-6 in key-0 mass and 4.1e-4 tokens in distance.)

Columns of the table (one row per T):
  HF peak GiB / headscope peak GiB   peak RSS of the whole child process (interpreter or binary start, model
                                     load, forward, statistics), from os.wait4()'s per-child rusage
                                     (ru_maxrss, KiB on Linux) of exactly that child. See "Peak memory" below.
  HF s                               forward + reduction time measured inside the child (excludes Python/torch
                                     import and model load); headscope s = the "seconds" it reports. With
                                     --time process both columns are instead the child's whole wall time
                                     (start to exit, load included). Both figures are always in the JSON.
  memory ratio, time ratio           HF / headscope. Where HF ran out of memory the memory ratio is a lower
                                     bound, "> X": the attention maps HF would have had to hold (layers x
                                     heads x T^2 x 4 bytes) over headscope's peak.

Peak memory
-----------
Each measurement is a fresh child (subprocess.Popen) reaped with os.wait4(pid), whose rusage is that child's
alone (unlike getrusage(RUSAGE_CHILDREN), which is cumulative and a max over all children). Linux caveat: at
exec() the kernel folds the pre-exec address space's high-water RSS into the child's ru_maxrss, and that
address space is a copy of (or, with vfork, is) this parent's. The parent therefore imports nothing heavy (no
torch, numpy or gguf: layer/head counts come from a tiny GGUF header reader; its helpers in bench/benchlib.py,
shared with the other bench scripts, the child runner included, are standard library only) and stays at ~10 MiB;
that floor is measured (a /bin/true child) and printed. The HF child also reports its own VmHWM from
/proc/self/status (no floor) as a cross-check, plus its RSS high-water after the model load, so one can see
whether the peak came from loading or from the attention maps.

Never the OOM killer
--------------------
The machine is shared (24 GiB). Every child runs under resource.setrlimit(RLIMIT_AS, cap) (set between fork
and exec; --mem-cap-gb, default 18), so an oversized allocation fails inside the child (torch raises
"DefaultCPUAllocator: can't allocate memory", Python MemoryError, C++ std::bad_alloc) instead of waking the
kernel OOM killer; the script records that as "OOM". A child killed by SIGKILL also counts as OOM. Note that
RLIMIT_AS caps VIRTUAL memory: importing torch alone maps ~3 GiB of address space, so HF reaches the cap with
about 3 GiB less resident memory than the cap (a 6 GiB cap at T=2048 failed at 3.2 GiB RSS). Before launching HF at a T, the script estimates the attention
maps, layers x heads x T^2 x 4 bytes (they are all alive at once when returned), plus one layer's transient
scores and the fp32 weights; when that is over the cap, HF is not run and the cell reads
"OOM (estimated X GiB)" (X = the maps alone). headscope is run at every T (it is expected to succeed where
HF runs out), under --headscope-mem-cap-gb (default: same as --mem-cap-gb; 0 = no cap. On a GPU machine a
CUDA context reserves a lot of address space: use 0 there if headscope fails at start-up under the cap).

How to run
----------
    /opt/refvenv/bin/python bench/attention_memory.py                  # T = 512,...,32768, both engines
    /opt/refvenv/bin/python bench/attention_memory.py --tokens 512,2048 --skip headscope
    /opt/refvenv/bin/python bench/attention_memory.py --threads 2 --mem-cap-gb 12 --json results.json

(any Python with torch, transformers, gguf and numpy: bench/requirements.txt). Options: --model (default
~/.cache/headscope/SmolLM2-135M-Instruct.Q4_1.gguf), --tokens, --threads N (default os.cpu_count(), passed
to both), --seed (default 0), --headscope PATH (default build/headscope), --skip hf|headscope,
--mem-cap-gb, --headscope-mem-cap-gb, --wait-idle, --timeout SECONDS per child (default 3600; a timed-out child is
killed and recorded as "timeout"), --time compute|process, --python (interpreter for the HF child, default
this one), --json PATH (raw results; '-' = stdout, after the table).

If build/headscope does not exist or has no `attn` command yet, its column says "n/a" with the reason and
the script carries on with HF. --wait-idle SECONDS (default 60): before each child, wait up to that long
for other processes to use < 10% of the CPU. Exit status: 0 if headscope succeeded at every T and HF either succeeded or
ran out of memory (an expected outcome); 1 otherwise. Other processes' CPU use during each child is measured
(/proc/stat) and a run taken while they used > 10% of the cores is flagged NOISY.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # bench/benchlib.py, from any working directory
from benchlib import (  # noqa: E402
    GIB, add_child_options, check_child_options, child_env, child_main, classify_failure, cpu_model, is_noisy,
    last_lines, loads_json_lenient, mem_total_gib, model_parser, module_version, parse_tokens,
    print_machine_and_caps, proc_status_kib, process_fields, read_json_file, run_child, spawn_floor_bytes,
    wait_until_idle, write_json_text,
)

DEFAULT_TOKENS = [512, 2048, 8192, 16384, 32768]
ENGINES = ("hf", "headscope")
NOISY_SHARE = 0.10


def log(msg: str) -> None:
    print(f"[attention_memory] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------------------
# GGUF metadata without dependencies (the parent must stay small: see "Peak memory" in the docstring)

_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def gguf_metadata(path: str, wanted_suffixes: tuple[str, ...]) -> dict:
    """Reads the GGUF key/value header; keeps general.architecture and keys ending in wanted_suffixes, plus
    the length of the tokenizer.ggml.tokens array. Streams the file: no array is kept in memory."""
    out: dict = {}
    with open(path, "rb") as f:

        def read(fmt: str):
            size = struct.calcsize(fmt)
            data = f.read(size)
            if len(data) != size:
                raise ValueError("truncated GGUF header")
            return struct.unpack(fmt, data)[0]

        def read_str() -> str:
            n = read("<Q")
            if n > 1 << 24:
                raise ValueError("implausible string length in GGUF header")
            return f.read(n).decode("utf-8", errors="replace")

        def skip_value(vtype: int) -> None:
            if vtype in _GGUF_SCALARS:
                f.seek(struct.calcsize(_GGUF_SCALARS[vtype]), os.SEEK_CUR)
            elif vtype == _GGUF_STRING:
                f.seek(read("<Q"), os.SEEK_CUR)
            else:
                raise ValueError(f"unexpected GGUF value type {vtype}")

        if f.read(4) != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        version = read("<I")
        if version < 2:
            raise ValueError(f"GGUF version {version} not supported")
        read("<Q")  # tensor count
        n_kv = read("<Q")
        for _ in range(n_kv):
            key = read_str()
            vtype = read("<I")
            if vtype == _GGUF_ARRAY:
                etype, count = read("<I"), read("<Q")
                if key == "tokenizer.ggml.tokens":
                    out["n_tokens_in_vocab"] = count
                if etype in _GGUF_SCALARS:
                    f.seek(count * struct.calcsize(_GGUF_SCALARS[etype]), os.SEEK_CUR)
                else:
                    for _ in range(count):
                        skip_value(etype)
            elif key == "general.architecture" and vtype == _GGUF_STRING:
                out[key] = read_str()
            elif vtype in _GGUF_SCALARS and key.endswith(wanted_suffixes):
                out[key] = read(_GGUF_SCALARS[vtype])
            else:
                skip_value(vtype)
    return out


def model_dims(path: str) -> dict:
    meta = gguf_metadata(
        path, (".block_count", ".attention.head_count", ".attention.head_count_kv", ".embedding_length",
               ".vocab_size", ".context_length")
    )
    arch = meta.get("general.architecture", "llama")
    get = lambda k: meta.get(f"{arch}.{k}")  # noqa: E731
    layers, heads = get("block_count"), get("attention.head_count")
    if not layers or not heads:
        raise ValueError(f"{path}: no {arch}.block_count / {arch}.attention.head_count in the GGUF header")
    d_model = get("embedding_length") or 0
    vocab = get("vocab_size") or meta.get("n_tokens_in_vocab") or 0
    return {
        "architecture": arch,
        "layers": int(layers),
        "heads": int(heads),
        "kv_heads": int(get("attention.head_count_kv") or heads),
        "d_model": int(d_model),
        "vocab": int(vocab),
        "context_length": get("context_length"),
        # rough fp32 parameter count for the estimate (embeddings + 12 d^2 per layer); only a margin term
        "approx_fp32_weight_bytes": 4 * (int(vocab) * int(d_model) + 12 * int(layers) * int(d_model) ** 2),
    }


def attention_maps_bytes(dims: dict, t: int) -> int:
    return dims["layers"] * dims["heads"] * t * t * 4


def hf_estimate_bytes(dims: dict, t: int) -> int:
    """Lower estimate of HF's peak: every layer's returned map, plus one layer's scores being softmaxed
    (pre-softmax scores and the causal mask), plus the fp32 weights and the ~0.6 GiB torch runtime."""
    one_layer = dims["heads"] * t * t * 4
    return attention_maps_bytes(dims, t) + one_layer + t * t * 4 + dims["approx_fp32_weight_bytes"] + int(0.6 * GIB)


# --------------------------------------------------------------------------------------------------------------
# a quiet machine before each child (running a child, its rusage and failure kinds, the machine: benchlib.py)


def wait_idle(max_wait_s: float) -> float | None:
    """Waits (up to max_wait_s) until other processes use < 10% of the cores over one second."""
    return wait_until_idle(max_wait_s, NOISY_SHARE, log, gave_up="warning: other processes still use {busy:.0%} of "
                           "the CPU after {max_wait_s:.0f} s; measuring anyway")


# --------------------------------------------------------------------------------------------------------------
# the HF child (runs in its own process: `attention_memory.py --hf-child ...`)


def hf_child(model_path: str, tokens: int, seed: int, threads: int, out_path: str) -> int:
    def measure(result: dict) -> None:
        t_start = time.perf_counter()
        import numpy as np
        import torch
        import transformers
        from transformers import AutoModelForCausalLM

        torch.set_num_threads(threads)
        result["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__,
                              "numpy": np.__version__, "gguf": module_version("gguf"),
                              "python": platform.python_version()}
        result["torch_threads"] = torch.get_num_threads()
        result["vmsize_after_import_kib"] = proc_status_kib("VmSize")

        t0 = time.perf_counter()
        p = Path(model_path)
        model = AutoModelForCausalLM.from_pretrained(
            str(p.parent), gguf_file=p.name, dtype=torch.float32, attn_implementation="eager"
        )
        model.eval()
        result["load_s"] = time.perf_counter() - t0
        result["hwm_after_load_kib"] = proc_status_kib("VmHWM")
        cfg = model.config
        vocab = int(cfg.vocab_size)
        ids = np.random.default_rng(seed).integers(0, vocab, size=tokens)
        input_ids = torch.from_numpy(ids.astype(np.int64)).unsqueeze(0)
        result["vocab"] = vocab

        with torch.inference_mode():
            # warm-up on 16 tokens (one-time lazy initialisation, ~0.1 s; negligible memory)
            t0 = time.perf_counter()
            model(input_ids[:, :16], output_attentions=True, use_cache=False, logits_to_keep=1)
            result["warmup_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            out = model(input_ids, output_attentions=True, use_cache=False, logits_to_keep=1)
            t1 = time.perf_counter()
            attns = out.attentions
            if not attns or attns[0] is None:
                raise RuntimeError("the model returned no attentions (output_attentions=True ignored?)")
            result["attn_shape"] = list(attns[0].shape)
            result["attn_bytes"] = int(sum(a.numel() * a.element_size() for a in attns))
            result["rss_after_forward_kib"] = proc_status_kib("VmRSS")
            # the same per-head summary headscope computes; one [T, T] head at a time keeps the extra memory to
            # a few T^2 temporaries of one head (the maps returned by HF dominate, as in TL / nnsight)
            t_idx = torch.arange(tokens, dtype=torch.float32)
            heads = []
            for layer, a in enumerate(attns):
                for h in range(a.shape[1]):
                    pm = a[0, h]  # [T query, T key]
                    entropy = -torch.special.xlogy(pm, pm).sum(-1)  # 0 ln 0 = 0
                    sink = pm[:, 0]
                    dist = t_idx * pm.sum(-1) - pm @ t_idx  # sum_s p (t - s), no T x T temporary
                    heads.append({
                        "layer": layer, "head": h,
                        "entropy": float(entropy.double().mean()),
                        "sink_mass": float(sink.double().mean()),
                        "mean_dist": float(dist.double().mean()),
                    })
            t2 = time.perf_counter()
        result.update({
            "status": "ok",
            "forward_s": t1 - t0,
            "reduce_s": t2 - t1,
            "compute_s": t2 - t0,
            "child_total_s": t2 - t_start,
            "heads": heads,
        })

    return child_main(measure, out_path, tokens=tokens)  # an allocation failure: status "oom", exit OOM_EXIT


# --------------------------------------------------------------------------------------------------------------
# engines, as seen from the parent


def measure_hf(args, dims: dict, t: int) -> dict:
    cap = int(args.mem_cap_gb * GIB)
    maps = attention_maps_bytes(dims, t)
    est = hf_estimate_bytes(dims, t)
    entry: dict = {"engine": "hf", "tokens": t, "estimated_maps_bytes": maps, "estimated_peak_bytes": est,
                   "mem_cap_bytes": cap}
    if est > cap:
        entry.update({"status": "oom", "skipped": True,
                      "reason": f"OOM (estimated {maps / GIB:.1f} GiB) - attention maps alone "
                                f"{maps / GIB:.1f} GiB, total >= {est / GIB:.1f} GiB > cap {args.mem_cap_gb:g} GiB; not run"})
        return entry
    with tempfile.TemporaryDirectory(prefix="attention_memory_") as tmp:
        out_path = os.path.join(tmp, "hf.json")
        env = child_env(args.threads, hub_offline=False)
        cmd = [args.python, os.path.abspath(__file__), "--hf-child", "--model", args.model, "--tokens", str(t),
               "--seed", str(args.seed), "--threads", str(args.threads), "--child-out", out_path]
        res = run_child(cmd, cap, args.timeout, env)
        child = read_json_file(out_path)
    entry["process"] = process_fields(res)
    if res.get("rc") == 0 and child.get("status") == "ok":
        entry.update({"status": "ok", "peak_rss_bytes": res["peak_rss_bytes"], "process_wall_s": res["wall_s"],
                      "seconds": child["compute_s"]})
        entry["child"] = child
    else:
        status, reason = classify_failure(res, cap, child)
        entry.update({"status": status, "reason": reason, "peak_rss_bytes": res.get("peak_rss_bytes"),
                      "process_wall_s": res.get("wall_s"), "stderr_tail": last_lines(res.get("stderr", ""), 8)})
        entry["child"] = {k: v for k, v in child.items() if k != "heads"}
    return entry


def find_per_head_table(doc) -> list[dict] | None:
    """Finds the per-head table in headscope's JSON: a list of objects that carry a layer and a head index
    (directly, or as a list of layers each holding a list of heads). Tolerant of naming, since the command's
    output format is defined elsewhere."""

    def is_head_row(x) -> bool:
        return isinstance(x, dict) and any(k in x for k in ("head", "h", "head_index")) and \
            any(k in x for k in ("layer", "l", "layer_index"))

    stack = [doc]
    while stack:
        x = stack.pop()
        if isinstance(x, list) and x and all(is_head_row(r) for r in x):
            return x
        if isinstance(x, dict):
            # {"layers": [{"layer": i, "heads": [{"head": j, ...}]}]}
            layers = x.get("layers")
            if isinstance(layers, list) and layers and all(isinstance(l, dict) and isinstance(l.get("heads"), list)
                                                           for l in layers):
                rows = []
                for i, l in enumerate(layers):
                    for j, h in enumerate(l["heads"]):
                        if isinstance(h, dict):
                            rows.append({"layer": l.get("layer", i), "head": h.get("head", j), **h})
                if rows:
                    return rows
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    return None


def stat_value(row: dict, kind: str) -> float | None:
    names = {
        "entropy": ("entropy", "mean_entropy", "entropy_mean"),
        "sink_mass": ("sink_mass", "mean_sink_mass", "sink", "key0_mass", "mass_key0", "first_token_mass",
                      "bos_mass", "sink_mass_mean"),
        "mean_dist": ("mean_dist", "mean_distance", "distance", "dist", "mean_backward_distance", "mean_dist_mean"),
    }[kind]
    for n in names:
        if n in row:
            v = row[n]
            if isinstance(v, dict):
                v = v.get("mean")
            try:
                return float(v)
            except (TypeError, ValueError):
                return None
    return None


def head_means(rows: list[dict]) -> dict:
    out = {}
    for kind in ("entropy", "sink_mass", "mean_dist"):
        vals = [v for v in (stat_value(r, kind) for r in rows) if v is not None]
        out[kind] = sum(vals) / len(vals) if vals else None
    return out


def parse_headscope_json(text: str, t: int, dims: dict) -> dict:
    doc = loads_json_lenient(text)
    if not isinstance(doc, dict):
        raise ValueError(f"did not print a JSON object; stdout: {text.strip()[:300] or '(empty)'}")
    try:
        seconds = float(doc["seconds"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"JSON has no numeric 'seconds': {json.dumps(doc)[:300]}")
    tok = doc.get("tokens")
    n_tok = len(tok) if isinstance(tok, list) else tok
    try:
        n_tok = int(n_tok)
    except (TypeError, ValueError):
        raise ValueError(f"JSON has no 'tokens' count: {json.dumps(doc)[:300]}")
    if n_tok != t:
        raise ValueError(f"JSON says tokens = {n_tok}, asked for {t}")
    if seconds <= 0:
        raise ValueError(f"non-positive 'seconds': {seconds}")
    info: dict = {"seconds": seconds, "reported_threads": doc.get("threads")}
    rows = find_per_head_table(doc)
    expected = dims["layers"] * dims["heads"]
    if rows is None:
        info["warning"] = "no per-head table recognised in the JSON"
    else:
        info["n_heads"] = len(rows)
        info["head_means"] = head_means(rows)
        if len(rows) != expected:
            info["warning"] = f"per-head table has {len(rows)} rows, expected {expected}"
    return info


def measure_headscope(args, dims: dict, t: int) -> dict:
    cap = int(args.headscope_mem_cap_gb * GIB) if args.headscope_mem_cap_gb > 0 else None
    entry: dict = {"engine": "headscope", "tokens": t, "mem_cap_bytes": cap}
    exe = args.headscope
    if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        entry.update({"status": "error", "reason": f"{exe} not found or not executable (build it first)"})
        return entry
    cmd = [exe, "attn", args.model, "--random-tokens", str(t), "--seed", str(args.seed), "--stats", "--json",
           "--threads", str(args.threads)]
    entry["command"] = " ".join(cmd)
    res = run_child(cmd, cap, args.timeout)
    entry["process"] = process_fields(res)
    if res.get("rc") == 0:
        try:
            info = parse_headscope_json(res["stdout"], t, dims)
        except ValueError as e:
            entry.update({"status": "error", "reason": f"bad output: {e}", "peak_rss_bytes": res["peak_rss_bytes"],
                          "process_wall_s": res["wall_s"]})
            return entry
        entry.update({"status": "ok", "peak_rss_bytes": res["peak_rss_bytes"], "process_wall_s": res["wall_s"],
                      "seconds": info.pop("seconds"), **info})
        if "warning" in entry:
            log(f"headscope T={t}: warning: {entry['warning']}")
        return entry
    status, reason = classify_failure(res, cap)
    low = (res.get("stderr", "") + res.get("stdout", "")).lower()
    if status == "error" and any(m in low for m in ("not expected", "unknown", "extraargs", "invalid", "unrecognized",
                                                     "subcommand", "not found", "no such")):
        reason = f"`attn` command missing or rejected its options? {reason}"
    entry.update({"status": status, "reason": reason, "peak_rss_bytes": res.get("peak_rss_bytes"),
                  "process_wall_s": res.get("wall_s"), "stderr_tail": last_lines(res.get("stderr", ""), 8)})
    return entry


# --------------------------------------------------------------------------------------------------------------
# report


def fmt_gib(b) -> str:
    return f"{b / GIB:.2f}" if b is not None else "n/a"


def seconds_of(e: dict | None, mode: str):
    if not e or e.get("status") != "ok":
        return None
    return e["process_wall_s"] if mode == "process" else e["seconds"]


def cell(e: dict | None, what: str, mode: str) -> str:
    if e is None:
        return "skipped"
    st = e.get("status")
    if st == "ok":
        s = fmt_gib(e["peak_rss_bytes"]) if what == "mem" else f"{seconds_of(e, mode):.2f}"
        if e.get("noisy"):
            s += "*"
        return s
    if what == "mem":
        if st == "oom":
            if e.get("skipped"):
                return f"OOM (estimated {e['estimated_maps_bytes'] / GIB:.1f} GiB)"
            return "OOM"
        return "timeout" if st == "timeout" else "n/a"
    return "-"


def ratio_cells(hf: dict | None, hs: dict | None, mode: str) -> tuple[str, str]:
    if not hs or hs.get("status") != "ok":
        return "n/a", "n/a"
    hs_mem = hs["peak_rss_bytes"]
    if hf and hf.get("status") == "ok":
        return f"{hf['peak_rss_bytes'] / hs_mem:.1f}x", f"{seconds_of(hf, mode) / seconds_of(hs, mode):.1f}x"
    if hf and hf.get("status") == "oom":  # HF would have needed at least its attention maps resident
        return f"> {hf['estimated_maps_bytes'] / hs_mem:.0f}x", "n/a"
    return "n/a", "n/a"


def print_report(args, dims: dict, results: dict, floor: int, hf_versions: dict | None) -> None:
    mode = args.time
    secs = "compute s" if mode == "compute" else "process s"
    print()
    print(f"Per-head attention statistics (entropy, mass on key 0, mean distance) for all "
          f"{dims['layers']} x {dims['heads']} heads of {Path(args.model).name}, one forward over T random tokens")
    print()
    print(f"| T | HF peak GiB | HF {secs} | headscope peak GiB | headscope {secs} | memory ratio | time ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for t in args.tokens:
        hf, hs = results[t].get("hf"), results[t].get("headscope")
        mr, tr = ratio_cells(hf, hs, mode)
        print(f"| {t} | {cell(hf, 'mem', mode)} | {cell(hf, 's', mode)} | {cell(hs, 'mem', mode)} | "
              f"{cell(hs, 's', mode)} | {mr} | {tr} |")
    print()
    print("Peak GiB: the child process's peak RSS (os.wait4 ru_maxrss; GiB = 2^30 bytes), model load included. "
          + ("Seconds: HF forward + per-head reduction timed inside the child; headscope's reported 'seconds'."
             if mode == "compute" else "Seconds: the child's whole wall time, start to exit (load included)."))
    print("Ratios: HF / headscope; '> Nx' = lower bound where HF ran out of memory (the attention maps it would "
          "have held, layers x heads x T^2 x 4 bytes, over headscope's peak).")
    notes = []
    for t in args.tokens:
        for eng in ENGINES:
            e = results[t].get(eng)
            if not e:
                continue
            if e.get("status") != "ok" and e.get("reason"):
                notes.append(f"- {eng} T={t}: {e['status'].upper()}: {e['reason']}")
            if e.get("noisy"):
                notes.append(f"- {eng} T={t}: NOISY (*): other processes used "
                             f"{e['process']['other_cpu_share']:.0%} of the CPU meanwhile")
            if eng == "hf" and e.get("status") == "ok":
                c = e["child"]
                notes.append(
                    f"- hf T={t}: forward {c['forward_s']:.2f} s + reduce {c['reduce_s']:.2f} s, load "
                    f"{c['load_s']:.2f} s, process {e['process_wall_s']:.1f} s; maps "
                    f"{c['attn_bytes'] / GIB:.2f} GiB; RSS high-water after load {c['hwm_after_load_kib'] / 2**20:.2f}"
                    f" GiB, own VmHWM {c['vmhwm_kib'] / 2**20:.2f} GiB")
            if eng == "headscope" and e.get("status") == "ok":
                notes.append(f"- headscope T={t}: process {e['process_wall_s']:.1f} s"
                             + (f"; {e['warning']}" if e.get("warning") else ""))
    if notes:
        print()
        print("Notes:")
        print("\n".join(notes))
    # same job? per-head means side by side
    rows = []
    for t in args.tokens:
        hf, hs = results[t].get("hf"), results[t].get("headscope")
        hm = head_means(hf["child"]["heads"]) if hf and hf.get("status") == "ok" else None
        sm = hs.get("head_means") if hs and hs.get("status") == "ok" else None
        if hm or sm:
            f = lambda m, k: f"{m[k]:.3f}" if m and m.get(k) is not None else "-"  # noqa: E731
            rows.append(f"| {t} | {f(hm, 'entropy')} | {f(sm, 'entropy')} | {f(hm, 'sink_mass')} | "
                        f"{f(sm, 'sink_mass')} | {f(hm, 'mean_dist')} | {f(sm, 'mean_dist')} |")
    if rows:
        print()
        print("Same job: means over all heads (ids differ between engines: same seed, different generators)")
        print()
        print("| T | HF entropy | headscope entropy | HF key-0 mass | headscope key-0 mass | HF distance | "
              "headscope distance |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        print("\n".join(rows))
    v = hf_versions or {"torch": module_version("torch"), "transformers": module_version("transformers"),
                        "numpy": module_version("numpy"), "gguf": module_version("gguf"),
                        "python": platform.python_version()}
    print_machine_and_caps(args, v, floor)


# --------------------------------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    p = model_parser("Peak memory and time of per-head attention statistics: HF transformers (eager, "
                     "output_attentions) vs headscope, each run in a fresh child process.")
    p.add_argument("--tokens", type=parse_tokens, default=DEFAULT_TOKENS, help="comma-separated sequence lengths T")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for both engines")
    p.add_argument("--seed", type=int, default=0, help="seed of the random token ids")
    p.add_argument("--headscope", default="build/headscope", help="path to the headscope CLI")
    add_child_options(p)  # --skip, --mem-cap-gb, --headscope-mem-cap-gb, --timeout
    p.add_argument("--time", choices=("compute", "process"), default="compute",
                   help="table seconds: in-child compute time, or the whole child wall time")
    p.add_argument("--wait-idle", type=float, default=60.0, metavar="SECONDS",
                   help="before each child, wait up to this long for other processes to leave the CPU (0: never)")
    p.add_argument("--python", default=sys.executable, help="interpreter for the HF child")
    p.add_argument("--json", metavar="PATH", help="write raw results as JSON ('-' = stdout)")
    # internal: the HF child
    p.add_argument("--hf-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--child-out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.hf_child:
        return args
    check_child_options(p, args)
    if args.threads < 1:
        p.error("--threads must be >= 1")
    args.tokens = sorted(dict.fromkeys(args.tokens))
    args.model = str(Path(args.model).expanduser())
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.hf_child:
        return hf_child(args.model, args.tokens[0], args.seed, args.threads, args.child_out)
    if not os.path.isfile(args.model):
        print(f"error: model not found: {args.model}", file=sys.stderr)
        return 1
    try:
        dims = model_dims(args.model)
    except (OSError, ValueError) as e:
        print(f"error: cannot read the model header: {e}", file=sys.stderr)
        return 1
    log(f"model {dims['architecture']}: {dims['layers']} layers x {dims['heads']} heads ({dims['kv_heads']} kv), "
        f"vocab {dims['vocab']}; threads {args.threads}; HF cap {args.mem_cap_gb:g} GiB")
    floor = spawn_floor_bytes(cap_bytes=1 << 40)  # spawned as the capped HF child is (fork, limit, exec)
    results: dict = {t: {} for t in args.tokens}
    hf_versions = None
    for t in args.tokens:
        for eng in ENGINES:
            if eng in args.skip:
                continue
            if not (eng == "hf" and hf_estimate_bytes(dims, t) > args.mem_cap_gb * GIB):
                wait_idle(args.wait_idle)
            log(f"{eng} T={t} ...")
            e = measure_hf(args, dims, t) if eng == "hf" else measure_headscope(args, dims, t)
            e["noisy"] = is_noisy(e, NOISY_SHARE)
            if eng == "hf" and e.get("child", {}).get("versions"):
                hf_versions = e["child"]["versions"]
            if e["status"] == "ok":
                log(f"{eng} T={t}: peak {e['peak_rss_bytes'] / GIB:.2f} GiB, {e['seconds']:.2f} s "
                    f"(process {e['process_wall_s']:.1f} s)" + (" NOISY" if e["noisy"] else ""))
            else:
                log(f"{eng} T={t}: {e['status'].upper()}: {e.get('reason')}")
            results[t][eng] = e
    print_report(args, dims, results, floor, hf_versions)
    sys.stdout.flush()

    if args.json:
        doc = {
            "model": args.model, "dims": dims, "threads": args.threads, "seed": args.seed,
            "mem_cap_gb": args.mem_cap_gb, "headscope_mem_cap_gb": args.headscope_mem_cap_gb,
            "time_mode": args.time, "ru_maxrss_floor_bytes": floor,
            "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "mem_total_gib": mem_total_gib(),
                        "kernel": platform.release()},
            "versions": hf_versions, "headscope": args.headscope,
            "results": [results[t][eng] for t in args.tokens for eng in ENGINES if eng in results[t]],
        }
        write_json_text(json.dumps(doc, indent=1), args.json, log)

    failed = False
    for t in args.tokens:
        hf, hs = results[t].get("hf"), results[t].get("headscope")
        if hf and hf["status"] not in ("ok", "oom"):
            failed = True
        if hs and hs["status"] != "ok":
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
