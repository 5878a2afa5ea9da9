"""Progress of long loops: the interface the library's loops report to, and the run-time estimate.

A loop wraps its iterations in a :class:`Track` and notes its current objective::

    for k in track(range(n), "map (patchnr)", hint="-M iterations=N"):
        ...
        track.note(data=data_term, prior=prior_term)

The base class shows nothing; the command line passes a bar or a line printer
(``invsolve.cli._progress``).  Every track, shown or not, estimates the loop's
time from its first steps and warns once when it exceeds :data:`LONG_RUN_SECONDS`,
naming the setting that shortens it (``hint``).  Noted values may be tensors: they
are read (a device sync) only when shown.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Iterable, Iterator, TypeVar

__all__ = ["Track", "no_track", "LONG_RUN_SECONDS", "format_duration", "format_values"]

T = TypeVar("T")

#: A loop whose estimated time exceeds this (seconds) warns at its start.
LONG_RUN_SECONDS = 600.0
#: Steps after the first that time the estimate (the first step carries one-off costs).
ESTIMATE_AFTER = 3


def format_duration(seconds: float) -> str:
    """``H:MM:SS`` (``M:SS`` under an hour)."""
    s = max(0, int(round(seconds)))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _number(v: Any) -> float | None:
    try:
        return float(v.detach().sum()) if hasattr(v, "detach") else float(v)
    except (TypeError, ValueError):
        return None


def format_values(values: dict[str, Any]) -> str:
    """Noted values as ``key 1.234e+03`` pairs (tensors summed over the batch); non-numbers as given."""
    parts = []
    for k, v in dict(values).items():  # a copy: a display thread reads what the loop writes
        x = _number(v)
        parts.append(f"{k} {x:.4g}" if x is not None else f"{k} {v}")
    return "  ".join(parts)


class Track:
    """A progress wrapper that shows nothing: the base of the displays, and the default of every loop.

    Calling it on an iterable yields the items, timing the steps for :meth:`estimate_check`; :meth:`note`
    records the loop's current objective values for a display.  One track serves loops run one after the
    other (batches, per-image loops), not nested ones.
    """

    def __call__(self, it: Iterable[T], description: str = "", total: int | None = None,
                 hint: str | None = None) -> Iterator[T]:
        """Yield the items of ``it`` (``total`` items: default ``len(it)``); ``hint`` names the setting that
        shortens the loop, for the long-run warning."""
        if total is None and hasattr(it, "__len__"):
            total = len(it)
        self.start(description, total, hint=hint)
        ended = False
        try:
            for i, x in enumerate(it):
                try:
                    yield x
                except GeneratorExit:  # the loop left early by itself (a break: e.g. CG converged)
                    ended = True
                    raise
                self.update(i + 1)
            ended = True
        finally:
            self.finish(stopped=not ended)

    # the manual interface, for loops that report through callbacks (EM, sampler training)
    def start(self, description: str, total: int | None, completed: int = 0, hint: str | None = None) -> None:
        """Begin a loop of ``total`` steps (None: unknown), ``completed`` of them already done (a resume)."""
        self.description, self.total, self.hint = description, total, hint
        self.completed, self.first = completed, completed
        self.values: dict[str, Any] = {}
        self.t0 = time.monotonic()
        self._t_first: float | None = None
        self._checked = False

    def update(self, completed: int, total: int | None = None, **values: Any) -> None:
        """``completed`` steps done (of ``total`` when it changed), with the current objective ``values``."""
        if total is not None:
            self.total = total
        self.completed = completed
        if values:
            self.values.update(values)
        if not self._checked:
            self.estimate_check()

    def set_outer(self, text: str | None) -> None:
        """The state of the work around the loops (e.g. ``"3/40 slices done"``; None: over), for displays."""

    def note(self, **values: Any) -> None:
        """The loop's current objective values (e.g. ``data=…, prior=…``), shown with the step."""
        self.__dict__.setdefault("values", {}).update(values)

    def finish(self, stopped: bool = False) -> None:
        """End the loop (``stopped``: by an exception or interrupt, or a ``break``, before its end)."""

    def estimate_check(self) -> None:
        """Warn once per loop when the time at the speed of its first steps exceeds :data:`LONG_RUN_SECONDS`."""
        done = self.completed - self.first
        if done == 1:
            self._t_first = time.monotonic()
        if self.total is None or self._t_first is None or done < 1 + ESTIMATE_AFTER:
            return
        self._checked = True
        warned = self.__dict__.setdefault("_warned", set())
        if self.description in warned:  # batches of one loop: once
            return
        rate = (time.monotonic() - self._t_first) / (done - 1)
        left = rate * (self.total - self.completed)
        total = (self._t_first - self.t0) + rate * (self.total - self.first - 1)
        if total > LONG_RUN_SECONDS:
            warned.add(self.description)
            fix = f"; {self.hint} shortens it" if self.hint else ""
            warnings.warn(f"{self.description or 'this loop'} will take about {format_duration(total)} at this "
                          f"speed ({self.total - self.first} steps, {rate:.3g} s each; {format_duration(left)} "
                          f"left){fix}", RuntimeWarning, stacklevel=4)


#: The default track of every loop: no display, the long-run warning only.
no_track = Track()
