"""Input specifications of measurements: ``FILE``, ``FILE.h5:/dataset`` and an optional item range ``[a:b]``, and
reading the raw array they name (sinograms, projection stacks, images) without rescaling.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError, ShapeError

__all__ = ["InputSpec", "parse_input", "is_invsolve_file", "read_raw", "array_digest", "hdf5_datasets"]

_RANGE = re.compile(r"^(?P<body>.*?)\[(?P<a>-?\d*):(?P<b>-?\d*)\]$")


@dataclass(frozen=True)
class InputSpec:
    """One measurement input as the user wrote it.

    Attributes:
        text: The spec as given.
        file: The file.
        dataset: The HDF5 dataset (``FILE.h5:/path``), or None.
        items: The first-axis range ``[a:b]`` (a slice), or None for all.
    """

    text: str
    file: Path
    dataset: str | None
    items: slice | None

    @property
    def is_hdf5(self) -> bool:
        from ..io.images import HDF5_SUFFIXES

        return self.file.suffix.lower() in HDF5_SUFFIXES

    def where(self) -> str:
        """``file`` or ``file:/dataset`` for messages."""
        return f"{self.file}:{self.dataset}" if self.dataset else str(self.file)


def parse_input(text: str) -> InputSpec:
    """Split ``FILE.h5:/data[10:20]`` into file, dataset and item range."""
    from ..io.images import split_spec

    body, items = str(text), None
    m = _RANGE.match(body)
    if m:
        body = m.group("body")
        a, b = m.group("a"), m.group("b")
        items = slice(int(a) if a else None, int(b) if b else None)
    path, dset = split_spec(body)
    return InputSpec(str(text), path, dset, items)


def is_invsolve_file(path: Path) -> bool:
    """Whether ``path`` is an HDF5 file written by invsolve (attribute ``format = "invsolve"``)."""
    import h5py

    from ..io.hdf5 import FORMAT

    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("format") == FORMAT
    except OSError:
        return False


def hdf5_datasets(path: Path) -> list[str]:
    """Every dataset of an HDF5 file, as ``/path`` names."""
    import h5py

    names: list[str] = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: names.append("/" + n) if isinstance(o, h5py.Dataset) else None)
    return names


def _items(spec: InputSpec, n: int) -> slice:
    sl = spec.items or slice(None)
    a, b, _ = sl.indices(n)
    if sl.start is not None and not -n <= sl.start < n or b <= a:
        raise DataError(f"{spec.text}: the range [{sl.start or ''}:{sl.stop or ''}] selects no item of the {n} "
                        f"along the first axis; give a range inside 0..{n}")
    return slice(a, b)


def read_raw(spec: InputSpec, rows: slice | None = None) -> np.ndarray:
    """The array ``spec`` names, float32 in the file's own units (counts stay counts), first axis cut to the
    spec's item range; ``rows`` cuts the second axis (detector rows of a projection stack) as HDF5 reads it,
    so only those rows are read.

    Returns:
        The array, (items, ...) or the file's own shape without a range.
    """
    from ..io.images import read_array

    if not spec.file.exists():
        raise DataError(f"input file not found: {spec.file} (check the path)")
    if spec.is_hdf5:
        arr = _read_hdf5(spec, rows)
    else:
        arr = np.asarray(read_array(str(spec.file), scale=False))
        if spec.items is not None:
            arr = arr[_items(spec, len(arr))]
        if rows is not None:
            arr = arr[:, rows]
    if not np.issubdtype(arr.dtype, np.number) or arr.dtype == np.complex64 or arr.dtype == np.complex128:
        raise DataError(f"{spec.where()} holds {arr.dtype} values, not real numbers")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _read_hdf5(spec: InputSpec, rows: slice | None) -> np.ndarray:
    import h5py

    try:
        f = h5py.File(spec.file, "r")
    except OSError as exc:
        raise DataError(f"cannot read {spec.file} as HDF5 ({exc}); is it an HDF5 file?") from None
    with f:
        names = hdf5_datasets(spec.file)
        if spec.dataset is None:
            raise DataError(f"name the dataset of {spec.file} as {spec.file}:/PATH (datasets: "
                            f"{', '.join(names[:8]) or 'none'}{' ...' if len(names) > 8 else ''})")
        from ..io.h5safety import checked_get

        obj = checked_get(f, spec.dataset, spec.where())
        if not isinstance(obj, h5py.Dataset):
            raise DataError(f"no dataset {spec.dataset!r} in {spec.file}; datasets: "
                            f"{', '.join(names[:8]) or 'none'}{' ...' if len(names) > 8 else ''}")
        if obj.ndim == 0 or obj.size == 0:
            raise ShapeError(f"{spec.where()} is {'a single number' if obj.ndim == 0 else 'empty'}; give a "
                             "dataset holding the measurement")
        sel: list = [_items(spec, obj.shape[0]) if spec.items is not None else slice(None)]
        if rows is not None:
            if obj.ndim < 3:
                raise ShapeError(f"{spec.where()} has shape {obj.shape}; a row range needs a projection stack "
                                 "(angles, rows, columns)")
            sel.append(rows)
        return np.asarray(obj[tuple(sel)])


def array_digest(arr: np.ndarray) -> str:
    """SHA-256 of an array's float32 bytes (C order) with its shape, for provenance."""
    a = np.ascontiguousarray(arr, dtype=np.float32)
    h = hashlib.sha256(repr(a.shape).encode())
    h.update(a.tobytes())
    return h.hexdigest()
