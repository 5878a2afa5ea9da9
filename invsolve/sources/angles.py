"""Projection angles from files: ``.npy``, text (one number per line, or separated by commas or spaces), or an
HDF5 dataset such as DXchange's ``/exchange/theta`` (degrees) or NXtomo's ``rotation_angle`` (``@units``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError

__all__ = ["read_angles", "hdf5_angle_unit"]

_UNITS = {"deg": "deg", "degree": "deg", "degrees": "deg", "°": "deg", "rad": "rad", "radian": "rad",
          "radians": "rad"}


def hdf5_angle_unit(dataset) -> str | None:
    """The unit an HDF5 angle dataset declares (``units`` or ``unit`` attribute), as ``"deg"``/``"rad"``;
    None when it declares none.  DXchange's ``/exchange/theta`` is in degrees by its specification."""
    for key in ("units", "unit"):
        if key in dataset.attrs:
            raw = dataset.attrs[key]
            text = (raw.decode() if isinstance(raw, bytes) else str(raw)).strip().lower()
            if text in _UNITS:
                return _UNITS[text]
            raise DataError(f"{dataset.file.filename}:{dataset.name} declares angle units {text!r}; expected "
                            "deg or rad (set -P angle_unit=deg|rad and fix the attribute)")
    if dataset.name.endswith("/exchange/theta"):
        return "deg"
    return None


def _read_text(path: Path) -> np.ndarray:
    values: list[float] = []
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read angle file {path}: {exc}") from None
    for no, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        for cell in line.replace(",", " ").replace(";", " ").split():
            try:
                values.append(float(cell))
            except ValueError:
                if not values and no == 1:  # a header line
                    break
                raise DataError(f"{path} line {no}: {cell!r} is not a number; an angle file holds one angle per "
                                "line (or comma-separated)") from None
    return np.asarray(values, dtype=np.float64)


def read_angles(spec: str) -> tuple[np.ndarray, str | None]:
    """Read a list of angles, (n,) float64, and the unit the file declares (None when it declares none).

    Arguments:
        spec: ``theta.npy``, ``theta.txt``/``.csv`` or ``FILE.h5:/dataset``.
    """
    from ..io.images import HDF5_SUFFIXES, split_spec

    path, dset = split_spec(spec)
    if not path.is_file():
        raise DataError(f"angle file not found: {path} (check -P angles_file=...)")
    suffix = path.suffix.lower()
    unit = None
    if suffix in HDF5_SUFFIXES:
        import h5py

        if dset is None:
            raise DataError(f"name the angle dataset of {path}, e.g. -P angles_file={path}:/exchange/theta")
        try:
            with h5py.File(path, "r") as f:
                from ..io.h5safety import checked_get

                ds = checked_get(f, dset, f"{path}:{dset}")
                if not isinstance(ds, h5py.Dataset):
                    raise DataError(f"no dataset {dset!r} in {path} for the angles; check -P angles_file")
                arr = np.asarray(ds[()], dtype=np.float64)
                unit = hdf5_angle_unit(ds)
        except OSError as exc:
            raise DataError(f"cannot read {path} as HDF5 ({exc})") from None
    elif suffix == ".npy":
        try:
            arr = np.asarray(np.load(path, allow_pickle=False), dtype=np.float64)
        except (ValueError, OSError) as exc:
            raise DataError(f"cannot read angle file {path} as a NumPy array: {exc}") from None
    else:
        arr = _read_text(path)
    if arr.ndim > 1 and sum(s > 1 for s in arr.shape) > 1:
        raise DataError(f"angle file {spec} holds an array of shape {arr.shape}; expected one angle per "
                        "projection, (n,)")
    return arr.reshape(-1), unit
