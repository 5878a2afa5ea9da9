"""Evaluation API: PSNR/SSIM of results against a reference and credible-interval
coverage of posterior outputs.  Re-exported by :mod:`invsolve.api`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import DataError, ShapeError

__all__ = ["evaluate", "evaluate_vectors", "Estimate", "load_estimate", "coverage", "reference_record",
           "mean_record"]


def _as_array(x: Any, what: str, ndims: tuple[int, ...], want: str, dtype=np.float32) -> np.ndarray:
    """``x`` as a finite numeric array of one of the ranks ``ndims``; ShapeError or DataError otherwise."""
    from .results import Measurement, NoiseEstimate, Posterior, Reconstruction

    if x is None or isinstance(x, (str, bytes, Measurement, Reconstruction, Posterior, NoiseEstimate)):
        hint = ""
        if isinstance(x, Reconstruction):
            hint = "; pass its .images"
        elif isinstance(x, Posterior):
            hint = "; pass its .summary.mean"
        elif isinstance(x, (str, bytes)):
            hint = "; read files with load_estimate(spec).images or numpy.load"
        raise DataError(f"the {what} must be a numeric array {want}, got {type(x).__name__}{hint}")
    try:
        arr = np.asarray(x)
        if arr.dtype.kind not in "biuf":
            raise TypeError
        arr = arr.astype(dtype)
    except (TypeError, ValueError):
        kind = f"array of {x.dtype}" if isinstance(x, np.ndarray) else type(x).__name__
        raise DataError(f"the {what} must be a numeric array {want}, got {kind}") from None
    if arr.ndim not in ndims or arr.size == 0:
        raise ShapeError(f"the {what} has shape {arr.shape}; expected a non-empty {want} array")
    if not np.isfinite(arr).all():
        raise DataError(f"the {what} holds NaN or infinite values; metrics need finite values, so clean or "
                        "re-run what produced it")
    return arr


def evaluate(estimate: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """PSNR and SSIM (data range 1) per slice and their mean.

    Arguments:
        estimate: (H, W) or (N, H, W) finite images.
        reference: (H, W), (1, H, W) (broadcast over N) or (N, H, W) finite images.

    Returns:
        ``psnr``, ``ssim`` (means) and ``psnr_per_slice``, ``ssim_per_slice`` (N values each).
    """
    from .metrics import image_metrics

    want = "(H, W) or (N, H, W)"
    est = _as_array(estimate, "estimate", (2, 3), want)
    ref = _as_array(reference, "reference", (2, 3), want)
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


def evaluate_vectors(estimate: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """Per-parameter RMSE and mean relative error of parameter vectors, and their means over the d parameters.

    Arguments:
        estimate: (d,) or (N, d) finite parameter vectors.
        reference: The truth, (d,) or (1, d) (broadcast over N) or (N, d).

    Returns:
        ``rmse``, ``relative_error`` (means) and ``rmse_per_parameter``, ``relative_error_per_parameter`` (d each).
    """
    from .metrics import vector_metrics

    want = "(d,) or (N, d)"
    est = _as_array(estimate, "estimate", (1, 2), want, np.float64)
    ref = _as_array(reference, "reference", (1, 2), want, np.float64)
    est = est[None] if est.ndim == 1 else est
    ref = ref[None] if ref.ndim == 1 else ref
    if ref.shape[0] == 1 and est.shape[0] > 1:
        ref = np.broadcast_to(ref, est.shape)
    if est.shape != ref.shape:
        raise ShapeError(f"result has parameter vectors of shape {est.shape} but the reference has {ref.shape}; "
                         "give the true parameters as an (N, d) .npy or HDF5 dataset")
    per = vector_metrics(ref, est)
    return {"rmse": float(np.mean(per["rmse"])), "relative_error": float(np.nanmean(per["relative_error"])),
            "rmse_per_parameter": per["rmse"], "relative_error_per_parameter": per["relative_error"]}


@dataclass
class Estimate:
    """Images (N, H, W), or parameter vectors (N, d) when ``vector``, to evaluate, with what the file stores
    beside them."""

    images: np.ndarray
    ground_truth: np.ndarray | None = None
    quantiles: np.ndarray | None = None
    levels: tuple[float, ...] = ()
    vector: bool = False
    calibrated_quantiles: np.ndarray | None = None


def load_estimate(spec: str) -> Estimate:
    """Images to evaluate and, when stored, their ground truth and posterior quantiles.

    ``spec`` is an invsolve result (its ``/reconstruction``; for posteriors the
    mean), ``file.h5:/dataset``, an image file or ``.npy``.
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
            done = st.datasets.get("completed")
            if done is not None and not np.all(done):
                raise DataError(f"{path} is incomplete ({int(np.sum(done))} of {len(done)} slices done); finish it "
                                "with the command that wrote it plus --resume (or run its missing --shard)")
            rec = st.datasets["reconstruction"].astype(np.float32)
            check_finite(rec, f"{path}:/reconstruction")
            op = st.attrs.get("operator")
            vector = isinstance(op, dict) and len(op.get("image_shape") or ()) == 1
            est = rec if vector else as_stack(rec, str(path))[0]
            return Estimate(est, st.datasets.get("ground_truth"), st.datasets.get("quantiles"),
                            tuple(st.attrs.get("quantile_levels") or ()), vector,
                            st.datasets.get("calibrated_quantiles"))
    est, _ = read_images(spec)
    return Estimate(est)


