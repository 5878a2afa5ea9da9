"""Stacks from many files: folders, globs and lists of slices (PNG, TIFF pages, DICOM series, arrays)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataError, ShapeError
from .raw import RawImage, natural_key

__all__ = ["folder_images", "expand_specs", "read_raw_parts", "stack_parts"]


def folder_images(folder: Path) -> list[str]:
    """The image files of a folder in natural name order: the image suffixes, and DICOM files by their
    ``DICM`` preamble whatever their name."""
    from .dicom import is_dicom
    from .images import IMAGE_SUFFIXES

    files = [f for f in folder.iterdir() if f.is_file() and not f.name.startswith(".")
             and (f.suffix.lower() in IMAGE_SUFFIXES or (f.suffix.lower() not in _NOT_IMAGES and is_dicom(f)))]
    if not files:
        raise DataError(f"folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}, or DICOM files)")
    return sorted((str(f) for f in files), key=natural_key)


#: Suffixes never checked for a DICOM preamble in a folder (notes, configs, results beside the slices).
_NOT_IMAGES = (".txt", ".md", ".json", ".yaml", ".yml", ".toml", ".csv", ".h5", ".hdf5", ".py", ".log", ".xml")


def expand_specs(specs: Sequence[str]) -> list[str]:
    """Folders as their images, globs as their matches (natural order); files and ``FILE.h5:/x`` as given."""
    from .images import expand_image_spec

    out: list[str] = []
    for spec in specs:
        out.extend(expand_image_spec(str(spec)))
    return out


def read_raw_parts(files: Sequence[str], source: str) -> list[RawImage]:
    """Raw images of ``files``; a set of DICOM files only comes back as one series in slice order.

    Arguments:
        files: Files or ``FILE.h5:/dataset`` specs, each an image (H, W) or a stack (N, H, W).
        source: The name of the set, for messages.

    Returns:
        The raw images, each with ``data`` (H, W) or (N, H, W), all of one (H, W).

    Raises:
        DataError: A file that does not read, or a file whose images differ in size from the first's.
        ShapeError: A file that holds no image or stack (1-D or 4-D data).
    """
    from .dicom import is_dicom, read_dicom_series
    from .images import read_raw

    if len(files) > 1 and all(is_dicom(f) for f in files):
        return [read_dicom_series(files, source)]
    parts = [read_raw(f) for f in files]
    first = None
    for p in parts:
        if p.data.ndim not in (2, 3):
            raise ShapeError(f"{p.source} has shape {p.data.shape} ({p.data.ndim}-D); a slice of a stack is an "
                             "image (H, W) or a stack (N, H, W)")
        if first is None:
            first = p
        if p.data.shape[-2:] != first.data.shape[-2:]:
            (h, w), (H, W) = p.data.shape[-2:], first.data.shape[-2:]
            raise DataError(f"{p.source} is {h}×{w}, but {first.source} is {H}×{W}; the slices of {source} must "
                            "all be the same size (crop or resize it, or move it out of the set)")
    return parts


def stack_parts(parts: Sequence[RawImage], arrays: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """The parts (or their scaled ``arrays``) as one (N, H, W) stack."""
    arrays = [p.data for p in parts] if arrays is None else arrays
    return np.concatenate([a.reshape(-1, *a.shape[-2:]) for a in arrays])
