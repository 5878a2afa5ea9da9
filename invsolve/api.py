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
from .api_support import _resolve_prior, _sampling_settings, check_result, default_method  # noqa: F401

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
    measurement: Measurement,
    *,
    sampler: str | None = None,
    sampler_file: str | None = None,
    prior: str | None = None,
    prior_file: str | None = None,
    sampler_params: dict[str, Any] | None = None,
    num_samples: int | None = None,
    chains: int | None = None,
    levels: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95),
    keep_samples: bool = False,
    seed: int = 0,
    device: str = "auto",
    batch_size: int = 8,
    track=no_track,
    first_batch: int = 0,
    precision: str = "auto",
    compile: bool = False,
    importance: int = 0,
    allow_partial: bool = False,
    calibration: str | None = None,
) -> Posterior:
    """Posterior samples and their summaries for every item of ``measurement``: (N, *range_shape) data ->
    :class:`Posterior` with mean and std (N, *x_shape) (see its attributes).

    Either a trained conditional sampler (``sampler_file``, from ``train-sampler``)
    draws ``num_samples`` per measurement, or ``sampler="langevin"`` runs Langevin
    chains on the data term plus a patch prior (``prior``, ``prior_file``).
    Batches are seeded as in :func:`reconstruct`.  ``precision="bf16"`` and
    ``compile`` speed up trained samplers on GPUs (see
    :meth:`invsolve.samplers.base.Sampler.configure`); ``precision="bf16"``
    also runs Langevin's patchNR subnets in bfloat16 (as ``-S precision=bf16``).
    ``precision="auto"`` (the default) takes bf16 where the device computes it fast
    (:mod:`invsolve.precision`); the result records the choice (``precision_used``).
    ``importance=K`` (vector ``cflow`` and ``csnf`` samplers) draws K·``num_samples`` proposals per measurement and
    keeps ``num_samples`` of them by importance resampling against the
    measurement's likelihood and the training prior, removing the amortised
    flow's approximation error (:mod:`invsolve.samplers.importance`); the
    effective sample sizes are stored with the sampler settings.
    ``calibration`` (a file from :func:`invsolve.api_calibrate.calibrate`, made for this sampler, model file,
    operator and noise) adds ``calibrated_quantiles`` at ``levels`` to the summary: the conformally
    recalibrated intervals (:mod:`invsolve.calibration.conformal`).
    """
    from .posterior import concat_summaries, summarize_samples
    from .precision import normalize_precision

    t0 = time.perf_counter()
    expect(measurement, Measurement, "sample_posterior's measurement")
    _check_call("sample_posterior", batch_size, sampler_params=sampler_params)
    dev = resolve_device(device)
    y_all = np.asarray(measurement.measurement, dtype=np.float32)
    from .api_metrology import check_levels

    levels = check_levels(levels, allow_empty=True)
    if calibration is not None:
        from .calibration.files import load_calibration

        if not levels:
            raise ConfigError("--calibration calibrates the stored quantiles: give --quantile levels (e.g. 0.05 0.95)")
        cal = load_calibration(calibration)  # a missing or damaged file fails here, before any sampling
    parts = []
    from .api_diffusion import SAMPLER_NAMES as DIFFUSION_SAMPLERS

    if sampler in DIFFUSION_SAMPLERS or (prior == "diffusion" and sampler is None and sampler_file is None):
        spec = _diffusion_posterior(measurement, y_all, sampler or "diffpir", prior, prior_file, sampler_params,
                                    num_samples, chains, levels, keep_samples, seed, dev, batch_size, track,
                                    first_batch, allow_partial, parts)
    elif sampler_file is None and num_samples is not None:
        raise OperatorError("--num-samples sets the draws of a trained sampler (--sampler-file); Langevin and MCMC "
                            "keep every thin-th state after burn-in of each chain: set --chains and -S steps=, "
                            "burn_in=, thin= instead")
    elif sampler_file is not None:
        num_samples = _num_samples(num_samples, 64)
        if prior is not None or prior_file is not None:
            raise OperatorError("give either --sampler-file (a trained sampler) or --prior (Langevin), not both")
        if chains is not None:
            raise OperatorError("--chains sets Langevin and MCMC chains; a trained sampler (--sampler-file) draws "
                                "--num-samples independent samples: drop it")
        from .samplers import load_sampler
        from .samplers.importance import importance_weigher

        smp = load_sampler(sampler_file, dev, allow_partial).configure(precision, compile)
        if sampler not in (None, smp.name):
            raise OperatorError(f"{sampler_file} holds a {smp.name!r} sampler, not {sampler!r}")
        smp.check_measurement(measurement)
        spec = {"name": smp.name, "file": str(sampler_file), "num_samples": num_samples,
                "precision": precision, "precision_used": smp.precision, "precision_reason": smp.precision_reason,
                **_sampling_settings(smp, sampler_params or {}, sampler_file)}
        weigh = importance_weigher(smp, measurement, importance, dev) if importance else None
        ess = []
        for k, sl in enumerate(_batches(len(y_all), batch_size)):
            y = torch.from_numpy(y_all[sl]).to(dev)
            gen = batch_generator(seed, first_batch + k, dev)
            with torch.no_grad():
                if weigh is None:
                    xs = smp.sample(y, num_samples, generator=gen, track=track)
                else:
                    xs, e = weigh(y, num_samples, gen)
                    ess += e.tolist()
                parts.append(summarize_samples(xs, levels, keep=keep_samples))
        if weigh is not None:
            spec.update(importance=importance, effective_sample_size=ess)
    elif compile or importance:
        flag = "--compile" if compile else "--importance"
        raise OperatorError(f"{flag} applies to trained samplers (--sampler-file); drop it for Langevin and MCMC")
    elif normalize_precision(precision) not in ("fp32", "auto") and sampler == "mcmc":
        raise OperatorError("--precision bf16 applies to trained samplers (--sampler-file) and to Langevin with "
                            "the patchnr prior; MCMC evaluates likelihoods in float32")
    elif sampler == "mcmc":
        from .mcmc import mcmc_posterior

        opts = dict(sampler_params or {})
        if chains is not None:
            opts["chains"] = chains
        if keep_samples:
            opts["keep_samples"] = True
        import dataclasses

        mprior = opts.pop("prior", None)
        for k, sl in enumerate(_batches(len(y_all), batch_size)):
            gt = measurement.ground_truth
            sub = dataclasses.replace(measurement, measurement=y_all[sl], ground_truth=None if gt is None else gt[sl])
            gen = batch_generator(seed, first_batch + k, dev)
            parts.append(mcmc_posterior(sub, mprior, dict(opts), levels, gen, track))
        spec = {"name": "mcmc", **parts[0].info}
    else:
        if (sampler or "langevin") != "langevin":
            raise OperatorError(
                f"sampler {sampler!r} needs --sampler-file (train one with `invsolve train-sampler`); "
                "without a file the valid samplers are: langevin (with --prior), mcmc (vector problems), "
                "diffpir, dps, annealed-langevin (with a diffusion --prior-file)"
            )
        if prior is None and prior_file is None:
            raise OperatorError("give --sampler-file FILE, or --prior NAME --prior-file FILE for Langevin sampling")
        from .config import validate_params
        from .langevin import LangevinParams, check_mixing, langevin_sample, merge_info
        from .methods.patch_map import resolve_settings

        op = measurement.build_operator(dev)
        from .operators.base import describe_domain

        if len(op.domain_shape) != 2 or not op.linear:
            raise OperatorError(f"Langevin with a patch prior needs a linear image operator, not {op.name!r} "
                                f"({describe_domain(op.domain_shape)}); use --sampler mcmc for "
                                "parameter vectors")
        nm = build_noise(measurement.noise)
        opts = {**(sampler_params or {})}
        if chains is not None:
            opts["chains"] = chains
        if keep_samples:
            opts["keep_samples"] = True
        if "precision" not in opts:
            opts["precision"] = precision  # the patch flow's subnets in bf16 (auto: where the device is fast)
        params = validate_params(LangevinParams, opts, "parameters of sampler 'langevin'")
        pr = _resolve_prior(prior, prior_file, False, measurement, op, None, seed, dev, track, {}, allow_partial)
        if pr.kind == "score":
            raise OperatorError(f"{prior_file} holds a diffusion prior; sample with --sampler "
                                f"{' or '.join(DIFFUSION_SAMPLERS)} (Langevin here takes patch priors)")
        settings = resolve_settings(op, pr.name, params)
        spec = {"name": "langevin", "prior": pr.name, "prior_file": str(prior_file), **params.model_dump()}
        for k, sl in enumerate(_batches(len(y_all), batch_size)):
            y = torch.from_numpy(y_all[sl]).to(dev)
            gen = batch_generator(seed, first_batch + k, dev)
            parts.append(langevin_sample(y, op, nm, pr, params, settings, levels, generator=gen, track=track,
                                         warn=False))
        spec.update(merge_info([q.info for q in parts]))
        check_mixing(spec, stacklevel=2)  # once for all batches

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


