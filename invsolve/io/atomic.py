"""Atomic file output: write to a temporary file beside the target, then rename.

A full file system (or quota) is reported as one :class:`invsolve.errors.DiskFullError` line, and the
temporary file is removed.  Small files are built in memory and written with one plain ``write``
(:func:`atomic_bytes`), so a full disk surfaces as a clean ``OSError`` rather than inside a library
(HDF5 and torch's zip writer fail badly when the disk fills under them); :func:`check_space` refuses
work whose output cannot fit before it starts.  Stale temporary files of a killed run (``.NAME.*.tmp``,
their writer's process gone, or untouched for an hour) are removed by the next write of the same output.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_output", "atomic_bytes", "check_space", "is_disk_full", "disk_full_error",
           "remove_stale_temps", "IN_MEMORY_BYTES"]

#: Files up to this size are built in memory, then written at once.
IN_MEMORY_BYTES = 512 * 2**20
#: Room kept free beyond an output's estimated size (metadata, the file system's own reserve).
MARGIN_BYTES = 64 * 2**10
#: A temporary file of another host untouched for this long belongs to a run that ended (seconds).
STALE_SECONDS = 3600.0


def _folder(p: Path) -> Path:
    return p.parent if str(p.parent) else Path(".")


def _mb(n: float) -> str:
    if n < 2**20:
        return f"{max(1, round(n / 2**10))} kB"
    return f"{n / 2**20:.1f} MB" if n < 2**30 else f"{n / 2**30:.2f} GB"


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the file system is full or over quota (an ``OSError`` with ENOSPC/EDQUOT, or an
    HDF5 or torch message carrying errno 28)."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    return "No space left on device" in text or "errno = 28" in text or "Disk quota exceeded" in text


def disk_full_error(path: str | Path, needed: int | None = None):
    """The one-line :class:`invsolve.errors.DiskFullError` for ``path``, with the space needed and free."""
    from ..errors import DiskFullError

    p = Path(path)
    try:
        free = f", {_mb(shutil.disk_usage(_folder(p)).free)} free"
    except OSError:
        free = ""
    need = f" ({_mb(needed)} needed{free})" if needed else (f" ({free[2:]})" if free else "")
    return DiskFullError(f"no space left on device writing {p}{need}; free space in {_folder(p)} or write "
                         "to another file system; nothing was written")


def check_space(path: str | Path, needed: int) -> None:
    """Refuse (DiskFullError) before any work when ``needed`` bytes (and a margin) do not fit beside ``path``."""
    p = Path(path)
    try:
        free = shutil.disk_usage(_folder(p)).free
    except OSError:
        return  # the folder's own checks report it
    if needed + MARGIN_BYTES > free:
        raise disk_full_error(p, needed)


def _tag() -> str:
    """``HOST-PID`` of this process, in the names of its temporary files."""
    return f"{socket.gethostname().split('.')[0]}-{os.getpid()}"


def _gone(tag: str) -> bool:
    """Whether the writer ``HOST-PID`` of a temporary file is a process of this host that has ended."""
    host, _, pid = tag.rpartition("-")
    if host != socket.gethostname().split(".")[0] or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def remove_stale_temps(path: str | Path, suffix: str = ".tmp") -> int:
    """Remove the temporary files (``.NAME.HOST-PID.*SUFFIX``) that killed runs left for this output: those
    whose writer process on this host has ended, or untouched for :data:`STALE_SECONDS`.  Returns how many."""
    p = Path(path)
    now, n = time.time(), 0
    try:
        candidates = list(_folder(p).glob(f".{p.name}.*{suffix}"))
    except OSError:
        return 0
    for t in candidates:
        tag = t.name[len(p.name) + 2:].split(".")[0]
        try:
            if _gone(tag) or now - t.stat().st_mtime > STALE_SECONDS:
                t.unlink()
                n += 1
        except OSError:
            continue
    return n


@contextlib.contextmanager
def atomic_output(path: str | Path, suffix: str = ".tmp") -> Iterator[str]:
    """Yield a temporary path in the target's folder; on success rename it onto
    ``path`` (``os.replace``, atomic on POSIX), on any failure or Ctrl-C remove it.

    A crash therefore never leaves a half-written ``path`` or a stray temporary file; a full disk raises
    :class:`invsolve.errors.DiskFullError`.
    """
    p = Path(path)
    remove_stale_temps(p, suffix)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.{_tag()}.", suffix=suffix, dir=_folder(p))
    except OSError as exc:
        if is_disk_full(exc):
            raise disk_full_error(p) from None
        from ..errors import DataError

        raise DataError(f"cannot write {p} ({exc.strerror or exc}); check its folder and its permissions, or "
                        "write it elsewhere") from None
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions of a new file
        os.replace(tmp, p)
    except Exception as exc:
        if is_disk_full(exc):
            raise disk_full_error(p) from None
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_bytes(path: str | Path, data: bytes, suffix: str = ".tmp") -> Path:
    """Write ``data`` to ``path`` atomically (DiskFullError, with the size, when it does not fit)."""
    p = Path(path)
    try:
        with atomic_output(p, suffix) as tmp:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
    except Exception as exc:
        from ..errors import DiskFullError

        if isinstance(exc, DiskFullError) or is_disk_full(exc):
            raise disk_full_error(p, len(data)) from None
        raise
    return p


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
