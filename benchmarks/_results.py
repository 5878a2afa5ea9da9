"""The heading every benchmark script writes above its table in RESULTS.md.

One format for all scripts: a dated title, the command as typed (so the table can be reproduced), and the machine
(cores, CPU model and its widest matrix instructions, torch version, threads), the load average when the run
started and its wall time, since these machines are shared and a figure means little without them.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

__all__ = ["append_results", "cpu_features", "cpu_model", "heading", "load_average", "machine"]


@lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str, ...]:
    try:
        with open("/proc/cpuinfo") as f:
            return tuple(f.read().splitlines())
    except OSError:
        return ()


def cpu_features() -> str:
    """The CPU's widest matrix instructions (AMX, AVX-512 BF16, AVX-512, AVX2), from /proc/cpuinfo."""
    lines = _cpuinfo()
    if not lines:
        return "CPU flags unknown"
    flags = next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), [])
    for flag, label in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX-512 BF16"), ("avx512f", "AVX-512"),
                        ("avx2", "AVX2")):
        if flag in flags:
            return label
    return "no AVX2"


def cpu_model() -> str:
    """The CPU's model name ('AMD EPYC …'), else the architecture."""
    name = next((ln.split(":", 1)[1].strip() for ln in _cpuinfo() if ln.startswith("model name")), "")
    return name or platform.processor() or platform.machine()


def load_average() -> float:
    """The 1-minute load average (NaN where the OS has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def machine(threads: int | str | None = None) -> str:
    """'2 cores, AMD EPYC, x86_64 (AVX-512 BF16), torch 2.13.0+cpu, 1 thread(s)'.

    ``threads``: the run's torch threads (None: this process's), or words for runs whose rows differ.
    """
    import torch

    threads = torch.get_num_threads() if threads is None else threads
    return (f"{os.cpu_count()} cores, {cpu_model()}, {platform.machine()} ({cpu_features()}), "
            f"torch {torch.__version__}, " + (threads if isinstance(threads, str) else f"{threads} thread(s)"))


def heading(title: str, script: str, argv=None, *, threads: int | str | None = None, load0: float | None = None,
            t0: float | None = None, extra: str = "", command: str | None = None) -> str:
    """The markdown heading of one run: title with the UTC time, command, machine, start load, wall time.

    ``argv``: the script's arguments (None: ``sys.argv[1:]``); ``command`` replaces the whole command line
    (a wrapper script); ``extra`` ends the machine line.
    """
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cmd = command or f"python benchmarks/{script} " + " ".join(sys.argv[1:] if argv is None else argv)
    line = machine(threads)
    if load0 is not None:
        line += f", load average {load0:.2f} at start"
    if t0 is not None:
        line += f"; {time.perf_counter() - t0:.0f} s in all"
    line += extra
    return f"\n## {title} ({stamp})\n\nCommand: `{cmd.strip()}`  \nMachine: {line}\n\n"


def append_results(results: str | Path, title: str, script: str, argv, table: str, **kw) -> None:
    """Append ``table`` to ``results`` under :func:`heading` (keywords as there)."""
    with open(results, "a") as f:
        f.write(heading(title, script, argv, **kw) + table.rstrip("\n") + "\n")
