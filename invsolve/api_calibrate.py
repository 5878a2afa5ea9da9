"""Python API of ``invsolve calibrate``: calibration diagnostics of any posterior sampler over pairs (x, y),
and the conformal scales that recalibrate its credible intervals.

Example:
    >>> from invsolve import api_calibrate as ac
    >>> pairs = ac.simulate_pairs("s.pt", 200, seed=1)              # doctest: +SKIP
    >>> cal = ac.calibrate(pairs, sampler_file="s.pt", num_samples=100)  # doctest: +SKIP
    >>> cal.summary()["sbc_pvalue"]                                  # doctest: +SKIP
    >>> ac.save_calibration(cal, "cal.h5")                           # doctest: +SKIP
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .calibration.record import (Calibration, apply_calibration, file_digest,  # noqa: F401  (re-exported)
                                 requested_settings)
from .calibration.statistics import DEFAULT_MASSES
from .errors import ConfigError, DataError
from .methods import no_track

__all__ = ["Calibration", "calibrate", "simulate_pairs", "apply_calibration", "file_digest"]


def simulate_pairs(sampler_file: str, pairs: int, *, images=None, seed: int = 0, device: str = "auto"):
    """``pairs`` pairs (x, y) drawn as a trained sampler's training data was: from its vector prior, or as
    random crops of ``images`` (files, globs, ``FILE.h5:/stack``: held-out images of the same kind) at its
    image size; pushed through its operator and noise.  Returns an :class:`invsolve.api.Measurement` with
    the x as ground truth."""
    import torch

    from .api import simulate
    from .samplers.priors import training_prior
    from .config import check_seed
    from .samplers import load_sampler
    from .samplers.sources import ImageSource, read_image_set

    seed = check_seed(seed)
    if isinstance(pairs, bool) or not isinstance(pairs, (int, np.integer)) or pairs < 2:
        raise ConfigError(f"pairs must be an integer of at least 2, got {pairs!r}; e.g. pairs=200")
    smp = load_sampler(sampler_file, "cpu")
    g = torch.Generator().manual_seed(seed)
    if smp.vector:
        if images is not None:
            raise ConfigError(f"{sampler_file} is a vector sampler; its pairs come from its training prior: drop images")
        pr = training_prior(smp)
        if pr is None:
            raise DataError(f"{sampler_file} records no training prior; simulate pairs with `invsolve simulate` "
                            "and pass the file instead")
        x = pr.sample(int(pairs), g).numpy()
    else:
        if images is None:
            raise ConfigError(f"{sampler_file} is an image sampler: give images= (held-out images to crop the pairs "
                              "from), or pass pairs simulated with `invsolve simulate`")
        imgs, _ = read_image_set(images)
        side = int(smp.operator.domain_shape[0])
        x = ImageSource(imgs, side, smp.operator, smp.noise).draw(int(pairs), g)[0].numpy()
    op, nz = smp.operator.spec(), dict(smp.noise.spec())
    # the noise gets a stream of its own: seeded like x's, its normal draws would repeat those that made x
    noise_seed = int(np.random.SeedSequence([seed, 1]).generate_state(1)[0])
    m = simulate(x, operator=op["name"], operator_params=op["params"], noise=nz.pop("name"), noise_params=nz,
                 seed=noise_seed, device=device, source=f"pairs for {sampler_file}")
    m.seed = seed
    return m


def _statistics(truth: np.ndarray, samples: np.ndarray, vector: bool, projections: int, pixels: int, seed: int):
    """Test statistics of truths (N, *x) and draws (N, S, *x): names, (N, k), (N, S, k)."""
    from .calibration.statistics import image_statistics

    N, S = samples.shape[:2]
    if vector:
        return [f"x[{j}]" for j in range(truth.shape[1])], truth, samples
    T, names = image_statistics(truth.shape[1:], projections, pixels, seed)
    return names, truth.reshape(N, -1) @ T.T, samples.reshape(N, S, -1) @ T.T


def _holdout(scores: np.ndarray, masses, pooled: bool) -> np.ndarray:
    """Coverage of the conformal intervals on held-out pairs, two-fold: each half's scales from the other half."""
    from .calibration.conformal import conformal_scales

    n = scores.shape[0]
    a, b = np.arange(n) < n // 2, np.arange(n) >= n // 2
    cover = []
    for fit, test in ((a, b), (b, a)):
        q = conformal_scales(scores[fit].reshape(fit.sum(), -1), masses, pooled)  # (M, c)
        st = scores[test].reshape(test.sum(), -1)
        c = (st[None] <= q[:, None, :]).mean((1, 2))
        cover.append(np.where(np.isfinite(q).all(1), c, np.nan))
    return np.mean(cover, axis=0)


