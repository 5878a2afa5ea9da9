"""The Python API behind the command line.

Array-level functions (:func:`simulate`, :func:`reconstruct`, :func:`evaluate`)
take and return NumPy arrays; file-level helpers read inputs and write HDF5
results with their configs and provenance.

Example:
    >>> import numpy as np
    >>> from invsolve import api
    >>> x = np.zeros((1, 32, 32), np.float32); x[0, 8:24, 8:24] = 1
    >>> m = api.simulate(x, operator="superres", seed=0)
    >>> m.measurement.shape
    (1, 8, 8)
    >>> r = api.reconstruct(m, method="bicubic")
    >>> r.images.shape
    (1, 32, 32)
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from .device import batch_generator, make_generator, resolve_device
from .errors import ConfigError, DataError, OperatorError, ShapeError
from .methods import build_method, no_track
from .noise import build_noise
from .operators import build_operator, operator_entry
from .operators.noise_preset import resolve_noise
from .api_evaluate import Estimate, coverage, evaluate, evaluate_vectors, load_estimate  # noqa: F401  (re-exported)
from .results import (Measurement, Posterior, Reconstruction, expect, load_measurement, save_measurement,  # noqa: F401
                      save_posterior, save_reconstruction)
from .api_support import _resolve_prior, check_result, default_method  # noqa: F401

__all__ = [
    "Measurement",
    "Reconstruction",
    "simulate",
    "reconstruct",
    "evaluate",
    "evaluate_vectors",
    "load_measurement",
    "save_measurement",
    "save_reconstruction",
    "load_estimate",
    "resolve_noise",
    "Posterior",
    "sample_posterior",
    "save_posterior",
    "default_method",
    "Estimate",
    "coverage",
]


def _check_call(fn: str, batch_size: int, **params) -> None:
    """Refuse arguments of the wrong kind at the API's door: parameter tables that are not dicts, a batch size
    below 1 (instead of an AttributeError or TypeError from deep inside)."""
    for name, value in params.items():
        if value is not None and not isinstance(value, dict):
            raise ConfigError(f"{fn}'s {name} must be a dict of settings, e.g. {{'lam': 10}}; got {value!r:.60}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"{fn}'s batch_size must be an integer of at least 1, got {batch_size!r}")


def _batches(n: int, size: int):
    for i in range(0, n, size):
        yield slice(i, min(i + size, n))


def simulate(
    images: np.ndarray,
    operator: str = "ct",
    operator_params: dict[str, Any] | None = None,
    noise: str | None = None,
    noise_params: dict[str, Any] | None = None,
    seed: int = 0,
    device: str = "auto",
    batch_size: int = 8,
    source: str = "",
    single: bool | None = None,
) -> Measurement:
    """Simulate y = noise(A x) for an image (H, W) or a stack (N, H, W).

    For a vector operator (``domain_ndim = 1``, e.g. ``linear``) the input is
    a vector (d,) or N vectors (N, d).
    """
    t0 = time.perf_counter()
    _check_call("simulate", batch_size, operator_params=operator_params, noise_params=noise_params)
    if isinstance(images, (str, bytes)) or images is None:
        raise DataError(f"simulate takes an image array (H, W), a stack (N, H, W) or vectors, not {images!r:.60}; "
                        "read files with invsolve.io.images.read_images")
    try:
        arr = np.asarray(images, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise DataError(f"simulate's images are not a numeric array ({str(exc).splitlines()[0][:100]}); give an "
                        "(H, W) image, an (N, H, W) stack or (N, d) vectors") from None
    if arr.size == 0:
        raise ShapeError(f"simulate's images are empty (shape {arr.shape}); give at least one image or vector")
    ndim = operator_entry(operator).cls.domain_ndim
    if arr.ndim == ndim:
        arr, single = arr[None], True if single is None else single
    if arr.ndim != ndim + 1:
        want = "(d,) or (N, d) vectors" if ndim == 1 else "(H, W) or (N, H, W)"
        raise ShapeError(f"{'inputs' if ndim == 1 else 'images'} have shape {arr.shape}; expected {want}")
    if not np.isfinite(arr).all():
        raise DataError("images contain NaN or infinite values; clean or fill them first")
    dev = resolve_device(device)
    op = build_operator(operator, operator_params, arr.shape[1:]).to(dev)
    op.check_inputs(arr)  # e.g. gixrf: layer parameters inside their bounds and physical limits
    nspec = resolve_noise(operator, noise, noise_params)
    nm = build_noise(nspec)
    gen = make_generator(seed, dev)
    out = []
    with torch.no_grad():
        for sl in _batches(len(arr), batch_size):
            x = torch.from_numpy(arr[sl]).to(dev)
            out.append(nm.sample(op(x), generator=gen).cpu().numpy())
    check_result(out, "the simulated measurement", "check the operator and noise parameters (-P, -N)")
    return Measurement(
        measurement=np.concatenate(out).astype(np.float32),
        operator=op.spec(),
        noise=nspec,
        arrays=op.arrays(),
        ground_truth=arr,
        single=bool(single),
        source=source,
        seed=seed,
        device=str(dev),
        timings={"simulate": time.perf_counter() - t0},
    )


def reconstruct(
    measurement: Measurement,
    method: str | None = None,
    method_params: dict[str, Any] | None = None,
    seed: int = 0,
    device: str = "auto",
    batch_size: int = 8,
    track=no_track,
    prior: str | None = None,
    prior_file: str | None = None,
    zero_shot: bool = False,
    prior_params: dict[str, Any] | None = None,
    first_batch: int = 0,
    allow_partial: bool = False,
) -> Reconstruction:
    """Reconstruct every item of ``measurement``: (N, *range_shape) data -> :class:`Reconstruction` with
    images (N, *image_shape).

    Without a prior: a classical method (default ``fbp`` for CT, ``bicubic`` for
    superresolution, see :func:`default_method`).  With ``prior`` (and ``prior_file``, or
    ``zero_shot`` for superresolution): the MAP estimate with that patch prior.

    Batch ``k`` (``batch_size`` items) draws its randomness from a generator
    seeded by (``seed``, ``first_batch + k``), so a run split into pieces (shards,
    resumed runs) gives the same result as one run with the same batch size.
    """
    t0 = time.perf_counter()
    expect(measurement, Measurement, "reconstruct's measurement")
    _check_call("reconstruct", batch_size, method_params=method_params, prior_params=prior_params)
    dev = resolve_device(device)
    op = measurement.build_operator(dev)
    nm = build_noise(measurement.noise)
    timings: dict[str, float] = {}
    if prior_params and not zero_shot:
        raise OperatorError("--prior-param sets the training of a --zero-shot prior; a prior file is trained "
                            "already (give -M settings for the MAP instead)")
    if prior is not None or zero_shot or prior_file is not None:
        if method not in (None, "map"):
            flag = "--zero-shot" if zero_shot else "--prior" if prior is not None else "--prior-file"
            raise OperatorError(f"{flag} uses the MAP method; drop --method {method} or {flag}")
        from .methods.patch_map import PatchMAP

        from .config import validate_params

        params = validate_params(PatchMAP.Params, method_params or {}, "parameters of method 'map'")
        PatchMAP(params).check(op)  # before a prior is loaded or trained
        pr = _resolve_prior(prior, prior_file, zero_shot, measurement, op, prior_params, seed, dev, track, timings,
                            allow_partial)
        if pr.kind == "score":
            raise OperatorError(f"{prior_file} holds a diffusion prior, which reconstruct does not take (no MAP "
                                "estimate); sample its posterior with `invsolve sample-posterior --prior diffusion "
                                "--prior-file FILE --sampler diffpir` (the posterior mean is the estimate)")
        m = PatchMAP(params, prior=pr, zero_shot=zero_shot)
    else:
        m = build_method({"name": method or default_method(op), **(method_params or {})})
        if m.name == "map":
            raise OperatorError("method 'map' needs a prior: give --prior NAME --prior-file FILE")
    m.check(op)
    y_all = np.asarray(measurement.measurement, dtype=np.float32)
    if tuple(y_all.shape[1:]) != tuple(op.range_shape):
        raise ShapeError(
            f"measurement has shape {y_all.shape[1:]} per item but operator {op.name!r} produces "
            f"{tuple(op.range_shape)}; the file's operator and data do not match"
        )
    out, runs = [], []
    for k, sl in enumerate(_batches(len(y_all), batch_size)):
        y = torch.from_numpy(y_all[sl]).to(dev)
        gen = batch_generator(seed, first_batch + k, dev)
        runs.append({})
        out.append(m.run(y, op, nm, generator=gen, track=track, info=runs[-1]).detach().cpu().numpy())
        check_result(out[-1:], f"the {m.name} reconstruction",
                     "lower its learning rate (-M lr=...), or check the measurement" if "lr" in type(m.params).model_fields
                     else "check the measurement and its operator's parameters")
    spec = m.spec()
    used = m.resolved(op, dev)
    if used:
        spec["used"] = used  # the preset values behind the parameters left unset (lam, lr, precision)
    iters = conv = None
    if all(runs):  # an iterative method: its iterations and stopping per item
        iters = np.array([i for r in runs for i in r["iterations_run"]], dtype=np.int32)
        conv = np.array([s == "converged" for r in runs for s in r["stopped"]], dtype=bool)
    if m.prior is not None:
        spec.update(prior=m.prior.name, prior_file=prior_file, zero_shot=zero_shot, settings=m.settings(op))
        if zero_shot:  # the flow trained on the observation: its settings and training provenance
            spec["zero_shot_training"] = {k: v for k, v in m.prior.provenance.items()
                                          if k in ("steps", "seconds", "params", "training", "train_nll")}
    return Reconstruction(
        images=np.concatenate(out).astype(np.float32),
        method=spec,
        measurement=measurement,
        seed=seed,
        device=str(dev),
        timings={**timings, "reconstruct": time.perf_counter() - t0},
        iterations_run=iters,
        converged=conv,
    )


def sample_posterior(
    measurement: Measurement, *, sampler: str | None = None, sampler_file: str | None = None,
    prior: str | None = None, prior_file: str | None = None, sampler_params: dict[str, Any] | None = None,
    num_samples: int | None = None, chains: int | None = None,
    levels: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95), keep_samples: bool = False, seed: int = 0,
    device: str = "auto", batch_size: int = 8, track=no_track, first_batch: int = 0, precision: str = "auto",
    compile: bool = False, importance: int = 0, allow_partial: bool = False, calibration: str | None = None,
) -> Posterior:
    """Posterior samples and their summaries for every item of ``measurement``: (N, *range_shape) data ->
    :class:`Posterior` with mean and std (N, *x_shape) (see its attributes).

    The arguments pick one way of sampling (:mod:`invsolve.posteriors`): a trained conditional sampler
    (``sampler_file``, ``num_samples`` draws each; ``importance=K`` resamples K times as many proposals against the
    likelihood, ``compile`` compiles it), Langevin chains with a patch prior (``prior``, ``prior_file``), MCMC for
    vector problems (``sampler="mcmc"``), or a diffusion prior (``sampler`` diffpir, dps or annealed-langevin).
    Batches are seeded as in :func:`reconstruct`.  ``precision="auto"`` takes bf16 where the device computes it
    fast (:mod:`invsolve.precision`) and records the choice (``precision_used``).  ``calibration`` (a file from
    :func:`invsolve.api_calibrate.calibrate` for this sampler, model file, operator and noise) adds the conformally
    recalibrated ``calibrated_quantiles`` at ``levels`` (:mod:`invsolve.calibration.conformal`).
    """
    from .posterior import concat_summaries
    from .posteriors import SampleRequest, choose

    t0 = time.perf_counter()
    expect(measurement, Measurement, "sample_posterior's measurement")
    _check_call("sample_posterior", batch_size, sampler_params=sampler_params)
    dev = resolve_device(device)
    from .api_metrology import check_levels

    levels = check_levels(levels, allow_empty=True)
    if calibration is not None:
        from .calibration.files import load_calibration

        if not levels:
            raise ConfigError("--calibration calibrates the stored quantiles: give --quantile levels (e.g. 0.05 0.95)")
        cal = load_calibration(calibration)  # a missing or damaged file fails here, before any sampling
    request = SampleRequest(sampler, sampler_file, prior, prior_file, dict(sampler_params or {}), num_samples, chains,
                            tuple(levels), keep_samples, seed, precision, compile, importance, allow_partial, track)
    way = choose(request)(measurement, request, dev)
    parts = [way.sample(sl, batch_generator(seed, first_batch + k, dev))
             for k, sl in enumerate(_batches(len(measurement.measurement), batch_size))]
    spec = way.record(parts)
    summary = concat_summaries(parts)
    summary.info = {}
    fix = ("the sampler file may be damaged or its training diverged: retrain it" if sampler_file is not None else
           "lower the step size (-S step_size=...), or check the measurement and the prior file")
    check_result([summary.mean, summary.std], f"the {spec['name']} posterior", fix)
    if calibration is not None:
        from .calibration.record import apply_calibration, requested_settings

        summary.calibrated_quantiles, spec["calibration"] = apply_calibration(
            summary, cal, calibration, spec, measurement, requested_settings(sampler_params, chains))
    return Posterior(summary, spec, measurement, seed, str(dev), {"sample_posterior": time.perf_counter() - t0})
