"""Split-conformal recalibration of credible intervals: pure functions on NumPy arrays.

The nonconformity score of a truth x under a posterior with mean μ and standard deviation σ is the
normalised residual s = |x − μ| / σ, per coordinate.  From n calibration pairs, the calibrated central
interval of mass m is μ ± q̂_m σ, with q̂_m the ⌈(n + 1) m⌉-th smallest score.  For pairs exchangeable with
the calibration pairs (drawn from the same prior, operator and noise), it covers a fresh truth with
probability at least m, and at most m + 1/(n + 1) when the scores have no ties, whatever the sampler's
own calibration.

Vector problems get one q̂_m per parameter (each parameter's intervals are calibrated on its own).  Image
problems pool the pixels: one q̂_m for every pixel, so the guarantee is on the share of pixels covered in a
fresh image, with n the pooled count; correlation between the pixels of one image makes the effective n
smaller than N·P, and the finite-sample bound approximate.

The normalised residual, not the rank of x under the samples, is the score because it keeps working when
a sampler is so over-confident that the truth falls outside all of its draws (the rank then saturates at
0 or S and a level beyond the draws cannot be read off).

References:
    Vovk, Gammerman, Shafer, Algorithmic Learning in a Random World, Springer (2005), ch. 2 (split conformal);
    Lei, G'Sell, Rinaldo, Tibshirani, Wasserman, Distribution-free predictive inference for regression,
    JASA 113 (2018) (normalised residual scores).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError

__all__ = ["residual_scores", "conformal_scales", "calibrated_quantiles", "STD_FLOOR"]

#: Posterior standard deviations are floored at this share of the largest one (a pixel with σ = 0 would
#: otherwise give an infinite score).
STD_FLOOR = 1e-6


def _floored(std: np.ndarray) -> np.ndarray:
    top = float(np.max(std)) if std.size else 0.0
    return np.maximum(std, STD_FLOOR * top if top > 0 else STD_FLOOR)


def residual_scores(mean: np.ndarray, std: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Normalised residuals |x − μ| / σ: three arrays (N, *shape) -> (N, *shape) float64."""
    return np.abs(truth.astype(np.float64) - mean) / _floored(std.astype(np.float64))


def conformal_scales(scores: np.ndarray, masses, pooled: bool) -> np.ndarray:
    """The conformal quantiles q̂_m: scores (N, k) -> (M, k), or (M, 1) pooled over the k columns.

    A mass too large for n (⌈(n + 1) m⌉ > n, i.e. n < m / (1 − m)) gets an infinite q̂: no finite interval
    has the guarantee; :func:`calibrated_quantiles` refuses to use it.
    """
    s = scores.reshape(-1, 1) if pooled else scores.reshape(scores.shape[0], -1)
    n = s.shape[0]
    srt = np.sort(s, axis=0)
    out = []
    for m in masses:
        r = math.ceil((n + 1) * float(m))
        out.append(srt[r - 1] if r <= n else np.full(s.shape[1], np.inf))
    return np.stack(out)


def calibrated_quantiles(mean: np.ndarray, std: np.ndarray, levels, masses, scales: np.ndarray) -> np.ndarray:
    """Calibrated quantile maps at ``levels``: mean, std (N, *shape) -> (N, Q, *shape) float32.

    Level a < 1/2 is the lower end of the calibrated interval of mass 1 − 2a, μ − q̂ σ; a > 1/2 the upper end
    of mass 2a − 1; a = 1/2 is μ.  ``scales`` (M, k) at ``masses`` (M,) are per coordinate (k = the
    coordinates of one item) or pooled (k = 1).

    Raises:
        ConfigError: for a level whose mass the calibration does not hold.
    """
    known = [round(float(m), 6) for m in masses]
    sd = _floored(std.astype(np.float64))
    per_item = scales.shape[1]
    out = []
    for a in levels:
        m = round(abs(2 * float(a) - 1), 6)
        if m == 0:
            out.append(mean.astype(np.float64))
            continue
        if m not in known:
            raise ConfigError(f"quantile level {a} needs the calibrated interval of mass {m}, which the calibration "
                              f"file does not hold (it has {', '.join(map(str, known))}); rerun `invsolve calibrate` "
                              "with that mass, or choose --quantile levels it holds")
        q = scales[known.index(m)]
        if not np.all(np.isfinite(q)):
            raise ConfigError(f"quantile level {a} needs the calibrated interval of mass {m}, for which the calibration "
                              f"had too few pairs (at least {math.ceil(m / (1 - m))} needed); rerun `invsolve "
                              "calibrate` with more --pairs, or choose other --quantile levels")
        q = q.reshape(mean.shape[1:]) if per_item > 1 else q[0]
        sign = -1.0 if a < 0.5 else 1.0
        out.append(mean + sign * q * sd)
    return np.stack(out, axis=1).astype(np.float32)
