"""SIGINT and SIGTERM alike for every command: an interrupt that says what it left.

While a command runs, both signals raise ``KeyboardInterrupt`` (SIGTERM would otherwise end the process
at once, before the temporary files of :mod:`invsolve.io.atomic` are removed).  The signal is recorded,
so an interrupt that Python swallowed (one raised inside a finalizer, reported as "Exception ignored")
still ends the command as interrupted, and those reports are kept off the terminal.  Batch runs install
their own graceful handlers on top (:func:`invsolve.api_batch.graceful_stop`).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from pathlib import Path
from typing import Any, Iterator

__all__ = ["interrupts", "interrupted_message", "exit_code"]

_state: dict[str, Any] = {"signal": None, "depth": 0}


#: Seconds after which a signal that arrived during an import is delivered again.
RETRY_SECONDS = 0.05


def _in_import(frame) -> bool:
    """Whether ``frame`` runs inside Python's import machinery (module code being executed)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _handler(signum, frame):
    _state["signal"] = signum
    if _in_import(frame):
        # an exception raised while an extension module initialises (torch's, from its C++ callbacks) aborts
        # the process; the signal is sent again shortly, once the import is done, and acts then
        import os
        import threading

        timer = threading.Timer(RETRY_SECONDS, os.kill, (os.getpid(), signum))
        timer.daemon = True  # never one the interpreter waits for at its end
        timer.start()
        return
    raise KeyboardInterrupt


def _unraisable(hook):
    def quiet(unraisable):  # a KeyboardInterrupt inside a finalizer: recorded above, not worth a traceback
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            hook(unraisable)

    return quiet


@contextlib.contextmanager
def interrupts() -> Iterator[dict[str, Any]]:
    """For the block: SIGINT and SIGTERM raise KeyboardInterrupt and are recorded in the yielded state
    (``signal``: the last one, None without; ``start``: when the block began)."""
    if _state["depth"] == 0:  # the outermost block (the command line's) starts the record
        _state.update(signal=None, start=time.time())
    _state["depth"] += 1
    old, hook = {}, sys.unraisablehook
    for s in (signal.SIGINT, signal.SIGTERM):
        try:
            old[s] = signal.signal(s, _handler)
        except ValueError:  # not the main thread (e.g. a test runner's worker): signals keep their effect
            pass
    sys.unraisablehook = _unraisable(hook)
    try:
        yield _state
    finally:
        _state["depth"] -= 1
        for s, h in old.items():
            signal.signal(s, h)
        sys.unraisablehook = hook


def exit_code() -> int:
    """128 + the signal (130 for Ctrl-C, 143 for SIGTERM)."""
    return 128 + int(_state.get("signal") or signal.SIGINT)


def interrupted_message(kwargs: dict[str, Any]) -> str:
    """``interrupted (SIGNAL); …`` with what the command left: its ``output`` when it was written during the
    run (outputs appear whole or not at all), else that no output was written."""
    name = signal.Signals(_state.get("signal") or signal.SIGINT).name
    out = kwargs.get("output")
    written = False
    if isinstance(out, (str, Path)) and str(out):
        try:
            written = Path(out).stat().st_mtime >= _state.get("start", time.time()) - 1
        except OSError:
            written = False
    left = f"{out} was written before it and is complete" if written else "no output was written"
    return f"interrupted ({name}); {left}"
