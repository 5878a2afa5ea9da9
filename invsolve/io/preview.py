"""A PNG preview for a person: panels side by side (measurement, result, ...)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError

__all__ = ["write_preview", "check_preview"]


def check_preview(path: str | Path, overwrite: bool = False, vector: bool = False) -> Path:
    """Fail before any work when the preview cannot be written: not a .png name, an existing file without
    ``overwrite``, a missing folder, or a problem on parameter vectors (``vector``: nothing to draw)."""
    p = Path(path)
    if vector:
        raise DataError("--preview draws images, and this problem's unknowns are parameter vectors; drop --preview")
    if p.suffix.lower() != ".png":
        raise DataError(f"--preview needs a .png file name, got {p}")
    if p.exists() and not overwrite:
        raise DataError(f"preview {p} already exists; pass --overwrite to replace it")
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise DataError(f"preview folder {folder} does not exist; create it first")
    return p


def _normalise(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    lo, hi = np.percentile(a, [0.5, 99.5])
    if hi <= lo:
        hi = lo + 1.0
    return np.clip((a - lo) / (hi - lo), 0, 1)


def write_preview(path: str | Path, panels: list[np.ndarray], overwrite: bool = False, height: int | None = None) -> Path:
    """Write 2-D ``panels`` side by side, each contrast-stretched and resized to one
    height (at least 256 pixels); very tall or wide panels (sinograms) are squeezed
    to an aspect ratio between 1:2 and 2:1."""
    from skimage import io as skio
    from skimage.transform import resize

    p = check_preview(path, overwrite, vector=any(np.ndim(a) != 2 for a in panels))
    h = height or max(256, panels[-1].shape[0])
    cols = []
    for a in panels:
        w = max(1, round(h * min(max(a.shape[1] / a.shape[0], 0.5), 2.0)))
        cols.append(resize(_normalise(a), (h, w), order=1, anti_aliasing=True))
        cols.append(np.ones((h, 4)))
    img = (np.concatenate(cols[:-1], axis=1) * 255).round().astype(np.uint8)
    from .atomic import atomic_output

    with atomic_output(p, suffix=".png") as tmp:
        skio.imsave(tmp, img, check_contrast=False)
    return p
