"""Calibration diagnostics of posterior samples against the truths they were drawn for: pure functions on
NumPy arrays.

Shapes: ``samples`` (N, S, k) are S posterior draws for each of N pairs, ``truth`` (N, k) the parameters (or
test statistics of images) that generated each pair.  Conventions follow sbi 0.27 where it has the same
diagnostic, so the numbers can be compared (``benchmarks/calibration.py`` checks them against it):

* an SBC rank is the number of draws strictly below the truth, 0 … S;
* its uniformity is a Kolmogorov–Smirnov test of the ranks against the continuous uniform law on [0, S];
* TARP draws one reference point per pair uniformly in the box of the truths, scales every coordinate by
  the truths' range and measures L2 distances (the grid of α differs: see :func:`tarp`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["image_statistics", "sbc_ranks", "rank_pvalues", "rank_chi2_pvalues", "ecdf_difference", "tarp", "tarp_area", "tarp_atc",
           "coverage_curve", "contraction", "DEFAULT_MASSES"]

#: Credible masses at which ``coverage_curve`` and the conformal calibration are evaluated by default.
DEFAULT_MASSES = tuple(round(0.05 * i, 2) for i in range(1, 20)) + (0.99,)


def image_statistics(shape: tuple[int, ...], projections: int, pixels: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """Fixed test statistics of images, as a matrix: (k, P) for images of P = prod(shape) pixels.

    The first ``projections`` rows are random unit directions (seeded Gaussian, then normalised), so that
    ``stats = images.reshape(N, P) @ T.T``; the next ``pixels`` rows pick single pixels at seeded random
    positions.  Returns the matrix and a name per row ("projection 0", "pixel (12, 40)", ...).
    """
    P = int(np.prod(shape))
    rng = np.random.default_rng(seed)
    rows, names = [], []
    if projections:
        u = rng.standard_normal((projections, P))
        rows.append(u / np.linalg.norm(u, axis=1, keepdims=True))
        names += [f"projection {i}" for i in range(projections)]
    if pixels:
        idx = rng.choice(P, size=min(pixels, P), replace=False)
        e = np.zeros((len(idx), P))
        e[np.arange(len(idx)), idx] = 1.0
        rows.append(e)
        names += [f"pixel {tuple(int(v) for v in np.unravel_index(i, shape))}" for i in idx]
    return np.concatenate(rows).astype(np.float64), names


def sbc_ranks(samples: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Simulation-based calibration ranks: (N, S, k), (N, k) -> (N, k) int, the draws strictly below the truth.

    For a calibrated sampler, and truths drawn from the prior it assumes, each column is uniform on 0 … S.

    References:
        Talts, Betancourt, Simpson, Vehtari, Gelman, Validating Bayesian inference algorithms with
        simulation-based calibration, arXiv 1804.06788 (2018).
    """
    return (samples < truth[:, None, :]).sum(1).astype(np.int64)


def rank_pvalues(ranks: np.ndarray, num_samples: int) -> np.ndarray:
    """Kolmogorov–Smirnov p-value of each column of ``ranks`` (N, k) against uniform on [0, S]: (k,).

    sbi's test.  The ranks are discrete (S + 1 values) and the law continuous, so their CDFs differ by up to
    1/(S + 1): with N much larger than S the test rejects calibrated samplers somewhat too often.
    :func:`rank_chi2_pvalues` has no such bias.
    """
    from scipy.stats import kstest, uniform

    law = uniform(loc=0, scale=num_samples).cdf
    return np.array([kstest(ranks[:, j], law).pvalue for j in range(ranks.shape[1])])


