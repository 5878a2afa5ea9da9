"""Raw image values to the [0, 1] scale invsolve's presets and metrics assume.

* An explicit value range (LO, HI) maps LO -> 0 and HI -> 1 linearly, clipped (for DICOM: a window).
* Unsigned integers are divided by ``2**bits - 1`` with the file's own bit depth (TIFF BitsPerSample, DICOM
  BitsStored, PNG 8 or 16); values that use under 1/8 of that range warn with the ``--range`` to give.
* CT DICOM in Hounsfield units becomes LoDoPaB-CT's μ/μ_max (:func:`invsolve.io.dicom.hu_to_unit`).
* Floats and signed integers keep their values.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..errors import ConfigError, DataError
from .raw import RawImage, warn_once

__all__ = ["parse_value_range", "raw_values", "to_unit", "parts_to_unit"]


def parse_value_range(value, where: str = "--range") -> tuple[float, float] | None:
    """``"LO,HI"``, ``[LO, HI]`` or None as (LO, HI) floats with LO < HI; :class:`ConfigError` otherwise."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value
    try:
        lo, hi = (float(v) for v in items)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} expects two numbers LO,HI (e.g. 0,4095), got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
        raise ConfigError(f"{where} needs finite LO < HI (e.g. 0,4095), got {value!r}")
    return lo, hi


def raw_values(raw: RawImage) -> np.ndarray:
    """The values of ``raw`` as float32, unscaled; :class:`DataError` for non-numeric data."""
    a = raw.data
    if a.dtype == bool or np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating):
        return np.asarray(a, dtype=np.float32)
    raise DataError(f"{raw.source} has unsupported data type {a.dtype}; expected numbers")


def _mapped(raw: RawImage, value_range: tuple[float, float] | None) -> tuple[np.ndarray, int]:
    """``raw`` on the [0, 1] scale, and how many values a value range clipped."""
    if value_range is not None:
        lo, hi = value_range
        x = (raw_values(raw) - np.float32(lo)) / np.float32(hi - lo)
        clipped = int(np.count_nonzero((x < 0) | (x > 1)))
        return np.clip(x, 0.0, 1.0, out=x), clipped
    if raw.units == "HU":
        from .dicom import hu_to_unit

        return hu_to_unit(raw.data), 0
    if raw.data.dtype == bool:
        return raw.data.astype(np.float32), 0
    if raw.bits:
        return raw_values(raw) / np.float32(2 ** raw.bits - 1), 0
    return raw_values(raw), 0


def _underuse(parts: Sequence[RawImage], source: str) -> tuple[str, int, int] | None:
    """The warning (text, bits, suggested top) for integers scaled by a bit depth whose range they mostly leave
    unused, or None."""
    scaled = [p for p in parts if p.bits and p.data.dtype != bool and p.units != "HU" and p.data.size]
    if not scaled:
        return None
    bits = max(p.bits for p in scaled)
    top = max(float(np.max(p.data)) for p in scaled)
    full = 2 ** bits - 1
    if top <= 1 or top >= full / 8:  # 0/1: a mask; over 1/8: the data use their container
        return None
    need = max(1, math.ceil(math.log2(math.floor(top) + 1)))
    fix = 2 ** need - 1
    what = scaled[0].meta.get("bits_from", f"{bits}-bit data")
    return (f"{source}: values reach only {top:g} of the range 0..{full} ({what}); scaled by 1/{full} they lie "
            f"in [0, {top / full:.3g}]. If the data are {need}-bit, give --range 0,{fix} (config range: [0, {fix}]; "
            f"value_range=(0, {fix}) in Python)"), bits, fix


def parts_to_unit(parts: Sequence[RawImage], value_range: tuple[float, float] | None, source: str) -> list[np.ndarray]:
    """Each raw part on the [0, 1] scale (float32); one warning for the lot where one is due.

    Arguments:
        parts: Raw images, e.g. the files of one stack.
        value_range: (LO, HI) mapped to (0, 1) and clipped, or None for the files' own scaling.
        source: The name the warnings give (a file, a folder, a glob).

    Returns:
        The parts' values on the [0, 1] scale, in order.
    """
    out, clipped = [], 0
    for p in parts:
        x, n = _mapped(p, value_range)
        out.append(x)
        clipped += n
    if value_range is None:
        note = _underuse(parts, source)
        if note:
            warn_once(note[0], "bit depth", source, *note[1:])
    elif clipped and not all(p.units == "HU" for p in parts):  # for HU the range is a window: clipping is its job
        size = sum(p.data.size for p in parts)
        lo = min(float(np.min(p.data)) for p in parts)
        hi = max(float(np.max(p.data)) for p in parts)
        warn_once(f"{source}: {clipped} of {size} values lie outside the value range {value_range[0]:g},"
                  f"{value_range[1]:g} and were clipped to [0, 1] (the data span [{lo:g}, {hi:g}]); widen --range "
                  "to keep them", "clipped", source, value_range)
    return out


def to_unit(raw: RawImage, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """``raw`` on the [0, 1] scale as float32 (see the module's rules), warning where it is due."""
    return parts_to_unit([raw], value_range, raw.source)[0]
