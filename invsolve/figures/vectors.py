"""Figures of vector problems (operators ``linear``, ``gixrf``, ``surrogate``: the unknowns are parameter
vectors): the measured curve with the fit and the posterior predictive band, beside a corner plot of the
parameter posterior (mean ± std bars when no samples are stored).

The predictive is computed here by pushing stored posterior samples (at most :data:`MAX_PUSHED`) through the
stored operator, and the noise model on top of that; without samples, the stored quantile vectors.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .corner import MAX_CORNER, corner, parameter_bars, parameter_names
from .files import Shown
from .panels import TITLE_HEIGHT, Block, describe_spec

__all__ = ["vector_block", "draw_vectors", "vector_height", "MAX_PUSHED"]

#: Posterior samples pushed through the operator for the predictive band at most.
MAX_PUSHED = 400


def _axis(s: Shown, op, m: int) -> tuple[np.ndarray, str, str, list[tuple[slice, str]]]:
    """x values, x label, y label and the labelled segments of a measured vector of length ``m``."""
    name = s.operator.get("name")
    params = s.operator.get("params") or {}
    angles = op.angles_deg if op is not None else None
    if name == "gixrf" and angles is not None and m % len(angles) == 0:
        n = len(angles)
        labels = list(params.get("lines") or [])
        labels += ["reflectivity R"] * (m // n - len(labels))
        segs = [(slice(k * n, (k + 1) * n), labels[k]) for k in range(m // n)]
        return np.tile(np.asarray(angles, np.float64), m // n), "incidence angle θ [°]", \
            "fluorescence intensity [a.u.]", segs
    ylabel = "surrogate output [a.u.]" if name == "surrogate" else "measured value [a.u.]"
    return np.arange(m, dtype=np.float64), "measurement index", ylabel, [(slice(0, m), "")]


def _push(op, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return op(torch.as_tensor(np.asarray(x, np.float32))).double().cpu().numpy()


def _noisy(noise_spec: dict[str, Any] | None, f: np.ndarray) -> np.ndarray | None:
    """``f`` with one noise draw of the stored noise model per row (seeded: the figure is reproducible)."""
    import torch

    from ..errors import InvsolveError
    from ..noise import build_noise

    try:
        noise = build_noise(noise_spec)
        g = torch.Generator().manual_seed(0)
        return noise.sample(torch.as_tensor(f, dtype=torch.float64), generator=g).numpy()
    except (InvsolveError, TypeError, ValueError, KeyError, RuntimeError):
        return None


def _thin(x: np.ndarray, n: int) -> np.ndarray:
    return x if len(x) <= n else x[np.linspace(0, len(x) - 1, n).round().astype(int)]


def draw_curve(ax, s: Shown, op, estimate: np.ndarray | None, samples: np.ndarray | None,
               quantiles: np.ndarray | None, est_label: str) -> None:
    """The measured vector with A(truth), A(estimate) and, from samples (or quantile vectors), the 90 % band of
    A(x) and of the posterior predictive y."""
    y = np.asarray(s.item["measurement"], np.float64)
    xs, xlabel, ylabel, segs = _axis(s, op, len(y))
    truth = s.item.get("ground_truth")
    bands = {}
    if op is not None and samples is not None and len(samples):
        f = _push(op, _thin(samples, MAX_PUSHED))
        bands["A(x), 90 % of the posterior"] = np.percentile(f, [5, 95], axis=0)
        noisy = _noisy(s.config("noise"), f)
        if noisy is not None:
            bands["posterior predictive y, 90 %"] = np.percentile(noisy, [5, 95], axis=0)
    elif op is not None and quantiles is not None and len(quantiles) >= 2:
        fq = _push(op, quantiles[[0, -1]])
        bands["A(x) at the outer quantile vectors (no samples stored)"] = np.sort(fq, axis=0)
    f_truth = _push(op, truth[None])[0] if op is not None and truth is not None else None
    f_est = _push(op, estimate[None])[0] if op is not None and estimate is not None else None
    colors = {0: "tab:blue", 1: "tab:green", 2: "tab:purple", 3: "tab:brown"}
    for k, (sl, seg) in enumerate(segs):
        c = colors.get(k, "tab:gray")
        tag = f" {seg}" if seg and len(segs) > 1 else ""
        for j, (name, (lo, hi)) in enumerate(reversed(list(bands.items()))):
            ax.fill_between(xs[sl], lo[sl], hi[sl], color=c, alpha=0.15 + 0.2 * j, lw=0,
                            label=(name + tag) if k == 0 or tag else None)
        ax.plot(xs[sl], y[sl], "o", ms=3.5, color="k", label=f"measured{tag}" if k == 0 or tag else None)
        if f_truth is not None:
            ax.plot(xs[sl], f_truth[sl], "--", color="tab:red", lw=1.2, label="A(truth)" if k == 0 else None)
        if f_est is not None:
            ax.plot(xs[sl], f_est[sl], "-", color=c, lw=1.5, label=f"A({est_label})" if k == 0 else None)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_label("curve")
    what = "measured curve" + (" and fit" if estimate is not None else "")
    ax.set_title(what + ("" if op is not None else "\n(operator not available here: data only)"), fontsize=10)


def vector_height(d: int) -> float:
    """Height (inches) of the vector panels for d parameters."""
    return max(3.6, 1.6 * min(d, MAX_CORNER)) + 0.3


def draw_vectors(target, s: Shown) -> None:
    """The curve panel (left) and the parameter panels (right) of one item of a vector-problem file."""
    d = s.item
    op = s.build_operator()
    names = parameter_names(s.operator)
    truth = d.get("ground_truth")
    samples = d.get("samples")
    mean = d.get("posterior_mean")
    quantiles = d.get("quantiles")
    estimate = mean if mean is not None else d.get("reconstruction")
    left, right = target.subfigures(1, 2, width_ratios=[1.25, 1])
    label = "posterior mean" if mean is not None else "reconstruction"
    ax = left.add_subplot(1, 1, 1)
    draw_curve(ax, s, op, estimate, samples, quantiles, label)
    if samples is not None and len(samples) > 1:
        corner(right, samples, names, truth, mean)
    elif estimate is not None:
        interval = (quantiles[0], quantiles[-1]) if quantiles is not None and len(quantiles) >= 2 else None
        levels = [float(v) for v in s.config("quantile_levels") or []]
        span = f"{100 * levels[0]:.3g}–{100 * levels[-1]:.3g} % interval" if len(levels) >= 2 else "interval"
        parameter_bars(right, estimate, names, d.get("posterior_std"), truth, interval,
                       "posterior mean ± std" if mean is not None else "reconstruction", span)
    elif truth is not None:
        parameter_bars(right, truth, names, label="true parameters")


def vector_block(s: Shown) -> Block:
    """The block of a vector-problem measurement, reconstruction or posterior (see :func:`draw_vectors`)."""
    dims = int((s.operator.get("image_shape") or [1])[0])
    kind = {"measurement": "measurement", "reconstruction": "reconstruction by "
            + describe_spec(s.config("method") or {}, limit=2),
            "posterior": "posterior by the " + describe_spec(s.config("sampler") or {}, limit=0) + " sampler"}
    title = (f"{s.where()} — {kind.get(s.kind, s.kind)}: {s.operator.get('name', '?')} operator, {dims} parameters, "
             f"{describe_spec(s.config('noise'))} noise")

    def draw(target) -> None:
        draw_vectors(target, s)

    return Block(title, 6.0 + 1.9 * min(dims, MAX_CORNER), vector_height(dims) + TITLE_HEIGHT, draw)