def rank_chi2_pvalues(ranks: np.ndarray, num_samples: int, bins: int | None = None) -> np.ndarray:
    """Pearson χ² p-value of each column of ``ranks`` (N, k) against the discrete uniform law on 0 … S: (k,).

    The S + 1 rank values are grouped into ``bins`` (default: about N / 10, at most S + 1, at least 2) runs of
    consecutive values, each bin's expected count being its share of the values; the test is exact in law up
    to the χ² approximation, whatever N and S.

    References:
        Talts et al., arXiv 1804.06788 (2018), section 4 (the rank histogram).
    """
    from scipy.stats import chisquare

    n, values = ranks.shape[0], num_samples + 1
    bins = int(min(values, max(2, n // 10))) if bins is None else int(min(values, bins))
    edges = np.linspace(0, values, bins + 1).round().astype(int)  # bin b holds the values edges[b] … edges[b+1]-1
    expected = n * np.diff(edges) / values
    out = []
    for j in range(ranks.shape[1]):
        counts = np.histogram(ranks[:, j], bins=edges - 0.5)[0]
        out.append(chisquare(counts, expected).pvalue)
    return np.array(out)


def ecdf_difference(ranks: np.ndarray, num_samples: int, points: int = 101,
                    confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ECDF of the fractional ranks minus the uniform CDF, with a simultaneous band.

    Returns ``z`` (points,) in [0, 1], ``diff`` (k, points) and ``band`` (2, points): the lower and upper
    edges of the pointwise ``confidence`` band of a uniform ECDF of N draws, Bonferroni-adjusted over the
    points, so that a calibrated sampler's curves stay inside it.

    References:
        Säilynoja, Bürkner, Vehtari, Graphical test for discrete uniformity and its applications in
        goodness-of-fit evaluation and multiple sample comparison, Statistics and Computing 32 (2022).
    """
    from scipy.stats import binom

    n = ranks.shape[0]
    z = np.linspace(0.0, 1.0, points)
    u = (ranks + 0.5) / (num_samples + 1)  # fractional ranks in (0, 1)
    diff = (u[:, :, None] <= z[None, None, :]).mean(0) - z[None, :]
    a = (1 - confidence) / points
    lo, hi = binom.ppf(a / 2, n, z) / n - z, binom.ppf(1 - a / 2, n, z) / n - z
    return z, diff, np.stack([lo, hi])


def tarp(samples: np.ndarray, truth: np.ndarray, seed: int, bins: int | None = None,
         references: np.ndarray | None = None, normalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Expected coverage by random reference points: (N, S, k), (N, k) -> ``alpha`` (bins + 1,), ``ecp``.

    For pair i, a reference point r_i is drawn uniformly in the box [min, max] of the truths; f_i is the share
    of draws strictly closer to r_i than the truth (L2, after min-max scaling every coordinate by the truths'
    range, as sbi does).  ``ecp(α)`` is the share of pairs with f_i below α on a fixed grid of ``bins``
    (default N // 10, at least 2) steps over [0, 1]; sbi takes the histogram edges over [min f, max f]
    instead, which is the same grid when some f are 0 and 1.  A calibrated sampler gives the diagonal, an
    over-confident one a curve that leaves it.

    References:
        Lemos, Coogan, Hezaveh, Perreault-Levasseur, Sampling-based accuracy testing of posterior estimators
        for general inference, ICML 2023 (arXiv 2302.03026).
    """
    s, t = samples.astype(np.float64), truth.astype(np.float64)
    bins = max(2, len(t) // 10) if bins is None else int(bins)
    lo, hi = t.min(0), t.max(0)
    if references is None:
        references = lo + (hi - lo) * np.random.default_rng(seed).random(t.shape)
    r = np.asarray(references, np.float64)
    if normalize:
        s, t, r = ((a - lo) / (hi - lo + 1e-10) for a in (s, t, r))
    d_samples = np.linalg.norm(s - r[:, None, :], axis=2)  # (N, S)
    d_truth = np.linalg.norm(t - r, axis=1)  # (N,)
    f = (d_samples < d_truth[:, None]).mean(1)
    hist, _ = np.histogram(f, bins=bins, range=(0.0, 1.0))
    ecp = np.concatenate([[0.0], np.cumsum(hist) / max(hist.sum(), 1)])
    return np.linspace(0.0, 1.0, bins + 1), ecp


def tarp_area(alpha: np.ndarray, ecp: np.ndarray) -> float:
    """The area between the TARP curve and the diagonal, ∫|ecp(α) − α| dα (0 for a calibrated sampler)."""
    gap = np.abs(ecp - alpha)
    return float(np.sum(0.5 * (gap[1:] + gap[:-1]) * np.diff(alpha)))


def tarp_atc(alpha: np.ndarray, ecp: np.ndarray) -> float:
    """sbi's signed "area to curve": Σ (ecp − α) Δα over the upper half of the grid (> 0: under-confident)."""
    mid = len(alpha) // 2
    return float(np.sum((ecp[mid:] - alpha[mid:]) * (alpha[1] - alpha[0])))


def coverage_curve(samples: np.ndarray, truth: np.ndarray, masses=DEFAULT_MASSES) -> np.ndarray:
    """Coverage of the central credible intervals of each mass, from the draws: (N, S, k), (N, k) -> (M, k).

    The interval of mass m runs between the draws' empirical quantiles at (1 − m)/2 and (1 + m)/2.
    """
    m = np.asarray(masses, np.float64)
    levels = np.concatenate([(1 - m) / 2, (1 + m) / 2])
    q = np.quantile(samples.astype(np.float64), levels, axis=1)  # (2M, N, k)
    lo, hi = q[: len(m)], q[len(m):]
    return ((truth[None] >= lo) & (truth[None] <= hi)).mean(1)


def contraction(samples: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Posterior contraction 1 − E[Var(x | y)] / Var(x) per coordinate: (N, S, k), (N, k) -> (k,).

    The prior variance is that of the truths; 0 means the data taught nothing, 1 a point estimate.

    References:
        Schad, Betancourt, Vasishth, Toward a principled Bayesian workflow in cognitive science,
        Psychological Methods 26(1) (2021).
    """
    prior = truth.astype(np.float64).var(0, ddof=1)
    post = samples.astype(np.float64).var(1, ddof=1).mean(0)
    return 1.0 - post / np.where(prior > 0, prior, np.nan)