def calibrate(measurement, *, sampler: str | None = None, sampler_file: str | None = None, prior: str | None = None,
              prior_file: str | None = None, sampler_params: dict[str, Any] | None = None,
              num_samples: int | None = None, chains: int | None = None, masses=DEFAULT_MASSES,
              projections: int = 8, pixels: int = 8, bins: int | None = None, seed: int = 0, device: str = "auto",
              batch_size: int = 8, track=no_track, precision: str = "auto", allow_partial: bool = False) -> Calibration:
    """Calibration diagnostics and conformal scales of a sampler over the pairs of ``measurement``.

    ``measurement`` holds N pairs: its data y and, as ground truth, the x each was simulated from (from
    :func:`simulate_pairs` or ``invsolve simulate``).  The x should be draws from the prior the sampler
    assumes, or the SBC ranks and TARP curve test that mismatch as well.  The sampler is chosen as in
    :func:`invsolve.api.sample_posterior` (a trained ``sampler_file``, ``sampler="mcmc"``, or Langevin with a
    patch ``prior``), which draws S = ``num_samples`` (Langevin, MCMC: chains × kept states) per pair.

    Returns:
        A :class:`Calibration`.
    """
    from .api import Measurement, sample_posterior
    from .results.files import expect
    from .calibration.conformal import conformal_scales, residual_scores
    from .calibration.statistics import (contraction, coverage_curve, rank_chi2_pvalues, rank_pvalues, sbc_ranks,
                                         tarp)
    from .config import check_seed

    t0 = time.perf_counter()
    expect(measurement, Measurement, "calibrate's measurement")
    seed = check_seed(seed)
    truth = measurement.ground_truth
    if truth is None:
        raise DataError("calibration needs pairs (x, y): a measurement with its ground truth, e.g. from `invsolve "
                        "simulate` or `invsolve calibrate --pairs N`")
    for name, v, low in (("projections", projections, 0), ("pixels", pixels, 0), ("bins", 2 if bins is None else bins, 2)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
            raise ConfigError(f"calibrate's {name} must be an integer of at least {low}, got {v!r}")
    masses = np.asarray(sorted({round(float(m), 6) for m in masses}), np.float64)
    if masses.size == 0 or masses.min() <= 0 or masses.max() >= 1:
        raise ConfigError(f"credible masses must lie strictly between 0 and 1, got {masses.tolist()}")
    if len(truth) < 4:
        raise DataError(f"calibration needs at least 4 pairs, the measurement holds {len(truth)}")
    post = sample_posterior(measurement, sampler=sampler, sampler_file=sampler_file, prior=prior,
                            prior_file=prior_file, sampler_params=sampler_params, num_samples=num_samples,
                            chains=chains, levels=(), keep_samples=True, seed=seed, device=device,
                            batch_size=batch_size, track=track, precision=precision, allow_partial=allow_partial)
    samples = post.summary.samples.astype(np.float64)
    truth = truth.astype(np.float64)
    vector = truth.ndim == 2
    if not vector and (projections + pixels) == 0:
        raise ConfigError("image calibration needs test statistics: give projections or pixels above 0")
    names, t_stat, s_stat = _statistics(truth, samples, vector, projections, pixels, seed)
    ranks = sbc_ranks(s_stat, t_stat)
    flat_t, flat_s = truth.reshape(len(truth), -1), samples.reshape(*samples.shape[:2], -1)
    alpha, ecp = tarp(flat_s, flat_t, seed, bins)
    cov = coverage_curve(flat_s, flat_t, masses)  # (M, P)
    scores = residual_scores(post.summary.mean, post.summary.std, truth).reshape(len(truth), -1)
    spec = {**post.sampler, "requested": requested_settings(sampler_params, chains)}
    digests = {k: file_digest(spec[k]) for k in ("file", "prior_file") if spec.get(k) is not None}
    return Calibration(
        statistics=names, ranks=ranks, num_samples=int(samples.shape[1]),
        pvalues=rank_chi2_pvalues(ranks, samples.shape[1]), ks_pvalues=rank_pvalues(ranks, samples.shape[1]),
        tarp_alpha=alpha, tarp_ecp=ecp, masses=masses,
        coverage=cov if vector else cov.mean(1, keepdims=True), contraction=contraction(s_stat, t_stat),
        scales=conformal_scales(scores, masses, pooled=not vector),
        holdout_coverage=_holdout(scores, masses, pooled=not vector), sampler=spec,
        operator=measurement.operator, noise=measurement.noise, model_digests=digests, vector=vector, seed=seed,
        timings={**post.timings, "calibrate": time.perf_counter() - t0})
