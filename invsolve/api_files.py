"""Result files of the Python API: writing measurements, reconstructions and posteriors with their configs and
provenance, and reading measurements back (the layout is :mod:`invsolve.io.hdf5`'s).

Batch runs (:mod:`invsolve.api_batch`) fill the same datasets and attributes slice by slice, so the attribute
and dataset builders here serve both.
"""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ._version import __version__
from .config import check_seed  # noqa: F401  (the one seed check of the API, re-exported)
from .errors import ConfigError, DataError, OperatorError
from .operators import operator_entry

if TYPE_CHECKING:
    from .api import Measurement, Posterior, Reconstruction
    from .posterior import PosteriorSummary

__all__ = ["check_path", "check_seed", "expect", "load_measurement", "posterior_attrs", "posterior_datasets",
           "reconstruction_attrs", "save_measurement", "save_posterior", "save_reconstruction", "write_with_measurement"]


#: What each result object is and where one comes from, for the messages of :func:`expect`.
_ORIGIN = {
    "Measurement": "api.simulate or api.load_measurement",
    "Reconstruction": "api.reconstruct",
    "Posterior": "api.sample_posterior",
    "NoiseEstimate": "api_metrology.estimate_noise",
}


def expect(obj: Any, cls: type, what: str) -> None:
    """Raise :class:`DataError` unless ``obj`` is a ``cls`` (an invsolve result object such as ``Measurement``).

    Arguments:
        obj: The object a caller passed.
        cls: The class it must be an instance of.
        what: The argument's name, for the message.
    """
    if isinstance(obj, cls):
        return
    name = cls.__name__
    hint = ""
    if isinstance(obj, np.ndarray) and name == "Measurement":
        hint = "; wrap data with its operator by api.simulate, or read a file with api.load_measurement"
    elif name != "Measurement" and type(obj).__name__ == "Measurement":
        hint = f"; save a Measurement with save_measurement, or {_ORIGIN.get(name, 'the API')} it first"
    elif isinstance(obj, (str, os.PathLike)) and name == "Measurement":
        hint = "; read the file with api.load_measurement first"
    raise DataError(f"{what} must be an invsolve {name} (from {_ORIGIN.get(name, 'the API')}), got "
                    f"{type(obj).__name__}{hint}")


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
    """Write a posterior file (layout in :mod:`invsolve.posterior`)."""
    from .api import Posterior

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
    from .io.hdf5 import write_result

    data = {**data, "measurement": m.measurement}
    if m.ground_truth is not None:
        data["ground_truth"] = m.ground_truth
    return write_result(path, data, attrs, {"operator_arrays": m.arrays} if m.arrays else None, overwrite)


def save_measurement(m: Measurement, path: str | Path, overwrite: bool = False) -> Path:
    """Write a measurement (data, ground truth when known, operator arrays, configs, provenance) atomically
    to HDF5; an existing ``path`` needs ``overwrite``.  Returns the path."""
    from .api import Measurement

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
    from .api import Reconstruction

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


#: invsolve file kinds that carry a complete measurement (results keep the one they came from)
MEASUREMENT_KINDS = ("measurement", "reconstruction", "posterior", "noise_estimate")


def load_measurement(path: str | Path, items: slice | None = None,
                     operator_params: dict[str, Any] | None = None) -> Measurement:
    """Read a measurement (a ``simulate`` or ``reconstruct`` output) with its operator and noise.

    ``items`` (a ``slice`` with step 1 or more, or None for all) reads only those measurements of a stack
    (e.g. one batch).  A file path among the stored operator parameters (e.g. ``kernel_file``) whose
    contents the file does not carry is refused unless ``operator_params`` gives that same path.
    """
    from .api import Measurement
    from .io.hdf5 import read_result
    from .io.images import check_finite

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
    from .operators.file_params import check_stored_paths

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
