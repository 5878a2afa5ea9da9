"""Figures of ``estimate-noise`` results: the (a, b) traces of the EM iterations and the ELBO trace, above
the curve and parameter posterior of the item shown (under the estimated noise)."""

from __future__ import annotations

import numpy as np

from .corner import MAX_CORNER
from .files import Shown
from .panels import CELL, TITLE_HEIGHT, Block, note_panel
from .vectors import draw_vectors, vector_height

__all__ = ["noise_block", "draw_traces"]


def _true_noise(s: Shown) -> dict | None:
    """The measurement's own mixed noise (known when it was simulated), for reference lines."""
    spec = s.config("noise_in_file")
    return spec if isinstance(spec, dict) and spec.get("name") == "mixed" else None


def draw_traces(target, s: Shown) -> None:
    """Three panels: a, b and the ELBO against the EM iteration."""
    w = s.whole
    axes = target.subplots(1, 3)
    truth = _true_noise(s)
    method = s.config("method") or {}
    best = method.get("best_iteration")
    for ax, key, label in ((axes[0], "a", "a (additive noise std)"), (axes[1], "b", "b (relative noise std)")):
        tr = np.asarray(w.get(f"{key}_trace", []), np.float64)
        ax.set_label(f"{key}_trace")
        ax.plot(np.arange(len(tr)), tr, "o-", ms=3, color="tab:blue", label="EM estimate")
        if truth is not None and key in truth:
            ax.axhline(float(truth[key]), color="tab:red", ls="--", lw=1.2, label=f"in file: {truth[key]:.4g}")
        if len(tr):
            ax.set_title(f"{key} trace: final {tr[-1]:.4g}", fontsize=10)
        if len(tr) and tr.min() > 0 and tr.max() / tr.min() > 20:
            ax.set_yscale("log")
        ax.set_xlabel("EM iteration (0: start)")
        ax.set_ylabel(f"{label} [measurement units]" if key == "a" else f"{label} [fraction of A(x)]")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    elbo = np.asarray(w.get("elbo_trace", []), np.float64)
    ax = axes[2]
    ok = np.isfinite(elbo)
    if not ok.any():
        note_panel(ax, "ELBO trace", "no ELBO evaluated\n(estep cfm, or elbo_every\nlonger than the run)",
                   name="elbo_trace")
        return
    ax.set_label("elbo_trace")
    it = np.arange(1, len(elbo) + 1)
    ax.plot(it[ok], elbo[ok], "o-", ms=3, color="tab:green")
    if isinstance(best, int) and 1 <= best <= len(elbo) and ok[best - 1]:
        ax.plot([best], [elbo[best - 1]], "*", ms=10, color="tab:red", label=f"best iteration {best}")
        ax.legend(fontsize=7)
    ax.set_title("ELBO of the measured data", fontsize=10)
    ax.set_xlabel("EM iteration")
    ax.set_ylabel("ELBO [nats]")
    ax.grid(alpha=0.3)


def noise_block(s: Shown) -> Block:
    """The traces row above the vector panels of item ``s.index`` (see :mod:`invsolve.figures.vectors`)."""
    method = s.config("method") or {}
    noise = s.config("noise") or {}
    dims = int((s.operator.get("image_shape") or [1])[0])
    est = f"a = {noise.get('a', float('nan')):.4g}, b = {noise.get('b', float('nan')):.4g}"
    title = (f"{s.where()} — noise estimate ({method.get('name', 'EM')}, {method.get('iterations_run', '?')} "
             f"iterations, {method.get('sampler', '?')} sampler): {est}; {s.operator.get('name', '?')} operator")
    top_h = CELL[1] + 0.3
    bottom_h = vector_height(dims)

    def draw(target) -> None:
        top, bottom = target.subfigures(2, 1, height_ratios=[top_h, bottom_h])
        draw_traces(top, s)
        draw_vectors(bottom, s)

    width = max(3 * CELL[0], 6.0 + 1.9 * min(dims, MAX_CORNER))
    return Block(title, width, top_h + bottom_h + TITLE_HEIGHT, draw)
