"""Progress on stderr: a rich bar on a terminal, plain lines in a log, or nothing (``--progress``).

Lines go out when a loop has run at least :data:`LINE_SECONDS` and 5 % of its steps since the last line
(the rarer of the two), and at least every :data:`MAX_SECONDS` whatever the progress, so a batch log
shows a run is alive; a line is ``description: step K/N (P%), elapsed E, ~R left, objective``.  A
background thread writes them, so a step longer than :data:`MAX_SECONDS` still shows one.  Loops
shorter than :data:`LINE_SECONDS` print nothing.  ``INVSOLVE_PROGRESS_SECONDS`` sets
:data:`LINE_SECONDS` (0: a line at every 5 %).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from typing import Any

from ..progress import Track, format_duration, format_values

__all__ = ["make_progress", "callback_progress", "LineTrack", "BarTrack", "line_due", "MODES"]

MODES = ("auto", "bar", "lines", "none")
LINE_SECONDS = 10.0
LINE_FRACTION = 0.05
MAX_SECONDS = 30.0


def line_due(now: float, last_time: float, step: int, last_step: int, total: int | None,
             seconds: float = LINE_SECONDS, fraction: float = LINE_FRACTION, most: float = MAX_SECONDS) -> bool:
    """Whether a progress line is due: ``seconds`` and ``fraction`` of ``total`` since the last line
    (``last_time``, ``last_step``), or ``most`` seconds whatever the steps (a pure rule)."""
    waited = now - last_time
    if waited >= most:
        return True
    moved = (step - last_step) / total >= fraction if total else step > last_step
    return waited >= seconds and moved


class _Values:
    """The noted values, formatted only when a display draws them (rich formats fields in its thread)."""

    def __init__(self, track: Track):
        self.track = track

    def __format__(self, spec: str) -> str:
        return format_values(self.track.values)


class LineTrack(Track):
    """Plain progress lines on a stream (stderr), for logs and pipes.

    :meth:`set_outer` names the work around the loops (``"3/40 slices done"``): it prefixes the lines, and
    between loops a line with it goes out every :data:`MAX_SECONDS`.  A watcher thread writes the lines while
    a loop runs or an outer text is set, and ends when neither is.
    """

    def __init__(self, stream=None, seconds: float | None = None, poll: float = 0.5):
        self.stream = stream or sys.stderr
        env = os.environ.get("INVSOLVE_PROGRESS_SECONDS")
        self.seconds = seconds if seconds is not None else (float(env) if env else LINE_SECONDS)
        self.poll, self.most = poll, MAX_SECONDS
        self.outer: str | None = None
        self._lock = threading.Lock()
        self._active, self._thread = False, None
        self._t_begin = self._last_time = time.monotonic()

    def set_outer(self, text: str | None) -> None:
        """The outer work's state (None: the outer work is over)."""
        with self._lock:
            self.outer = text
            self._ensure_thread()

    def start(self, description, total, completed=0, hint=None) -> None:
        super().start(description, total, completed, hint)
        with self._lock:
            self._active, self._last_step, self._lines = True, completed, 0
            self._last_time = self.t0
            self._ensure_thread()

    def _ensure_thread(self) -> None:
        if self._thread is None and (self._active or self.outer):
            self._thread = threading.Thread(target=self._watch, daemon=True)
            self._thread.start()

    def _watch(self) -> None:
        while True:
            time.sleep(self.poll)
            with self._lock:
                if not (self._active or self.outer):
                    self._thread = None
                    return
                now = time.monotonic()
                if self._active and line_due(now, self._last_time, self.completed, self._last_step, self.total,
                                             self.seconds, most=self.most):
                    self._emit()
                elif not self._active and now - self._last_time >= self.most:
                    self._write(f"{self.outer}, elapsed {format_duration(now - self._t_begin)}")

    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()
        self._last_time = time.monotonic()

    def _emit(self, done: bool = False, stopped: bool = False) -> None:
        elapsed = time.monotonic() - self.t0
        k, n = self.completed, self.total
        if stopped:
            text = f"{self.description}: stopped at {k}/{n} after {format_duration(elapsed)}" if n else \
                f"{self.description}: stopped at step {k} after {format_duration(elapsed)}"
        elif done:
            text = f"{self.description}: done {k}/{n} in {format_duration(elapsed)}" if n else \
                f"{self.description}: done {k} steps in {format_duration(elapsed)}"
        elif n:
            ran = k - self.first
            left = f", ~{format_duration(elapsed / ran * (n - k))} left" if ran > 0 else ""
            text = f"{self.description}: step {k}/{n} ({100 * k / n:.0f}%), elapsed {format_duration(elapsed)}{left}"
        else:
            text = f"{self.description}: step {k}, elapsed {format_duration(elapsed)}"
        values = format_values(self.values)
        prefix = f"{self.outer} | " if self.outer else ""
        self._write(prefix + text + (f", {values}" if values else ""))
        self._last_step, self._lines = k, self._lines + 1

    def finish(self, stopped: bool = False) -> None:
        with self._lock:
            self._active = False
            if self._lines or time.monotonic() - self.t0 >= self.seconds:
                self._emit(done=True, stopped=stopped)


class BarTrack(Track):
    """A transient rich bar on stderr: description, bar, step/total, the objective, elapsed and left."""

    def __init__(self, console):
        self.console = console
        self._bar = None

    def start(self, description, total, completed=0, hint=None) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        super().start(description, total, completed, hint)
        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("{task.fields[values]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                             console=self.console, transient=True)
        self._task = self._bar.add_task(description, total=total, completed=completed, values=_Values(self))
        self._bar.start()

    def update(self, completed: int, total: int | None = None, **values: Any) -> None:
        super().update(completed, total, **values)
        if self._bar is not None:
            self._bar.update(self._task, completed=completed, total=self.total)

    def finish(self, stopped: bool = False) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def make_progress(mode: str = "auto", quiet: bool = False) -> Track:
    """The display of ``--progress``: ``auto`` is nothing with ``--quiet``, a bar when stderr is a terminal
    and plain lines otherwise; ``bar``, ``lines`` and ``none`` as named (``none`` keeps the long-run
    warning)."""
    from ._common import err_console

    if mode == "auto":
        mode = "none" if quiet else ("bar" if err_console().is_terminal else "lines")
    if mode == "bar":
        return BarTrack(err_console())
    if mode == "lines":
        return LineTrack()
    return Track()


@contextlib.contextmanager
def callback_progress(track: Track, description: str, hint: str | None = None):
    """For loops that report through a callback (EM, sampler training): yields ``update(step, total,
    **values)``.  The display starts at the first call (at that step, for a resumed run) and ends with the
    block, as stopped when the block raises."""
    started = False

    def update(step: int, total: int | None, **values: Any) -> None:
        nonlocal started
        if not started:
            track.start(description, total, completed=step - 1, hint=hint)
            started = True
        track.update(step, total, **values)

    try:
        yield update
    except BaseException:
        if started:
            track.finish(stopped=True)
        raise
    if started:
        track.finish()
