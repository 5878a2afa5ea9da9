"""Results on stdout when stdout goes away: a pipe whose reader quit, or a closed descriptor.

Unix tools stop quietly when the reader of their pipe quits (``invsolve ... --json | head -1``): the shell
sees exit status 141 (128 + SIGPIPE).  invsolve does the same without losing work: the first write that finds
the pipe broken sends the rest of stdout to the null device, the command finishes (its output files are
complete), and it exits with :data:`BROKEN_PIPE_EXIT` and nothing on stderr.  A stdout that is closed
(``>&-``) is an error the user should hear of: the command still finishes, then prints one ``Error:`` line and
exits 1.
"""

from __future__ import annotations

import os
import sys

__all__ = ["BROKEN_PIPE_EXIT", "write_stdout", "stdout_lost", "lose_stdout", "finish_stdout", "stdout_is_closed",
           "reset"]

#: Exit status after a broken pipe on stdout: what a shell reports for a tool killed by SIGPIPE.
BROKEN_PIPE_EXIT = 141

_state: dict[str, str | None] = {"lost": None}  # None, "broken" (a pipe without reader) or "closed"


def stdout_lost() -> str | None:
    """``"broken"``, ``"closed"`` or None (stdout works, as far as anything was written)."""
    return _state["lost"]


def stdout_is_closed() -> bool:
    """Whether there is no stdout at all (descriptor 1 was closed when Python started)."""
    return sys.stdout is None or getattr(sys.stdout, "closed", False)


def _to_devnull() -> None:
    """Point descriptor 1 at the null device, so that later writes (and the flush at exit) go nowhere."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):
        pass


def lose_stdout(kind: str) -> None:
    """Record that stdout is ``kind`` ("broken" or "closed") and stop writing to it."""
    if _state["lost"] is None:
        _state["lost"] = kind
    if kind == "broken":
        _to_devnull()


def reset() -> None:
    """Forget an earlier loss (each command run in one process starts afresh, e.g. under a test runner)."""
    _state["lost"] = None


def write_stdout(text: str) -> None:
    """Write ``text`` to stdout and flush; a broken pipe or a closed stdout is recorded, not raised."""
    if _state["lost"] is not None:
        return
    if stdout_is_closed():
        lose_stdout("closed")
        return
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        lose_stdout("broken")
    except (OSError, ValueError):  # EBADF: descriptor 1 closed under Python; ValueError: a closed file object
        lose_stdout("closed")


def finish_stdout() -> int | None:
    """The exit status a command that ran to its end takes after losing stdout (None: stdout was fine); a
    closed stdout prints its one ``Error:`` line here."""
    lost, _state["lost"] = _state["lost"], None
    if lost == "broken":
        return BROKEN_PIPE_EXIT
    if lost == "closed":
        print("Error: standard output is closed, so the results were not printed (any output files are "
              "complete); run the command with stdout open, e.g. redirected to a file", file=sys.stderr)
        return 1
    return None
