"""Helpers shared by the benchmark scripts in bench/ (prompt_speed.py, decode_speed.py, probe_scale.py,
attention_memory.py, niah_item_speed.py).

What is here: the machine description (CPU model and SIMD flags from /proc/cpuinfo, total memory from
/proc/meminfo) and installed module versions; the share of the CPU that OTHER processes use (from /proc/stat minus
this process's own CPU time), a one-second idle check, the wait-until-idle loop run before timing on a shared
machine and the closing load/skipped/failed lines of a comparison; the lenient reading and the writing of a JSON
document; the --tokens and --skip argument parsing; BenchError and a "[script]" stderr logger. For the scripts that
run each engine in its own child process (attention_memory.py, niah_item_speed.py): run_child (one child under an
RLIMIT_AS cap and a timeout, reaped with os.wait4 for its own peak RSS, with other processes' CPU share meanwhile),
the ru_maxrss floor every child inherits (a /bin/true child), the children's environment, telling an allocation
failure (OOM), a timeout and an error apart, child_main (the frame of a measured child: its result file, its own
VmHWM/VmPeak, a caught allocation failure), reading a child's JSON result file, the NOISY flag, and their shared
options (--model, --skip, the memory caps, --timeout) and closing machine / versions / caps lines.
Standard library only and cheap to import: attention_memory.py's and niah_item_speed.py's parent processes must
stay small (see "Peak memory" in attention_memory.py's docstring).

The scripts import it as `benchlib`, with their own folder on sys.path, so they run from any working
directory (`python bench/<script>.py`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

# --------------------------------------------------------------------------------------------------------------
# machine and versions


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model name", "cpu model", "Processor"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


GIB = 1024.0**3
MIB = 1024.0**2


def mem_total_gib() -> float | None:
    """MemTotal from /proc/meminfo, GiB (None where it cannot be read)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024 / GIB
    except OSError:
        pass
    return None


