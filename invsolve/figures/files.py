"""Reading any invsolve file for drawing: HDF5 results (measurement, reconstruction, posterior, noise
estimate) and ``.pt`` files (prior, sampler), with one item of a stack picked out."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError

__all__ = ["Shown", "open_file", "PER_ITEM", "is_vector"]

#: Datasets of HDF5 results with one entry per measurement (first axis N).
PER_ITEM = ("measurement", "ground_truth", "reconstruction", "posterior_mean", "posterior_std", "quantiles",
            "samples", "completed")
#: The file kinds drawn, as named in titles.
KIND_NAMES = {"measurement": "measurement", "reconstruction": "reconstruction", "posterior": "posterior",
              "noise_estimate": "noise estimate (estimate-noise)", "prior": "prior file", "sampler": "sampler file",
              "calibration": "calibration (calibrate)"}


@dataclass
class Shown:
    """One file read for drawing.

    Attributes:
        path: The file.
        kind: ``measurement``, ``reconstruction``, ``posterior``, ``noise_estimate``, ``calibration``,
            ``prior_samples``, ``prior`` or ``sampler``.
        attrs: HDF5 attributes (JSON configs decoded), or a ``.pt`` file's entries other than weights.
        item: Per-item datasets of item ``index``, without the item axis (HDF5 results only).
        whole: Datasets that are not per item (EM traces, ``estimate``).
        arrays: The stored operator arrays (``/operator_arrays``: a mask, a kernel, a matrix).
        index: The item drawn; count: how many items the file holds (1 for ``.pt`` files).
    """

    path: Path
    kind: str
    attrs: dict[str, Any]
    item: dict[str, np.ndarray] = field(default_factory=dict)
    whole: dict[str, np.ndarray] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    index: int = 0
    count: int = 1

    def config(self, key: str) -> Any:
        """An attribute holding JSON (decoded when stored as text), or None."""
        v = self.attrs.get(key)
        if isinstance(v, str) and v[:1] in "[{":
            try:
                return json.loads(v)
            except json.JSONDecodeError:
                return v
        return v

    @property
    def operator(self) -> dict[str, Any]:
        op = self.config("operator")
        return op if isinstance(op, dict) else {}

    @property
    def vector(self) -> bool:
        return is_vector(self.operator)

    def build_operator(self):
        """The stored operator, built on the CPU; None when it cannot be built here (e.g. a surrogate whose
        model file is missing) or would read a file the result names but does not carry (stored paths are never
        followed), so that a figure can still show the data."""
        from ..errors import InvsolveError
        from ..operators import build_operator
        from ..operators.file_params import followed_paths

        op = self.operator
        if followed_paths(op, self.arrays):
            return None
        try:
            return build_operator(op["name"], op["params"], tuple(op["image_shape"]), self.arrays)
        except (InvsolveError, KeyError, TypeError, ValueError, OSError, RuntimeError):
            return None

    def pending(self) -> str | None:
        """Why the item cannot be drawn yet (a batch run has not computed it), or None."""
        done = self.item.get("completed")
        if done is None or bool(done):
            return None
        return (f"item {self.index} of {self.path} is not computed yet (the run is incomplete); finish it with the "
                "command that wrote it plus --resume, or show another --index")

    def where(self) -> str:
        """``FILE`` or ``FILE, item K of N``, for titles."""
        return self.path.name + (f", item {self.index} of {self.count} (0–{self.count - 1})" if self.count > 1
                                 else "")


def is_vector(operator: dict[str, Any]) -> bool:
    """Whether the operator's unknowns are parameter vectors (image_shape of length 1)."""
    return len(operator.get("image_shape") or ()) == 1


