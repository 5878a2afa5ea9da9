"""Checks on the files figures and reports are written to, made before any drawing."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DataError, OutputExistsError

__all__ = ["check_output_file"]


def check_output_file(path: str | Path, overwrite: bool, suffixes: tuple[str, ...], what: str) -> Path:
    """``path`` as a Path, or an error naming the fix: a folder, another file ending than ``suffixes``, an
    existing file without ``overwrite``, a missing or read-only folder.

    Arguments:
        path: The output file.
        overwrite: Whether an existing file may be replaced.
        suffixes: Accepted endings, e.g. ``(".png", ".pdf", ".svg")``.
        what: What is written, for the messages (``figure``, ``report``).
    """
    p = Path(path)
    if str(path).endswith(("/", os.sep)) or p.is_dir():
        raise DataError(f"{what} output {path} is a folder; give a file name, e.g. {p / ('out' + suffixes[0])}")
    if p.suffix.lower() not in suffixes:
        raise DataError(f"{what} output {p} must end in {', '.join(suffixes)}; e.g. {p.with_suffix(suffixes[0])}")
    if p.exists() and not overwrite:
        raise OutputExistsError(f"{what} output {p} already exists; pass --overwrite to replace it")
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise DataError(f"{what} output folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DataError(f"cannot write into the folder {folder} (no permission); choose another output")
    return p
