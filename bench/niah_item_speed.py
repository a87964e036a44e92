#!/usr/bin/env python3
"""Wall time and peak memory of retrieval-head detection on ONE needle-in-a-haystack item: HF transformers vs headscope.

What it measures
----------------
The job (the retrieval-head detection of Wu et al. 2024, for one item): a needle-in-a-haystack prompt of about
--tokens tokens (default 4096; the haystack is datasets/text/public_domain.txt, the needle inserted at 50 % depth,
the model's ChatML template), the prompt pass, then up to --max-new (default 50) greedy decode steps with a KV cache,
stopping after a token whose text contains a newline or after EOS, and, for EVERY decode step, the per-head
statistic of the detection: the argmax key of each head's attention row (30 layers x 9 heads of SmolLM2-135M-Instruct,
Q4_1 GGUF). Each engine does the whole job in its OWN fresh child process, and the script records that child's wall
time and peak resident memory:

  headscope  the C++ CLI of this repo (first, since it also builds the prompt):
               build/headscope score MODEL --probe retrieval --needles N.jsonl --lengths L --depths 50 \\
                                     --max-new M --threads T --json -o RUN.h5
             N.jsonl: one needle (--needle, default the San Francisco needle of the reference). It builds the
             item, decodes greedily with a KV cache, then runs one forward over prompt + answer with per-head
             statistics (the argmax key of every row: rows response_start-1 .. end-1 are the decode steps), and
             scores the heads (copy events in the needle span). Its compute time is the "seconds" its --json
             reports (the whole job after the model load: item, decoding, the statistics forward, the run file);
             its wall time is the whole process (model load included).
  hf         Hugging Face transformers, eager attention, fp32 weights dequantised from the same GGUF:
               AutoModelForCausalLM.from_pretrained(dir, gguf_file=name, dtype=torch.float32,
                                                    attn_implementation="eager")
             torch.set_num_threads(T). The prompt is headscope's, token for token (read from RUN.h5: /tokens at
             /items/offset[0], /items/length[0]; the first response_start of them, response_start from the JSON in
             /items/meta[0]). Under torch.inference_mode():
               prefill  model(prompt[:-1], use_cache=True, logits_to_keep=1)   (no attentions, as the reference;
                        logits of the last position only: all-position logits, T x 49152 x 4 bytes, are not needed)
               decode   from the last prompt token, per step
                          out = model(input_ids=[[tok]], past_key_values=cache, use_cache=True,
                                      output_attentions=True)
                          argmax over keys of every layer's and head's attention row   ([L, H] per step)
                          tok = argmax of the logits; stop after newline text or EOS, at most M steps
             Prefill and decode are timed separately (model and tokenizer load excluded; one untimed warm-up of
             16 prompt tokens + one decode step with attentions precedes them, lazy one-time initialisation).
             After the timing, the per-step argmax keys are turned into the per-head copy scores (Wu et al.'s
             "step" mode, as headscope's probe: copy events in headscope's needle span / span length) and compared
             with headscope's per-item scores, as a check that both did the same job.

Greedy agreement: both engines compute in fp32 from the same dequantised weights, but their arithmetic differs, so
their greedy tokens can part ways after a near-tie. The table notes whether HF's generated tokens equal headscope's
response (the item's tokens after response_start) and the first index where they differ; both texts are printed.

Columns: prompt tokens, generated tokens, wall s (the child's whole wall time, start to exit, load included),
compute s (HF: prefill + decode timed in the child; headscope: its reported job time), peak GiB (the child's peak RSS, os.wait4
ru_maxrss of exactly that child, GiB = 2^30 bytes); then the ratios HF / headscope of wall time and peak RSS.

Peak memory and never the OOM killer: as in bench/attention_memory.py, with the same child runner
(bench/benchlib.py). Each child is a fresh subprocess reaped with os.wait4(pid); this parent imports nothing heavy
(standard library and bench/benchlib.py only; the run file is read by a separate, unmeasured helper child with h5py)
so the ru_maxrss it passes on at exec stays small; that floor is measured (a /bin/true child) and printed. The HF
child runs under RLIMIT_AS = --mem-cap-gb (default 18 GiB), so an oversized allocation fails inside it ("OOM")
instead of waking the kernel OOM killer; headscope under --headscope-mem-cap-gb (default: the same; 0 = none).
Before each child the script waits up to --wait-idle seconds for other processes to use < 5 % of the cores, measures
their share while the child runs, and flags a run taken under more as NOISY.

How to run
----------
    python3 -m venv ~/.cache/headscope-hf-venv
    ~/.cache/headscope-hf-venv/bin/pip install torch==2.15.0 transformers==5.23.0 gguf==0.19.0 numpy==2.4.6 \
        h5py accelerate     # transformers needs accelerate to load a GGUF (tested: h5py 3.16.0, accelerate 1.15.0)
    ~/.cache/headscope-hf-venv/bin/python bench/niah_item_speed.py --threads 2 --json niah_item_speed.json
    ~/.cache/headscope-hf-venv/bin/python bench/niah_item_speed.py --tokens 300 --max-new 5     # smoke test

Options: --model (default ~/.cache/headscope/SmolLM2-135M-Instruct.Q4_1.gguf), --tokens L (the item length,
headscope's --lengths; the prompt is shorter by headscope's reserve for the answer), --depth (default 50),
--max-new (default 50), --threads N (default os.cpu_count(), both engines), --needle JSONL (one line),
--headscope PATH (default build/headscope), --skip hf|headscope (with --skip headscope, headscope still runs once to
build the prompt, unreported), --mem-cap-gb, --headscope-mem-cap-gb, --timeout SECONDS per child (default 3600),
--wait-idle SECONDS (default 60), --python (interpreter for the HF and run-file children; default
~/.cache/headscope-hf-venv/bin/python if it exists, else this one), --keep-run PATH (keep headscope's run file),
--json PATH ('-' = stdout, after the table). Exit status: 0 when every engine not skipped succeeded, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # bench/benchlib.py, from any working directory
from benchlib import (  # noqa: E402
    GIB, add_child_options, check_child_options, child_env, child_main, classify_failure, cpu_flags, cpu_model,
    is_noisy, last_lines, loads_json_lenient, logger, mem_total_gib, model_parser, module_version,
    print_load_and_engines, print_machine_and_caps, proc_status_kib, process_fields, read_json_file, run_child,
    spawn_floor_bytes, wait_for_quiet, write_json_text,
)

REPO = Path(__file__).resolve().parent.parent
DEFAULT_VENV_PYTHON = "~/.cache/headscope-hf-venv/bin/python"
DEFAULT_NEEDLE = {
    "needle": "The best thing to do in San Francisco is eat a sandwich and sit in Dolores Park on a sunny day.",
    "question": "What is the best thing to do in San Francisco?",
    "answer": "eat a sandwich and sit in Dolores Park on a sunny day",
}
ENGINES = ("headscope", "hf")

log = logger("niah_item_speed")


# --------------------------------------------------------------------------------------------------------------
# helper child: headscope's run file -> JSON (h5py; unmeasured, keeps h5py/numpy out of this parent)


def read_run_child(run_path: str, out_path: str) -> int:
    import h5py

    with h5py.File(run_path, "r") as f:
        off, n = int(f["items/offset"][0]), int(f["items/length"][0])
        meta = f["items/meta"][0]
        meta = json.loads(meta.decode("utf-8") if isinstance(meta, bytes) else meta)
        tokens = [int(t) for t in f["tokens"][off:off + n]]
        doc = {"tokens": tokens, "meta": meta}
        if "probes/retrieval/heads/r" in f:
            doc["heads_r"] = f["probes/retrieval/heads/r"][0].tolist()
        scal = "probes/retrieval/scalars"
        if scal in f:
            doc["scalars"] = {k: float(f[scal][k][0]) for k in f[scal]}
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(doc, f)
    return 0


def read_run(args, run_path: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="niah_item_speed_") as tmp:
        out_path = os.path.join(tmp, "run.json")
        cmd = [args.python, os.path.abspath(__file__), "--read-run", run_path, "--child-out", out_path]
        res = run_child(cmd, None, 300, child_env(1))
        if res.get("rc") != 0 or not os.path.exists(out_path):
            raise RuntimeError(f"cannot read the run file {run_path} with {args.python} (needs h5py): "
                               f"{last_lines(res.get('stderr', res.get('error', '')))}")
        with open(out_path, encoding="utf-8") as f:
            return json.load(f)


# --------------------------------------------------------------------------------------------------------------
# the HF child (runs in its own process: `niah_item_speed.py --hf-child ...`)


def hf_child(args) -> int:
    with open(args.ids_file, encoding="utf-8") as f:
        job = json.load(f)
    prompt: list[int] = job["prompt"]
    span = job.get("needle_span")

    def measure(result: dict) -> None:
        t_start = time.perf_counter()
        import numpy as np
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(args.threads)
        result["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__,
                              "numpy": np.__version__, "gguf": module_version("gguf"),
                              "python": platform.python_version()}
        result["torch_threads"] = torch.get_num_threads()
        result["import_s"] = time.perf_counter() - t_start

        t0 = time.perf_counter()
        p = Path(args.model)
        model = AutoModelForCausalLM.from_pretrained(str(p.parent), gguf_file=p.name, dtype=torch.float32,
                                                     attn_implementation="eager")
        model.eval()
        result["load_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        tok = AutoTokenizer.from_pretrained(str(p.parent), gguf_file=p.name)  # newline test and the printed texts
        result["tokenizer_load_s"] = time.perf_counter() - t0
        result["hwm_after_load_kib"] = proc_status_kib("VmHWM")
        result["attn_implementation"] = getattr(model.config, "_attn_implementation", None)
        result["dtype"] = str(next(model.parameters()).dtype)
        eos = set()
        for src in (model.config, getattr(model, "generation_config", None), tok):
            e = getattr(src, "eos_token_id", None) if src is not None else None
            eos.update(e if isinstance(e, (list, tuple)) else ([e] if e is not None else []))
        result["eos_ids"] = sorted(int(e) for e in eos)
        newline_cache: dict[int, bool] = {}

        def stops(t: int) -> bool:
            if t in eos:
                return True
            if t not in newline_cache:
                newline_cache[t] = "\n" in tok.decode([t])
            return newline_cache[t]

        ids = torch.tensor([prompt], dtype=torch.long)
        with torch.inference_mode():
            # warm-up: 16 prompt tokens, one decode step with attentions (lazy one-time initialisation)
            t0 = time.perf_counter()
            w = model(input_ids=ids[:, :16], use_cache=True)
            model(input_ids=ids[:, 16:17], past_key_values=w.past_key_values, use_cache=True, output_attentions=True)
            del w
            result["warmup_s"] = time.perf_counter() - t0

            t0 = time.perf_counter()
            out = model(input_ids=ids[:, :-1], use_cache=True, logits_to_keep=1)
            cache = out.past_key_values
            del out
            t1 = time.perf_counter()
            result["rss_after_prefill_kib"] = proc_status_kib("VmRSS")
            generated: list[int] = []
            argmax_steps = []  # per step: [L, H] argmax key of every head's attention row
            cur = prompt[-1]
            for _ in range(args.max_new):
                out = model(input_ids=torch.tensor([[cur]]), past_key_values=cache, use_cache=True,
                            output_attentions=True)
                cache = out.past_key_values
                if not out.attentions or out.attentions[0] is None:
                    raise RuntimeError("the model returned no attentions (output_attentions=True ignored?)")
                argmax_steps.append(torch.stack([a[0, :, -1, :].argmax(-1) for a in out.attentions]))
                cur = int(out.logits[0, -1].argmax())
                generated.append(cur)
                if stops(cur):
                    break
            t2 = time.perf_counter()
        keys = torch.stack(argmax_steps).to(torch.int64)  # [steps, L, H]
        result["argmax_shape"] = list(keys.shape)
        # Wu et al.'s copy score, "step" mode (headscope's retrieval_copy_scores), from the per-step argmax keys
        if span and span[0] >= 0:
            a, b = span
            pt = torch.tensor(prompt, dtype=torch.int64)
            in_span = (keys >= a) & (keys < b)
            copied = pt[keys.clamp(0, len(prompt) - 1)] == torch.tensor(generated, dtype=torch.int64)[:, None, None]
            result["copy_scores"] = ((in_span & copied).sum(0).double() / (b - a)).tolist()
        resp = job.get("headscope_response") or []
        result.update({
            "status": "ok",
            "prompt_tokens": len(prompt),
            "generated": generated,
            "text": tok.decode(generated),
            "headscope_text": tok.decode(resp) if resp else None,
            "prefill_s": t1 - t0,
            "prefill_tokens": len(prompt) - 1,
            "decode_s": t2 - t1,
            "decode_steps": len(generated),
            "compute_s": t2 - t0,
            "child_total_s": time.perf_counter() - t_start,
        })

    return child_main(measure, args.child_out)  # an allocation failure: status "oom", exit OOM_EXIT


# --------------------------------------------------------------------------------------------------------------
# engines, as seen from the parent


def entry_from(res: dict, status: str, **extra) -> dict:
    e = {"status": status, "peak_rss_bytes": res.get("peak_rss_bytes"), "wall_s": res.get("wall_s"),
         "process": process_fields(res)}
    e.update(extra)
    return e


def run_headscope(args, tmp: str) -> tuple[dict, dict | None]:
    """The measured headscope child; returns (entry, the item read from its run file or None)."""
    exe = args.headscope
    if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        return {"status": "error", "reason": f"{exe} not found or not executable (build it first)"}, None
    needles = os.path.join(tmp, "needle.jsonl")
    with open(needles, "w", encoding="utf-8") as f:
        f.write(json.dumps(args.needle_doc) + "\n")
    run_path = args.keep_run or os.path.join(tmp, "run.h5")
    cmd = [exe, "score", args.model, "--probe", "retrieval", "--needles", needles, "--lengths", str(args.tokens),
           "--depths", f"{args.depth:g}", "--max-new", str(args.max_new), "--threads", str(args.threads), "--json",
           "-o", run_path, "--force"]
    cap = int(args.headscope_mem_cap_gb * GIB) if args.headscope_mem_cap_gb > 0 else None
    res = run_child(cmd, cap, args.timeout, child_env(args.threads), cwd=str(REPO))
    base = {"engine": "headscope", "command": " ".join(cmd), "mem_cap_bytes": cap}
    if res.get("rc") != 0:
        status, reason = classify_failure(res, cap)
        return {**base, **entry_from(res, status, reason=reason, stderr_tail=last_lines(res.get("stderr", ""), 8))}, None
    doc = loads_json_lenient(res["stdout"])
    try:
        probe = doc["probes"][0]
        item = probe["items"][0]
        meta = item["meta"]
        scalars = {k: v for k, v in item.items() if k != "meta"}
    except (TypeError, KeyError, IndexError):
        return {**base, **entry_from(res, "error", reason="bad --json output: no probes[0].items[0]: "
                                     + res["stdout"].strip()[:300])}, None
    try:
        run = read_run(args, run_path)
    except RuntimeError as e:
        return {**base, **entry_from(res, "error", reason=str(e))}, None
    r0 = int(run["meta"]["response_start"])
    run["prompt"], run["response"] = run["tokens"][:r0], run["tokens"][r0:]
    entry = {**base, **entry_from(res, "ok", meta=meta, scalars=scalars, summary=probe.get("summary"), compute_s=doc.get("seconds"),
                                  prompt_tokens=r0, generated=len(run["response"]), response=run["response"],
                                  copy_scores=run.get("heads_r"), run_file=args.keep_run)}
    return entry, run


def run_hf(args, run: dict, tmp: str) -> dict:
    cap = int(args.mem_cap_gb * GIB)
    ids_file, out_path = os.path.join(tmp, "hf_job.json"), os.path.join(tmp, "hf.json")
    span = None
    sc = run.get("scalars") or {}
    if "needle_start" in sc and "needle_end" in sc:
        span = [int(sc["needle_start"]), int(sc["needle_end"])]
    with open(ids_file, "w", encoding="utf-8") as f:
        json.dump({"prompt": run["prompt"], "needle_span": span, "headscope_response": run["response"]}, f)
    cmd = [args.python, os.path.abspath(__file__), "--hf-child", "--model", args.model, "--ids-file", ids_file,
           "--max-new", str(args.max_new), "--threads", str(args.threads), "--child-out", out_path]
    res = run_child(cmd, cap, args.timeout, child_env(args.threads))
    child = read_json_file(out_path)
    base = {"engine": "hf", "mem_cap_bytes": cap}
    if res.get("rc") == 0 and child.get("status") == "ok":
        return {**base, **entry_from(res, "ok", prompt_tokens=child["prompt_tokens"],
                                     generated=len(child["generated"]), compute_s=child["compute_s"], child=child)}
    status, reason = classify_failure(res, cap, child)
    return {**base, **entry_from(res, status, reason=reason, stderr_tail=last_lines(res.get("stderr", ""), 8),
                                 child=child)}


def compare(hs_resp: list[int], hf: dict, hs_scores, hf_scores) -> dict:
    gen = hf["child"]["generated"]
    first = next((i for i, (a, b) in enumerate(zip(gen, hs_resp)) if a != b), None)
    if first is None and len(gen) != len(hs_resp):
        first = min(len(gen), len(hs_resp))
    out = {"tokens_equal": gen == hs_resp, "first_difference": first, "hf_tokens": len(gen),
           "headscope_tokens": len(hs_resp)}
    if hs_scores is not None and hf_scores is not None:
        flat_hs = [v for row in hs_scores for v in row]
        flat_hf = [v for row in hf_scores for v in row]
        diffs = [abs(a - b) for a, b in zip(flat_hs, flat_hf) if a == a and b == b]  # NaN: needle not located
        out["copy_scores_max_abs_diff"] = max(diffs) if diffs else None
        out["copy_scores_heads_differing"] = sum(d > 1e-9 for d in diffs)
        out["copy_scores_heads"] = len(flat_hs)
    return out


# --------------------------------------------------------------------------------------------------------------
# report


def fmt(v, spec: str) -> str:
    return format(v, spec) if v is not None else "n/a"


def ratio(a, b) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "n/a"


def print_report(args, results: dict, floor: int, cmp: dict | None, versions: dict) -> None:
    print()
    print(f"One needle-in-a-haystack item (length {args.tokens}, needle at {args.depth:g} % depth) of "
          f"{Path(args.model).name}: prompt pass + up to {args.max_new} greedy decode steps, per-head argmax key of "
          f"every decode step; threads {args.threads}")
    print()
    print("| engine | prompt tokens | generated tokens | wall s | compute s | peak RSS GiB |")
    print("|---|---:|---:|---:|---:|---:|")
    for eng in ENGINES:
        e = results.get(eng)
        if e is None:
            print(f"| {eng} | skipped | | | | |")
            continue
        ok = e.get("status") == "ok"
        noisy = "*" if e.get("noisy") else ""
        wall = f"{e['wall_s']:.2f}{noisy}" if ok else e.get("status", "n/a").upper()
        comp = f"{e['compute_s']:.2f}{noisy}" if ok and e.get("compute_s") is not None else "n/a"
        print(f"| {eng} | {e.get('prompt_tokens', 'n/a') if ok else 'n/a'} | {e.get('generated', 'n/a') if ok else 'n/a'}"
              f" | {wall} | {comp} | {fmt(e['peak_rss_bytes'] / GIB, '.2f') if ok else 'n/a'} |")
    hf, hs = results.get("hf"), results.get("headscope")
    if hf and hs and hf.get("status") == "ok" and hs.get("status") == "ok":
        print(f"| HF / headscope | | | {ratio(hf['wall_s'], hs['wall_s'])} | {ratio(hf.get('compute_s'), hs.get('compute_s'))} | "
              f"{ratio(hf['peak_rss_bytes'], hs['peak_rss_bytes'])} |")
    print()
    print("wall s: the child's whole wall time, start to exit (model load included). compute s: HF prefill + decode "
          "timed in the child (load excluded); headscope: the job time its `score --json` reports (load excluded). Peak RSS: os.wait4 ru_maxrss of "
          "the child, GiB = 2^30 bytes. * = NOISY.")
    notes = []
    if hf and hf.get("status") == "ok":
        c = hf["child"]
        notes.append(f"- hf: import {c['import_s']:.1f} s, model load {c['load_s']:.1f} s, tokenizer load "
                     f"{c['tokenizer_load_s']:.1f} s, warm-up {c['warmup_s']:.2f} s, "
                     f"prefill {c['prefill_s']:.2f} s ({c['prefill_tokens']} tokens), decode {c['decode_s']:.2f} s "
                     f"({c['decode_steps']} steps, {c['decode_s'] / max(c['decode_steps'], 1) * 1000:.0f} ms/step); "
                     f"RSS high-water after load {c['hwm_after_load_kib'] / 2**20:.2f} GiB, own VmHWM "
                     f"{c['vmhwm_kib'] / 2**20:.2f} GiB")
        notes.append(f"- hf text: {c['text']!r}")
    if hs and hs.get("status") == "ok":
        sc = hs.get("scalars", {})
        notes.append(f"- headscope: item meta length {hs['meta'].get('length')}, response_start "
                     f"{hs['meta'].get('response_start')}, needle span [{sc.get('needle_start', -1):.0f}, "
                     f"{sc.get('needle_end', -1):.0f}), ROUGE-1 {sc.get('rouge1', float('nan')):.1f}, "
                     f"kept {sc.get('kept', float('nan')):.0f}")
        if hf and hf.get("status") == "ok" and hf["child"].get("headscope_text") is not None:
            notes.append(f"- headscope text: {hf['child']['headscope_text']!r}")
    if cmp:
        if cmp["tokens_equal"]:
            notes.append(f"- greedy tokens: equal ({cmp['hf_tokens']} tokens)")
        else:
            notes.append(f"- greedy tokens: DIFFER from index {cmp['first_difference']} (HF {cmp['hf_tokens']}, "
                         f"headscope {cmp['headscope_tokens']} tokens)")
        if cmp.get("copy_scores_max_abs_diff") is not None:
            notes.append(f"- per-head copy scores from the argmax keys (Wu et al., step mode): "
                         f"{cmp['copy_scores_heads_differing']} of {cmp['copy_scores_heads']} heads differ, max |diff| "
                         f"{cmp['copy_scores_max_abs_diff']:.4f}")
    if args.skip_note:
        notes.append(args.skip_note)
    if notes:
        print()
        print("Notes:")
        print("\n".join(notes))
    loads = {eng: (results[eng].get("process") or {}).get("other_cpu_share") for eng in results if results.get(eng)}
    errors = {eng: f"{e.get('status')}: {e.get('reason')}" for eng, e in results.items() if e and e.get("status") != "ok"}
    print_load_and_engines(loads, "while the engines ran", ENGINES, args.skip, errors)
    print_machine_and_caps(args, versions, floor)


# --------------------------------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    p = model_parser("Wall time and peak RSS of retrieval-head detection on one needle-in-a-haystack item: "
                     "HF transformers (eager, output_attentions) vs headscope, each in a fresh child process.")
    p.add_argument("--tokens", type=int, default=4096, help="the item length (headscope's --lengths)")
    p.add_argument("--depth", type=float, default=50.0, help="needle depth, percent")
    p.add_argument("--max-new", type=int, default=50, help="decode steps at most")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for both engines")
    p.add_argument("--needle", help="JSONL file whose first line is {needle, question, answer} "
                                    "(default: the San Francisco needle)")
    p.add_argument("--headscope", default=str(REPO / "build" / "headscope"), help="path to the headscope CLI")
    add_child_options(p)  # --skip, --mem-cap-gb, --headscope-mem-cap-gb, --timeout
    p.add_argument("--wait-idle", type=float, default=60.0, metavar="SECONDS",
                   help="before each child, wait up to this long for other processes to leave the CPU (0: never)")
    default_py = os.path.expanduser(DEFAULT_VENV_PYTHON)
    p.add_argument("--python", default=default_py if os.path.exists(default_py) else sys.executable,
                   help="interpreter for the HF child and the run-file reader (torch, transformers, gguf, accelerate, h5py)")
    p.add_argument("--keep-run", metavar="PATH", help="write headscope's run file here and keep it")
    p.add_argument("--json", metavar="PATH", help="write raw results as JSON ('-' = stdout)")
    # internal: the children
    p.add_argument("--hf-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--read-run", help=argparse.SUPPRESS)
    p.add_argument("--ids-file", help=argparse.SUPPRESS)
    p.add_argument("--child-out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.hf_child or args.read_run:
        return args
    check_child_options(p, args)
    if args.skip >= set(ENGINES):
        p.error("nothing to run: both engines skipped")
    if args.threads < 1 or args.max_new < 1 or args.tokens < 1:
        p.error("--threads, --max-new and --tokens must be >= 1")
    args.model = str(Path(args.model).expanduser())
    args.headscope = os.path.abspath(args.headscope)
    if args.keep_run:
        args.keep_run = os.path.abspath(args.keep_run)
    args.needle_doc = DEFAULT_NEEDLE
    if args.needle:
        with open(args.needle, encoding="utf-8") as f:
            line = next((ln for ln in f if ln.strip()), None)
        if line is None:
            p.error(f"--needle {args.needle}: empty file")
        args.needle_doc = json.loads(line)
    args.skip_note = None
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.read_run:
        return read_run_child(args.read_run, args.child_out)
    if args.hf_child:
        return hf_child(args)
    if not os.path.isfile(args.model):
        print(f"error: model not found: {args.model}", file=sys.stderr)
        return 1
    log(f"item length {args.tokens}, depth {args.depth:g} %, max-new {args.max_new}, threads {args.threads}; "
        f"HF python {args.python}")
    floor = spawn_floor_bytes()
    results: dict[str, dict | None] = {"headscope": None, "hf": None}
    cmp = None
    with tempfile.TemporaryDirectory(prefix="niah_item_speed_") as tmp:
        # headscope first: it also builds the prompt that HF gets token for token
        wait_for_quiet(args.wait_idle, log)
        log("headscope ..." if "headscope" not in args.skip else "headscope (prompt only, not reported) ...")
        hs, run = run_headscope(args, tmp)
        hs["noisy"] = is_noisy(hs)
        if hs["status"] == "ok":
            log(f"headscope: {hs['prompt_tokens']} prompt + {hs['generated']} generated tokens, "
                f"{hs['wall_s']:.2f} s, peak {hs['peak_rss_bytes'] / GIB:.2f} GiB")
        else:
            log(f"headscope: {hs['status'].upper()}: {hs.get('reason')}")
        if "headscope" not in args.skip:
            results["headscope"] = hs
        else:
            args.skip_note = "- headscope was run once to build the prompt (not reported: --skip headscope)"
        if "hf" not in args.skip:
            if run is None:
                results["hf"] = {"engine": "hf", "status": "error", "peak_rss_bytes": None, "wall_s": None,
                                 "reason": "no prompt: the headscope run that builds it failed"}
            else:
                wait_for_quiet(args.wait_idle, log)
                log("hf ...")
                hf = run_hf(args, run, tmp)
                hf["noisy"] = is_noisy(hf)
                if hf["status"] == "ok":
                    log(f"hf: {hf['prompt_tokens']} prompt + {hf['generated']} generated tokens, {hf['wall_s']:.2f} s "
                        f"(compute {hf['compute_s']:.2f} s), peak {hf['peak_rss_bytes'] / GIB:.2f} GiB")
                    cmp = compare(run["response"], hf, run.get("heads_r"), hf["child"].get("copy_scores"))
                else:
                    log(f"hf: {hf['status'].upper()}: {hf.get('reason')}")
                results["hf"] = hf
    hf = results.get("hf")
    versions = (hf or {}).get("child", {}).get("versions") or {
        "torch": None, "transformers": None, "python": platform.python_version()}
    print_report(args, results, floor, cmp, versions)
    sys.stdout.flush()

    if args.json:
        hs = results.get("headscope")
        ok = lambda e: e is not None and e.get("status") == "ok"  # noqa: E731
        doc = {
            "model": args.model, "tokens": args.tokens, "depth": args.depth, "max_new": args.max_new,
            "needle": args.needle_doc, "threads": args.threads,
            "mem_cap_gb": args.mem_cap_gb, "headscope_mem_cap_gb": args.headscope_mem_cap_gb,
            "ru_maxrss_floor_bytes": floor,
            "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "cpu_flags": cpu_flags(),
                        "mem_total_gib": mem_total_gib(), "kernel": platform.release()},
            "versions": versions, "headscope": args.headscope, "skip": sorted(args.skip),
            "results": results,
            "ratios_hf_over_headscope": {
                "wall": hf["wall_s"] / hs["wall_s"] if ok(hf) and ok(hs) else None,
                "peak_rss": hf["peak_rss_bytes"] / hs["peak_rss_bytes"] if ok(hf) and ok(hs) else None,
            },
            "comparison": cmp,
        }
        write_json_text(json.dumps(doc, indent=1), args.json, log)
    failed = any(results[e] is None or results[e].get("status") != "ok" for e in ENGINES if e not in args.skip)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
