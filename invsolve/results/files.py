"""Result files: the one description of their layout, the writers of every kind, and the reader of
measurements.

Every result is an HDF5 file written atomically by :func:`invsolve.io.hdf5.write_result`.  Batch runs
(:mod:`invsolve.api_batch`) fill the same datasets and attributes slice by slice, so the attribute and dataset
builders here serve both.  The layout (``tests/test_layers.py`` checks it against written files)::

    every file, and a measurement (kind = "measurement") has:
        format               "invsolve"
        format_version       1
        kind                 "measurement" | "reconstruction" | "posterior" | "noise_estimate"
        operator             JSON {"name", "params", "image_shape"}
        noise                JSON {"name", ...params}
        measurement_seed     the simulation's seed (results; absent for data invsolve did not simulate)
        seed                 the run's seed
        invsolve_version     version that wrote the file
        created              ISO 8601 UTC
        device               where the run ran
        timings              JSON: seconds per stage
        source               the input it came from
        single               true when the input was one image or vector, not a stack
        python               Python version
        torch_version        torch version
        input                JSON provenance of data invsolve did not write (file, dataset, SHA-256, reading)
        /measurement         float32 (N, *range_shape)   the data y
        /ground_truth        float32 (N, *x_shape)       the clean images (N, H, W) or vectors (N, d), when known
        /operator_arrays     group: arrays the operator needs (mask, kernel, matrix)

    a reconstruction (kind = "reconstruction") adds:
        method               JSON {"name", ...settings}; with a prior also "prior", "prior_file", "settings"
        /reconstruction      float32 (N, *x_shape)       the result
        /iterations_run      float32 (N,)                iterations run per item (iterative methods)
        /converged           float32 (N,)                1 where the stopping rule ended the run before its cap

    a posterior (kind = "posterior") adds:
        sampler              JSON: the sampler's name and settings
        quantile_levels      JSON list of the Q levels of /quantiles
        /reconstruction      float32 (N, *x_shape)       the posterior mean (so `evaluate` works)
        /posterior_mean      float32 (N, *x_shape)
        /posterior_std       float32 (N, *x_shape)       standard deviation per pixel or parameter
        /quantiles           float32 (N, Q, *x_shape)    at quantile_levels
        /samples             float32 (N, S, *x_shape)    only when samples are kept
        /calibrated_quantiles float32 (N, Q, *x_shape)   conformally calibrated, at the same levels (--calibration)

    a noise estimate (kind = "noise_estimate") adds:
        method               JSON: the EM settings, the prior, the sampler and its config
        noise_in_file        JSON: the measurement's own noise (``noise`` is the estimated mixed noise)
        /estimate            float64 (2,)                final (a, b)
        /a_trace             float64 (T + 1,)            a after each outer iteration (index 0: the start)
        /b_trace             float64 (T + 1,)            b likewise
        /elbo_trace          float64 (T,)                ELBO of the measured data (NaN where not evaluated)
        /seconds_trace       float64 (T,)                wall time at the end of each iteration
        /samples             float32 (N, S, d)           posterior samples under the final flow
        /posterior_mean      float32 (N, d)
        /posterior_std       float32 (N, d)

A ``simulate`` output is a complete input of ``reconstruct``, and every result keeps the measurement it came
from, so it is one too.
"""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .._version import __version__
from ..config import check_seed  # noqa: F401  (the one seed check of the API, re-exported)
from ..errors import ConfigError, DataError, OperatorError
from ..operators import operator_entry

from .types import Measurement, NoiseEstimate, Posterior, Reconstruction, expect

if TYPE_CHECKING:
    from ..posterior import PosteriorSummary

__all__ = ["MEASUREMENT_KINDS", "check_path", "check_seed", "expect", "load_measurement", "posterior_attrs", "posterior_datasets",
           "reconstruction_attrs", "reconstruction_data", "save_measurement", "save_noise_estimate", "save_posterior", "save_reconstruction", "write_with_measurement"]


def check_path(path: Any, what: str = "path") -> Path:
    """``path`` as a :class:`Path`, or :class:`ConfigError` unless it is a non-empty str or ``os.PathLike``."""
    if isinstance(path, (str, os.PathLike)) and str(path):
        return Path(path)
    raise ConfigError(f"{what} must be a file path (str or pathlib.Path), got {type(path).__name__} {path!r:.60}")


def posterior_datasets(s: PosteriorSummary) -> dict[str, np.ndarray]:
    """The result datasets of a posterior summary: the mean (also as ``reconstruction``), std, and the
    quantiles and samples when present."""
    data = {"reconstruction": s.mean, "posterior_mean": s.mean, "posterior_std": s.std}
    if s.quantiles is not None:
        data["quantiles"] = s.quantiles
    if s.samples is not None:
        data["samples"] = s.samples
    if s.calibrated_quantiles is not None:
        data["calibrated_quantiles"] = s.calibrated_quantiles
    return data