def module_version(name: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return None


# --------------------------------------------------------------------------------------------------------------
# other load on the machine (a benchmark on a shared box is only as good as its quiet)


class CpuMonitor:
    """Share of all cores used by OTHER processes between start() and stop(): /proc/stat busy time minus this
    process's and its reaped children's CPU time (os.times()). stop() returns None where /proc/stat cannot be
    read."""

    def __init__(self) -> None:
        self.hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.ncpu = os.cpu_count() or 1

    @staticmethod
    def _busy_jiffies() -> int | None:
        try:
            with open("/proc/stat", encoding="ascii") as f:
                v = [int(x) for x in f.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        # user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
        return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]

    @staticmethod
    def _own_seconds() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def start(self) -> None:
        self.t0, self.b0, self.o0 = time.perf_counter(), self._busy_jiffies(), self._own_seconds()

    def stop(self) -> float | None:
        b1 = self._busy_jiffies()
        wall = time.perf_counter() - self.t0
        if b1 is None or self.b0 is None or wall <= 0:
            return None
        other = (b1 - self.b0) / self.hz - (self._own_seconds() - self.o0)
        return max(0.0, other / (wall * self.ncpu))


def idle_check(seconds: float = 1.0) -> float | None:
    """Share of all cores other processes use over the next `seconds` (None: not measurable)."""
    mon = CpuMonitor()
    mon.start()
    time.sleep(seconds)
    return mon.stop()


def wait_until_idle(
    max_wait_s: float,
    threshold: float,
    log: Callable[[str], None],
    gave_up: str,
    waiting: str | None = None,
) -> float | None:
    """Waits (up to max_wait_s) until other processes use < threshold of the cores over one second.

    Returns the last share measured, or None without measuring when max_wait_s <= 0 (and None where /proc/stat
    cannot be read). gave_up and waiting are str.format templates with the fields {busy} (the share) and
    {max_wait_s}: gave_up is logged when the deadline passes with the machine still busy (the share is then
    returned anyway); waiting, if given, is logged once, the first time the machine is found busy before the
    deadline."""
    if max_wait_s <= 0:
        return None
    deadline = time.monotonic() + max_wait_s
    announced = False
    while True:
        busy = idle_check(1.0)
        if busy is None or busy < threshold:
            return busy
        if time.monotonic() >= deadline:
            log(gave_up.format(busy=busy, max_wait_s=max_wait_s))
            return busy
        if waiting is not None and not announced:
            log(waiting.format(busy=busy, max_wait_s=max_wait_s))
            announced = True


# --------------------------------------------------------------------------------------------------------------
# JSON in and out


def loads_json_lenient(text: str):
    """json.loads(text); failing that, the span from the first '{' to the last '}' (tolerates stray lines, e.g.
    a log line on stdout, around one printed document). None if neither parses."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        start, end = text.find("{"), text.rfind("}")
        if start != -1 and end > start:
            try:
                return json.loads(text[start : end + 1])
            except json.JSONDecodeError:
                pass
    return None


def write_json_text(text: str, dest: str, log: Callable[[str], None]) -> None:
    """--json DEST: '-' prints text to stdout; otherwise writes it, plus a newline, to the file DEST and logs it."""
    if dest == "-":
        print(text)
    else:
        Path(dest).write_text(text + "\n", encoding="utf-8")
        log(f"raw results written to {dest}")


def parse_tokens(text: str) -> list[int]:
    """argparse type for --tokens: a comma-separated list of positive sequence lengths."""
    try:
        values = [int(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}")
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"need positive integers, got {text!r}")
    return values


def engine_set(items: list[str], aliases: dict[str, str]) -> set[str]:
    """--skip values ("a,b" per occurrence, any case) to canonical engine names; KeyError names an unknown one."""
    names = set()
    for item in items:
        for name in item.split(","):
            name = name.strip().lower()
            if name:
                names.add(aliases[name])
    return names


# --------------------------------------------------------------------------------------------------------------
# errors and logging shared by the scripts


class BenchError(RuntimeError):
    """An engine could not be measured; the message says why."""


def logger(script: str) -> Callable[[str], None]:
    """A log function writing "[script] message" lines to stderr."""

    def log(msg: str) -> None:
        import sys

        print(f"[{script}] {msg}", file=sys.stderr, flush=True)

    return log


def cpu_flags() -> list[str]:
    """The SIMD features of this CPU that the engines' kernels use, from /proc/cpuinfo."""
    wanted = (
        "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile"
    )
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    have = set(line.partition(":")[2].split())
                    return [w for w in wanted if w in have]
    except OSError:
        pass
    return []


# The share of the CPU other processes may use while a benchmark times before its figures are flagged as noisy.
IDLE_THRESHOLD = 0.05


def print_load_and_engines(loads: dict[str, float | None], when: str, engines, skip, errors: dict[str, str]) -> None:
    """The closing lines of a comparison: how busy the machine was `when` timing ran (per measurement name; None:
    unknown), flagged above IDLE_THRESHOLD, then each engine that was skipped or failed."""
    known = [v for v in loads.values() if v is not None]
    noisy = [f"{k} ({v:.0%})" for k, v in loads.items() if v is not None and v > IDLE_THRESHOLD]
    if known:
        print(f"- CPU used by other processes {when}: at most {max(known):.0%} of all cores")
    if noisy:
        print(f"- NOISY, rerun: other processes used > {IDLE_THRESHOLD:.0%} of the CPU {when}: " + ", ".join(noisy))
    for engine in engines:
        if engine in skip:
            print(f"- {engine}: skipped")
        elif engine in errors:
            print(f"- {engine}: FAILED: {errors[engine]}")


def wait_for_quiet(max_wait_s: float, log: Callable[[str], None]) -> float | None:
    """wait_until_idle with IDLE_THRESHOLD and the comparison scripts' messages."""
    return wait_until_idle(
        max_wait_s,
        IDLE_THRESHOLD,
        log,
        gave_up="warning: still {busy:.0%} CPU used by other processes after waiting {max_wait_s:.0f} s; "
        "measuring anyway",
        waiting="other processes use {busy:.0%} of the CPU; waiting up to {max_wait_s:.0f} s for a quiet machine",
    )


# --------------------------------------------------------------------------------------------------------------
# one engine in its own child process, its own rusage (attention_memory.py, niah_item_speed.py)


def run_child(cmd: list[str], cap_bytes: int | None, timeout_s: float, env: dict | None = None,
              cwd: str | None = None) -> dict:
    """Runs cmd in a fresh process (own session) under RLIMIT_AS = cap_bytes (None or 0: no cap), killing its
    process group after timeout_s; reaps it with os.wait4, whose rusage is that child's alone.

    Returns rc / signal, peak RSS in bytes (ru_maxrss), wall seconds, CPU seconds, stdout, stderr, timed_out and
    the CPU share other processes used meanwhile; or {"error": ...} alone when cmd cannot be started."""

    def limit() -> None:  # between fork and exec: the child is capped from its first instruction
        resource.setrlimit(resource.RLIMIT_AS, (cap_bytes, cap_bytes))

    with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f:
        mon = CpuMonitor()
        mon.start()
        t0 = time.perf_counter()
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out_f, stderr=err_f, env=env, cwd=cwd,
                                    preexec_fn=limit if cap_bytes else None, start_new_session=True)
        except OSError as e:
            return {"error": f"cannot start {cmd[0]}: {e}"}
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass

        timer = threading.Timer(timeout_s, kill)
        timer.start()
        try:
            while True:
                try:
                    _, status, ru = os.wait4(proc.pid, 0)
                    break
                except InterruptedError:
                    continue
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        other = mon.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)  # keep Popen from reaping it again
        out_f.seek(0)
        err_f.seek(0)
        stdout = out_f.read().decode("utf-8", errors="replace")
        stderr = err_f.read().decode("utf-8", errors="replace")
    return {
        "rc": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "signal": signal.Signals(os.WTERMSIG(status)).name if os.WIFSIGNALED(status) else None,
        "peak_rss_bytes": ru.ru_maxrss * 1024,  # Linux: KiB
        "wall_s": wall,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "timed_out": timed_out.is_set(),
        "other_cpu_share": other,
        "stdout": stdout,
        "stderr": stderr,
    }


