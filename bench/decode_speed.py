#!/usr/bin/env python3
"""Side-by-side decode (generation) speed with a KV cache: headscope vs llama.cpp.

What it measures
----------------
Tokens per second of greedy generation, one token per step, with a KV cache,
EXCLUDING the prompt pass, for the same GGUF model, the same prompt token ids,
the same number of generated tokens and the same thread count, in the same run,
for two engines:

  headscope  the C++ CLI of this repo, run once per repeat as
               headscope generate MODEL --ids ID,ID,... --no-bos -n N \
                                  --threads T --json
             which prints one JSON document with (among others)
               {"prompt_tokens": [ids], "generated": [ids],
                "prefill_seconds": s,   # the prompt pass (gives token 1)
                "decode_seconds": s,    # the later steps, one token each
                "decode_tokens_per_s": (len(generated) - 1) / decode_seconds,
                "threads": T}
             headscope times itself, so model loading is not counted. It is
             greedy by default and stops early at its end-of-sequence token;
             the count it actually generated, G, is used for llama.cpp too.
  llama.cpp  llama-cpp-python, same GGUF, n_threads = n_threads_batch = T,
             n_ctx >= prompt + G (llama.cpp rounds it up to a multiple of 256),
             flash attention off (llama-cpp-python's default), logits of the
             last position only. Per repeat, after llm.reset() (the next eval
             drops every cached cell): llm.eval(prompt ids) is timed as the
             prefill; then token 1 = argmax of the last logits
             (llama_get_logits_ith(ctx, -1), numpy argmax, first index on
             ties), and G - 1 steps of llm.eval([token]) + argmax are timed as
             the decode. decode tok/s = (G - 1) / decode seconds, the same
             definition as headscope's. EOS is not checked: llama.cpp always
             generates G tokens. The prompt goes in one llama_decode call
             (n_batch = prompt length) unless --llama-prompt-batch N.

llama.cpp's extra weight buffer types (model parameter use_extra_bufts:
weights repacked for AMX or CPU_REPACK kernels where the build and the CPU have
them; llama-cpp-python 0.3.36 has no argument for it, the script sets it) are
on by default in llama.cpp. Its AMX kernels crash on some machines
(ggml-org/llama.cpp#20824: SIGSEGV at ldtilecfg in ggml_backend_amx_mul_mat,
for batches of more than one token), and a segfault would end this process
with the headscope results unprinted. So the configuration is first run once
(prompt pass + one decode step) in a child Python process; with
--llama-extra-bufts auto (the default) a crash there moves on to a fallback,
and the table notes it. The fallbacks, in order: the same weights with the
prompt fed one token per call (n_batch 1; the crash is in the AMX tile path for
multi-token batches, single-token calls ran fine on the machine where it was
seen, and there the repacked weights decode much faster than plain ones: ~195
vs ~86 tok/s for SmolLM2-135M Q4_1 on 2 cores of a Xeon with AMX; the prefill
column then counts one call per prompt token), then the extra buffer types
off. --llama-extra-bufts on|off forces one
setting (no fallback).

Prompt: --prompt TEXT is tokenised by headscope (first, untimed run; it adds
BOS where the model asks for it); every timed headscope run and llama.cpp then
get exactly those ids (headscope with --ids ... --no-bos). llama.cpp's own
tokenisation of the text is printed when it differs. With --skip headscope,
llama.cpp tokenises the text itself and generates --tokens tokens.

Timing: one untimed warm-up run per engine (page cache, allocations, thread
pools), then the best (highest decode tok/s) of --repeat R timed runs. The
table shows the prompt length, G, the prefill seconds and the decode tok/s of
each engine's best run, followed by the ratio headscope / llama.cpp of the
decode rates.

Greedy agreement: headscope computes in fp32 from dequantised weights,
llama.cpp in quantised arithmetic (Q4_1 x Q8 dot products), so their greedy
tokens can part ways after a near-tie; the script reports how many LEADING
generated tokens agree, and whether each engine produced the same tokens in
every repeat.

How to run
----------
    # llama.cpp at its best on this CPU: compile it with native CPU flags
    # (--no-cache-dir: pip would otherwise reuse a cached wheel, whatever
    # CMAKE_ARGS says)
    python -m venv ~/.cache/headscope-bench-venv
    CMAKE_ARGS="-DGGML_NATIVE=ON" ~/.cache/headscope-bench-venv/bin/pip install \
        --no-cache-dir --no-binary llama-cpp-python llama-cpp-python==0.3.36
    ~/.cache/headscope-bench-venv/bin/python bench/decode_speed.py --threads 2
    ... bench/decode_speed.py --tokens 256 --repeat 5 --prompt "Once upon" \
        --model path/to/model.gguf --headscope build/headscope --json out.json
    ... bench/decode_speed.py --skip llama.cpp    # headscope only

The system info line of llama.cpp (llama_print_system_info(): the CPU features
it was compiled for, e.g. AVX2 / AVX512 / AMX) is printed under the table.

Options: --model (default ~/.cache/headscope/SmolLM2-135M-Instruct.Q4_1.gguf),
--headscope PATH (default build/headscope), --tokens N to generate (default
128), --prompt TEXT (default a short English sentence whose greedy
continuation by SmolLM2-135M-Instruct runs past 128 tokens), --repeat R
(default 3), --threads T (default os.cpu_count()), --skip ENGINE (repeatable or
comma-separated: headscope, llama.cpp), --llama-extra-bufts auto|on|off
(default auto, see above), --llama-prompt-batch N (llama.cpp's n_batch for the
prompt pass; default 0 = the whole prompt), --wait-idle SECONDS (default 120,
see below), --headscope-timeout SECONDS, --json PATH (raw results with every
repeat; '-' = stdout, after the table).

Shared machines: before each run (warm-up and every repeat) the script waits
up to --wait-idle seconds for other processes to use < 5% of the cores
(bench/benchlib.py, as in prompt_speed.py), measures the share they used while
each run went on, and flags a best run taken under more as NOISY. With 2 cores
one busy neighbour halves the throughput: rerun when flagged.

The exit status is 1 if an engine that was not skipped failed (its row shows
"n/a" and the reason is printed), 2 on a usage error, 0 otherwise.
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
    write_json_text,
)

DEFAULT_MODEL = "~/.cache/headscope/SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_PROMPT = "Once upon a time, in a small village by the sea, there lived an old fisherman who"
ENGINES = ("headscope", "llama.cpp")
ENGINE_ALIASES = {
    "headscope": "headscope",
    "llama.cpp": "llama.cpp",
    "llama-cpp": "llama.cpp",
    "llamacpp": "llama.cpp",
    "llama_cpp": "llama.cpp",
    "llama": "llama.cpp",
}


log = logger("decode_speed")


# --------------------------------------------------------------------------
# arguments


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Decode (generation with a KV cache) tokens/s: headscope vs llama.cpp.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--model", default=DEFAULT_MODEL, help="GGUF model file")
    p.add_argument("--headscope", default="build/headscope", help="path to the headscope CLI")
    p.add_argument("--tokens", type=int, default=128, help="tokens to generate (headscope may stop earlier at EOS)")
    p.add_argument("--prompt", default=DEFAULT_PROMPT, help="prompt text")
    p.add_argument("--repeat", type=int, default=3, help="timed runs per engine (the best is reported)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for every engine")
    p.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="ENGINE",
        help="engine(s) to leave out: headscope, llama.cpp (repeatable or comma-separated)",
    )
    p.add_argument(
        "--wait-idle",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="before each run, wait up to this long for other processes to leave the CPU (0: never)",
    )
    p.add_argument(
        "--llama-extra-bufts",
        choices=("auto", "on", "off"),
        default="auto",
        help="llama.cpp's extra weight buffer types (repacking; AMX where built and present): on (llama.cpp's "
        "default), off, or auto = on; if a probe run crashes, on with a one-token prompt batch, then off",
    )
    p.add_argument(
        "--llama-prompt-batch",
        type=int,
        default=0,
        metavar="N",
        help="llama.cpp evaluates the prompt N tokens per call (n_batch; 0: the whole prompt at once)",
    )
    p.add_argument("--headscope-timeout", type=float, default=1800.0, help="seconds before one headscope run is killed")
    p.add_argument("--json", metavar="PATH", help="also write raw results as JSON to PATH ('-' = stdout)")
    args = p.parse_args(argv)

    try:
        args.skip = engine_set(args.skip, ENGINE_ALIASES)
    except KeyError as e:
        p.error(f"--skip: unknown engine {e.args[0]!r} (choose from {', '.join(ENGINES)})")
    if args.tokens < 2:
        p.error("--tokens must be >= 2 (the first token comes from the prompt pass, decode starts with the second)")
    if args.repeat < 1:
        p.error("--repeat must be >= 1")
    if args.llama_prompt_batch < 0:
        p.error("--llama-prompt-batch must be >= 0")
    if args.threads < 1:
        p.error("--threads must be >= 1")
    if not args.prompt.strip():
        p.error("--prompt must not be empty")
    args.model = str(Path(args.model).expanduser())
    return args


# --------------------------------------------------------------------------
# machine and versions


def versions() -> dict[str, str | None]:
    return {
        "python": platform.python_version(),
        "numpy": module_version("numpy"),
        "llama-cpp-python": module_version("llama_cpp_python"),
    }


def wait_idle(max_wait_s: float) -> float | None:
    """Waits (up to max_wait_s) until other processes use < 5% of the CPU over one second."""
    return wait_for_quiet(max_wait_s, log)


def run_entry(prompt_n: int, generated: list[int], prefill_s: float, decode_s: float, other: float | None) -> dict:
    g = len(generated)
    return {
        "prompt_tokens": prompt_n,
        "generated_tokens": g,
        "prefill_seconds": prefill_s,
        "decode_seconds": decode_s,
        "decode_tokens_per_s": (g - 1) / decode_s if decode_s > 0 and g > 1 else None,
        "other_cpu_share": other,
    }


def best_of(runs: list[dict]) -> dict:
    return max(runs, key=lambda r: r["decode_tokens_per_s"] or 0.0)


# --------------------------------------------------------------------------
# headscope


def headscope_path(exe: str) -> str:
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
    return path


def headscope_once(args: argparse.Namespace, cmd: list[str]) -> tuple[dict, float | None]:
    """Runs one `headscope generate ... --json`; returns (its checked document, other processes' CPU share)."""
    mon = CpuMonitor()
    mon.start()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.headscope_timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"headscope did not finish within {args.headscope_timeout:.0f} s")
    except OSError as e:
        raise BenchError(f"could not run headscope: {e}")
    other = mon.stop()
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip()[-1500:]
        raise BenchError(f"headscope exited with status {proc.returncode}: {tail}")
    doc = loads_json_lenient(proc.stdout)  # tolerates stray lines around the document
    if not isinstance(doc, dict):
        raise BenchError(f"headscope did not print a JSON object; stdout was: {proc.stdout.strip()[:400] or '(empty)'}")
    try:
        doc["prompt_tokens"] = [int(x) for x in doc["prompt_tokens"]]
        doc["generated"] = [int(x) for x in doc["generated"]]
        doc["prefill_seconds"] = float(doc["prefill_seconds"])
        doc["decode_seconds"] = float(doc["decode_seconds"])
    except (KeyError, TypeError, ValueError) as e:
        raise BenchError(f"headscope JSON lacks or mangles a field ({e!r}): {json.dumps(doc)[:400]}")
    return doc, other


