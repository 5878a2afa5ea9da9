"""How every benchmark script records a run: the day's log and its section of the summary.

One format for all scripts: a dated title, the command as typed (so the table can be reproduced), and the machine
(cores, CPU model and its widest matrix instructions, torch version, threads), the load average when the run
started and its wall time, since these machines are shared and a figure means little without them.

:func:`append_results` writes each run twice:

- appended to the day's log, ``log/<UTC date>.md`` beside the summary (created, with a header line, if missing);
  what the log held stays as it was;
- into the summary ``RESULTS.md``, replacing the run's section. A section is delimited by
  ``<!-- bench: KEY -->`` … ``<!-- /bench -->``; KEY is :func:`bench_key` of the title ("Patch priors: superres"
  -> ``patch-priors-superres``; parenthesised parts are dropped, so "Sliced MMD gradient (d = 784, …)" ->
  ``sliced-mmd-gradient``). A table with ``### `` sub-headings (``metrology.py``) gives one section per
  sub-heading, titled and keyed "title: sub-heading". A key not yet in the summary is appended as a new section.
  A reading written by hand inside a section, between ``<!-- reading -->`` and ``<!-- /reading -->``, is kept
  when the section is replaced; the rest of the section is the recorder's.

A run whose title ends in ", stopped" (interrupted; its table is incomplete) goes to the log only.

Paths: the summary is the path a script passes (its ``--results``; default ``benchmarks/RESULTS.md``) and the log
folder is ``log/`` beside it; ``root=`` or the environment variable ``INVSOLVE_RESULTS_DIR`` moves both
(``ROOT/RESULTS.md`` and ``ROOT/log/``). The text is built by pure functions (:func:`bench_key`,
:func:`summary_parts`, :func:`replace_section`, :func:`add_to_log`); each file is written whole to a temporary
file beside it and moved into place with ``os.replace``, under an exclusive lock on the log folder where the
system has ``flock``, so that two benchmarks finishing together do not lose each other's section.
"""

from __future__ import annotations

import os
import platform
import re
import sys
import tempfile
import time
import unicodedata
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

__all__ = ["ENV_DIR", "add_to_log", "append_results", "bench_key", "cpu_features", "cpu_model", "heading",
           "load_average", "machine", "replace_section", "result_paths", "summary_parts"]

#: The environment variable that moves the summary and the log folder (``$INVSOLVE_RESULTS_DIR/RESULTS.md``,
#: ``$INVSOLVE_RESULTS_DIR/log/``).
ENV_DIR = "INVSOLVE_RESULTS_DIR"

_END = "<!-- /bench -->"
#: One summary section: its start marker, then anything up to the first end marker that does not run into the
#: next section's start (a section whose end marker was deleted is then left alone rather than swallowed).
_SECTION = re.compile(r"^<!-- bench: (?P<key>\S+) -->[ \t]*\n(?P<body>(?:(?!<!-- bench: ).)*?)^<!-- /bench -->"
                      r"[ \t]*(?:\n|\Z)", re.S | re.M)
_READING = re.compile(r"<!-- reading -->.*?<!-- /reading -->", re.S)
_STOPPED = ", stopped"

SUMMARY_HEADER = """# Benchmark results

The current figure of each benchmark: its table, command, machine and date, and a short reading. A new run
replaces its section (between the `<!-- bench: … -->` markers; a reading between `<!-- reading -->` markers is
kept); every run, dated, is in [log/](log/).
"""

LOG_HEADER = """# Benchmark log, {day} (UTC)

Runs of this day, appended by the benchmark scripts as they finish; the current figures are in
[../RESULTS.md](../RESULTS.md).
"""


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


def _stamp(now: datetime | None) -> datetime:
    return (now or datetime.now(timezone.utc)).astimezone(timezone.utc)


def _run_lines(script: str, argv, *, threads: int | str | None, load0: float | None, t0: float | None,
               extra: str, command: str | None) -> str:
    """The 'Command: …' and 'Machine: …' lines of a run (then a blank line)."""
    cmd = command or f"python benchmarks/{script} " + " ".join(sys.argv[1:] if argv is None else argv)
    line = machine(threads)
    if load0 is not None:
        line += f", load average {load0:.2f} at start"
    if t0 is not None:
        line += f"; {time.perf_counter() - t0:.0f} s in all"
    line += extra
    return f"Command: `{cmd.strip()}`  \nMachine: {line}\n\n"


def heading(title: str, script: str, argv=None, *, threads: int | str | None = None, load0: float | None = None,
            t0: float | None = None, extra: str = "", command: str | None = None,
            now: datetime | None = None) -> str:
    """The markdown heading of one run: title with the UTC time, command, machine, start load, wall time.

    ``argv``: the script's arguments (None: ``sys.argv[1:]``); ``command`` replaces the whole command line
    (a wrapper script); ``extra`` ends the machine line; ``now``: the run's time (None: now).
    """
    return (f"\n## {title} ({_stamp(now):%Y-%m-%d %H:%M UTC})\n\n"
            + _run_lines(script, argv, threads=threads, load0=load0, t0=t0, extra=extra, command=command))


