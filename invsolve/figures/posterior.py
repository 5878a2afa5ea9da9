"""Figures of image posteriors (``sample-posterior`` outputs): mean, standard deviation, quantile maps and,
when stored, a row of samples.

The standard deviation is never drawn on the mean's scale: it gets its own range from 0 to its maximum,
on a sequential colormap, with its own colorbar.  Mean, truth, quantiles and samples share one grey scale
so that they can be compared.
"""

from __future__ import annotations

import numpy as np

from .files import Shown
from .images import draw_measurement, scores_line
from .panels import IMAGE_UNIT, Block, block_size, describe_spec, error_panel, grid, image_panel, shared_range
from .panels import std_panel

__all__ = ["posterior_block", "MAX_SAMPLES"]

#: Samples drawn in the samples row at most.
MAX_SAMPLES = 5


def _level(q: float) -> str:
    return f"{100 * q:.3g} %"


def posterior_block(s: Shown, reference: np.ndarray | None = None) -> Block:
    """Image posterior: a first row with the measurement, the truth (when known), the posterior mean, its std
    and the error of the mean; a row of quantile maps; a row of samples when the file stores them."""
    d = s.item
    mean, std = d["posterior_mean"], d["posterior_std"]
    truth = reference if reference is not None else d.get("ground_truth")
    quantiles = d.get("quantiles")
    levels = [float(v) for v in (s.config("quantile_levels") or [])]
    samples = d.get("samples")
    first = 3 + (2 if truth is not None else 0)
    rows = [first]
    if quantiles is not None and len(quantiles):
        rows.append(len(quantiles))
    if samples is not None and len(samples):
        rows.append(min(len(samples), MAX_SAMPLES))
    sampler = s.config("sampler") or {}

    def draw(target) -> None:
        axes = grid(target, rows)
        lo, hi = shared_range(mean, truth, quantiles)
        unit = f"value {IMAGE_UNIT}"
        top = axes[0]
        draw_measurement(target, top[0], s)
        k = 1
        if truth is not None:
            which = "reference (--reference)" if reference is not None else "ground truth"
            image_panel(target, top[k], truth, which, unit, name="ground_truth", vmin=lo, vmax=hi)
            k += 1
        sub = scores_line(mean, truth) if truth is not None else ""
        image_panel(target, top[k], mean, "posterior mean" + (f"\n{sub}" if sub else ""), unit,
                    name="posterior_mean", vmin=lo, vmax=hi)
        std_panel(target, top[k + 1], std, f"posterior std (own scale)\nmean {float(np.mean(std)):.3g}")
        if truth is not None:
            err = np.asarray(mean, np.float64) - truth
            error_panel(target, top[k + 2], err, "error: mean − truth", name="error")
        r = 1
        if quantiles is not None and len(quantiles):
            for j, (ax, q) in enumerate(zip(axes[r], quantiles)):
                lev = _level(levels[j]) if j < len(levels) else f"#{j}"
                image_panel(target, ax, q, f"quantile {lev}", unit, name=f"quantile_{j}", vmin=lo, vmax=hi)
            r += 1
        if samples is not None and len(samples):
            for j, ax in enumerate(axes[r]):
                image_panel(target, ax, samples[j], f"sample {j + 1} of {len(samples)}", unit, name=f"sample_{j}",
                            vmin=lo, vmax=hi)

    n = sampler.get("num_samples") or (len(samples) if samples is not None else None)
    what = f"posterior by the {describe_spec(sampler, limit=0)} sampler" + (f", {n} samples" if n else "")
    op = s.operator
    shape = "×".join(str(v) for v in op.get("image_shape") or ())
    title = (f"{s.where()} — {what}: {op.get('name', '?')} operator on {shape} images, "
             f"{describe_spec(s.config('noise'))} noise")
    return Block(title, *block_size(len(rows), max(rows)), draw)
