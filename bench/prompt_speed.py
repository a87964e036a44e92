#!/usr/bin/env python3
"""Side-by-side prompt-processing (prefill) speed: headscope vs transformers vs llama.cpp.

What it measures
----------------
Throughput, in tokens per second, of ONE full forward pass over a prompt of T
tokens (no generation, no sampling), for the same GGUF model, on the same
machine, in the same run, with the same thread count, for three engines:

  headscope     the C++ CLI of this repo, run as
                  headscope bench MODEL --tokens 128,512,2048 --repeat R \
                                        --threads N --json
                which must print one JSON document
                  {"model": str, "threads": N,
                   "results": [{"tokens": T, "seconds": best_seconds,
                                "tokens_per_s": float}, ...]}
                (headscope does its own warm-up and best-of-R timing).
  transformers  Hugging Face transformers + PyTorch, eager attention, fp32
                weights dequantised from the same GGUF
                (AutoModelForCausalLM.from_pretrained(dir, gguf_file=name,
                dtype=float32, attn_implementation="eager")),
                torch.set_num_threads(N), timed call model(ids) under
                torch.inference_mode() with use_cache=False.
  llama.cpp     llama-cpp-python (PyPI; pip compiles llama.cpp from source),
                same GGUF, n_threads = n_threads_batch = N,
                n_batch = n_ubatch = T (the whole prompt is one micro-batch;
                the default n_ubatch of 512 would split T=2048 in four),
                n_ctx = T (llama.cpp rounds it up to a multiple of 256),
                flash attention off unless --llama-flash-attn (as in
                llama-cpp-python's default), timed call llm.eval(ids) after
                llm.reset() (eval drops the KV cells past n_tokens, so every
                repeat starts from an empty cache). The n_ctx/n_batch/n_ubatch
                llama.cpp actually used are printed.

For transformers and llama.cpp: one untimed warm-up pass per T, then the best
(minimum) wall time of R timed passes; tokens/s = T / best_seconds.

Input: a fixed pseudo-random sequence of token ids drawn uniformly from the
model's vocabulary with numpy seed 0 (the first T ids of one sequence of
max(T) ids); transformers and llama.cpp get exactly the same ids. headscope
chooses its own ids (the CLI takes no ids); the cost of a dense forward pass
does not depend on the id values.

Logits: by default only the LAST position's logits are computed, which is what
llama.cpp does for a prompt (transformers gets logits_to_keep=1). With
--all-logits both compute logits for all T positions (llama.cpp:
logits_all=True); the 49152-wide LM head is then a sizeable part of the work.
headscope gets `--logits all` with --all-logits (its default is last-position).

How to run
----------
    python -m venv .venv && .venv/bin/pip install -r bench/requirements.txt
    .venv/bin/python bench/prompt_speed.py                      # all three
    .venv/bin/python bench/prompt_speed.py --skip headscope     # no C++ build
    .venv/bin/python bench/prompt_speed.py --tokens 128,512 --repeat 5 \
        --threads 2 --model path/to/model.gguf --headscope build/headscope \
        --json results.json

Options: --model (default ~/.cache/headscope/SmolLM2-135M-Instruct.Q4_1.gguf),
--tokens (default 128,512,2048), --repeat R (default 3), --threads N (default
os.cpu_count()), --headscope PATH (default build/headscope), --skip ENGINE
(repeatable or comma-separated: headscope, transformers, llama.cpp),
--all-logits, --llama-flash-attn (llama.cpp's fused attention; off by default,
as in llama-cpp-python and like the eager transformers path), --seed (of the
token ids, default 0), --wait-idle SECONDS (see below), --json PATH (raw
results with every repeat's time; '-' = stdout, after the table).

Shared machines: the script measures how much CPU OTHER processes use (from
/proc/stat minus its own CPU time; helpers shared with attention_memory.py, in
bench/benchlib.py). Before each engine and each T it waits up to
--wait-idle seconds (default 120) for them to use < 5% of the cores, and it
flags every timing taken while they used more as NOISY (in the table's notes
and in the JSON). With 2 cores, one busy neighbour halves the throughput and
can make llama.cpp's spinning threads 10-50x slower: rerun when flagged.

Output: a Markdown table
    T | headscope tok/s | transformers tok/s | llama.cpp tok/s |
      headscope/llama.cpp | headscope/transformers
followed by the machine (CPU model, cores, threads used) and library
versions. Engines run one after the other, never concurrently, and each
engine's memory is released before the next starts. The exit status is 1 if
an engine that was not skipped failed (its column shows "n/a" and the reason
is printed), 0 otherwise.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # bench/benchlib.py, from any working directory
from benchlib import (  # noqa: E402
    wait_for_quiet,
    IDLE_THRESHOLD,
    print_load_and_engines,
    BenchError,
    cpu_flags,
    logger,
    CpuMonitor,
    cpu_model,
    engine_set,
    idle_check,
    loads_json_lenient,
    module_version,
    parse_tokens,
    write_json_text,
)

DEFAULT_MODEL = "~/.cache/headscope/SmolLM2-135M-Instruct.Q4_1.gguf"
ENGINES = ("headscope", "transformers", "llama.cpp")
ENGINE_ALIASES = {
    "headscope": "headscope",
    "transformers": "transformers",
    "hf": "transformers",
    "torch": "transformers",
    "llama.cpp": "llama.cpp",
    "llama-cpp": "llama.cpp",
    "llamacpp": "llama.cpp",
    "llama_cpp": "llama.cpp",
    "llama": "llama.cpp",
}


log = logger("prompt_speed")


# --------------------------------------------------------------------------
# arguments


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Prompt-processing tokens/s: headscope vs transformers (eager fp32) vs llama.cpp.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--model", default=DEFAULT_MODEL, help="GGUF model file")
    p.add_argument("--tokens", type=parse_tokens, default=[128, 512, 2048], help="comma-separated prompt lengths T")
    p.add_argument("--repeat", type=int, default=3, help="timed repeats per T (best is reported)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for every engine")
    p.add_argument("--headscope", default="build/headscope", help="path to the headscope CLI")
    p.add_argument("--headscope-timeout", type=float, default=3600.0, help="seconds before the headscope run is killed")
    p.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="ENGINE",
        help="engine(s) to leave out: headscope, transformers, llama.cpp (repeatable or comma-separated)",
    )
    p.add_argument(
        "--llama-flash-attn",
        action="store_true",
        help="enable llama.cpp's flash attention (llama-cpp-python's default is off)",
    )
    p.add_argument(
        "--wait-idle",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="before each engine and each T, wait up to this long for other processes to leave the CPU (0: never)",
    )
    p.add_argument("--all-logits", action="store_true", help="compute logits for all T positions, not just the last")
    p.add_argument("--seed", type=int, default=0, help="seed of the random token ids")
    p.add_argument("--json", metavar="PATH", help="also write raw results as JSON to PATH ('-' = stdout)")
    args = p.parse_args(argv)

    try:
        args.skip = engine_set(args.skip, ENGINE_ALIASES)
    except KeyError as e:
        p.error(f"--skip: unknown engine {e.args[0]!r} (choose from {', '.join(ENGINES)})")
    if args.repeat < 1:
        p.error("--repeat must be >= 1")
    if args.threads < 1:
        p.error("--threads must be >= 1")
    args.tokens = sorted(dict.fromkeys(args.tokens))
    args.model = str(Path(args.model).expanduser())
    return args


# --------------------------------------------------------------------------
# machine and versions


def versions() -> dict[str, str | None]:
    return {
        "python": platform.python_version(),
        "numpy": module_version("numpy"),
        "torch": module_version("torch"),
        "transformers": module_version("transformers"),
        "gguf": module_version("gguf"),
        "llama-cpp-python": module_version("llama_cpp_python"),
    }


# --------------------------------------------------------------------------
# other load on the machine (a benchmark on a shared box is only as good as its quiet)




def wait_idle(max_wait_s: float) -> float | None:
    """Waits (up to max_wait_s) until other processes use < 5% of the CPU over one second."""
    return wait_for_quiet(max_wait_s, log)


# --------------------------------------------------------------------------
# input ids


def vocab_size_of(model_path: str) -> int:
    try:
        from gguf import GGUFReader
    except ImportError as e:
        raise SystemExit(f"error: the 'gguf' package is needed to read the vocabulary size ({e}); pip install gguf")
    reader = GGUFReader(model_path)
    field = reader.fields.get("tokenizer.ggml.tokens")
    if field is not None:
        return len(field.data)
    arch_field = reader.fields.get("general.architecture")
    arch = arch_field.contents() if arch_field is not None else "llama"
    field = reader.fields.get(f"{arch}.vocab_size")
    if field is not None:
        return int(field.contents())
    raise SystemExit(f"error: cannot find the vocabulary size in {model_path}")


def make_ids(n_vocab: int, n: int, seed: int) -> list[int]:
    import numpy as np

    rng = np.random.default_rng(seed)
    return [int(x) for x in rng.integers(0, n_vocab, size=n)]


# --------------------------------------------------------------------------
# engines


def time_best(fn, repeat: int, wait_idle_s: float) -> tuple[list[float], object, float | None]:
    """Waits for a quiet machine, one untimed warm-up call, then `repeat` timed calls.

    Returns (times, warm-up result, CPU share used by other processes during the timed calls)."""
    wait_idle(wait_idle_s)
    warm = fn()
    mon = CpuMonitor()
    mon.start()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times, warm, mon.stop()


def result_entry(t: int, times: list[float], other_load: float | None) -> dict:
    best = min(times)
    return {"tokens": t, "seconds": best, "tokens_per_s": t / best, "times": times, "other_cpu_share": other_load}


def parse_headscope_json(text: str, tokens: list[int], threads: int) -> dict:
    """Parses and checks the document printed by `headscope bench ... --json`."""
    doc = loads_json_lenient(text)  # tolerates stray lines around the document (e.g. a log line on stdout)
    if not isinstance(doc, dict):
        snippet = text.strip()[:400] or "(empty)"
        raise BenchError(f"headscope did not print a JSON object; stdout was: {snippet}")
    results = doc.get("results")
    if not isinstance(results, list):
        raise BenchError(f"headscope JSON has no 'results' list: {json.dumps(doc)[:400]}")
    by_t: dict[int, dict] = {}
    for r in results:
        try:
            t = int(r["tokens"])
            seconds = float(r["seconds"])
            tps = float(r["tokens_per_s"]) if r.get("tokens_per_s") is not None else t / seconds
        except (KeyError, TypeError, ValueError) as e:
            raise BenchError(f"headscope JSON result entry malformed ({e!r}): {r!r}")
        if seconds <= 0 or tps <= 0:
            raise BenchError(f"headscope JSON result entry has non-positive time/throughput: {r!r}")
        entry = {"tokens": t, "seconds": seconds, "tokens_per_s": tps}
        if abs(tps - t / seconds) > 0.01 * tps:
            entry["note"] = f"tokens_per_s {tps:.4g} != tokens/seconds {t / seconds:.4g}"
        by_t[t] = entry
    missing = [t for t in tokens if t not in by_t]
    if missing:
        raise BenchError(f"headscope JSON lacks results for T = {missing} (got {sorted(by_t)})")
    reported_threads = doc.get("threads")
    meta = {"model": doc.get("model"), "threads": reported_threads, "logits": doc.get("logits")}
    if reported_threads is not None and int(reported_threads) != threads:
        meta["warning"] = f"headscope reports threads={reported_threads}, asked for {threads}"
        log(meta["warning"])
    return {"meta": meta, "results": {t: by_t[t] for t in tokens}}


def run_headscope(args: argparse.Namespace) -> dict:
    exe = args.headscope
    if os.sep in exe:
        path = exe if Path(exe).exists() else None
        if path is None and not Path(exe).is_absolute():
            # the default build/headscope also works when run from outside the repo root
            in_repo = Path(__file__).resolve().parent.parent / exe
            path = str(in_repo) if in_repo.exists() else None
    else:
        path = shutil.which(exe)
    if path is None:
        raise BenchError(
            f"headscope binary not found at '{exe}'. Build it first (e.g. cmake -B build && cmake --build build), "
            f"pass --headscope PATH, or leave it out with --skip headscope."
        )
    if not os.access(path, os.X_OK):
        raise BenchError(f"'{path}' is not executable")
    cmd = [
        path,
        "bench",
        args.model,
        "--tokens",
        ",".join(str(t) for t in args.tokens),
        "--repeat",
        str(args.repeat),
        "--threads",
        str(args.threads),
        "--json",
    ]
    if args.all_logits:
        cmd[-1:-1] = ["--logits", "all"]
    log("headscope: " + " ".join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.headscope_timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"headscope did not finish within {args.headscope_timeout:.0f} s")
    except OSError as e:
        raise BenchError(f"could not run headscope: {e}")
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip()[-1500:]
        raise BenchError(f"headscope exited with status {proc.returncode}: {tail}")
    out = parse_headscope_json(proc.stdout, args.tokens, args.threads)
    out["meta"]["command"] = cmd
    want = "all" if args.all_logits else "last"
    got = out["meta"].get("logits")
    if got is not None and got != want:
        out["meta"]["warning"] = f"headscope reports logits={got!r}, asked for {want!r}"
        log(out["meta"]["warning"])
    return out


def run_transformers(args: argparse.Namespace, ids: list[int]) -> dict:
    try:
        import torch
        import transformers
        from transformers import AutoModelForCausalLM
    except ImportError as e:
        raise BenchError(f"transformers/torch not importable ({e}); pip install -r bench/requirements.txt")

    torch.set_num_threads(args.threads)
    model_path = Path(args.model)
    major = int(transformers.__version__.split(".")[0])
    # transformers >= 5 renamed torch_dtype to dtype (the old name still works, with a warning)
    dtype_kw = {"dtype": torch.float32} if major >= 5 else {"torch_dtype": torch.float32}
    log(f"transformers: loading {model_path.name} (dequantising the GGUF to fp32)")
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(
        str(model_path.parent), gguf_file=model_path.name, attn_implementation="eager", **dtype_kw
    )
    model.eval()
    load_s = time.perf_counter() - t0
    p = next(model.parameters())
    attn = getattr(model.config, "_attn_implementation", None)
    if p.dtype != torch.float32:
        raise BenchError(f"transformers loaded weights as {p.dtype}, expected float32")
    if attn not in (None, "eager"):
        raise BenchError(f"transformers uses attention implementation {attn!r}, expected 'eager'")

    results = {}
    for t in args.tokens:
        x = torch.tensor([ids[:t]], dtype=torch.long)
        kwargs = {"use_cache": False}
        if not args.all_logits:
            kwargs["logits_to_keep"] = 1

        def step(x=x, kwargs=kwargs):
            with torch.inference_mode():
                out = model(input_ids=x, **kwargs)
            return out.logits

        times, logits, other = time_best(step, args.repeat, args.wait_idle)
        results[t] = result_entry(t, times, other)
        results[t]["logits_shape"] = list(logits.shape)
        del logits
        log(f"transformers: T={t}: best {min(times):.4f} s, {t / min(times):.1f} tok/s")

    meta = {
        "load_seconds": load_s,
        "attn_implementation": attn,
        "dtype": str(p.dtype),
        "torch_threads": torch.get_num_threads(),
        "torch_config": torch.__config__.parallel_info().strip().splitlines()[:6],
        "logits": "all" if args.all_logits else "last",
    }
    del model
    gc.collect()
    return {"meta": meta, "results": results}


def run_llama_cpp(args: argparse.Namespace, ids: list[int]) -> dict:
    try:
        import llama_cpp
        from llama_cpp import Llama
    except ImportError as e:
        raise BenchError(f"llama-cpp-python not importable ({e}); pip install llama-cpp-python")

    results = {}
    meta: dict = {"per_T": {}, "logits": "all" if args.all_logits else "last"}
    try:
        meta["system_info"] = llama_cpp.llama_print_system_info().decode(errors="replace").strip()
    except Exception:
        pass
    for t in args.tokens:
        # n_batch (logical) and n_ubatch (physical) both = T so the prompt is one graph
        # evaluation; llama.cpp clamps n_ubatch to n_batch and n_batch to n_ctx.
        llm = Llama(
            model_path=args.model,
            n_ctx=t,
            n_batch=t,
            n_ubatch=t,
            n_threads=args.threads,
            n_threads_batch=args.threads,
            logits_all=args.all_logits,
            flash_attn=args.llama_flash_attn,
            verbose=False,
        )
        ctx = llm._ctx.ctx
        per_t = {
            "n_ctx": llama_cpp.llama_n_ctx(ctx),
            "n_batch": llama_cpp.llama_n_batch(ctx),
            "n_ubatch": llama_cpp.llama_n_ubatch(ctx),
        }
        fa = getattr(llm.context_params, "flash_attn_type", getattr(llm.context_params, "flash_attn", None))
        per_t["flash_attn"] = int(fa) if fa is not None else None
        meta["per_T"][t] = per_t
        if per_t["n_ubatch"] < t:
            log(f"llama.cpp: T={t}: n_ubatch is {per_t['n_ubatch']} < T, the prompt is split into micro-batches")
        toks = ids[:t]

        def step(llm=llm, toks=toks):
            llm.reset()
            llm.eval(toks)

        times, _, other = time_best(step, args.repeat, args.wait_idle)
        results[t] = result_entry(t, times, other)
        log(f"llama.cpp: T={t}: best {min(times):.4f} s, {t / min(times):.1f} tok/s  {per_t}")
        if hasattr(llm, "close"):
            llm.close()
        del llm
        gc.collect()
    return {"meta": meta, "results": results}


# --------------------------------------------------------------------------
# report


def fmt_tps(v: float | None) -> str:
    return "n/a" if v is None else f"{v:,.1f}"


def fmt_ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or b is None else f"{a / b:.2f}x"


def markdown_table(tokens: list[int], runs: dict[str, dict | None]) -> str:
    def tps(engine: str, t: int) -> float | None:
        r = runs.get(engine)
        if not r:
            return None
        e = r["results"].get(t)
        return e["tokens_per_s"] if e else None

    lines = [
        "| T | headscope tok/s | transformers tok/s | llama.cpp tok/s | headscope/llama.cpp | headscope/transformers |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for t in tokens:
        h, tf, lc = tps("headscope", t), tps("transformers", t), tps("llama.cpp", t)
        lines.append(
            f"| {t} | {fmt_tps(h)} | {fmt_tps(tf)} | {fmt_tps(lc)} | {fmt_ratio(h, lc)} | {fmt_ratio(h, tf)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not Path(args.model).is_file():
        print(f"error: model file not found: {args.model} (pass --model PATH)", file=sys.stderr)
        return 2

    engines = [e for e in ENGINES if e not in args.skip]
    if not engines:
        print("error: every engine is skipped", file=sys.stderr)
        return 2

    need_ids = any(e in engines for e in ("transformers", "llama.cpp"))
    ids: list[int] = []
    n_vocab = None
    if need_ids:
        n_vocab = vocab_size_of(args.model)
        ids = make_ids(n_vocab, max(args.tokens), args.seed)

    runs: dict[str, dict | None] = {}
    errors: dict[str, str] = {}
    other_load: dict[str, float | None] = {}
    busy = wait_idle(args.wait_idle) if args.wait_idle > 0 else idle_check()
    other_load["before"] = busy
    if busy is not None and busy > IDLE_THRESHOLD:
        log(f"warning: other processes use {busy:.0%} of the CPU right now; the numbers will be low and noisy")
    started = time.time()
    monitor = CpuMonitor()
    for engine in engines:
        log(f"--- {engine} (threads={args.threads}, T={args.tokens}, repeat={args.repeat})")
        if engine == "headscope":
            wait_idle(args.wait_idle)
        monitor.start()
        try:
            if engine == "headscope":
                runs[engine] = run_headscope(args)
            elif engine == "transformers":
                runs[engine] = run_transformers(args, ids)
            else:
                runs[engine] = run_llama_cpp(args, ids)
        except BenchError as e:
            runs[engine] = None
            errors[engine] = str(e)
            log(f"{engine}: FAILED: {e}")
        except Exception as e:  # keep going: the other engines' numbers are still useful
            runs[engine] = None
            errors[engine] = f"{type(e).__name__}: {e}"
            log(f"{engine}: FAILED with an unexpected error: {type(e).__name__}: {e}")
        other_load[engine] = monitor.stop()
        if engine == "headscope" and runs[engine]:
            for entry in runs[engine]["results"].values():
                entry["other_cpu_share"] = other_load[engine]
        if other_load[engine] is not None and other_load[engine] > IDLE_THRESHOLD:
            log(f"warning: other processes used {other_load[engine]:.0%} of the CPU while {engine} ran")
        gc.collect()

    vers = versions()
    machine = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cpu_flags": cpu_flags(),
        "threads": args.threads,
        "platform": platform.platform(),
    }

    print(f"## Prompt processing, {Path(args.model).name}\n")
    print(
        f"One forward pass over T tokens, best of {args.repeat} after one warm-up, "
        f"{args.threads} threads, {'all-position' if args.all_logits else 'last-position'} logits.\n"
    )
    print(markdown_table(args.tokens, runs))
    print()
    print(f"- CPU: {machine['cpu']} ({machine['cores']} logical cores; threads used: {args.threads})")
    if machine["cpu_flags"]:
        print(f"- CPU features: {' '.join(machine['cpu_flags'])}")
    print("- Versions: " + ", ".join(f"{k} {v}" for k, v in vers.items() if v is not None))
    lc = runs.get("llama.cpp")
    if lc and lc["meta"].get("system_info"):
        print(f"- llama.cpp system info: {lc['meta']['system_info']}")
    if lc:
        per_t = lc["meta"]["per_T"]
        print(
            "- llama.cpp contexts: "
            + "; ".join(
                f"T={t}: n_ctx {m['n_ctx']}, n_batch {m['n_batch']}, n_ubatch {m['n_ubatch']}, "
                f"flash_attn {'on' if m['flash_attn'] == 1 else 'off' if m['flash_attn'] == 0 else m['flash_attn']}"
                for t, m in per_t.items()
            )
        )
        capped = {t: m for t, m in lc["meta"]["per_T"].items() if m["n_ubatch"] < t}
        if capped:
            print(f"- llama.cpp split the prompt into micro-batches for: {capped}")
    hs = runs.get("headscope")
    if hs and hs["meta"].get("warning"):
        print(f"- headscope: {hs['meta']['warning']}")
    # what counts is the load while timings ran: per T for the in-process engines, the
    # whole subprocess run for headscope (which times itself)
    timing_load = {
        f"{e} T={t}": r["results"][t].get("other_cpu_share")
        for e, r in runs.items()
        if r
        for t in args.tokens
    }
    print_load_and_engines(timing_load, "while timing", ENGINES, args.skip, errors)

    if args.json:
        doc = {
            "model": args.model,
            "tokens": args.tokens,
            "repeat": args.repeat,
            "threads": args.threads,
            "seed": args.seed,
            "n_vocab": n_vocab,
            "logits": "all" if args.all_logits else "last",
            "machine": machine,
            "versions": vers,
            "started_unix": started,
            "wall_seconds": time.time() - started,
            "skipped": sorted(args.skip),
            "errors": errors,
            "other_process_cpu_share": other_load,
            "engines": {
                e: (None if r is None else {"meta": r["meta"], "results": [r["results"][t] for t in args.tokens]})
                for e, r in runs.items()
            },
        }
        write_json_text(json.dumps(doc, indent=2, default=str), args.json, log)

    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