def run_headscope(args: argparse.Namespace) -> dict:
    exe = headscope_path(args.headscope)
    base = [exe, "generate", args.model]
    tail = ["-n", str(args.tokens), "--threads", str(args.threads), "--json"]

    # warm-up, untimed: also tokenises the prompt (the timed runs and llama.cpp get these ids)
    cmd = base + ["--prompt", args.prompt] + tail
    log("headscope (warm-up, tokenises the prompt): " + " ".join(cmd))
    wait_idle(args.wait_idle)
    warm, _ = headscope_once(args, cmd)
    prompt_ids = warm["prompt_tokens"]
    if not prompt_ids:
        raise BenchError("headscope returned an empty prompt_tokens list")
    if len(warm["generated"]) < 2:
        raise BenchError(
            f"headscope generated only {len(warm['generated'])} token(s) before EOS: no decode step to time; "
            f"choose another --prompt"
        )

    cmd = base + ["--ids", ",".join(map(str, prompt_ids)), "--no-bos"] + tail
    log("headscope: " + " ".join(cmd))
    runs, generated_sets, warning = [], [], None
    for i in range(args.repeat):
        wait_idle(args.wait_idle)
        doc, other = headscope_once(args, cmd)
        if doc["prompt_tokens"] != prompt_ids:
            raise BenchError(f"headscope ran prompt {doc['prompt_tokens']} for --ids {prompt_ids}")
        if len(doc["generated"]) < 2 or doc["decode_seconds"] <= 0:
            raise BenchError(f"headscope run {i + 1}: nothing to time (generated {doc['generated']})")
        entry = run_entry(len(prompt_ids), doc["generated"], doc["prefill_seconds"], doc["decode_seconds"], other)
        reported = doc.get("decode_tokens_per_s")
        if reported is not None and abs(float(reported) - entry["decode_tokens_per_s"]) > 0.01 * float(reported):
            entry["note"] = f"decode_tokens_per_s {float(reported):.4g} != (generated - 1) / decode_seconds"
        runs.append(entry)
        generated_sets.append(doc["generated"])
        log(
            f"headscope run {i + 1}/{args.repeat}: prefill {entry['prefill_seconds']:.4f} s, "
            f"{entry['generated_tokens']} tokens, decode {entry['decode_tokens_per_s']:.2f} tok/s"
            + (f"  (other processes {other:.0%} CPU)" if other is not None else "")
        )
        if doc.get("threads") is not None and int(doc["threads"]) != args.threads:
            warning = f"headscope reports threads={doc['threads']}, asked for {args.threads}"
            log(warning)
    meta = {
        "command": cmd,
        "warmup_command": base + ["--prompt", args.prompt] + tail,
        "threads": warm.get("threads"),
        "text": warm.get("text"),
        "deterministic": all(g == generated_sets[0] for g in generated_sets) and warm["generated"] == generated_sets[0],
    }
    if warning:
        meta["warning"] = warning
    if len(generated_sets[0]) < args.tokens:
        meta["stopped_early"] = f"stopped at EOS after {len(generated_sets[0])} of {args.tokens} tokens"
        log("headscope " + meta["stopped_early"])
    return {
        "meta": meta,
        "prompt_ids": prompt_ids,
        "generated": generated_sets[0],
        "runs": runs,
        "best": best_of(runs),
    }