def posterior_attrs(post: Posterior, timings: dict[str, float] | None = None) -> dict[str, Any]:
    """The attributes of a posterior file: configs and provenance (``timings`` default: the measurement's and
    the run's)."""
    m = post.measurement
    t = {**m.timings, **post.timings} if timings is None else timings
    return {"kind": "posterior", "operator": m.operator, "noise": m.noise, "sampler": post.sampler,
            "quantile_levels": list(post.summary.levels), "measurement_seed": m.seed,
            **_provenance(post.seed, post.device, t, m.source, m.single), **_input(m)}


def save_posterior(post: Posterior, path: str | Path, overwrite: bool = False) -> Path:
    """Write a posterior file (the layout in this module's docstring) atomically; an existing ``path`` needs
    ``overwrite``.  Returns the path."""
    expect(post, Posterior, "save_posterior's post")
    return write_with_measurement(path, post.measurement, posterior_datasets(post.summary), posterior_attrs(post),
                                  overwrite)


def _provenance(seed, device, timings, source, single) -> dict[str, Any]:
    return {
        "invsolve_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seed": int(seed) if seed is not None else None,
        "device": device,
        "timings": timings,
        "source": source,
        "single": bool(single),
        "python": platform.python_version(),
        "torch_version": torch.__version__,
    }


def _input(m: Measurement) -> dict[str, Any]:
    """The ``input`` attribute (provenance of data invsolve did not simulate), when there is one."""
    return {"input": m.provenance} if m.provenance else {}


def write_with_measurement(path: str | Path, m: Measurement, data: dict[str, np.ndarray], attrs: dict[str, Any],
                           overwrite: bool = False) -> Path:
    """:func:`invsolve.io.hdf5.write_result` of ``data`` plus the measurement's own datasets (``measurement``,
    ``ground_truth`` when known) and its ``operator_arrays``: what every result file carries."""
    from ..io.hdf5 import write_result

    data = {**data, "measurement": m.measurement}
    if m.ground_truth is not None:
        data["ground_truth"] = m.ground_truth
    return write_result(path, data, attrs, {"operator_arrays": m.arrays} if m.arrays else None, overwrite)


def save_measurement(m: Measurement, path: str | Path, overwrite: bool = False) -> Path:
    """Write a measurement (data, ground truth when known, operator arrays, configs, provenance) atomically
    to HDF5; an existing ``path`` needs ``overwrite``.  Returns the path."""
    expect(m, Measurement, "save_measurement's m")
    attrs = {"kind": "measurement", "operator": m.operator, "noise": m.noise,
             **_provenance(m.seed, m.device, m.timings, m.source, m.single), **_input(m)}
    return write_with_measurement(path, m, {}, attrs, overwrite)


def reconstruction_attrs(r: Reconstruction, timings: dict[str, float] | None = None) -> dict[str, Any]:
    """The attributes of a reconstruction file: configs and provenance (``timings`` default: the measurement's
    and the run's)."""
    m = r.measurement
    t = {**m.timings, **r.timings} if timings is None else timings
    return {"kind": "reconstruction", "operator": m.operator, "noise": m.noise, "method": r.method,
            "measurement_seed": m.seed, **_provenance(r.seed, r.device, t, m.source, m.single), **_input(m)}


def save_reconstruction(r: Reconstruction, path: str | Path, overwrite: bool = False) -> Path:
    """Write a reconstruction with its measurement (a complete input of ``reconstruct`` again) atomically to
    HDF5; an existing ``path`` needs ``overwrite``.  Returns the path."""
    expect(r, Reconstruction, "save_reconstruction's r")
    return write_with_measurement(path, r.measurement, reconstruction_data(r), reconstruction_attrs(r), overwrite)


def reconstruction_data(r: Reconstruction) -> dict[str, np.ndarray]:
    """The datasets of a reconstruction: ``reconstruction``, and for iterative methods ``iterations_run`` and
    ``converged`` (N,), float32 like every result dataset (a batch file's unfinished slices are NaN; converged
    is 1 where the stopping rule ended the run before its cap, else 0)."""
    data = {"reconstruction": r.images}
    if r.iterations_run is not None:
        data.update(iterations_run=r.iterations_run.astype(np.float32), converged=r.converged.astype(np.float32))
    return data


def save_noise_estimate(est: NoiseEstimate, path: str | Path, overwrite: bool = False) -> Path:
    """Write an ``estimate-noise`` output atomically (the layout in this module's docstring); an existing ``path``
    needs ``overwrite``.  Returns the path."""
    expect(est, NoiseEstimate, "save_noise_estimate's est")
    m, r = est.measurement, est.result
    smp = r.samples.astype(np.float32)
    data = {"estimate": np.array([est.a, est.b]), "a_trace": r.a_trace, "b_trace": r.b_trace,
            "elbo_trace": r.elbo_trace, "seconds_trace": r.seconds_trace, "samples": smp,
            "posterior_mean": smp.mean(1), "posterior_std": smp.std(1, ddof=1) if smp.shape[1] > 1 else 0 * smp[:, 0]}
    method = {"name": "em-deepgem", **est.settings, "prior": est.prior, "sampler": r.info["sampler"],
              "sampler_config": r.info["sampler_config"], "best_iteration": r.best_iteration,
              "iterations_run": r.info["iterations"]}
    attrs = {"kind": "noise_estimate", "operator": m.operator, "noise": {"name": "mixed", "a": est.a, "b": est.b},
             "noise_in_file": m.noise, "method": method, "measurement_seed": m.seed,
             **_provenance(est.seed, est.device, {**m.timings, **est.timings}, m.source, m.single),
             **({"input": m.provenance} if m.provenance else {})}
    return write_with_measurement(path, m, data, attrs, overwrite)


