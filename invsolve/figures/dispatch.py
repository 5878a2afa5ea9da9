"""One figure for one or several invsolve files: the right block for each kind of file, stacked; and the
atomic writing of a figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import DataError, ShapeError
from .files import Shown, open_file
from .panels import TITLE_LINE, Block, wrap_title

__all__ = ["figure_for", "block_for", "compose", "save_figure", "figure_png", "read_reference", "FIGURE_SUFFIXES"]

#: File endings ``save_figure`` writes (the format follows the ending).
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


def read_reference(spec: str | Path, s: Shown) -> np.ndarray:
    """The reference (ground truth) of item ``s.index`` from an image, stack, ``.npy`` or ``FILE.h5:/DATASET``:
    an (H, W) image for image problems, a (d,) vector for vector problems; a stack gives its item ``s.index``
    (or its only item)."""
    from ..io.images import check_finite, read_array

    ref = read_array(str(spec))
    check_finite(ref, str(spec))
    want = tuple((s.operator.get("image_shape") or ()))
    one = len(want)
    if ref.ndim == one + 1:
        if len(ref) == 1:
            ref = ref[0]
        elif len(ref) == s.count:
            ref = ref[s.index]
        else:
            raise ShapeError(f"--reference {spec} holds {len(ref)} items for the {s.count} of {s.path}; give one "
                             "reference or one per item")
    if tuple(ref.shape) != want:
        raise ShapeError(f"--reference {spec} has shape {tuple(ref.shape)}, but {s.path} holds items of shape "
                         f"{want}; give the matching ground truth")
    return ref


def block_for(s: Shown, reference: np.ndarray | None = None) -> Block:
    """The block that draws ``s``: chosen by its kind, and for HDF5 results by image or vector problem."""
    from .images import measurement_block, reconstruction_block
    from .noise import noise_block
    from .posterior import posterior_block
    from .training import prior_block, sampler_block
    from .vectors import vector_block

    if s.kind == "prior":
        return prior_block(s)
    if s.kind == "sampler":
        return sampler_block(s)
    if s.kind == "noise_estimate":
        return noise_block(s)
    if s.kind == "calibration":
        from .calibration import calibration_block

        return calibration_block(s)
    if s.kind == "prior_samples":
        from .images import prior_samples_block

        return prior_samples_block(s)
    if s.vector:
        if reference is not None:
            s.item["ground_truth"] = reference
        return vector_block(s)
    if s.kind == "posterior":
        if "posterior_mean" not in s.item or "posterior_std" not in s.item:
            raise DataError(f"{s.path} is a posterior file without /posterior_mean or /posterior_std; it is damaged, "
                            "re-create it with `invsolve sample-posterior`")
        return posterior_block(s, reference)
    if s.kind == "reconstruction":
        if "reconstruction" not in s.item:
            raise DataError(f"{s.path} is a reconstruction file without /reconstruction; re-create it with "
                            "`invsolve reconstruct`")
        return reconstruction_block(s, reference)
    return measurement_block(s)


def figure_for(paths: str | Path | Sequence[str | Path], index: int = 0, reference: str | Path | None = None):
    """A matplotlib Figure (Agg, not shown on screen) drawing invsolve files for a person.

    Arguments:
        paths: One file, or several: one block of rows per file, one above the other.
        index: The item of a stack to draw (the same for every file); out of range is a DataError naming the
            valid range.
        reference: Ground truth (image, stack, ``.npy``, ``FILE.h5:/DATASET``) for reconstructions and
            posteriors that store none: the error map is drawn against it.  Ignored for other files.

    Returns:
        The Figure; each image panel has a title and a colorbar, and every axes a label naming its panel
        (``ax.get_label()``: ``reconstruction``, ``posterior_std``, ``curve``, ...).

    Example:
        >>> fig = figure_for("rec.h5", index=0)  # doctest: +SKIP
        >>> save_figure(fig, "rec.png")  # doctest: +SKIP
    """
    many = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not many:
        raise DataError("give at least one invsolve file to draw")
    blocks = []
    for p in many:
        s = open_file(p, index)
        ref = None
        if reference is not None and s.kind in ("reconstruction", "posterior"):
            ref = read_reference(reference, s)
        blocks.append(block_for(s, ref))
    return compose(blocks)


def compose(blocks: Sequence[Block]):
    """One Figure of ``blocks``, one above the other, each with its (wrapped) title."""
    from matplotlib.figure import Figure

    width = max(b.width for b in blocks)
    for b in blocks:  # long titles wrap onto more lines, each making its block taller
        b.title, lines = wrap_title(b.title, width)
        b.height += TITLE_LINE * (lines - 1)
    height = sum(b.height for b in blocks)
    fig = Figure(figsize=(width, height), layout="constrained", dpi=100)
    targets: list[Any] = [fig] if len(blocks) == 1 else list(fig.subfigures(len(blocks), 1,
                                                                            height_ratios=[b.height for b in blocks]))
    for b, t in zip(blocks, targets):
        b.draw(t)
        t.suptitle(b.title, fontsize=11, fontweight="bold")
    return fig


def save_figure(fig, path: str | Path, overwrite: bool = False, dpi: int = 100) -> Path:
    """Write ``fig`` atomically to ``path`` (.png, .pdf or .svg); an existing file needs ``overwrite``."""
    import io

    from ..io.atomic import atomic_bytes
    from .output import check_output_file

    p = check_output_file(path, overwrite, FIGURE_SUFFIXES, "figure")
    buf = io.BytesIO()
    fig.savefig(buf, format=p.suffix[1:].lower(), dpi=dpi)
    return atomic_bytes(p, buf.getvalue(), suffix=p.suffix)


def figure_png(fig, dpi: int = 100) -> bytes:
    """``fig`` as PNG bytes (for embedding in a page)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
