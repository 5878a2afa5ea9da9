"""The ``--preview`` PNG of ``simulate``, ``reconstruct`` and ``sample-posterior``: the output file drawn
as ``invsolve show`` draws it (item 0), checked before any work and written atomically after the run."""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError

__all__ = ["write_preview", "check_preview"]


def check_preview(path: str | Path, overwrite: bool = False) -> Path:
    """Fail before any work when the preview cannot be written: not a .png name, an existing file without
    ``overwrite``, or a missing folder."""
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise DataError(f"--preview needs a .png file name, got {p}")
    if p.exists() and not overwrite:
        raise DataError(f"preview {p} already exists; pass --overwrite to replace it")
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise DataError(f"preview folder {folder} does not exist; create it first")
    return p


def write_preview(path: str | Path, result: str | Path, overwrite: bool = False) -> Path:
    """Draw the invsolve file ``result`` (its first item) with :func:`invsolve.figures.figure_for` and write
    the figure to the PNG ``path``.

    Arguments:
        path: The preview file (.png).
        result: The file the run wrote (measurement, reconstruction or posterior).
        overwrite: Replace an existing preview.

    Returns:
        The path written.
    """
    import io

    from ..figures import figure_for
    from .atomic import atomic_bytes

    p = check_preview(path, overwrite)
    fig = figure_for(result, index=0)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return atomic_bytes(p, buf.getvalue(), suffix=".png")
