"""The pieces every figure is made of: blocks, image and sinogram panels with their colorbars, notes.

A *block* is what one file contributes to a figure: a title, a size in inches and a function that draws
into a matplotlib figure or subfigure.  :func:`invsolve.figures.figure_for` puts one block on a figure,
or several blocks one above the other.

Colormaps follow one rule: grey for images and measurements, a diverging map on a symmetric range for
signed errors, a sequential map starting at 0 for standard deviations.  Every image panel has a title
and a colorbar labelled with what it shows and its unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

__all__ = ["Block", "IMAGE_UNIT", "CELL", "TITLE_HEIGHT", "TITLE_LINE", "wrap_title", "block_size", "describe_spec",
           "grid", "image_panel", "error_panel", "std_panel", "sinogram_panel", "note_panel",
           "shared_range"]

#: The unit of image values: invsolve reads images onto [0, 1] (by bit depth, or ``--range``).
IMAGE_UNIT = "[a.u.; images on 0–1]"
#: Width and height of one panel, inches.
CELL = (3.1, 2.9)
#: Extra height for a block's title, inches.
TITLE_HEIGHT = 0.45
#: Height of each further line of a wrapped title, inches.
TITLE_LINE = 0.22


@dataclass
class Block:
    """What one file contributes to a figure.

    Attributes:
        title: The block's title (file name and what it is).
        width, height: Size in inches.
        draw: ``draw(target)`` draws the panels into a matplotlib Figure or SubFigure.
    """

    title: str
    width: float
    height: float
    draw: Callable[[Any], None]


def wrap_title(title: str, width: float) -> tuple[str, int]:
    """``title`` broken into lines that fit ``width`` inches (bold 11 pt), and the number of lines; a ``$``
    (from a file name, say) stays a dollar sign rather than starting matplotlib's math text."""
    import textwrap

    lines = textwrap.wrap(title.replace("$", r"\$"), max(30, int(width * 10)), break_on_hyphens=False) or [""]
    return "\n".join(lines), len(lines)


def block_size(rows: int, cols: int, cell: tuple[float, float] = CELL) -> tuple[float, float]:
    """Width and height (inches) of a block of ``rows`` × ``cols`` panels plus its title."""
    return max(cols, 1) * cell[0], max(rows, 1) * cell[1] + TITLE_HEIGHT


def describe_spec(spec: Any, skip: tuple[str, ...] = ("name",), limit: int = 4) -> str:
    """``name (k=v, ...)`` for a config dict such as a noise or method spec: scalar settings only, at most
    ``limit`` of them, so that a title stays on one line."""
    if not isinstance(spec, dict):
        return str(spec)
    used = spec.get("used") if isinstance(spec.get("used"), dict) else {}
    spec = {k: (used.get(k, v) if v is None or v == "auto" else v) for k, v in spec.items()}  # preset values where left unset or auto
    items = [f"{k}={_short(v)}" for k, v in spec.items()
             if k not in skip and isinstance(v, (int, float, str, bool)) and v is not None and len(str(v)) < 24]
    if limit <= 0:
        return str(spec.get("name", "?"))
    inner = ", ".join(items[:limit]) + (", …" if len(items) > limit else "")
    return f"{spec.get('name', '?')}" + (f" ({inner})" if inner else "")


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def grid(target, rows: list[int], ncols: int | None = None) -> list[list[Any]]:
    """Axes on ``target`` in rows of ``rows[i]`` panels each, on a grid of ``ncols`` columns (default: the
    longest row); cells beyond a row's count are left empty."""
    ncols = ncols or max(rows)
    gs = target.add_gridspec(len(rows), ncols)
    return [[target.add_subplot(gs[r, c]) for c in range(n)] for r, n in enumerate(rows)]


