"""The calibration of a sampler (:class:`Calibration`), the digest that ties it to its model file, and its
application to a posterior run's quantiles.

Both :mod:`invsolve.api_calibrate` (which computes calibrations) and :func:`invsolve.api.sample_posterior`
(which applies them) build on this module; it imports neither.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from ..errors import ConfigError

__all__ = ["Calibration", "apply_calibration", "check_matches", "file_digest", "requested_settings"]


@dataclass
class Calibration:
    """Calibration of one sampler on N pairs, with S posterior draws each.

    Attributes:
        statistics: Names of the k test statistics: the parameters of a vector problem; for images, fixed
            random projections and pixels (:func:`invsolve.calibration.statistics.image_statistics`).
        ranks: (N, k) SBC ranks, 0 … S; ``num_samples`` is S.
        pvalues: (k,) χ² p-values of the ranks' uniformity (:func:`~invsolve.calibration.statistics.rank_chi2_pvalues`);
            ``ks_pvalues`` (k,) sbi's KS p-values, biased towards rejection when N ≫ S.
        tarp_alpha, tarp_ecp: (B + 1,) the TARP expected-coverage curve (on whole x).
        masses: (M,) credible masses; ``coverage`` (M, c) the raw coverage of the sampler's central intervals
            (c = d per parameter for vectors, 1 pooled over pixels for images).
        contraction: (k,) posterior contraction per statistic.
        scales: (M, c) conformal q̂ per mass (normalised residual score; see
            :mod:`invsolve.calibration.conformal`).
        holdout_coverage: (M,) coverage of the conformal intervals on held-out pairs (two-fold cross-fit:
            each half calibrated on the other), pooled over coordinates; NaN where a half is too small.
        sampler, operator, noise: Specs of what was calibrated; ``model_digests`` the SHA-256 of its files.
        vector: Whether x is a parameter vector.
    """

    statistics: list[str]
    ranks: np.ndarray
    num_samples: int
    pvalues: np.ndarray
    tarp_alpha: np.ndarray
    tarp_ecp: np.ndarray
    masses: np.ndarray
    coverage: np.ndarray
    contraction: np.ndarray
    scales: np.ndarray
    holdout_coverage: np.ndarray
    sampler: dict[str, Any]
    operator: dict[str, Any]
    noise: dict[str, Any]
    ks_pvalues: np.ndarray | None = None
    model_digests: dict[str, str] = field(default_factory=dict)
    vector: bool = False
    seed: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def pairs(self) -> int:
        return int(self.ranks.shape[0])

    def summary(self) -> dict[str, Any]:
        """The headline numbers: SBC χ² p-value (Bonferroni over the statistics), TARP area, raw and calibrated
        coverage at 0.5 and 0.9, mean contraction."""
        from .statistics import tarp_area

        out: dict[str, Any] = {"pairs": self.pairs, "num_samples": self.num_samples,
                               "sbc_pvalue": float(min(1.0, len(self.pvalues) * float(np.min(self.pvalues)))),
                               "tarp_area": tarp_area(self.tarp_alpha, self.tarp_ecp),
                               "contraction": float(np.nanmean(self.contraction))}
        ms = [round(float(m), 6) for m in self.masses]
        for m in (0.5, 0.9):
            if m in ms:
                i = ms.index(m)
                out[f"coverage_{round(m * 100)}"] = float(np.mean(self.coverage[i]))
                out[f"calibrated_coverage_{round(m * 100)}"] = float(self.holdout_coverage[i])
        return out


    def to_json(self) -> dict[str, Any]:
        """Everything but the ranks, as JSON types: :meth:`summary` plus the per-statistic p-values and
        contraction, the coverage curves and the TARP curve."""
        return {**self.summary(), "sampler": self.sampler.get("name"), "statistics": list(self.statistics),
                "sbc_pvalues": self.pvalues.tolist(),
                "sbc_ks_pvalues": None if self.ks_pvalues is None else self.ks_pvalues.tolist(),
                "contraction_per_statistic": self.contraction.tolist(), "masses": self.masses.tolist(),
                "coverage_per_mass": self.coverage.mean(1).tolist(),
                "calibrated_coverage_per_mass": self.holdout_coverage.tolist(),
                "tarp_alpha": self.tarp_alpha.tolist(), "tarp_ecp": self.tarp_ecp.tolist()}


def file_digest(path: str | None) -> str | None:
    """SHA-256 (hex) of a model file's bytes, None without a file.  A batch run asks once per batch: the digest
    is remembered while the file's size and modification time stay the same."""
    if path is None:
        return None
    st = os.stat(path)
    return _digest(str(path), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=64)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def requested_settings(sampler_params: dict[str, Any] | None, chains: int | None) -> dict[str, Any]:
    """The sampler settings a run asked for (not what it adapted): a calibration holds for these only."""
    return {"sampler_params": dict(sampler_params or {}), "chains": chains}


def apply_calibration(summary, cal: Calibration, path: str, spec: dict[str, Any], measurement,
                      requested: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    """Calibrated quantiles (N, Q, *x) of a posterior ``summary`` at its levels, from ``cal`` (read from
    calibration file ``path``), after checking that it calibrated this sampler (``spec``), model file,
    operator, noise and ``requested`` settings (:func:`requested_settings`); and the record of the calibration
    for the result's sampler settings."""
    from .conformal import calibrated_quantiles

    check_matches(cal, path, spec, measurement.operator, measurement.noise, requested)
    q = calibrated_quantiles(summary.mean, summary.std, summary.levels, cal.masses, cal.scales)
    return q, {"file": str(path), "sha256": file_digest(path), "pairs": cal.pairs, "score": "normalized_residual"}


def check_matches(cal, path, sampler_spec: dict[str, Any], operator: dict[str, Any], noise: dict[str, Any],
                  requested: dict[str, Any]) -> None:
    """Refuse to apply calibration ``path`` to a run whose sampler, model file, operator, noise or requested
    sampler settings (``requested``: ``{"sampler_params", "chains"}``) differ.

    Raises:
        ConfigError: naming what differs and how to fix it.
    """
    from ..config import canonical

    fix = "calibrate this sampler on this problem with `invsolve calibrate`, or drop --calibration"
    name = sampler_spec.get("name")
    if cal.sampler.get("name") != name:
        raise ConfigError(f"--calibration {path} calibrates the {cal.sampler.get('name')!r} sampler, this run uses "
                          f"{name!r}; {fix}")
    for key, digest in cal.model_digests.items():
        if file_digest(sampler_spec.get(key)) != digest:
            raise ConfigError(f"--calibration {path} was made with another {key.replace('_', ' ')} than "
                              f"{sampler_spec.get(key)} (its SHA-256 differs); {fix}")
    for what, mine, theirs in (("operator", operator, cal.operator), ("noise", noise, cal.noise)):
        if canonical(mine) != canonical(theirs):
            raise ConfigError(f"--calibration {path} was made for the {what} {theirs}, this measurement has {mine}; {fix}")
    theirs = cal.sampler.get("requested")
    if theirs is not None and canonical(theirs) != canonical(requested):
        raise ConfigError(f"--calibration {path} calibrates the sampler run with {theirs}, this run asks {requested} "
                          f"(-S settings, --chains); {fix}")