def coverage(estimate: Estimate, truth: np.ndarray, masses=(0.5, 0.9)) -> dict[str, float]:
    """Coverage of the central credible intervals stored as quantiles, e.g. ``{"coverage_90": 0.91}``; with
    conformally calibrated quantiles stored too, also theirs (``"calibrated_coverage_90"``)."""
    from .posterior import interval_coverage

    out = {}
    if estimate.quantiles is None:
        return out
    t = np.broadcast_to(truth, estimate.images.shape) if truth.shape[0] == 1 else truth
    for prefix, q in (("", estimate.quantiles), ("calibrated_", estimate.calibrated_quantiles)):
        for mass in masses if q is not None else ():
            try:
                out[f"{prefix}coverage_{round(mass * 100)}"] = interval_coverage(t, q, estimate.levels, mass)
            except ValueError:
                continue
    return out


def reference_record(spec: str | None, input_spec: str, value_range=None) -> dict[str, Any]:
    """Where the reference of one evaluated input came from, as ``evaluate --json`` records it: ``file`` and
    ``dataset`` (the one dataset of an HDF5 file given without one; None for image files and ``.npy``), and the
    ``range`` it was read with when given.  ``spec`` None: the ground truth stored in ``input_spec``."""
    from .io.images import HDF5_SUFFIXES, split_spec

    if spec is None:
        return {"file": str(split_spec(input_spec)[0]), "dataset": "/ground_truth"}
    path, dset = split_spec(spec)
    if dset is None and path.suffix.lower() in HDF5_SUFFIXES and path.is_file():
        import h5py

        from .io.files import list_datasets

        try:
            with h5py.File(path, "r") as f:
                names = list_datasets(f)
        except OSError:
            names = []
        dset = names[0] if len(names) == 1 else None
    out: dict[str, Any] = {"file": str(path), "dataset": dset}
    if value_range is not None:
        out["range"] = [float(v) for v in value_range]
    return out


def mean_record(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The mean over the inputs of the per-input records of ``evaluate``: every metric all of them hold
    (PSNR, SSIM, coverage; or RMSE and relative error, per parameter element-wise), unweighted as in the
    table, with ``mean_of`` (the inputs), ``n`` (their images in all) and ``reference`` (the one shared by
    all, or the list of them in input order)."""
    out: dict[str, Any] = {"mean_of": [r["input"] for r in rows]}
    for k, v in rows[0].items():
        if k in ("input", "n", "reference") or k.endswith("_per_slice") or not all(k in r for r in rows):
            continue
        if isinstance(v, (list, tuple)):
            if len({len(r[k]) for r in rows}) == 1:
                out[k] = np.mean(np.array([r[k] for r in rows], np.float64), axis=0).tolist()
        elif v is None or isinstance(v, (int, float)):
            vals = [np.nan if r[k] is None else r[k] for r in rows]
            out[k] = float(np.mean(np.array(vals, np.float64)))
    out["n"] = int(sum(r["n"] for r in rows))
    refs = [r.get("reference") for r in rows]
    out["reference"] = refs[0] if all(ref == refs[0] for ref in refs) else refs
    return out

