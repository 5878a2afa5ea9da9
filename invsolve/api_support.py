"""Helpers of :mod:`invsolve.api`: the default classical method of an operator, the refusal of non-finite
results and the prior of a ``--prior``/``--prior-file``/``--zero-shot`` run."""

from __future__ import annotations

import time

import numpy as np

from .errors import ConfigError, DataError, OperatorError

__all__ = ["default_method", "check_result"]


def check_result(arrays, what: str, fix: str) -> None:
    """Raise :class:`DataError` when any of ``arrays`` holds NaN or infinite values (a diverged run): nothing
    non-finite is written as a result."""
    for a in arrays:
        if not np.isfinite(a).all():
            bad = float(np.mean(~np.isfinite(a)))
            raise DataError(f"{what} has non-finite values ({bad:.0%} NaN or Inf), so nothing was written; {fix}")


def default_method(operator) -> str:
    """The classical method ``reconstruct`` uses without ``method``: ``fbp`` for CT, ``bicubic`` for
    superresolution, ``tv`` for other images, ``tikhonov`` for linear parameter vectors.

    Raises:
        OperatorError: for nonlinear parameter vectors (gixrf, surrogate), which have no classical
            reconstruction; their parameters come from ``sample-posterior``.
    """
    kind = operator.kind
    if len(operator.domain_shape) != 2:
        if operator.linear:
            return "tikhonov"
        raise OperatorError(f"operator {operator.name!r} is nonlinear in a {operator.domain_shape[0]}-parameter "
                            "vector and has no classical reconstruction; estimate its parameters with "
                            "`invsolve sample-posterior --sampler mcmc` (or a trained --sampler-file)")
    return {"ct": "fbp", "superres": "bicubic"}.get(kind, "tv")


def _resolve_prior(prior, prior_file, zero_shot, measurement, op, prior_params, seed, dev, track, timings,
                   allow_partial: bool = False):
    """Load a prior file, or train a zero-shot patch flow on the observation itself (``prior`` None: the
    kind the file holds)."""
    from .api_priors import load_prior, train_prior
    from .priors import PRIORS, load_all

    load_all()
    if prior is not None and prior not in PRIORS:
        PRIORS.get(prior)  # unknown: the error lists the valid names

    if zero_shot:
        if op.kind != "superres":
            raise OperatorError(f"--zero-shot needs a superres measurement, not {op.name!r}")
        if prior not in (None, "patchnr"):
            raise OperatorError("--zero-shot trains a patchnr prior; use --prior patchnr")
        if prior_file is not None:
            raise OperatorError("--zero-shot trains its prior on the observation; drop --prior-file")
        t = time.perf_counter()
        params = {"steps": 10000, "batch_size": 128, "lr": 1e-4, **(prior_params or {})}
        steps = int(params.pop("steps"))
        try:
            pr, _ = train_prior("patchnr", measurement.measurement, None, params, steps=steps, seed=seed,
                                device=str(dev), track=track)
        except ConfigError as exc:  # its list of valid keys lacks steps, which --prior-param takes here
            raise ConfigError(f"{exc}; --prior-param also takes steps (default 10000)") from None
        timings["zero_shot_training"] = time.perf_counter() - t
        return pr.freeze()
    if prior_file is None:
        raise OperatorError(f"--prior {prior} needs --prior-file FILE (train one with `invsolve train-prior`)")
    pr = load_prior(prior_file, device=str(dev), allow_partial=allow_partial)
    if prior is not None and pr.name != prior:
        raise OperatorError(f"{prior_file} holds a {pr.name!r} prior, not {prior!r}; use --prior {pr.name}")
    from .priors.base import check_training

    check_training(pr, prior_file)
    return pr