def _diffusion_posterior(measurement, y_all, sampler, prior, prior_file, sampler_params, num_samples, chains, levels,
                         keep_samples, seed, dev, batch_size, track, first_batch, allow_partial, parts) -> dict:
    """Posterior samples under a diffusion prior, batch by batch into ``parts``; returns the sampler spec."""
    from .api_diffusion import load_diffusion_prior, posterior_samples
    from .posterior import summarize_samples

    if prior not in (None, "diffusion"):
        raise OperatorError(f"--sampler {sampler} samples with a diffusion prior; give --prior diffusion, not "
                            f"{prior!r}")
    if prior_file is None:
        raise OperatorError(f"--sampler {sampler} needs --prior-file FILE (train one with `invsolve train-prior "
                            "--prior diffusion`)")
    if chains is not None:
        raise OperatorError("--chains sets Langevin and MCMC chains; a diffusion sampler draws --num-samples "
                            "independent samples: drop it")
    num = _num_samples(num_samples, 16)
    pr = load_diffusion_prior(prior_file, dev, allow_partial)
    op = measurement.build_operator(dev)
    nm = build_noise(measurement.noise)
    spec: dict = {}
    for k, sl in enumerate(_batches(len(y_all), batch_size)):
        y = torch.from_numpy(y_all[sl]).to(dev)
        gen = batch_generator(seed, first_batch + k, dev)
        xs, spec = posterior_samples(pr, op, nm, y, sampler, sampler_params, num, gen, track)
        parts.append(summarize_samples(xs.detach(), levels, keep=keep_samples))
    return {**spec, "prior": "diffusion", "prior_file": str(prior_file), "num_samples": num}


def _num_samples(value, default: int) -> int:
    """``--num-samples`` of the samplers that draw independent samples: an integer of at least 1."""
    value = default if value is None else value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"--num-samples must be an integer of at least 1, got {value!r}")
    return int(value)
