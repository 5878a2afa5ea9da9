"""Parameter panels of vector problems: a corner plot of posterior samples (histograms on the diagonal,
pairwise scatter below it), or mean ± std bars when a file stores no samples; parameter names with units."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["parameter_names", "corner", "parameter_bars", "MAX_CORNER"]

#: Parameters shown in a corner plot at most (the first ones).
MAX_CORNER = 5

_UNITS = {"thickness": "nm", "roughness": "nm", "density": "g/cm³", "offset": "°", "divergence": "°"}


def parameter_names(op: dict[str, Any]) -> list[str]:
    """Display names (with units) of the entries of the unknown vector of a stored vector operator spec:
    the fitted fields of ``gixrf`` (e.g. ``Ni thickness [nm]``), ``x1 … xd`` otherwise."""
    d = int((op.get("image_shape") or [0])[0])
    params = op.get("params") or {}
    fields = params.get("params") if op.get("name") == "gixrf" or "layers" in params else None
    if not isinstance(fields, list) or len(fields) != d:
        return [f"x{i + 1}" for i in range(d)]
    layers = params.get("layers") or []
    formulas = [str(layer.get("formula", "")) for layer in layers if isinstance(layer, dict)]
    unique = len(set(formulas)) == len(formulas)
    out = []
    for name in fields:
        parts = str(name).split(".")
        field = parts[-1]
        unit = _UNITS.get(field)
        if parts[0] == "layers" and len(parts) == 3 and parts[1].isdigit():
            i = int(parts[1])
            who = formulas[i] if unique and i < len(formulas) else f"layer {i}"
            label = f"{who} {field}"
        elif parts[0] == "substrate":
            label = f"substrate {field}"
        elif parts[0] == "line_scales":
            label = f"line scale {parts[-1]}"
        else:
            label = field
        out.append(label + (f" [{unit}]" if unit else ""))
    return out


def corner(target, samples: np.ndarray, names: list[str], truth: np.ndarray | None = None,
           mean: np.ndarray | None = None) -> list:
    """A corner plot of ``samples`` (S, d) on ``target`` (a Figure or SubFigure): d histograms on the diagonal,
    d(d-1)/2 pairwise scatter panels below it, the truth (red) and the mean (dashed) marked.  Only the first
    :data:`MAX_CORNER` parameters are drawn.  Returns the axes."""
    x = np.asarray(samples, np.float64)
    d = min(x.shape[1], MAX_CORNER)
    gs = target.add_gridspec(d, d)
    axes = []
    for i in range(d):
        for j in range(i + 1):
            ax = target.add_subplot(gs[i, j])
            axes.append(ax)
            if i == j:
                ax.set_label(f"marginal_{i}")
                ax.hist(x[:, i], bins=min(30, max(5, len(x) // 8)), color="tab:blue", alpha=0.75)
                ax.set_yticks([])
                if truth is not None:
                    ax.axvline(truth[i], color="tab:red", lw=1.5, label="truth")
                if mean is not None:
                    ax.axvline(mean[i], color="k", lw=1, ls="--", label="mean")
                if i == 0:
                    part = f" (the first {d} of {x.shape[1]} parameters)" if d < x.shape[1] else ""
                    ax.set_title("posterior marginals and pairs" + part, fontsize=9, loc="left")
            else:
                ax.set_label(f"pair_{i}_{j}")
                ax.scatter(x[:, j], x[:, i], s=3, alpha=0.35, color="tab:blue", linewidths=0)
                if truth is not None:
                    ax.plot(truth[j], truth[i], marker="*", color="tab:red", ms=9, ls="none")
            ax.tick_params(labelsize=7)
            if i == d - 1:
                ax.set_xlabel(names[j], fontsize=8)
            else:
                ax.set_xticklabels([])
            if j == 0 and i > 0:
                ax.set_ylabel(names[i], fontsize=8)
            elif j > 0:
                ax.set_yticklabels([])
    handles, labels = axes[0].get_legend_handles_labels()
    if handles and d > 1:  # in the empty upper triangle, clear of the histograms
        target.legend(handles, labels, fontsize=8, loc="upper right", bbox_to_anchor=(0.98, 0.9))
    elif handles:
        axes[0].legend(handles, labels, fontsize=7)
    return axes


def parameter_bars(target, mean: np.ndarray, names: list[str], std: np.ndarray | None = None,
                   truth: np.ndarray | None = None, interval: tuple[np.ndarray, np.ndarray] | None = None,
                   label: str = "posterior mean ± std", interval_label: str = "credible interval") -> list:
    """The estimate of each parameter with its error bar (std) and, when given, the credible ``interval``
    (low, high) and the truth.  Up to :data:`MAX_CORNER` parameters each get their own small panel (their
    units differ); more share one panel by index.  Returns the axes."""
    d = len(mean)
    if d > MAX_CORNER:
        ax = target.add_subplot(1, 1, 1)
        ax.set_label("parameters")
        idx = np.arange(d)
        ax.errorbar(idx, mean, yerr=std, fmt="o", ms=3, capsize=2, label=label)
        if truth is not None:
            ax.plot(idx, truth, "x", color="tab:red", label="truth")
        ax.set_xticks(idx, names, rotation=90 if max(len(n) for n in names) > 3 else 0, fontsize=7)
        ax.set_xlabel("parameter")
        ax.set_ylabel("value")
        ax.set_title("parameters", fontsize=9)
        ax.legend(fontsize=7)
        return [ax]
    gs = target.add_gridspec(d, 1)
    axes = []
    for i in range(d):
        ax = target.add_subplot(gs[i, 0])
        ax.set_label(f"parameter_{i}")
        if interval is not None:
            ax.plot([interval[0][i], interval[1][i]], [0, 0], color="tab:blue", lw=6, alpha=0.25,
                    solid_capstyle="butt", label=interval_label)
        ax.errorbar([mean[i]], [0], xerr=None if std is None else [std[i]], fmt="o", color="tab:blue", capsize=4,
                    label=label)
        if truth is not None:
            ax.plot([truth[i]], [0], marker="*", color="tab:red", ms=10, ls="none", label="truth")
        ax.set_yticks([])
        ax.set_ylabel(names[i], fontsize=8, rotation=0, ha="right", va="center")
        ax.tick_params(labelsize=7)
        ax.margins(x=0.3)
        if i == 0:
            ax.set_title("parameters", fontsize=9)
            ax.legend(fontsize=7, loc="upper right", ncols=3)
    return axes
