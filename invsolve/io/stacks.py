"""Stacks from many files: folders, globs and lists of slices (PNG, TIFF pages, DICOM series, arrays) as lists
of files, and the slices read from them as one stack (the reading is :mod:`invsolve.io.images`'s)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataError
from .files import IMAGE_SUFFIXES, match_files, split_spec
from .raw import RawImage, natural_key

__all__ = ["folder_images", "expand_image_spec", "expand_specs", "stack_parts"]


def folder_images(folder: Path) -> list[str]:
    """The image files of a folder in natural name order: the image suffixes, and DICOM files by their
    ``DICM`` preamble whatever their name."""
    from .dicom import is_dicom

    files = [f for f in folder.iterdir() if f.is_file() and not f.name.startswith(".")
             and (f.suffix.lower() in IMAGE_SUFFIXES or (f.suffix.lower() not in _NOT_IMAGES and is_dicom(f)))]
    if not files:
        raise DataError(f"folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}, or DICOM files)")
    return sorted((str(f) for f in files), key=natural_key)


#: Suffixes never checked for a DICOM preamble in a folder (notes, configs, results beside the slices).
_NOT_IMAGES = (".txt", ".md", ".json", ".yaml", ".yml", ".toml", ".csv", ".h5", ".hdf5", ".py", ".log", ".xml")


def expand_image_spec(spec: str) -> list[str]:
    """One image argument as a list of inputs: ``FILE.h5:/stack`` or an existing file as itself, a folder as
    its images (``IMAGE_SUFFIXES`` and DICOM files), a glob as its matches; in natural name order."""
    path, dset = split_spec(spec)
    if dset is not None or path.exists():
        return folder_images(path) if path.is_dir() else [spec]
    if any(ch in spec for ch in "*?["):
        return sorted(match_files(spec), key=natural_key)
    return [spec]  # the reader reports the missing file


def expand_specs(specs: Sequence[str]) -> list[str]:
    """Folders as their images, globs as their matches (natural order); files and ``FILE.h5:/x`` as given."""
    out: list[str] = []
    for spec in specs:
        out.extend(expand_image_spec(str(spec)))
    return out


def stack_parts(parts: Sequence[RawImage], arrays: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """The parts (or their scaled ``arrays``) as one (N, H, W) stack."""
    arrays = [p.data for p in parts] if arrays is None else arrays
    return np.concatenate([a.reshape(-1, *a.shape[-2:]) for a in arrays])
