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

import platform
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._version import __version__
from .device import make_generator, resolve_device
from .errors import DataError, OperatorError, ShapeError
from .methods import build_method, no_track
from .noise import build_noise
from .operators import build_operator, operator_entry

__all__ = [
    "Measurement",
    "Reconstruction",
    "simulate",
    "reconstruct",
    "evaluate",
    "load_measurement",
    "save_measurement",
    "save_reconstruction",
    "load_estimate",
    "resolve_noise",
]


@dataclass
class Measurement:
    """Simulated or loaded data with everything needed to reconstruct it.

    Attributes:
        measurement: (N, *range_shape) noisy data.
        operator: Operator spec {"name", "params", "image_shape"}.
        noise: Noise spec {"name", ...params}.
        arrays: Arrays the operator needs (mask, kernel).
        ground_truth: (N, H, W) clean images, when known.
    """

    measurement: np.ndarray
    operator: dict[str, Any]
    noise: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    ground_truth: np.ndarray | None = None
    single: bool = False
    source: str = ""
    seed: int | None = None
    device: str = "cpu"
    timings: dict[str, float] = field(default_factory=dict)

    def build_operator(self, device: torch.device | str = "cpu"):
        s = self.operator
        return build_operator(s["name"], s["params"], tuple(s["image_shape"]), self.arrays).to(device)


@dataclass
class Reconstruction:
    """A reconstruction: (N, H, W) images plus the measurement it came from."""

    images: np.ndarray
    method: dict[str, Any]
    measurement: Measurement
    seed: int
    device: str
    timings: dict[str, float] = field(default_factory=dict)


def resolve_noise(operator: str, noise: str | None = None, noise_params: dict | None = None) -> dict[str, Any]:
    """The noise spec: the operator preset's noise, or ``noise`` with ``noise_params`` on top.

    Parameters given without a name adjust the preset's noise (e.g. ``n0`` of ``ct-lowdose``).
    """
    preset = dict(operator_entry(operator).noise)
    if noise is None or noise == preset.get("name"):
        spec = {**preset, **(noise_params or {})}
    else:
        spec = {"name": noise, **(noise_params or {})}
    return build_noise(spec).spec()  # validates


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
    """Simulate y = noise(A x) for an image (H, W) or a stack (N, H, W)."""
    t0 = time.perf_counter()
    arr = np.asarray(images, dtype=np.float32)
    if arr.ndim == 2:
        arr, single = arr[None], True if single is None else single
    if arr.ndim != 3:
        raise ShapeError(f"images have shape {arr.shape}; expected (H, W) or (N, H, W)")
    if not np.isfinite(arr).all():
        raise DataError("images contain NaN or infinite values; clean or fill them first")
    dev = resolve_device(device)
    op = build_operator(operator, operator_params, arr.shape[1:]).to(dev)
    nspec = resolve_noise(operator, noise, noise_params)
    nm = build_noise(nspec)
    gen = make_generator(seed, dev)
    out = []
    with torch.no_grad():
        for sl in _batches(len(arr), batch_size):
            x = torch.from_numpy(arr[sl]).to(dev)
            out.append(nm.sample(op(x), generator=gen).cpu().numpy())
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
    method: str = "fbp",
    method_params: dict[str, Any] | None = None,
    seed: int = 0,
    device: str = "auto",
    batch_size: int = 8,
    track=no_track,
) -> Reconstruction:
    """Reconstruct every item of ``measurement`` with a classical method."""
    t0 = time.perf_counter()
    dev = resolve_device(device)
    op = measurement.build_operator(dev)
    nm = build_noise(measurement.noise)
    m = build_method({"name": method, **(method_params or {})})
    m.check(op)
    y_all = np.asarray(measurement.measurement, dtype=np.float32)
    if tuple(y_all.shape[1:]) != tuple(op.range_shape):
        raise ShapeError(
            f"measurement has shape {y_all.shape[1:]} per item but operator {op.name!r} produces "
            f"{tuple(op.range_shape)}; the file's operator and data do not match"
        )
    gen = make_generator(seed, dev)
    out = []
    for sl in _batches(len(y_all), batch_size):
        y = torch.from_numpy(y_all[sl]).to(dev)
        out.append(m.run(y, op, nm, generator=gen, track=track).detach().cpu().numpy())
    return Reconstruction(
        images=np.concatenate(out).astype(np.float32),
        method=m.spec(),
        measurement=measurement,
        seed=seed,
        device=str(dev),
        timings={"reconstruct": time.perf_counter() - t0},
    )


