"""Calibration files (``invsolve calibrate --output cal.h5``): writing and reading (the check that a posterior
run is the one a file calibrated is :func:`invsolve.calibration.record.check_matches`).

A calibration file is an invsolve result (:mod:`invsolve.io.hdf5`) with ``kind = "calibration"``::

    /ranks             int64   (N, k)      SBC ranks of the k test statistics, 0 … num_samples
    /sbc_pvalues       float64 (k,)        χ² p-values of the ranks' uniformity
    /sbc_ks_pvalues    float64 (k,)        sbi's KS p-values of the same ranks
    /tarp_alpha        float64 (B + 1,)    TARP credibility grid
    /tarp_ecp          float64 (B + 1,)    TARP expected coverage
    /masses            float64 (M,)        credible masses
    /coverage          float64 (M, c)      raw coverage of the central intervals (c = d, or 1 pooled)
    /contraction       float64 (k,)        posterior contraction per statistic
    /conformal_scales  float64 (M, c)      conformal q̂ per mass (normalised residual score)
    /holdout_coverage  float64 (M,)        conformal coverage on held-out halves

and the root attributes ``statistics`` (JSON list of the k names), ``num_samples``, ``vector``, ``sampler``,
``operator``, ``noise`` (JSON specs), ``model_digests`` (JSON: SHA-256 of the sampler or prior file),
``calibration_summary`` (JSON: the headline numbers) and the usual provenance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError

__all__ = ["save_calibration", "load_calibration", "DATASETS"]

DATASETS = ("ranks", "sbc_pvalues", "sbc_ks_pvalues", "tarp_alpha", "tarp_ecp", "masses", "coverage", "contraction",
            "conformal_scales", "holdout_coverage")


def save_calibration(cal, path: str | Path, overwrite: bool = False) -> Path:
    """Write a :class:`invsolve.calibration.record.Calibration` atomically; refuse an existing file without
    ``overwrite``."""
    from datetime import datetime, timezone

    from .._version import __version__
    from ..io.hdf5 import write_result

    data = {"ranks": cal.ranks, "sbc_pvalues": cal.pvalues, "sbc_ks_pvalues": cal.ks_pvalues, "tarp_alpha": cal.tarp_alpha, "tarp_ecp": cal.tarp_ecp,
            "masses": cal.masses, "coverage": cal.coverage, "contraction": cal.contraction,
            "conformal_scales": cal.scales, "holdout_coverage": cal.holdout_coverage}
    attrs = {"kind": "calibration", "statistics": list(cal.statistics), "num_samples": int(cal.num_samples),
             "vector": bool(cal.vector), "sampler": cal.sampler, "operator": cal.operator, "noise": cal.noise,
             "model_digests": cal.model_digests, "calibration_summary": cal.summary(), "seed": int(cal.seed),
             "timings": cal.timings, "invsolve_version": __version__,
             "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    return write_result(path, data, attrs, overwrite=overwrite)


def load_calibration(path: str | Path):
    """Read a calibration file back as a :class:`invsolve.calibration.record.Calibration`."""
    from .record import Calibration
    from ..io.hdf5 import read_result

    st = read_result(path)
    if st.attrs.get("kind") != "calibration":
        raise DataError(f"{path} is an invsolve {st.attrs.get('kind')!r} file, not a calibration; create one with "
                        "`invsolve calibrate`")
    missing = [k for k in DATASETS if k not in st.datasets]
    if missing:
        raise DataError(f"{path} is a calibration file without /{missing[0]}; it is damaged, re-create it with "
                        "`invsolve calibrate`")
    d, a = st.datasets, st.attrs
    M = len(d["masses"])
    if d["conformal_scales"].ndim != 2 or d["conformal_scales"].shape[0] != M or np.isnan(d["conformal_scales"]).any():
        raise DataError(f"{path} has conformal scales of shape {d['conformal_scales'].shape} for {M} masses (or NaN "
                        "in them); re-create it with `invsolve calibrate`")
    return Calibration(
        statistics=list(a.get("statistics") or []), ranks=d["ranks"], num_samples=int(a.get("num_samples", 0)),
        pvalues=d["sbc_pvalues"], ks_pvalues=d["sbc_ks_pvalues"], tarp_alpha=d["tarp_alpha"], tarp_ecp=d["tarp_ecp"], masses=d["masses"],
        coverage=d["coverage"], contraction=d["contraction"], scales=d["conformal_scales"],
        holdout_coverage=d["holdout_coverage"], sampler=a.get("sampler") or {}, operator=a.get("operator") or {},
        noise=a.get("noise") or {}, model_digests=a.get("model_digests") or {}, vector=bool(a.get("vector")),
        seed=int(a.get("seed") or 0), timings=a.get("timings") or {})