# --------------------------------------------------------------------------
# llama.cpp


def make_llama(model: str, threads: int, n_ctx: int, n_batch: int, extra_bufts: bool):
    """Llama(model) with n_threads = n_threads_batch = threads and the model parameter use_extra_bufts.

    llama-cpp-python 0.3.36 takes no argument for use_extra_bufts (llama.cpp's weight repacking into extra
    buffer types: AMX, CPU_REPACK); it fills its model parameters from llama_model_default_params(), which is
    wrapped here for the duration of the call."""
    import llama_cpp.llama_cpp as ll
    from llama_cpp import Llama

    orig = ll.llama_model_default_params

    def params():
        p = orig()
        if hasattr(p, "use_extra_bufts"):
            p.use_extra_bufts = extra_bufts
        return p

    ll.llama_model_default_params = params
    try:
        llm = Llama(
            model_path=model,
            n_ctx=n_ctx,
            n_batch=n_batch,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )
    finally:
        ll.llama_model_default_params = orig
    got = getattr(llm.model_params, "use_extra_bufts", None)
    if got is None and not extra_bufts:
        raise BenchError("this llama-cpp-python has no use_extra_bufts model parameter (--llama-extra-bufts off)")
    if got is not None and bool(got) != extra_bufts:
        raise BenchError(f"llama.cpp model parameter use_extra_bufts is {bool(got)}, wanted {extra_bufts}")
    return llm


