"""Figures of ``invsolve calibrate`` files: the SBC ECDF difference with its simultaneous band, the TARP
expected-coverage curve, and the coverage of the raw and conformal credible intervals against their mass."""

from __future__ import annotations

import numpy as np

from .files import Shown
from .panels import CELL, TITLE_HEIGHT, Block

__all__ = ["calibration_block"]

#: At most this many statistics get a line of their own in the SBC panel (the rest are drawn grey).
MAX_LINES = 8


def _sbc(ax, s: Shown) -> None:
    from ..calibration.statistics import ecdf_difference

    w, names = s.whole, list(s.config("statistics") or [])
    z, diff, band = ecdf_difference(np.asarray(w["ranks"]), int(s.attrs.get("num_samples", 1)))
    ax.set_label("sbc_ecdf")
    ax.fill_between(z, band[0], band[1], color="tab:grey", alpha=0.25, label="95 % band of a calibrated sampler")
    for j, d in enumerate(diff):
        kw = {"label": names[j] if j < len(names) else f"statistic {j}"} if j < MAX_LINES else {"color": "0.6"}
        ax.plot(z, d, lw=1.0, **kw)
    p = np.asarray(w["sbc_pvalues"], np.float64)
    pmin = f"{p.min():.2g}" if p.min() > 0 else "< 1e-300"  # a p-value below float range prints as 0
    ax.set_title(f"SBC: ECDF − uniform (min χ² p {pmin})", fontsize=10)
    ax.set_xlabel("fractional rank of the truth among the draws")
    ax.set_ylabel("ECDF difference [fraction of pairs]")
    ax.axhline(0, color="k", lw=0.6)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="lower right")


def _unit_square(ax, diagonal: str, xlabel: str, ylabel: str) -> None:
    """The frame of a curve against its ideal: [0, 1]², the dashed diagonal labelled ``diagonal``, axis labels."""
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label=diagonal)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)


def _tarp(ax, s: Shown) -> None:
    from ..calibration.statistics import tarp_area

    a, e = np.asarray(s.whole["tarp_alpha"]), np.asarray(s.whole["tarp_ecp"])
    ax.set_label("tarp")
    _unit_square(ax, "calibrated", "credibility level α", "expected coverage [fraction of pairs]")
    ax.plot(a, e, "o-", ms=2.5, color="tab:blue", label="this sampler")
    ax.set_title(f"TARP (area to diagonal {tarp_area(a, e):.3f})", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")


def _coverage(ax, s: Shown) -> None:
    w = s.whole
    m = np.asarray(w["masses"], np.float64)
    raw = np.asarray(w["coverage"], np.float64).mean(1)
    cal = np.asarray(w["holdout_coverage"], np.float64)
    ax.set_label("coverage")
    _unit_square(ax, "nominal", "credible mass", "coverage [fraction of entries]")
    ax.plot(m, raw, "o-", ms=3, color="tab:red", label="raw credible intervals")
    ax.plot(m, cal, "s-", ms=3, color="tab:green", label="conformal (held-out halves)")
    ax.set_title("coverage of central intervals", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")


def calibration_block(s: Shown) -> Block:
    """One row of three panels for a calibration file."""
    summ = s.config("calibration_summary") or {}
    smp = (s.config("sampler") or {}).get("name", "?")
    title = (f"{s.where()} — calibration of the {smp} sampler on {summ.get('pairs', '?')} pairs "
             f"({summ.get('num_samples', '?')} draws each), {s.operator.get('name', '?')} operator; "
             f"90 % coverage raw {summ.get('coverage_90', float('nan')):.3f}, conformal "
             f"{summ.get('calibrated_coverage_90', float('nan')):.3f}")

    def draw(target) -> None:
        axes = target.subplots(1, 3)
        _sbc(axes[0], s)
        _tarp(axes[1], s)
        _coverage(axes[2], s)

    return Block(title, 3 * CELL[0] + 2.0, CELL[1] + 0.6 + TITLE_HEIGHT, draw)