def evaluate(estimate: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """PSNR and SSIM (data range 1) per slice and their mean; (N, H, W) or (H, W) arrays."""
    from .metrics import image_metrics

    est = np.asarray(estimate, dtype=np.float32)
    ref = np.asarray(reference, dtype=np.float32)
    est = est[None] if est.ndim == 2 else est
    ref = ref[None] if ref.ndim == 2 else ref
    if ref.shape[0] == 1 and est.shape[0] > 1:
        ref = np.broadcast_to(ref, est.shape)
    if est.shape != ref.shape:
        raise ShapeError(f"result has shape {est.shape} but the reference has {ref.shape}; they must match")
    per = image_metrics(ref, est)
    return {
        "psnr": float(np.mean(per["psnr"])),
        "ssim": float(np.mean(per["ssim"])),
        "psnr_per_slice": per["psnr"],
        "ssim_per_slice": per["ssim"],
    }


# -- files ---------------------------------------------------------------------


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


def save_measurement(m: Measurement, path: str | Path, overwrite: bool = False) -> Path:
    from .io.hdf5 import write_result

    data = {"measurement": m.measurement}
    if m.ground_truth is not None:
        data["ground_truth"] = m.ground_truth
    attrs = {"kind": "measurement", "operator": m.operator, "noise": m.noise,
             **_provenance(m.seed, m.device, m.timings, m.source, m.single)}
    return write_result(path, data, attrs, {"operator_arrays": m.arrays} if m.arrays else None, overwrite)


def save_reconstruction(r: Reconstruction, path: str | Path, overwrite: bool = False) -> Path:
    from .io.hdf5 import write_result

    m = r.measurement
    data = {"reconstruction": r.images, "measurement": m.measurement}
    if m.ground_truth is not None:
        data["ground_truth"] = m.ground_truth
    attrs = {"kind": "reconstruction", "operator": m.operator, "noise": m.noise, "method": r.method,
             "measurement_seed": m.seed,
             **_provenance(r.seed, r.device, {**m.timings, **r.timings}, m.source, m.single)}
    return write_result(path, data, attrs, {"operator_arrays": m.arrays} if m.arrays else None, overwrite)


def load_measurement(path: str | Path) -> Measurement:
    """Read a measurement (a ``simulate`` or ``reconstruct`` output) with its operator and noise."""
    from .io.hdf5 import read_result
    from .io.images import check_finite

    st = read_result(path)
    if "measurement" not in st.datasets or "operator" not in st.attrs or "noise" not in st.attrs:
        raise DataError(f"{path} holds no measurement with its operator; create one with `invsolve simulate`")
    y = st.datasets["measurement"].astype(np.float32)
    check_finite(y, f"{path}:/measurement")
    op = st.attrs["operator"]
    try:
        operator_entry(op["name"])
    except OperatorError as exc:
        raise DataError(f"{path} was written with an operator this version does not know: {exc}") from None
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
    )


def load_estimate(spec: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Images to evaluate and, when stored, their ground truth.

    ``spec`` is an invsolve result (its ``/reconstruction``), ``file.h5:/dataset``,
    an image file or ``.npy``.
    """
    from .io.hdf5 import FORMAT
    from .io.images import HDF5_SUFFIXES, as_stack, check_finite, read_images, split_spec

    path, dset = split_spec(spec)
    if path.suffix.lower() in HDF5_SUFFIXES and dset is None and path.exists():
        import h5py

        try:
            with h5py.File(path, "r") as f:
                is_ours = f.attrs.get("format") == FORMAT
        except OSError as exc:
            raise DataError(f"cannot read {path} as HDF5 ({exc})") from None
        if is_ours:
            from .io.hdf5 import read_result

            st = read_result(path)
            if "reconstruction" not in st.datasets:
                raise DataError(f"{path} holds no /reconstruction; pass the output of `invsolve reconstruct`")
            est, _ = as_stack(st.datasets["reconstruction"].astype(np.float32), str(path))
            check_finite(est, f"{path}:/reconstruction")
            return est, st.datasets.get("ground_truth")
    est, _ = read_images(spec)
    return est, None