PROBE_FLAG = "--llama-probe"  # internal: `decode_speed.py --llama-probe JSON`, see probe_llama()


def probe_main(cfg_json: str) -> int:
    """Child process of probe_llama(): tokenises the prompt, evaluates the prompt ids as the timed runs will
    (n_batch tokens per call) and one decode step, prints {"own_ids": [...]}."""
    cfg = json.loads(cfg_json)
    llm = make_llama(cfg["model"], cfg["threads"], cfg["n_ctx"], cfg["n_batch"], cfg["extra_bufts"])
    own = llm.tokenize(cfg["prompt"].encode("utf-8"), add_bos=True, special=False)
    ids = cfg["ids"] or own
    llm.eval(ids)
    llm.eval([ids[-1]])
    print(json.dumps({"own_ids": own}), flush=True)
    return 0


def probe_llama(cfg: dict) -> tuple[list[int] | None, str | None]:
    """Runs the configuration once in a child process, where a crash of llama.cpp (a segfault takes the whole
    interpreter down) cannot lose the other engine's results. Returns (llama.cpp's own prompt ids, None) or
    (None, why it failed)."""
    cmd = [sys.executable, os.path.abspath(__file__), PROBE_FLAG, json.dumps(cfg)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        return None, "the probe did not finish within 600 s"
    if proc.returncode == 0:
        doc = loads_json_lenient(proc.stdout)
        if isinstance(doc, dict) and isinstance(doc.get("own_ids"), list):
            return [int(x) for x in doc["own_ids"]], None
        return None, f"the probe printed no result: {proc.stdout.strip()[-400:]}"
    if proc.returncode < 0:
        return None, f"llama.cpp crashed (signal {-proc.returncode}) on the prompt pass or first decode step"
    return None, f"the probe exited with status {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-800:]}"


def run_llama_cpp(args: argparse.Namespace, prompt_ids: list[int] | None, n_gen: int) -> dict:
    try:
        import numpy as np
        import llama_cpp
    except ImportError as e:
        raise BenchError(f"llama-cpp-python not importable ({e}); pip install llama-cpp-python (see the docstring)")

    meta: dict = {}
    try:
        meta["system_info"] = llama_cpp.llama_print_system_info().decode(errors="replace").strip()
        log(f"llama.cpp system info: {meta['system_info']}")
    except Exception:
        pass

    # Without headscope's ids the prompt length is not known before the model is loaded: a text never has
    # more tokens than UTF-8 bytes, plus BOS/EOS.
    prompt_bound = len(prompt_ids) if prompt_ids is not None else len(args.prompt.encode("utf-8")) + 2
    n_ctx = prompt_bound + n_gen
    n_batch = args.llama_prompt_batch or prompt_bound
    if args.llama_extra_bufts != "auto":
        candidates = [(args.llama_extra_bufts, n_batch)]
    else:
        # AMX kernels only run for batches of > 1 token: a one-token-per-call prompt keeps the AMX weights (the
        # faster decode) where whole-prompt batches crash; switching the extra buffer types off is the last resort
        candidates = [("on", n_batch)]
        if n_batch > 1 and args.llama_prompt_batch == 0:
            candidates.append(("on", 1))
        candidates.append(("off", n_batch))
    own_ids, failures = None, []
    for mode, nb in candidates:
        cfg = {
            "model": args.model,
            "threads": args.threads,
            "n_ctx": n_ctx,
            "n_batch": nb,
            "extra_bufts": mode == "on",
            "prompt": args.prompt,
            "ids": prompt_ids,
        }
        own_ids, why = probe_llama(cfg)
        if own_ids is not None:
            meta["extra_bufts"], n_batch = mode, nb
            break
        failures.append(f"extra buffer types {mode}, n_batch {nb}: {why}")
        log(f"llama.cpp probe with extra buffer types {mode}, n_batch {nb}: {why}")
    if own_ids is None:
        hint = ""
        if "AMX_INT8 = 1" in meta.get("system_info", ""):
            hint = (
                " (llama.cpp's AMX kernels crash on some machines, ggml-org/llama.cpp#20824; "
                "try --llama-extra-bufts auto, or off, or --llama-prompt-batch 1)"
            )
        raise BenchError("; ".join(failures) + hint)
    if failures:
        meta["fallback"] = failures
        meta["fallback_to"] = f"extra buffer types {meta['extra_bufts']}, n_batch {n_batch}"

    llm = make_llama(args.model, args.threads, n_ctx, n_batch, meta["extra_bufts"] == "on")
    meta["own_prompt_ids"] = own_ids
    if prompt_ids is None:
        prompt_ids = own_ids
    elif own_ids != prompt_ids:
        log(f"llama.cpp tokenises the prompt as {own_ids}, headscope as {prompt_ids}; using headscope's ids")
    n_prompt = len(prompt_ids)
    if n_prompt == 0:
        raise BenchError("empty prompt after tokenisation")
    ctx = llm._ctx.ctx
    n_vocab = llm.n_vocab()
    meta.update(
        n_ctx=llama_cpp.llama_n_ctx(ctx),
        n_batch=llama_cpp.llama_n_batch(ctx),
        n_ubatch=llama_cpp.llama_n_ubatch(ctx),
        n_vocab=n_vocab,
    )
    fa = getattr(llm.context_params, "flash_attn_type", getattr(llm.context_params, "flash_attn", None))
    meta["flash_attn"] = int(fa) if fa is not None else None

    def argmax_last() -> int:
        ptr = llama_cpp.llama_get_logits_ith(ctx, -1)
        return int(np.ctypeslib.as_array(ptr, shape=(n_vocab,)).argmax())

    def one_run() -> tuple[list[int], float, float]:
        llm.reset()  # the next eval drops every cached cell past n_tokens = 0
        t0 = time.perf_counter()
        llm.eval(prompt_ids)
        tok = argmax_last()
        t1 = time.perf_counter()
        out = [tok]
        for _ in range(n_gen - 1):
            llm.eval([tok])
            tok = argmax_last()
            out.append(tok)
        t2 = time.perf_counter()
        return out, t1 - t0, t2 - t1

    wait_idle(args.wait_idle)
    warm_gen, _, _ = one_run()
    runs, generated_sets = [], []
    for i in range(args.repeat):
        wait_idle(args.wait_idle)
        mon = CpuMonitor()
        mon.start()
        gen, prefill_s, decode_s = one_run()
        other = mon.stop()
        entry = run_entry(n_prompt, gen, prefill_s, decode_s, other)
        runs.append(entry)
        generated_sets.append(gen)
        log(
            f"llama.cpp run {i + 1}/{args.repeat}: prefill {prefill_s:.4f} s, {len(gen)} tokens, "
            f"decode {entry['decode_tokens_per_s']:.2f} tok/s"
            + (f"  (other processes {other:.0%} CPU)" if other is not None else "")
        )
    meta["deterministic"] = all(g == generated_sets[0] for g in generated_sets) and warm_gen == generated_sets[0]
    eos = llm.token_eos()
    meta["eos_token"] = eos
    if eos in generated_sets[0]:
        meta["eos_at"] = generated_sets[0].index(eos)
    try:
        meta["text"] = args.prompt + llm.detokenize(generated_sets[0]).decode("utf-8", errors="replace")
    except Exception:
        pass
    if hasattr(llm, "close"):
        llm.close()
    del llm
    gc.collect()
    return {
        "meta": meta,
        "prompt_ids": list(prompt_ids),
        "generated": generated_sets[0],
        "runs": runs,
        "best": best_of(runs),
    }


# --------------------------------------------------------------------------
# report


def leading_matches(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def markdown_table(results: dict[str, dict | None]) -> str:
    lines = [
        "| engine | prompt tokens | generated tokens | prefill s | decode tok/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for engine in ENGINES:
        if engine not in results:
            continue
        r = results[engine]
        if r is None:
            lines.append(f"| {engine} | n/a | n/a | n/a | n/a |")
            continue
        b = r["best"]
        lines.append(
            f"| {engine} | {b['prompt_tokens']} | {b['generated_tokens']} | {b['prefill_seconds']:.4f} | "
            f"{b['decode_tokens_per_s']:,.2f} |"
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

    results: dict[str, dict | None] = {}
    errors: dict[str, str] = {}
    busy = wait_idle(args.wait_idle) if args.wait_idle > 0 else idle_check()
    if busy is not None and busy > IDLE_THRESHOLD:
        log(f"warning: other processes use {busy:.0%} of the CPU right now; the numbers will be low and noisy")
    started = time.time()

    prompt_ids: list[int] | None = None
    n_gen = args.tokens
    for engine in engines:
        log(f"--- {engine} (threads={args.threads}, tokens={n_gen}, repeat={args.repeat})")
        try:
            if engine == "headscope":
                results[engine] = run_headscope(args)
                prompt_ids = results[engine]["prompt_ids"]
                n_gen = len(results[engine]["generated"])  # llama.cpp generates as many as headscope did
            else:
                results[engine] = run_llama_cpp(args, prompt_ids, n_gen)
        except BenchError as e:
            results[engine] = None
            errors[engine] = str(e)
            log(f"{engine}: FAILED: {e}")
        except Exception as e:  # keep going: the other engine's numbers are still useful
            results[engine] = None
            errors[engine] = f"{type(e).__name__}: {e}"
            log(f"{engine}: FAILED with an unexpected error: {type(e).__name__}: {e}")
        gc.collect()

    vers = versions()
    machine = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cpu_flags": cpu_flags(),
        "threads": args.threads,
        "platform": platform.platform(),
    }

    hs, lc = results.get("headscope"), results.get("llama.cpp")
    print(f"## Decode speed, {Path(args.model).name}\n")
    print(
        f"Greedy generation with a KV cache, {args.threads} threads, best of {args.repeat} runs after one warm-up; "
        f"decode tok/s = (generated - 1) / time of the steps after the prompt pass.\n"
    )
    print(markdown_table(results))
    print()
    ratio = None
    if hs and lc:
        ratio = hs["best"]["decode_tokens_per_s"] / lc["best"]["decode_tokens_per_s"]
        print(f"**headscope / llama.cpp decode tok/s: {ratio:.2f}x**\n")
        n = min(len(hs["generated"]), len(lc["generated"]))
        k = leading_matches(hs["generated"], lc["generated"])
        same = "same greedy tokens" if k == n else f"greedy tokens part at generated token {k + 1}"
        print(f"- Greedy agreement: {k} of {n} leading generated tokens match ({same})")
    print(f"- Prompt: {args.prompt!r}")
    print(f"- CPU: {machine['cpu']} ({machine['cores']} logical cores; threads used: {args.threads})")
    if machine["cpu_flags"]:
        print(f"- CPU features: {' '.join(machine['cpu_flags'])}")
    print("- Versions: " + ", ".join(f"{k} {v}" for k, v in vers.items() if v is not None))
    if lc:
        m = lc["meta"]
        if m.get("system_info"):
            print(f"- llama.cpp system info: {m['system_info']}")
        print(
            f"- llama.cpp context: n_ctx {m['n_ctx']}, n_batch {m['n_batch']}, n_ubatch {m['n_ubatch']}, flash_attn "
            f"{'on' if m['flash_attn'] == 1 else 'off' if m['flash_attn'] == 0 else m['flash_attn']}, "
            f"extra weight buffer types (repacking/AMX) {m['extra_bufts']}"
        )
        if m.get("fallback"):
            print(f"- llama.cpp: probe run(s) failed: {'; '.join(m['fallback'])}; measured with {m['fallback_to']}")
        if m["n_batch"] < lc["best"]["prompt_tokens"]:
            print(
                f"- llama.cpp's prefill took {-(-lc['best']['prompt_tokens'] // m['n_batch'])} llama_decode calls "
                f"of <= {m['n_batch']} tokens (decode steps are unaffected)"
            )
        if hs and m["own_prompt_ids"] != hs["prompt_ids"]:
            print(f"- llama.cpp's own tokenisation differs ({len(m['own_prompt_ids'])} ids); both ran headscope's ids")
        if "eos_at" in m:
            print(f"- llama.cpp generated its EOS token at position {m['eos_at'] + 1} (generation continued past it)")
        if not m["deterministic"]:
            print("- llama.cpp: the generated tokens differed between runs")
    if hs:
        for key in ("stopped_early", "warning"):
            if hs["meta"].get(key):
                print(f"- headscope: {hs['meta'][key]}")
        if not hs["meta"]["deterministic"]:
            print("- headscope: the generated tokens differed between runs")
    print_load_and_engines(
        {e: r["best"]["other_cpu_share"] for e, r in results.items() if r}, "during the best runs", ENGINES, args.skip, errors
    )

    if args.json:
        doc = {
            "model": args.model,
            "prompt": args.prompt,
            "tokens_requested": args.tokens,
            "repeat": args.repeat,
            "threads": args.threads,
            "machine": machine,
            "versions": vers,
            "started_unix": started,
            "wall_seconds": time.time() - started,
            "skipped": sorted(args.skip),
            "errors": errors,
            "ratio_headscope_over_llama_cpp": ratio,
            "engines": results,
        }
        write_json_text(json.dumps(doc, indent=2, default=str), args.json, log)

    return 1 if errors else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == PROBE_FLAG:
        sys.exit(probe_main(sys.argv[2]))
    sys.exit(main())