def open_file(path: str | Path, index: int = 0, incomplete_ok: bool = False) -> Shown:
    """Read ``path`` for drawing, with item ``index`` of a stack.

    ``incomplete_ok`` reads an item a batch run has not computed yet (its datasets hold NaN) instead of
    refusing it; :meth:`Shown.pending` then says so.

    Raises:
        DataError: A missing file, a folder, a file invsolve did not write, an index out of range, or an item
            a batch run has not computed yet.
    """
    import h5py

    p = Path(path)
    if not p.exists():
        raise DataError(f"file not found: {p} (check the path)")
    if p.is_dir():
        raise DataError(f"{p} is a folder; give an invsolve file (HDF5 result, or a prior or sampler .pt)")
    if _is_zip(p):
        return _open_pt(p)
    if not h5py.is_hdf5(p):
        raise DataError(f"{p} is not an invsolve file (neither HDF5 nor a .pt prior or sampler file); give a file "
                        "written by invsolve")
    return _open_hdf5(p, index, incomplete_ok)


def _is_zip(p: Path) -> bool:
    import zipfile

    return zipfile.is_zipfile(p)


def check_index(index: int, count: int, p: Path) -> None:
    """DataError unless 0 <= index < count, naming the valid range."""
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < count:
        valid = "--index 0 (or leave it out)" if count == 1 else f"an --index from 0 to {count - 1}"
        raise DataError(f"--index {index} is out of range: {p} holds {count} item(s); give {valid}")


def _open_hdf5(p: Path, index: int, incomplete_ok: bool) -> Shown:
    from ..io.hdf5 import read_result

    head = read_result(p, data=False)
    kind = str(head.attrs.get("kind", "measurement"))
    if kind in ("calibration", "prior_samples"):  # small, and not per item
        check_index(index, 1, p)
        st = read_result(p)
        return Shown(p, kind, dict(st.attrs), {}, dict(st.datasets), {}, 0, 1)
    if kind not in ("measurement", "reconstruction", "posterior", "noise_estimate"):
        raise DataError(f"{p} is an invsolve file of unknown kind {kind!r}; this invsolve draws measurements, "
                        "reconstructions, posteriors, noise estimates, calibrations and prior samples")
    if "measurement" not in head.datasets:
        raise DataError(f"{p} holds no /measurement; it is damaged, re-create it with the command that wrote it")
    count = int(head.datasets["measurement"][0])
    check_index(index, count, p)
    if kind == "noise_estimate":  # small; its traces may be as long as the stack, so never sliced by item
        st = read_result(p)
        item = {k: v[index] for k, v in st.datasets.items() if k in PER_ITEM}
        whole = {k: v for k, v in st.datasets.items() if k not in PER_ITEM}
    else:
        st = read_result(p, items=slice(index, index + 1))
        item = {k: v[0] for k, v in st.datasets.items() if k in PER_ITEM and v.ndim >= 1 and len(v) == 1}
        whole = {k: v for k, v in st.datasets.items() if k not in item}
    shown = Shown(p, kind, dict(st.attrs), item, whole, st.groups.get("operator_arrays", {}), int(index), count)
    if shown.pending() and not incomplete_ok:
        raise DataError(shown.pending())
    return shown


def _open_pt(p: Path) -> Shown:
    import pickle

    import torch

    from ..priors.base import FORMAT as PRIOR_FORMAT
    from ..samplers.base import FORMAT as SAMPLER_FORMAT

    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise DataError(f"{p} holds Python objects other than tensors and plain data; refusing to load it (only "
                        "files written by invsolve load)") from None
    except Exception:  # a damaged archive; torch's own text spans lines
        raise DataError(f"{p} is not a readable invsolve prior or sampler file (damaged, truncated or another "
                        "format)") from None
    fmt = payload.get("format") if isinstance(payload, dict) else None
    kinds = {PRIOR_FORMAT: "prior", SAMPLER_FORMAT: "sampler"}
    if fmt not in kinds:
        raise DataError(f"{p} is not an invsolve prior or sampler file (no format entry of either); give a file "
                        "written by `invsolve train-prior` or `invsolve train-sampler`")
    attrs = {k: v for k, v in payload.items() if k not in ("state", "state_dict", "arrays", "sha256")}
    training = attrs.get("training")
    if isinstance(training, dict):  # optimizer and generator states are of no use for a picture
        attrs["training"] = {k: v for k, v in training.items() if k not in ("optimizer", "generator",
                                                                            "val_generator")}
    return Shown(p, kinds[fmt], attrs)
