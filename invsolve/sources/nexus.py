"""NeXus NXtomo files: one frame stack whose ``image_key`` marks projections (0), flats (1), darks (2) and
invalid frames (3), with the rotation angle per frame in ``sample/rotation_angle`` (units in ``@units``).

The application definition (``applications/NXtomo.nxdl.xml``) puts them at ``entry/instrument/detector/data``,
``.../image_key`` and ``entry/sample/rotation_angle``; facility files often use ``entry1/tomo_entry/...``,
so the frames are found by their ``image_key`` sibling wherever the entry sits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DataError

__all__ = ["NXtomoFrames", "find_nxtomo", "read_nxtomo"]


@dataclass(frozen=True)
class NXtomoFrames:
    """Paths of an NXtomo entry.

    Attributes:
        data: The frame stack (frames, rows, columns).
        image_key: Per-frame key (frames,).
        rotation_angle: Per-frame angle (frames,), or None.
    """

    data: str
    image_key: str
    rotation_angle: str | None


def find_nxtomo(names: list[str], dataset: str | None = None) -> NXtomoFrames | None:
    """The NXtomo frames among an HDF5 file's dataset ``names`` (the one at ``dataset`` when given)."""
    for name in names:
        if not name.endswith("/detector/data") or (dataset is not None and name != dataset):
            continue
        det = name[: -len("/data")]
        key = det + "/image_key"
        if key not in names:
            continue
        entry = det.rsplit("/instrument/", 1)[0]
        angle = next((n for n in (entry + "/sample/rotation_angle", det + "/rotation_angle") if n in names), None)
        return NXtomoFrames(name, key, angle)
    return None


def read_nxtomo(path, frames: NXtomoFrames, rows: slice | None):
    """Projections, flats, darks and the projections' angles of an NXtomo entry.

    Arguments:
        path: The file.
        frames: Its paths (:func:`find_nxtomo`).
        rows: Detector rows to read, or None for all.

    Returns:
        (projections (n, rows, cols), flats (f, rows, cols), darks (d, rows, cols) or None, angles (n,) or None,
        the angles' unit or None), float32 arrays.
    """
    import h5py

    from .angles import hdf5_angle_unit

    from ..io.h5safety import checked_get

    with h5py.File(path, "r") as f:
        key = np.asarray(checked_get(f, frames.image_key)[()]).reshape(-1)
        data = checked_get(f, frames.data)
        if data.ndim != 3 or data.shape[0] != key.size:
            raise DataError(f"{path}:{frames.data} has shape {data.shape} for {key.size} image_key entries; an "
                            "NXtomo frame stack is (frames, rows, columns) with one key per frame")
        sel = slice(None) if rows is None else rows

        def take(k: int) -> np.ndarray | None:
            idx = np.flatnonzero(key == k)
            return np.asarray(data[idx, sel], dtype=np.float32) if idx.size else None

        proj, flats, darks = take(0), take(1), take(2)
        angles = unit = None
        if frames.rotation_angle is not None:
            ds = checked_get(f, frames.rotation_angle)
            all_angles = np.asarray(ds[()], dtype=np.float64).reshape(-1)
            if all_angles.size == key.size:
                angles, unit = all_angles[key == 0], hdf5_angle_unit(ds)
    if proj is None:
        raise DataError(f"{path}: no frame of {frames.data} has image_key 0 (projection)")
    if flats is None:
        raise DataError(f"{path}: no frame of {frames.data} has image_key 1 (flat field); give --flats")
    return proj, flats, darks, angles, unit
