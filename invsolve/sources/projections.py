"""Raw projections to sinograms: flat- and dark-field correction, −log, and the turn from a projection stack
(angles, rows, columns) to one sinogram per detector row (rows, angles, columns).

The layout is the one synchrotron beamlines write in Data Exchange files (``/exchange/data``,
``/exchange/data_white``, ``/exchange/data_dark``, ``/exchange/theta`` in degrees), or any projection stack
with separate flat and dark stacks.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import DataError, ShapeError

__all__ = ["CorrectedProjections", "average_frames", "flat_dark_correct", "parse_rows", "DXCHANGE"]

#: Data Exchange paths of the projections, flats, darks and angles.
DXCHANGE = {"data": "/exchange/data", "flats": "/exchange/data_white", "darks": "/exchange/data_dark",
            "theta": "/exchange/theta"}

#: Share of flat-field pixels at or below the dark field beyond which the flat is refused (dead pixels below
#: it are floored and counted).
_BAD_FLAT_SHARE = 0.01


@dataclass(frozen=True)
class CorrectedProjections:
    """Sinograms from raw projections.

    Attributes:
        sinograms: (rows, angles, columns) float32 line integrals, −log of the normalised transmission.
        clipped: Transmission values at or below zero (or non-finite) that were clipped before the log.
        floored_flat: Flat-field pixels at or below the dark field that were floored.
    """

    sinograms: np.ndarray
    clipped: int
    floored_flat: int


def parse_rows(text: str | None, n_rows: int | None = None) -> slice | None:
    """``"a:b"`` (detector rows a..b-1, either end optional) as a slice; None for all rows."""
    if text is None:
        return None
    a, sep, b = str(text).partition(":")
    try:
        sl = slice(int(a) if a.strip() else None, int(b) if b.strip() else None) if sep else slice(int(a), int(a) + 1)
    except ValueError:
        raise DataError(f"--rows {text!r} is not a row range START:STOP (e.g. 100:110)") from None
    if n_rows is not None:
        lo, hi, _ = sl.indices(n_rows)
        if hi <= lo:
            raise DataError(f"--rows {text} selects no detector row of the {n_rows}; give a range inside 0..{n_rows}")
        sl = slice(lo, hi)
    return sl


def average_frames(frames: np.ndarray, shape: tuple[int, int], what: str, how: str = "mean") -> np.ndarray:
    """Average a stack of flat or dark frames (n, rows, cols) or one frame (rows, cols) to (rows, cols).

    Arguments:
        frames: The frames as read.
        shape: (rows, cols) of the projections they belong to.
        what: ``"flats"`` or ``"darks"``, for messages.
        how: ``"mean"`` or ``"median"`` (robust to zingers).
    """
    f = np.asarray(frames, dtype=np.float32)
    if f.ndim == 2:
        f = f[None]
    if f.ndim != 3 or tuple(f.shape[1:]) != tuple(shape):
        raise ShapeError(f"the {what} have shape {f.shape}, and the projections are (angles, {shape[0]}, "
                         f"{shape[1]}); give {what} of (n, {shape[0]}, {shape[1]}) (with --rows, the same rows)")
    if not np.isfinite(f).all():
        raise DataError(f"the {what} hold NaN or infinite values; clean them first")
    return np.median(f, axis=0) if how == "median" else f.mean(axis=0)


def flat_dark_correct(proj: np.ndarray, flat: np.ndarray, dark: np.ndarray | None) -> CorrectedProjections:
    """−log((P − D) / (F − D)) of a projection stack, turned into sinograms.

    Arguments:
        proj: (angles, rows, cols) raw projections (counts).
        flat: (rows, cols) averaged flat field (beam without sample).
        dark: (rows, cols) averaged dark field, or None for zero.

    Returns:
        :class:`CorrectedProjections`; transmission values <= 0 are clipped to the smallest positive value
        of the stack and counted, never passed to the log.

    References:
        De Carlo et al., Scientific data exchange: a schema for HDF5-based storage of raw and analyzed data,
        J. Synchrotron Rad. 21 (2014); Kak and Slaney, Principles of Computerized Tomographic Imaging (1988).
    """
    d = np.zeros_like(flat) if dark is None else dark
    if not np.isfinite(proj).all():
        raise DataError("the projections hold NaN or infinite values; clean them first")
    gain = flat - d
    bad = ~(gain > 0)
    if bad.mean() > _BAD_FLAT_SHARE:
        raise DataError(f"the flat field is at or below the dark field in {int(bad.sum())} of {bad.size} pixels; "
                        "check that --flats holds beam images without the sample and --darks images without beam")
    floored = int(bad.sum())
    if floored:
        gain = np.where(bad, gain[~bad].min(), gain)
        warnings.warn(f"{floored} flat-field pixel(s) at or below the dark field (dead pixels) were floored to the "
                      "smallest positive gain")
    t = (proj - d[None]) / gain[None]
    nonpos = ~(t > 0)
    clipped = int(nonpos.sum())
    if clipped:
        floor = t[~nonpos].min() if (~nonpos).any() else 1e-6
        t = np.where(nonpos, floor, t)
        warnings.warn(f"{clipped} of {t.size} transmission values were <= 0 after flat/dark correction and were "
                      f"clipped to {floor:.3g} before the log (photon-starved rays)")
    sino = -np.log(t, dtype=np.float32)
    return CorrectedProjections(np.ascontiguousarray(sino.transpose(1, 0, 2)), clipped, floored)