def shared_range(*arrays: np.ndarray | None) -> tuple[float, float]:
    """One (vmin, vmax) over the finite values of ``arrays`` (None entries skipped), so that images meant to
    be compared share a scale."""
    vals = [np.asarray(a, np.float64) for a in arrays if a is not None]
    finite = [a[np.isfinite(a)] for a in vals]
    finite = [a for a in finite if a.size]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(float(a.min()) for a in finite), max(float(a.max()) for a in finite)
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def image_panel(target, ax, arr: np.ndarray, title: str, label: str, *, name: str, cmap: str = "gray",
                vmin: float | None = None, vmax: float | None = None, aspect: str = "equal"):
    """Draw the 2-D ``arr`` on ``ax`` with a title and a colorbar labelled ``label``.

    Arguments:
        target: The Figure or SubFigure holding ``ax`` (the colorbar goes there).
        ax: The axes.
        arr: (H, W) values.
        title: Panel title.
        label: Colorbar label: what the values are, with their unit.
        name: The axes' label (``ax.get_label()``), e.g. ``posterior_std``: what the panel is, for code.
        cmap, vmin, vmax, aspect: As for ``imshow``.

    Returns:
        The AxesImage.
    """
    a = np.asarray(arr, np.float64)
    if vmin is None or vmax is None:
        lo, hi = shared_range(a)
        vmin, vmax = (lo if vmin is None else vmin), (hi if vmax is None else vmax)
    im = ax.imshow(a, cmap=cmap, vmin=vmin, vmax=vmax, aspect=aspect, interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_label(name)
    if aspect == "equal":
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(f"{a.shape[1]} × {a.shape[0]} pixels", fontsize=8)
    cb = target.colorbar(im, ax=ax, shrink=0.85, pad=0.02)
    cb.set_label(label, fontsize=8)
    cb.ax.tick_params(labelsize=7)
    return im


def error_panel(target, ax, error: np.ndarray, title: str, name: str = "error"):
    """A signed error map (estimate − truth) on a diverging colormap with a range symmetric about 0."""
    m = float(np.nanmax(np.abs(error))) if np.isfinite(error).any() else 1.0
    m = m if m > 0 else 1.0
    return image_panel(target, ax, error, title, "estimate − truth [a.u.; 0–1 scale]", name=name, cmap="RdBu_r",
                       vmin=-m, vmax=m)


def std_panel(target, ax, std: np.ndarray, title: str = "posterior std", name: str = "posterior_std"):
    """A standard deviation map on its own range, from 0 to its maximum, on a sequential colormap (never on
    the scale of the mean)."""
    finite = np.asarray(std, np.float64)[np.isfinite(std)]
    top = float(finite.max()) if finite.size else 1.0
    return image_panel(target, ax, std, title, "posterior std [a.u.; 0–1 scale]", name=name, cmap="magma",
                       vmin=0.0, vmax=top if top > 0 else 1.0)


def sinogram_panel(target, ax, sino: np.ndarray, title: str, angles_deg: np.ndarray | None, label: str,
                   name: str = "measurement"):
    """A sinogram (angles × detectors): detector pixel across, angle down (in degrees when ``angles_deg``
    is known, else the angle index)."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    im = image_panel(target, ax, sino, title, label, name=name, aspect="auto")
    ax.set_xlabel("detector pixel", fontsize=8)
    ax.tick_params(labelsize=7)
    if angles_deg is not None and len(angles_deg) == sino.shape[0]:
        idx = np.arange(len(angles_deg))
        ax.yaxis.set_major_locator(MaxNLocator(6, integer=True))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{np.interp(v, idx, angles_deg):.0f}°"))
        ax.set_ylabel("projection angle", fontsize=8)
    else:
        ax.set_ylabel("angle index", fontsize=8)
    return im


def note_panel(ax, title: str, text: str, name: str = "note") -> None:
    """An axes holding only a message (what a file does not store), framed like the other panels."""
    ax.set_title(title, fontsize=10)
    ax.set_label(name)
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=9, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])