#: invsolve file kinds that carry a complete measurement (results keep the one they came from)
MEASUREMENT_KINDS = ("measurement", "reconstruction", "posterior", "noise_estimate")


def load_measurement(path: str | Path, items: slice | None = None,
                     operator_params: dict[str, Any] | None = None) -> Measurement:
    """Read a measurement (a ``simulate`` or ``reconstruct`` output) with its operator and noise.

    ``items`` (a ``slice`` with step 1 or more, or None for all) reads only those measurements of a stack
    (e.g. one batch).  A file path among the stored operator parameters (e.g. ``kernel_file``) whose
    contents the file does not carry is refused unless ``operator_params`` gives that same path.
    """
    from ..io.hdf5 import read_result
    from ..io.images import check_finite

    path = check_path(path, "load_measurement's path")
    if items is not None:
        bounds = (items.start, items.stop, items.step) if isinstance(items, slice) else ("",)
        ok = all(v is None or (isinstance(v, (int, np.integer)) and not isinstance(v, bool)) for v in bounds)
        if not ok or (items.step is not None and items.step < 1):
            raise ConfigError(f"items must be a slice with step >= 1 (e.g. slice(0, 8)) or None for all "
                              f"measurements, got {items!r:.60}")
    st = read_result(path, items=items)
    if "measurement" not in st.datasets or "operator" not in st.attrs or "noise" not in st.attrs:
        raise DataError(f"{path} holds no measurement with its operator; create one with `invsolve simulate`")
    if st.attrs.get("kind", "measurement") not in MEASUREMENT_KINDS:
        raise DataError(f"{path} is an invsolve file of unknown kind {st.attrs.get('kind')!r}, not a measurement; "
                        "create one with `invsolve simulate`")
    raw = st.datasets["measurement"]
    if not np.issubdtype(raw.dtype, np.number) or raw.ndim < 2 or raw.shape[0] == 0:
        raise DataError(f"{path}:/measurement is {raw.dtype} of shape {raw.shape}, not a non-empty numeric stack "
                        "(N, ...); re-create the file with `invsolve simulate`")
    y = raw.astype(np.float32)
    check_finite(y, f"{path}:/measurement" + (f"[{items.start}:{items.stop}]" if items is not None else ""))
    op = st.attrs["operator"]
    try:
        operator_entry(op["name"])
    except (OperatorError, KeyError, TypeError) as exc:
        raise DataError(f"{path} was written with an operator this version does not know: {exc}") from None
    from ..operators.file_params import check_stored_paths

    check_stored_paths(op, st.groups.get("operator_arrays", {}), str(path), operator_params)
    shape = op.get("image_shape")
    if not (isinstance(shape, list) and len(shape) in (1, 2) and all(isinstance(v, int) and v > 0 for v in shape)):
        raise DataError(f"{path} has an invalid operator image_shape {shape!r}; re-create the file with "
                        "`invsolve simulate`")
    gt = st.datasets.get("ground_truth")
    if gt is not None:
        fix = "re-create the file with `invsolve simulate`, or drop /ground_truth and evaluate with --reference"
        if not np.issubdtype(gt.dtype, np.number):
            raise DataError(f"{path}:/ground_truth is {gt.dtype}, not numbers; {fix}")
        if gt.shape[0] != len(y):
            raise DataError(f"{path} holds {gt.shape[0]} ground-truth item(s) for {len(y)} measurement(s) (is "
                            f"/measurement {raw.shape} missing its first, per-item axis?); {fix}")
        if tuple(gt.shape[1:]) != tuple(shape):
            raise DataError(f"{path}:/ground_truth has items of shape {tuple(gt.shape[1:])}, the operator's images "
                            f"{tuple(shape)}; {fix}")
        if not np.isfinite(gt).all():
            raise DataError(f"{path}:/ground_truth holds NaN or infinite values; {fix}")
    return Measurement(
        measurement=y,
        operator=op,
        noise=st.attrs["noise"],
        arrays=st.groups.get("operator_arrays", {}),
        ground_truth=st.datasets.get("ground_truth"),
        single=bool(st.attrs.get("single", False)),
        source=str(st.attrs.get("source", "")),
        seed=st.attrs.get("measurement_seed", st.attrs.get("seed")),
        device=str(st.attrs.get("device", "cpu")),
        timings=dict(st.attrs.get("timings") or {}),
        provenance=dict(st.attrs.get("input") or {}) if isinstance(st.attrs.get("input"), dict) else {},
    )
