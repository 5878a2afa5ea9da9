"""The Python API of the metrology tools: EM-DeepGEM noise estimation and MCMC
posteriors for vector problems (``surrogate``, ``gixrf``).

An ``estimate-noise`` output is an invsolve HDF5 file with ``kind =
"noise_estimate"``; its layout is described with the writer,
:func:`invsolve.results.files.save_noise_estimate`.

Example:
    >>> from invsolve import api, api_metrology as am
    >>> m = api.simulate(x, "surrogate", noise="mixed", noise_params={"a": 0.005, "b": 0.1})  # doctest: +SKIP
    >>> est = am.estimate_noise(m, settings={"iterations": 100})  # doctest: +SKIP
    >>> est.a, est.b  # doctest: +SKIP
"""

from __future__ import annotations

import numbers
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import check_seed, validate_params
from .device import resolve_device
from .errors import CheckpointError, ConfigError
from .methods import no_track
from .results import NoiseEstimate, save_noise_estimate  # noqa: F401  (re-exported)

__all__ = ["NoiseEstimate", "estimate_noise", "save_noise_estimate", "read_em_checkpoint", "mcmc_posterior",
           "check_levels"]


def check_levels(levels, allow_empty: bool = False) -> tuple[float, ...]:
    """Quantile levels as a sorted tuple of floats, or :class:`ConfigError` unless they are a non-empty sequence
    (empty too with ``allow_empty``) of numbers strictly between 0 and 1 (e.g. ``(0.05, 0.5, 0.95)``)."""
    ok = isinstance(levels, (list, tuple, np.ndarray)) and (allow_empty or len(levels) > 0) and all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) for v in levels)
    if not ok or not all(0 < float(v) < 1 for v in levels):
        shown = list(levels) if isinstance(levels, (list, tuple, np.ndarray)) else levels
        kind = "sequence" if allow_empty else "non-empty sequence"
        raise ConfigError(f"quantile levels must be a {kind} of numbers in (0, 1), e.g. (0.05, 0.5, "
                          f"0.95), got {shown!r:.80}")
    return tuple(sorted(float(v) for v in levels))


def read_em_checkpoint(path: str | Path, device="cpu") -> dict[str, Any]:
    """Load an EM checkpoint safely (``weights_only``); CheckpointError when unreadable."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"EM checkpoint not found: {p} (run without --resume first)")
    try:
        return torch.load(p, weights_only=True, map_location=device)
    except Exception as exc:
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise CheckpointError(f"{p} is not a readable EM checkpoint ({why})") from None


def estimate_noise(measurement, *, prior: dict | str | None = None, settings: dict[str, Any] | None = None,
                   seed: int = 0, device: str = "auto", checkpoint: str | Path | None = None, resume: bool = False,
                   progress=None) -> NoiseEstimate:
    """Estimate the mixed-noise (a, b) of all items of ``measurement`` jointly, with their posteriors.

    Args:
        measurement: An :class:`invsolve.api.Measurement` of a vector operator, (N, m) data.
        prior: Prior spec on the parameters (``{"name": "uniform", "low": .., "high": ..}``); None: the
            operator's own box.
        settings: Fields of :class:`invsolve.em.EMSettings`.
        seed: Seed of every random draw.
        device: auto, cpu or cuda.
        checkpoint: Checkpoint file (None: no checkpoints).
        resume: Continue from ``checkpoint``.
        progress: ``progress(iteration, total, a, b, elbo)``.

    Returns:
        :class:`NoiseEstimate`.
    """
    from .results import Measurement
    from .results.files import expect
    from .em import EMSettings, run_em
    from .mcmc import resolve_prior_spec
    from .samplers.priors import build_prior

    expect(measurement, Measurement, "estimate_noise's measurement")
    seed = check_seed(seed)
    t0 = time.perf_counter()
    s = validate_params(EMSettings, settings or {}, "EM settings")
    dev = resolve_device(device)
    op = measurement.build_operator(dev)
    if len(op.domain_shape) != 1:
        raise ConfigError(f"estimate-noise is for vector problems (surrogate, gixrf); {op.name!r} acts on images")
    spec = resolve_prior_spec(op, prior)
    pr = build_prior(spec)
    if resume and checkpoint is None:
        raise ConfigError("--resume needs a checkpoint file (--checkpoint)")
    ckpt = read_em_checkpoint(checkpoint, dev) if resume else None
    y = torch.as_tensor(np.asarray(measurement.measurement, np.float32), device=dev)
    res = run_em(op, y, pr, s, seed=seed, checkpoint=checkpoint, resume=ckpt, progress=progress)
    return NoiseEstimate(res.a, res.b, res, measurement, pr.spec(), s.model_dump(mode="json"), seed, str(dev),
                         {"estimate_noise": time.perf_counter() - t0, "em": res.info["seconds"]})


def mcmc_posterior(measurement, prior_spec=None, params=None, levels=(0.05, 0.25, 0.5, 0.75, 0.95), seed: int = 0,
                   device: str = "auto", track=no_track):
    """MCMC posterior summaries of every measurement (see :func:`invsolve.mcmc.mcmc_posterior`).

    Arguments:
        measurement: An :class:`invsolve.api.Measurement` of a vector operator, (N, m) data.
        prior_spec: Prior spec on the parameters; None: the operator's own box.
        params: MCMC settings (``steps``, ``burn_in``, ...).
        levels: Quantile levels in (0, 1).
        seed: Seed of every random draw, 0 to 2**62.
        device: auto, cpu or cuda.
        track: Progress wrapper ``track(iterable, description)``.
    """
    from .results import Measurement
    from .results.files import expect
    from .device import make_generator
    from .mcmc import mcmc_posterior as run

    expect(measurement, Measurement, "mcmc_posterior's measurement")
    levels = check_levels(levels)
    seed = check_seed(seed)
    return run(measurement, prior_spec, params or {}, levels, make_generator(seed, resolve_device(device)), track)