def process_fields(res: dict) -> dict:
    """run_child's result without stdout and stderr (what the scripts keep as an entry's "process")."""
    return {k: v for k, v in res.items() if k not in ("stdout", "stderr")}


def spawn_floor_bytes(cap_bytes: int | None = None) -> int:
    """ru_maxrss of a child that does nothing (/bin/true): the part of every child's figure inherited from this
    parent. cap_bytes as run_child's: with a cap the child is spawned the way a capped child is (fork, then the
    limit, then exec), without one the way an uncapped one is."""
    r = run_child(["/bin/true"], cap_bytes=cap_bytes, timeout_s=30)
    return int(r.get("peak_rss_bytes", 0))


def child_env(threads: int, hub_offline: bool = True) -> dict:
    """This environment for a measured child: OMP/MKL/OpenBLAS threads = threads, and (unless already set) no
    tokenizer parallelism, no progress bars (GGUF de-quantisation bars would bury an error in stderr) and, with
    hub_offline, HF_HUB_OFFLINE=1 (everything is local: the GGUF file)."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("TQDM_DISABLE", "1")
    env.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if hub_offline:
        env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def read_json_file(path: str) -> dict:
    """The JSON document a child wrote to path; {} where it wrote none or it cannot be read."""
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return {}


def proc_status_kib(field: str) -> int | None:
    """A kB field of this process's /proc/self/status (VmHWM, VmRSS, VmSize, VmPeak ...), KiB; None if absent."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


OOM_EXIT = 3  # a measured child's exit code for an allocation failure it caught (child_main)
_OOM_MARKERS = ("can't allocate memory", "cannot allocate memory", "memoryerror", "bad_alloc", "out of memory",
                "failed to allocate", "enomem")


def looks_like_oom(text: str) -> bool:
    """Whether text reads like an allocation failure (torch's allocator, MemoryError, std::bad_alloc, ENOMEM ...)."""
    low = text.lower()
    return any(m in low for m in _OOM_MARKERS)


def child_main(measure: Callable[[dict], None], out_path: str, **first) -> int:
    """The frame of a measured child process; returns its exit code. measure(result) does the job and fills the
    dict result, which starts with the fields `first` and "rlimit_as" (the RLIMIT_AS the child runs under); then
    the child's own peak memory, "vmhwm_kib" and "vmpeak_kib" (/proc/self/status), is added, result is written to
    out_path as JSON and the code is 0. When measure raises an allocation failure (MemoryError, or a RuntimeError
    such as torch's "DefaultCPUAllocator: can't allocate memory"), result gets status "oom", the error and VmHWM,
    is written all the same (best effort), "OOM: ..." goes to stderr and the code is OOM_EXIT. Any other exception
    propagates."""
    result = {**first, "rlimit_as": resource.getrlimit(resource.RLIMIT_AS)[0]}

    def dump() -> None:
        with open(out_path, "w", encoding="utf-8") as f:
            json.dump(result, f)

    try:
        measure(result)
        result.update({"vmhwm_kib": proc_status_kib("VmHWM"), "vmpeak_kib": proc_status_kib("VmPeak")})
        dump()
        return 0
    except (MemoryError, RuntimeError) as e:
        msg = f"{type(e).__name__}: {e}"
        if not (isinstance(e, MemoryError) or looks_like_oom(msg)):
            raise
        result.update({"status": "oom", "error": msg[:2000], "vmhwm_kib": proc_status_kib("VmHWM")})
        try:
            dump()
        except Exception:
            pass
        print(f"OOM: {msg[:400]}", file=sys.stderr)
        return OOM_EXIT


