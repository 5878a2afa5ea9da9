"""Pure geometry kernels of the ``ct`` operators: angle grids, angle weights and ASTRA vector geometries.

Conventions (ASTRA's, see :mod:`invsolve.operators._astra`): detector pixel j has its centre at
(j − (N − 1)/2)·w along the detector, so a rotation axis that projects to the middle of the detector sits
at pixel-centre index (N − 1)/2.  (tomopy's ``center`` default is N/2, half a pixel to the right.)
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["angle_grid", "check_angle_list", "angle_weights", "covered_range", "parallel_vectors", "fan_vectors"]

#: Tolerance for angles "on" 2π or π, radians (a rounding of the last digit in a text file).
_TOL = 1e-6


def angle_grid(count: int, start: float, stop: float, endpoint: bool | None) -> np.ndarray:
    """``count`` equally spaced angles on [start, stop] in degrees, (count,) float64.

    Arguments:
        count: Number of angles.
        start: First edge of the range, degrees.
        stop: Last edge of the range, degrees.
        endpoint: None puts the angles at the midpoints of ``count`` equal cells of [start, stop)
            (ODL's ``uniform_partition``, LoDoPaB-CT: (k + ½)·Δ); False gives
            ``numpy.linspace(start, stop, count, endpoint=False)`` (start + k·Δ, the usual ASTRA/numpy
            scan); True includes ``stop`` (``linspace(start, stop, count)``, tomopy's and DXchange's
            fallback when theta is missing).
    """
    if endpoint is None:
        step = (stop - start) / count
        return start + (np.arange(count) + 0.5) * step
    return np.linspace(start, stop, count, endpoint=bool(endpoint))


def check_angle_list(values, unit: str) -> np.ndarray:
    """Measured angles as degrees, (n,) float64; ValueError (a message naming the fix) for impossible lists.

    Arguments:
        values: The angles as given, (n,).
        unit: ``"deg"`` or ``"rad"``.
    """
    a = np.asarray(values, dtype=np.float64).reshape(-1)
    if a.size == 0:
        raise ValueError("the angle list is empty; give at least one angle")
    if not np.isfinite(a).all():
        raise ValueError("the angle list holds NaN or infinite values")
    if unit == "rad":
        if np.abs(a).max() > 2 * math.pi + _TOL:
            raise ValueError(f"angles up to {np.abs(a).max():.4g} with angle_unit=rad exceed 2π: they look like "
                             "degrees; set -P angle_unit=deg")
        return np.rad2deg(a)
    if a.size > 3 and np.ptp(a) <= 2 * math.pi + _TOL:
        import warnings

        warnings.warn(f"{a.size} angles spanning {np.ptp(a):.3g} degrees look like radians; give -P angle_unit=rad "
                      "if they are")
    return a


def covered_range(angles_rad: np.ndarray) -> float:
    """The angular range a set of angles samples, radians: max − min plus one mean step
    (π for n angles on [0, π) at any of :func:`angle_grid`'s conventions but the inclusive one,
    which covers π plus one step)."""
    a = np.sort(np.asarray(angles_rad, dtype=np.float64))
    if a.size < 2:
        return math.pi
    return float(a[-1] - a[0]) * a.size / (a.size - 1)


def angle_weights(angles_rad: np.ndarray, full: float) -> np.ndarray:
    """Quadrature weights of the angles for filtered back projection, (n,) radians.

    Each angle gets half the distance to its two neighbours (sorted; the first and last the distance to
    their one neighbour), so irregular lists are weighted by the range they stand for; the weights are
    then scaled so that they add up to min(covered range, ``full``) (π parallel, 2π fan), which an
    inclusive grid ([0, π] with both ends) would otherwise exceed.  Equal grids get equal weights
    range / n.

    Arguments:
        angles_rad: The projection angles, (n,).
        full: The range of a complete scan, radians.
    """
    a = np.asarray(angles_rad, dtype=np.float64)
    n = a.size
    if n == 1:
        return np.array([min(math.pi, full)])
    order = np.argsort(a)
    s = a[order]
    gaps = np.diff(s)
    cell = np.empty(n)
    cell[1:-1] = 0.5 * (gaps[:-1] + gaps[1:])
    cell[0], cell[-1] = gaps[0], gaps[-1]
    total = min(covered_range(a), full)
    w = np.empty(n)
    w[order] = cell * (total / cell.sum()) if cell.sum() > 0 else total / n
    return w


def parallel_vectors(angles_rad: np.ndarray, spacing: float, shift: float) -> np.ndarray:
    """ASTRA ``parallel_vec`` rows (rayX, rayY, dX, dY, uX, uY), (n, 6).

    The ray direction and detector axis are those of ASTRA's ``parallel`` geometry; the detector centre
    is moved so that the rotation axis (the origin) projects to pixel-centre index (N − 1)/2 + ``shift``.

    Arguments:
        angles_rad: (n,) projection angles.
        spacing: Detector pitch, image pixels.
        shift: Where the axis lands, detector pixels from the detector's middle.
    """
    c, s = np.cos(angles_rad), np.sin(angles_rad)
    u = np.stack([c, s], axis=1) * spacing
    d = -shift * u
    return np.concatenate([np.stack([s, -c], axis=1), d, u], axis=1)


def fan_vectors(angles_rad: np.ndarray, spacing: float, source_origin: float, origin_detector: float,
                center_offset: float, detector_offset: float) -> np.ndarray:
    """ASTRA ``fanflat_vec`` rows (srcX, srcY, dX, dY, uX, uY), (n, 6), with offsets.

    Without offsets the rows are those of ASTRA's ``fanflat`` geometry.  ``center_offset`` moves the
    source and the detector together sideways, so that the rotation axis projects to pixel-centre index
    (N − 1)/2 + ``center_offset``; ``detector_offset`` moves the detector alone, so that the ray from the
    source square onto the detector meets it at (N − 1)/2 + ``detector_offset``.  Both are in detector
    pixels.

    Arguments:
        angles_rad: (n,) projection angles.
        spacing: Detector pitch, image pixels.
        source_origin: Source-to-axis distance, image pixels.
        origin_detector: Axis-to-detector distance, image pixels.
        center_offset: Axis position on the detector, pixels from its middle.
        detector_offset: Detector position, pixels.
    """
    c, s = np.cos(angles_rad), np.sin(angles_rad)
    e = np.stack([c, s], axis=1)  # unit vector along the detector
    mag = (source_origin + origin_detector) / source_origin
    lateral = -(center_offset * spacing / mag) * e
    src = np.stack([s * source_origin, -c * source_origin], axis=1) + lateral
    det = np.stack([-s * origin_detector, c * origin_detector], axis=1) + lateral - detector_offset * spacing * e
    return np.concatenate([src, det, e * spacing], axis=1)
