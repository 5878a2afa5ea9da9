"""Reading images and stacks: ``file.h5:/dataset``, ``.npy``, PNG/JPEG/BMP, TIFF, DICOM, folders and globs.

Every reader returns float32.  Images are put on the [0, 1] scale (:mod:`invsolve.io.scaling`): unsigned
integers by the file's bit depth (uint8 / 255, uint16 / 65535, 12-bit DICOM / 4095, ...) or by a value
range the caller gives, CT DICOM from HU to μ/μ_max; floats keep their values.  :func:`read_raw_array`
keeps every value in its own units.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataError, ShapeError
from .files import HDF5_SUFFIXES, IMAGE_SUFFIXES, match_files, read_file, split_spec  # noqa: F401
from .raw import RawImage, natural_key
from .scaling import parts_to_unit, raw_values
from .stacks import expand_image_spec, expand_specs, folder_images, stack_parts  # noqa: F401

__all__ = ["split_spec", "read_array", "read_raw_array", "read_raw", "read_images", "read_image_stack", "check_finite",
           "as_stack", "HDF5_SUFFIXES", "IMAGE_SUFFIXES", "match_files", "expand_image_spec"]

def _parts(spec: str) -> tuple[list[RawImage], str, bool]:
    """The raw images of one argument; a folder or glob gives its files (and True: a stack)."""
    path, dset = split_spec(spec)
    if dset is None and path.is_dir():
        files = folder_images(path)
    elif dset is None and not path.exists() and any(ch in spec for ch in "*?["):
        files = sorted(match_files(spec), key=natural_key)
    else:
        return [read_file(spec)], spec, False
    source = f"{spec} ({len(files)} file{'s' * (len(files) > 1)})"
    return read_raw_parts(files, source), source, True


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


def read_raw(spec: str | Path) -> RawImage:
    """Read an image, stack or array in its own units, with its bit depth and other metadata.

    Arguments:
        spec: ``FILE.h5:/dataset``, ``.npy``, PNG / JPEG / BMP, TIFF (pages and hyperstacks as stacks),
            DICOM (``.dcm``, ``.dicom`` or the ``DICM`` preamble), or a folder or glob of such slices (a stack
            in natural name order; DICOM slices in InstanceNumber order).

    Returns:
        :class:`~invsolve.io.raw.RawImage`: ``data`` in the file's dtype ((N, H, W) for a folder or glob),
        ``bits`` (the bit depth [0, 1] scaling would divide by), ``units`` ("HU" for CT DICOM), ``meta``.
    """
    parts, source, many = _parts(str(spec))
    if not many:
        return parts[0]
    bits = {p.bits for p in parts}
    return RawImage(stack_parts(parts), source, parts[0].kind, bits.pop() if len(bits) == 1 else None,
                    parts[0].units, {**parts[0].meta, "files": [p.source for p in parts]})


def read_array(spec: str | Path, scale: bool = True, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """Read an array from HDF5 (``file.h5:/path``), ``.npy``, PNG, TIFF, JPEG, DICOM, or a folder or glob of
    slices, as float32.

    Arguments:
        spec: What to read (see :func:`read_raw`).
        scale: Map images to [0, 1]: unsigned integers by their bit depth (TIFF BitsPerSample, DICOM
            BitsStored, PNG 8 / 16, uint8 / uint16 arrays), CT DICOM from HU to LoDoPaB's μ/μ_max; floats and
            signed integers as they are.  False gives every value in its own units (counts, HU).
        value_range: (LO, HI) mapped linearly to [0, 1] and clipped, instead of the bit depth (for DICOM a
            window, (centre − width/2, centre + width/2)).

    Returns:
        The array as float32: (H, W) for an image, (N, H, W) for a stack or a folder, any shape for arrays.
    """
    parts, source, many = _parts(str(spec))
    if not scale:
        arrays = [raw_values(p) for p in parts]
    else:
        arrays = parts_to_unit(parts, value_range, source)
    return stack_parts(parts, arrays) if many else arrays[0]


def read_raw_array(spec: str | Path) -> np.ndarray:
    """Read measurements in their own units as float32: ``read_array(spec, scale=False)``.

    Integer data keep their values (photon counts of raw projections, sinograms in TIFF), DICOM comes in its
    modality units (HU for CT), colour as luminance in the same units.  Takes everything :func:`read_raw`
    does; that function also gives the bit depth and the other metadata.
    """
    return read_array(spec, scale=False)


def check_finite(arr: np.ndarray, source: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        raise DataError(
            f"{source} contains {int(bad.sum())} NaN or infinite values of {arr.size}; clean or fill them first"
        )


def as_stack(arr: np.ndarray, source: str) -> tuple[np.ndarray, bool]:
    """Check rank and return (N, H, W) plus whether the input was a single image."""
    if arr.ndim == 2:
        return arr[None], True
    if arr.ndim == 3:
        return arr, False
    raise ShapeError(
        f"{source} has shape {arr.shape} ({arr.ndim}-D); expected an image (H, W) or a stack (N, H, W)"
    )


def read_images(spec, value_range: tuple[float, float] | None = None) -> tuple[np.ndarray, bool]:
    """Read an image or stack, check it, return ((N, H, W) float32, single).

    Arguments:
        spec: One file, folder or glob (see :func:`read_raw`), or a list of them (:func:`read_image_stack`).
        value_range: (LO, HI) mapped to [0, 1] instead of the files' bit depth (see :func:`read_array`).

    Returns:
        The images (N, H, W) on the [0, 1] scale, and whether ``spec`` was one 2-D image.
    """
    if isinstance(spec, (list, tuple)):
        return read_image_stack(spec, value_range)
    arr = read_array(spec, value_range=value_range)
    stack, single = as_stack(arr, str(spec))
    check_finite(stack, str(spec))
    return np.ascontiguousarray(stack, dtype=np.float32), single


def read_image_stack(specs, value_range: tuple[float, float] | None = None) -> tuple[np.ndarray, bool]:
    """Files, folders and globs as one stack of equally sized slices, in the order given (folders and globs
    in natural name order, a set of DICOM files in slice order).

    Arguments:
        specs: A list of files, folders, globs or ``FILE.h5:/stack`` (each an image or a stack).
        value_range: (LO, HI) mapped to [0, 1] instead of the files' bit depth.

    Returns:
        ((N, H, W) float32 on the [0, 1] scale, single): single only for one spec holding one image.

    Raises:
        DataError: A file that does not read, or one whose slices differ in size from the first's (named).
    """
    specs = [str(s) for s in specs]
    if len(specs) == 1:
        return read_images(specs[0], value_range)
    if not specs:
        raise DataError("no input images given")
    files = expand_specs(specs)
    source = specs[0] + (f" and {len(specs) - 1} more" if len(specs) > 1 else "")
    parts = read_raw_parts(files, source)
    stack = stack_parts(parts, parts_to_unit(parts, value_range, source))
    check_finite(stack, source)
    return np.ascontiguousarray(stack, dtype=np.float32), False


def spec_list(specs, what: str, hint: str) -> list[str]:
    """``specs`` (one path or a list of them) as a list of str; :class:`ConfigError` naming ``what`` and
    ``hint`` for anything else (e.g. an array)."""
    import os

    from ..errors import ConfigError

    many = [specs] if isinstance(specs, (str, os.PathLike)) else specs
    if not isinstance(many, (list, tuple)) or not all(isinstance(v, (str, os.PathLike)) for v in many):
        raise ConfigError(f"{what} must be image files, globs, folders or FILE.h5:/stack (a str, a Path or a "
                          f"list of them), got {type(specs).__name__}; {hint}")
    return [str(v) for v in many]
