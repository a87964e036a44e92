"""Helpers shared by the benchmark scripts in bench/ (prompt_speed.py, attention_memory.py).

What is here: the machine description (CPU model from /proc/cpuinfo) and installed module versions; the share
of the CPU that OTHER processes use (from /proc/stat minus this process's own CPU time), a one-second idle
check and the wait-until-idle loop run before timing on a shared machine; the lenient reading and the
writing of a JSON document; and the --tokens and --skip argument parsing. Standard library only and cheap to import: attention_memory.py's parent process
must stay small (see "Peak memory" in its docstring).

The scripts import it as `benchlib`, with their own folder on sys.path, so they run from any working
directory (`python bench/<script>.py`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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