def last_lines(text: str, n: int = 3) -> str:
    """The last n non-empty lines of text joined with " | " (at most 600 characters), or "(no output)"."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(lines[-n:])[:600] if lines else "(no output)"


def classify_failure(res: dict, cap_bytes: int | None, child: dict | None = None) -> tuple[str, str]:
    """(status, reason) for a child that did not succeed (res: run_child's result): status is 'oom', 'timeout'
    or 'error'. SIGKILL, exit code OOM_EXIT or an allocation-failure message count as OOM; so does child["status"]
    == "oom" (the result file of a child that caught its own allocation failure), which wins."""
    if child and child.get("status") == "oom":
        cap = f" (cap {cap_bytes / GIB:g} GiB)" if cap_bytes else ""
        return "oom", f"allocation failed{cap}: {child.get('error', '')[:300]}"
    if "rc" not in res:
        return "error", res.get("error", "did not start")
    if res["timed_out"]:
        return "timeout", f"killed after the {res['wall_s']:.0f} s timeout"
    cap = f" (cap {cap_bytes / GIB:.0f} GiB)" if cap_bytes else ""
    if res["signal"] == "SIGKILL":
        return "oom", f"killed by SIGKILL{cap}"
    if res["rc"] == OOM_EXIT or looks_like_oom(res["stderr"]) or looks_like_oom(res["stdout"]):
        return "oom", f"allocation failed{cap}: {last_lines(res['stderr'], 1)}"
    if res["signal"]:
        return "error", f"killed by {res['signal']}: {last_lines(res['stderr'])}"
    return "error", f"exit code {res['rc']}: {last_lines(res['stderr'] or res['stdout'])}"


def is_noisy(entry: dict, threshold: float = IDLE_THRESHOLD) -> bool:
    """Whether other processes used more than threshold of the cores while entry's child ran (its
    entry["process"]["other_cpu_share"]; unknown: not noisy)."""
    share = (entry.get("process") or {}).get("other_cpu_share")
    return bool(share is not None and share > threshold)


# --------------------------------------------------------------------------------------------------------------
# options and closing lines of the child-process scripts (attention_memory.py, niah_item_speed.py)


ENGINE_ALIASES = {"hf": "hf", "transformers": "hf", "torch": "hf", "headscope": "headscope"}
DEFAULT_MODEL = "~/.cache/headscope/SmolLM2-135M-Instruct.Q4_1.gguf"


def model_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser whose --help shows the defaults, with its first option --model (the GGUF file, default
    DEFAULT_MODEL)."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default=DEFAULT_MODEL, help="GGUF model file")
    return p


def add_child_options(p: argparse.ArgumentParser) -> None:
    """The options the child-process scripts share: --skip, --mem-cap-gb (the HF child's RLIMIT_AS, default 18),
    --headscope-mem-cap-gb (default: --mem-cap-gb; 0 = none) and --timeout (seconds per child, default 3600)."""
    p.add_argument("--skip", action="append", default=[], metavar="ENGINE", help="hf or headscope (repeatable)")
    p.add_argument("--mem-cap-gb", type=float, default=18.0, help="RLIMIT_AS of the HF child, GiB")
    p.add_argument("--headscope-mem-cap-gb", type=float, default=None,
                   help="RLIMIT_AS of the headscope child, GiB (default: --mem-cap-gb; 0 = none)")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds before a child is killed")


def check_child_options(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """After parsing add_child_options: args.skip as a set of engine names ("hf", "headscope"; ENGINE_ALIASES),
    --mem-cap-gb > 0 (the HF child must not meet the OOM killer), --headscope-mem-cap-gb filled in; p.error()
    otherwise."""
    try:
        args.skip = engine_set(args.skip, ENGINE_ALIASES)
    except KeyError as e:
        p.error(f"--skip: unknown engine {e.args[0]!r} (hf, headscope)")
    if args.mem_cap_gb <= 0:
        p.error("--mem-cap-gb must be > 0 (the HF child must not meet the OOM killer)")
    if args.headscope_mem_cap_gb is None:
        args.headscope_mem_cap_gb = args.mem_cap_gb


def print_machine_and_caps(args: argparse.Namespace, versions: dict, floor_bytes: int) -> None:
    """The closing lines of a child-process script's report: the machine and args.threads, the versions known and
    args.headscope, the RLIMIT_AS caps (args.mem_cap_gb, args.headscope_mem_cap_gb) and the ru_maxrss floor."""
    print()
    mt = mem_total_gib()
    print(f"Machine: {cpu_model()}, {os.cpu_count()} cores, {format(mt, '.0f') if mt is not None else 'n/a'} GiB RAM, "
          f"{platform.system()} {platform.release()}; threads used: {args.threads} (both engines)")
    print("Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v) + f"; headscope: {args.headscope}")
    print(f"Memory cap (RLIMIT_AS): HF {args.mem_cap_gb:g} GiB, headscope "
          + (f"{args.headscope_mem_cap_gb:g} GiB" if args.headscope_mem_cap_gb > 0 else "none")
          + f"; ru_maxrss floor inherited from this parent: {floor_bytes / MIB:.0f} MiB")
