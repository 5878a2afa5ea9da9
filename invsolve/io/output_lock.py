"""One run per output: an advisory lock beside each batch output.

A batch run holds ``fcntl.flock`` on ``.NAME.lock`` in the output's folder for as long as it runs:
exclusively, or shared by the shards of one run (``--shard K/N`` with the same settings).  A second
run on the same output is refused with one line naming the holder (process, host, start) and the
fix.  The lock file records the holder as JSON; the last holder removes it.  ``flock`` locks are
released by the kernel when a process dies, so a killed run never blocks the next one; on network
file systems without ``flock`` the lock degrades to nothing (a warning says so).

The lock file is removed while it is held, and a run that has locked a file checks that the name
still points at it (else another run has just removed it and it locks the new one): the usual
lock-file protocol, written here because no library in the dependencies provides it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Sequence

__all__ = ["output_lock", "output_locks", "lock_path"]


def lock_path(output: str | Path) -> Path:
    """The lock file of ``output``: ``.NAME.lock`` beside it."""
    p = Path(output)
    return (p.parent if str(p.parent) else Path(".")) / f".{p.name}.lock"


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "another invsolve run"
    if not isinstance(info, dict) or "pid" not in info:
        return "another invsolve run"
    return f"another invsolve run (process {info.get('pid')} on {info.get('host')}, since {info.get('started')})"


def _acquire(output: Path, shared: bool, wait: bool = False) -> int:
    """The fd of the locked lock file of ``output`` (OutputBusyError when another run holds it, or with
    ``wait`` after waiting for it to end)."""
    from ..errors import OutputBusyError

    path = lock_path(output)
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    for _ in range(50):  # a lock file removed between open and lock: take the new one
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            from ..errors import DataError

            raise DataError(f"cannot write output {output} ({exc.strerror or exc}); check its folder and its "
                            "permissions, or choose another --output") from None
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                os.close(fd)
                raise OutputBusyError(f"output {output} is being written by {_holder(path)}; wait for it to end "
                                      "(--wait does), or choose another --output") from None
            import sys

            print(f"waiting for {_holder(path)} to finish writing {output} ...", file=sys.stderr, flush=True)
            fcntl.flock(fd, mode)
        except OSError:  # no flock on this file system
            import warnings

            os.close(fd)
            warnings.warn(f"cannot lock {path} (no flock on this file system); make sure no other run writes "
                          f"{output} at the same time", RuntimeWarning, stacklevel=3)
            return -1
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            if not shared:
                _record(fd)
            return fd
        os.close(fd)
        time.sleep(0.01)
    raise OutputBusyError(f"output {output}: its lock file {path} keeps changing; another run is starting and "
                          "stopping on it")


def _record(fd: int) -> None:
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)


def _release(output: Path, fd: int) -> None:
    if fd < 0:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the last holder (shards share it) removes the file
        try:
            lock_path(output).unlink()
        except FileNotFoundError:
            pass
    except BlockingIOError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def output_lock(output: str | Path, shared: bool = False, wait: bool = False) -> Iterator[None]:
    """Hold the lock of ``output`` for the block (``shared``: with the other shards of the run; ``wait``:
    for another run to end rather than refuse)."""
    p = Path(output)
    fd = _acquire(p, shared, wait)
    try:
        yield
    finally:
        _release(p, fd)


@contextlib.contextmanager
def output_locks(outputs: Sequence[str | Path], shared: bool = False, wait: bool = False) -> Iterator[None]:
    """Hold the locks of all ``outputs`` (in a fixed order, so waiting runs cannot deadlock) for the block."""
    with contextlib.ExitStack() as stack:
        for p in sorted({str(Path(o).resolve()) for o in outputs}):
            stack.enter_context(output_lock(p, shared, wait))
        yield
