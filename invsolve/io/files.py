"""Reading one file: ``FILE.h5:/dataset``, ``.npy``, PNG/JPEG/BMP, TIFF and DICOM, each by its suffix (DICOM
also by its preamble), in the file's own dtype.

Folders, globs and lists of files are :mod:`invsolve.io.stacks`'s; scaling to [0, 1] is
:mod:`invsolve.io.images`'s.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import DataError
from .dicom import DICOM_SUFFIXES, is_dicom
from .pictures import PICTURE_SUFFIXES
from .raw import RawImage

__all__ = ["HDF5_SUFFIXES", "IMAGE_SUFFIXES", "list_datasets", "match_files", "read_file", "read_hdf5", "split_spec"]

#: File suffixes taken as images when a folder is given (DICOM files are also found by their preamble).
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".npy", *DICOM_SUFFIXES)

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5", ".nxs")
_SPEC = re.compile(r"^(?P<file>.*?\.(?:h5|hdf5|hdf|he5|nxs))(?::(?P<dset>.*))?$", re.IGNORECASE)


def split_spec(spec: str) -> tuple[Path, str | None]:
    """Split ``file.h5:/path`` into (file, dataset); other paths get dataset None."""
    m = _SPEC.match(str(spec))
    if m:
        return Path(m.group("file")), (m.group("dset") or None)
    return Path(spec), None


def list_datasets(f) -> list[str]:
    import h5py

    names: list[str] = []
    f.visititems(lambda n, o: names.append("/" + n) if isinstance(o, h5py.Dataset) else None)
    return names


def read_hdf5(path: Path, dataset: str | None) -> np.ndarray:
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"cannot read {path} as HDF5 ({exc}); is it an HDF5 file?") from None
    with f:
        names = list_datasets(f)
        if dataset is None:
            if len(names) != 1:
                raise DataError(
                    f"{path} holds {len(names)} datasets; name one as {path}:/PATH "
                    f"(datasets: {', '.join(names) or 'none'})"
                )
            dataset = names[0]
        from .h5safety import checked_get

        obj = checked_get(f, dataset, f"{path}:{dataset if dataset.startswith('/') else '/' + dataset}")
        if not isinstance(obj, h5py.Dataset):
            raise DataError(
                f"no dataset {dataset!r} in {path}; datasets: {', '.join(names) or 'none'}"
            )
        return np.asarray(obj[()])


def _dtype_bits(arr: np.ndarray) -> int | None:
    """The bit depth of uint8 / uint16 arrays (scaled by 255 / 65535); None keeps other values as they are."""
    return {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(arr.dtype)


def read_file(spec: str) -> RawImage:
    """One file (or ``FILE.h5:/dataset``) as a :class:`RawImage`."""
    path, dset = split_spec(spec)
    if not path.exists():
        head, sep, _ = spec.rpartition(":/")
        if sep and Path(head).is_file():
            raise DataError(f"{spec}: FILE:/DATASET applies to HDF5 files; give {head} without the :/... part")
        raise DataError(f"input file not found: {path} (check the path)")
    suffix = path.suffix.lower()
    if suffix in HDF5_SUFFIXES:
        arr = read_hdf5(path, dset)
        raw = RawImage(arr, spec, "hdf5", _dtype_bits(arr), None, {"bits_from": f"{arr.dtype} data"})
    elif suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except MemoryError:
            raise
        except Exception as exc:
            raise DataError(f"cannot read {path} as a NumPy array: {exc}") from None
        raw = RawImage(arr, spec, "npy", _dtype_bits(arr), None, {"bits_from": f"{arr.dtype} data"})
    elif suffix in (".tif", ".tiff"):
        from .tiff import read_tiff

        raw = read_tiff(path)
    elif suffix in PICTURE_SUFFIXES:
        from .pictures import read_picture

        raw = read_picture(path)
    elif is_dicom(path):
        from .dicom import read_dicom

        raw = read_dicom(path)
    else:
        raise DataError(f"unsupported input type {suffix or '(none)'} for {path}; use .h5:/dataset, .npy, .png, "
                        ".tif or DICOM")
    arr = np.asarray(raw.data)
    if arr.size == 0 or arr.ndim == 0:
        what = "a single number" if arr.ndim == 0 else f"an empty array of shape {arr.shape}"
        raise DataError(f"{spec} holds {what}; give a file with an image, a stack or vectors in it")
    return raw


def match_files(pattern: str) -> list[str]:
    """The files a glob pattern matches, sorted; none is an error."""
    import glob

    files = sorted(glob.glob(pattern))
    if not files:
        raise DataError(f"no files match {pattern!r}; check the pattern (quote it so the shell keeps it)")
    return files
