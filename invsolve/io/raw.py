"""Image values as a file holds them, with what the file says about them (bit depth, units, axes)."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["RawImage", "ImageWarning", "warn_once", "luminance", "natural_key"]


class ImageWarning(UserWarning):
    """An input image was converted on reading in a way its owner should know about: colour to grey, a
    hyperstack flattened, integers scaled by a bit depth they leave mostly unused, values clipped."""


@dataclass
class RawImage:
    """The values of an image file in their own units, and the file's description of them.

    Attributes:
        data: The values: (H, W) or (N, H, W) for image files (any shape for ``.npy`` and HDF5), in the
            file's dtype; float32 for DICOM after its modality LUT and for colour turned to grey.
        source: The file, folder or glob that was read.
        kind: ``"tiff"``, ``"dicom"``, ``"png"``, ``"jpeg"``, ``"bmp"``, ``"npy"`` or ``"hdf5"``.
        bits: The bit depth that maps the values to [0, 1] by ``/(2**bits - 1)``: TIFF BitsPerSample,
            DICOM BitsStored, 8 or 16 for PNG and for uint8 / uint16 arrays.  None where the values are
            kept as they are (floats, signed integers, Hounsfield units, other integer arrays).
        units: ``"HU"`` for CT DICOM (Hounsfield units after RescaleSlope / RescaleIntercept), else None.
        meta: Details of the format, e.g. ``bits_from`` ("TIFF BitsPerSample 16"), TIFF ``axes`` and
            ``photometric``, DICOM ``bits_stored``, ``rescale``, ``window``, ``files`` (in stack order).
    """

    data: np.ndarray
    source: str
    kind: str
    bits: int | None = None
    units: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


_WARNED: set[tuple] = set()


def warn_once(message: str, what: str, source: str, *detail: Any) -> None:
    """``warnings.warn(message, ImageWarning)``, once per ``what``, folder of ``source`` and ``detail``: a
    folder of 500 slices read one by one (training sets) gives one line, not 500."""
    key = (what, str(Path(str(source)).parent), *detail)
    if key in _WARNED:
        return
    _WARNED.add(key)
    warnings.warn(message, ImageWarning, stacklevel=3)


#: ITU-R BT.709 luma weights (as scikit-image's ``rgb2gray``).
_LUMA = np.array([0.2125, 0.7154, 0.0721])


def luminance(rgb: np.ndarray, axis: int, source: str, what: str = "RGB", hint: str = "") -> np.ndarray:
    """Colour samples along ``axis`` (3 or 4: RGB or RGBA) as grey, in the same units.

    The conversion warns (:class:`ImageWarning`) unless the three channels are equal (a grey image saved as
    RGB), where it is exact.

    Arguments:
        rgb: Values with 3 or 4 samples on ``axis``; alpha (the 4th) is dropped.
        axis: The samples axis.
        source: The file, for the warning.
        what: How to name the colour in the warning.
        hint: Appended to the warning (e.g. how to store slices instead).

    Returns:
        float32 luminance 0.2125 R + 0.7154 G + 0.0721 B, ``rgb``'s shape without ``axis``.
    """
    c = np.moveaxis(np.asarray(rgb), axis, -1)
    r, g, b = c[..., 0], c[..., 1], c[..., 2]
    if np.array_equal(r, g) and np.array_equal(g, b):
        return r.astype(np.float32)
    alpha = " and its alpha channel dropped" if c.shape[-1] == 4 else ""
    warn_once(f"{source} is {what} colour; converted to grey (luminance 0.2125 R + 0.7154 G + 0.0721 B){alpha}{hint}",
              "colour", source, what)
    return (c[..., :3].astype(np.float64) @ _LUMA).astype(np.float32)


def natural_key(name: str) -> list:
    """A sort key that puts ``slice2`` before ``slice10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(name))]