def bench_key(title: str) -> str:
    """The summary key of a title: ASCII, lower case, words joined by '-', parenthesised parts dropped.

    'Patch priors: superres' -> 'patch-priors-superres'; 'LoDoPaB-CT protocol (FBP through the CLI)' ->
    'lodopab-ct-protocol'.
    """
    text = re.sub(r"\([^()]*\)", " ", title)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "untitled"


def summary_parts(title: str, table: str) -> list[tuple[str, str]]:
    """(title, table) of each summary section a run gives: the run itself, or one per ``### `` sub-heading.

    A sub-heading's section is titled "title: sub-heading"; text above the first sub-heading goes with each.
    """
    chunks = re.split(r"^### +(.*?)[ \t]*$\n?", table, flags=re.M)
    if len(chunks) == 1:
        return [(title, table.strip("\n"))]
    lead = chunks[0].strip("\n")
    lead = lead + "\n\n" if lead.strip() else ""
    return [(f"{title}: {sub}", lead + body.strip("\n")) for sub, body in zip(chunks[1::2], chunks[2::2])]


def _section(key: str, block: str, reading: str | None) -> str:
    lines = [f"<!-- bench: {key} -->", block.strip("\n"), ""] + ([reading.strip("\n")] if reading else [])
    return "\n".join(lines + [_END]) + "\n"


def replace_section(summary: str, key: str, block: str) -> str:
    """``summary`` with the section of ``key`` holding ``block`` (and the section's reading blocks, if any).

    Only that section changes; a key not in the summary is appended as a new section (to
    :data:`SUMMARY_HEADER` when the summary is empty).
    """
    for m in _SECTION.finditer(summary):
        if m.group("key") == key:
            reading = "\n\n".join(_READING.findall(m.group("body")))
            return summary[:m.start()] + _section(key, block, reading) + summary[m.end():]
    base = summary if summary.strip() else SUMMARY_HEADER
    return base.rstrip("\n") + "\n\n" + _section(key, block, None)


def add_to_log(log: str, block: str, day: str) -> str:
    """``log`` (the day's log; empty: a new one, headed for ``day``) with ``block`` appended; nothing else changes."""
    head = log if log.strip() else LOG_HEADER.format(day=day)
    return (head if head.endswith("\n") else head + "\n") + "\n" + block.strip("\n") + "\n"


def result_paths(results: str | Path | None = None, root: str | Path | None = None) -> tuple[Path, Path]:
    """(summary, log folder): ``root`` or ``$INVSOLVE_RESULTS_DIR`` if set, else ``results`` and ``log/`` beside it."""
    root = root or os.environ.get(ENV_DIR) or None
    if root:
        return Path(root) / "RESULTS.md", Path(root) / "log"
    summary = Path(results) if results else Path(__file__).with_name("RESULTS.md")
    return summary, summary.parent / "log"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def _write(path: Path, text: str) -> None:
    """Write ``path`` whole: a temporary file beside it, then ``os.replace`` (keeping the old file's mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        try:
            mode = path.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


@contextmanager
def _locked(folder: Path):
    """An exclusive ``flock`` on ``folder`` (no lock where the system has none)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def append_results(results: str | Path | None, title: str, script: str, argv, table: str, *,
                   threads: int | str | None = None, load0: float | None = None, t0: float | None = None,
                   extra: str = "", command: str | None = None, root: str | Path | None = None,
                   now: datetime | None = None) -> tuple[Path, Path]:
    """Record one run: ``table`` under its heading appended to the day's log, and in its summary section(s).

    ``results``: the summary (None: ``benchmarks/RESULTS.md``); ``root``: see :func:`result_paths`; ``now``: the
    run's time (None: now); the other keywords as :func:`heading`. Returns the paths written: (summary, day's log).
    """
    now = _stamp(now)
    day, stamp = f"{now:%Y-%m-%d}", f"{now:%Y-%m-%d %H:%M UTC}"
    lines = _run_lines(script, argv, threads=threads, load0=load0, t0=t0, extra=extra, command=command)
    table = table.strip("\n")
    summary, log_dir = result_paths(results, root)
    log = log_dir / f"{day}.md"
    with _locked(log_dir):
        _write(log, add_to_log(_read(log), f"## {title} ({stamp})\n\n{lines}{table}\n", day))
        if not title.endswith(_STOPPED):
            text = _read(summary)
            for part, body in summary_parts(title, table):
                text = replace_section(text, bench_key(part), f"## {part} ({stamp})\n\n{lines}{body}\n")
            _write(summary, text)
    return summary, log


def add_run_args(ap) -> None:
    """The options every benchmark shares: ``--threads``, ``--device``, ``--results`` and ``--no-append``."""
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    ap.add_argument("--results", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    ap.add_argument("--no-append", action="store_true")


def report(args, title: str, script: str, argv, table: str, *, load0: float, t0: float) -> None:
    """Print ``table`` on stdout and, unless ``--no-append``, record it (:func:`append_results`)."""
    print(table)
    if not args.no_append:
        append_results(args.results, title, script, argv, table, load0=load0, t0=t0)
