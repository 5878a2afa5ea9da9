"""Centre-of-rotation estimators for parallel-beam CT, as pure numpy functions.

Conventions: a sinogram is (angles, detectors) = (n, N) with angles in radians; detector pixel j has its centre at
(j − (N−1)/2)·w, as in ASTRA's ``'parallel'`` geometry.  A centre is a pixel-centre index in that convention:
(N−1)/2 for a centred axis, a half-integer for even N.  tomopy's default ``N/2`` lies half a pixel to the right;
subtract 0.5 from a tomopy centre to compare.  ``offset`` = centre − (N−1)/2, and an axis at centre c corresponds to
``astra.geom_postalignment(proj_geom, (N−1)/2 − c)``.

The sinogram-symmetry search is written here rather than taken from algotom, whose implementation brings numba and
llvmlite in as hard dependencies for this one function.

References:
    Vo, Drakopoulos, Atwood, Reinhard, Reliable method for calculating the center of rotation in parallel-beam
    tomography, Opt. Express 22(16) (2014) 19078, doi 10.1364/OE.22.019078; Guizar-Sicairos, Thurman, Fienup,
    Efficient subpixel image registration algorithms, Opt. Lett. 33(2) (2008) 156.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, DataError, ShapeError

__all__ = ["CenterEstimate", "find_center", "center_from_pair"]

_FIX = "give the centre with -P center=..."
# A scan up to 5° short of 180° still gives errors under 0.25 px on the benchmark phantoms; at 170° they reach 1.25 px.
_HALF_TOL = math.radians(5.0)
_COARSE_MAX = 128  # detector and angle counts above this are binned for the coarse search


@dataclass(frozen=True)
class CenterEstimate:
    """One centre-of-rotation estimate.

    Attributes:
        center: Rotation-axis position as a detector pixel-centre index, (N−1)/2 for a centred axis.
        offset: ``center`` − (N−1)/2, in detector pixels.
        method: ``"vo-180"`` (sinogram symmetry), ``"pairs-360"`` (θ/θ+π correlation of a 360° scan) or
            ``"pair"`` (one projection pair).
        score: Clarity of the optimum in [0, 1], larger is clearer: 1 − (best metric)/(median metric) over the
            coarse search for ``vo-180``, the correlation coefficient of the registered pair otherwise.
    """

    center: float
    offset: float
    method: str
    score: float


def _as_sinogram(sino, angles, slices: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, N) float64 sinogram and (n,) angles sorted ascending; a (S, n, N) stack is averaged over its central
    ``slices`` slices (the mean of sinograms is the sinogram of the mean slice)."""
    s = np.asarray(sino, dtype=np.float64)
    if s.ndim == 3:
        k = max(1, min(int(slices), s.shape[0]))
        a = (s.shape[0] - k) // 2
        s = s[a:a + k].mean(axis=0)
    if s.ndim != 2 or min(s.shape) < 8:
        raise ShapeError(f"sino must be (angles, detectors) or (slices, angles, detectors) with at least 8 of each, "
                         f"got shape {np.shape(sino)}; pass one sinogram per slice")
    a = np.asarray(angles, dtype=np.float64)
    if a.ndim != 1 or a.shape[0] != s.shape[0]:
        raise ShapeError(f"angles must be 1-D with one value per sinogram row ({s.shape[0]}), got shape {a.shape}; "
                         "pass the scan angles in radians")
    if not np.isfinite(a).all():
        raise DataError("angles hold NaN or inf values; pass finite scan angles in radians")
    if not np.isfinite(s).all():
        raise DataError("sino holds NaN or inf values; clip the counts before -log (e.g. np.maximum(I, 1e-6))")
    if np.ptp(s) == 0:
        raise DataError("sino is constant, with no object to align; pass the sinogram of a slice through the sample")
    order = np.argsort(a, kind="stable")
    return s[order], a[order]


def _scan_halves(s: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The first half turn of a scan, (m, N), and for a full turn the m rows at θ+π, else None.

    With the median step d, the range is last − first + d, so ``linspace(0, π, n, endpoint=False)`` covers 180°
    and ``linspace(0, π, n)`` 180° + d; rows at θ ≥ first + π − d/2 (such as that endpoint) are not in the half.
    """
    steps = np.diff(a)
    step = float(np.median(steps))
    if step <= 0:
        raise DataError("angles repeat one value; pass distinct scan angles in radians")
    span = float(a[-1] - a[0]) + step
    if span > 8 * math.pi:
        raise DataError(f"angles span {span:.0f} rad, which looks like degrees; pass np.deg2rad(angles)")
    if span < math.pi - _HALF_TOL:
        raise DataError(f"angles cover {math.degrees(span):.1f}°, too short of 180° for a centre estimate; {_FIX}")
    m = int(np.searchsorted(a, a[0] + math.pi - 0.5 * step))
    gap = float(steps[:m - 1].max()) if m > 1 else 0.0
    if gap > 3 * step:
        raise DataError(f"angles leave a {math.degrees(gap):.1f}° gap within the first 180°; {_FIX}")
    if a.shape[0] >= 2 * m and np.allclose(a[m:2 * m] - a[:m], math.pi, atol=0.25 * step):
        return s[:m], s[m:2 * m]
    return s[:m], None


def _shifter(x: np.ndarray, max_shift: float):
    """A function s -> ``x`` (rows, N) shifted right by s pixels along its rows (band-limited, any real s).

    Each row is continued by a linear ramp from its last value back to its first, so that the periodic row is
    continuous and the columns uncovered by a shift take values close to the nearest edge.  Whole-pixel shifts
    are exact rolls of that periodic row; others are phase ramps of its spectrum.
    """
    from scipy import fft

    n = x.shape[1]
    size = fft.next_fast_len(n + 2 * int(math.ceil(abs(max_shift))) + 16, real=True)
    t = np.linspace(0.0, 1.0, size - n + 2)[1:-1]
    ext = np.concatenate([x, x[:, -1:] * (1 - t) + x[:, :1] * t], axis=1)
    spec, k = fft.rfft(ext, axis=1), fft.rfftfreq(size)

    def shift(s: float) -> np.ndarray:
        if float(s).is_integer():
            return np.roll(ext, int(s), axis=1)[:, :n]
        return fft.irfft(spec * np.exp(-2j * math.pi * k * s), size, axis=1)[:, :n]

    return shift


def _outside_wedge(rows: int, cols: int, ratio: float) -> np.ndarray:
    """Mask of the (rows, cols//2+1) rfft2 plane of a 360° sinogram outside the double wedge |k| <= π·ratio·m + 1.

    A point at radius r traces r·cos(θ − φ); at detector frequency ω = 2πm/N its angular harmonics k stay below
    |ω|·r, so an object within ``ratio`` of the half-width N/2 puts no energy at |k| > π·ratio·m.  The m = 0
    column is left out: it holds the projected mass per angle, which tracks drifts of the beam, not the centre.
    """
    k = np.abs(np.fft.fftfreq(rows) * rows)[:, None]
    m = np.arange(cols // 2 + 1)[None, :]
    return (k > math.pi * ratio * m + 1) & (m > 0)


def _vo_metric(top: np.ndarray, shift, offsets: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean Fourier magnitude outside the wedge of [top; flipped half shifted by 2·offset], per offset."""
    from scipy import fft

    out = np.empty(len(offsets))
    for i, o in enumerate(offsets):
        out[i] = np.abs(fft.rfft2(np.concatenate([top, shift(2 * o)], axis=0))[mask]).mean()
    return out


def _bin(x: np.ndarray, fr: int, fc: int) -> tuple[np.ndarray, int]:
    """``x`` averaged over fr×fc blocks, its columns cropped to a multiple of fc; also the first kept column."""
    r, c = (x.shape[0] // fr) * fr, (x.shape[1] // fc) * fc
    a = (x.shape[1] - c) // 2
    return x[:r, a:a + c].reshape(r // fr, fr, c // fc, fc).mean(axis=(1, 3)), a


def _vo(half: np.ndarray, lo: float, hi: float, step: float, ratio: float) -> tuple[float, float]:
    """Offset minimising the off-wedge energy over [lo, hi] (offsets in pixels), and the clarity score.

    Coarse: half-pixel offsets (whole-pixel shifts of the flipped half) on a sinogram binned to at most
    ``_COARSE_MAX`` detectors and angles.  Fine: multiples of ``step`` within one coarse step either side of the
    coarse optimum, at full size.
    """
    n = half.shape[1]
    mid = (n - 1) / 2
    fc, fr = max(1, math.ceil(n / _COARSE_MAX)), max(1, math.ceil(half.shape[0] / _COARSE_MAX))
    small, first = _bin(half, fr, fc)
    nb = small.shape[1]
    # binned pixel-centre index b sits at full index first + (fc − 1)/2 + fc·b; both grids count from their middle
    lift = first + (fc - 1) / 2 + fc * (nb - 1) / 2 - mid
    grid = np.arange(math.ceil(2 * (lo - lift) / fc), math.floor(2 * (hi - lift) / fc) + 1) / 2
    if grid.size < 3:
        raise DataError(f"the centre search range [{lo + mid:.2f}, {hi + mid:.2f}] is narrower than three coarse "
                        f"steps of {fc / 2:g} px; widen search= or {_FIX}")
    mask = _outside_wedge(2 * small.shape[0], nb, ratio)
    coarse = _vo_metric(small, _shifter(small[:, ::-1], 2 * np.abs(grid).max()), grid, mask)
    best = int(np.argmin(coarse))
    if best in (0, grid.size - 1):
        raise DataError(f"the centre estimate sits at the edge of the search range [{lo + mid:.2f}, {hi + mid:.2f}]; "
                        f"widen search= or {_FIX}")
    k0, kr = round((fc * grid[best] + lift) / step), math.ceil((0.5 * fc + step) / step)
    # fine offsets are multiples of step, so a centred axis comes out exactly; the window follows an optimum
    # found at its edge (a binned metric can mislead by more than one coarse step)
    shift, mask = _shifter(half[:, ::-1], 2 * max(abs(lo), abs(hi))), _outside_wedge(2 * half.shape[0], n, ratio)
    seen: dict[int, float] = {}
    for _ in range(4):
        ks = [k for k in range(k0 - kr, k0 + kr + 1) if lo <= k * step <= hi and k not in seen]
        seen.update(zip(ks, _vo_metric(half, shift, np.array(ks) * step, mask)))
        k0 = min(seen, key=seen.get)
        if min(seen) < k0 < max(seen) or not lo + step <= k0 * step <= hi - step:
            break
    score = 1.0 - float(coarse[best] / np.median(coarse))
    return k0 * step, max(0.0, score)


def find_center(sino, angles, *, search: tuple[float, float] | None = None, step: float = 0.25, ratio: float = 0.5,
                slices: int = 5) -> CenterEstimate:
    """Rotation-axis position of a parallel-beam scan from its sinogram.

    A half-turn scan (180°, or up to 5° less) uses Vo's sinogram symmetry: the rows at θ+π are the rows at θ
    mirrored about the axis, so the sinogram stacked on its left-right flip shifted by 2·offset is a 360°
    sinogram, whose 2-D Fourier transform vanishes outside a double wedge only at the true offset.  Offsets are
    scored by the mean Fourier magnitude outside that wedge, first at half-pixel steps over ``search``, then at
    ``step`` around the best one with band-limited sub-pixel shifts.  A full-turn scan (rows at θ and θ+π both
    measured) registers the two half turns by upsampled cross-correlation instead (:func:`center_from_pair`).  Longer half-turn ranges use their first
    180°; an endpoint row at 180° (``linspace(0, π, n)``) is dropped.

    Args:
        sino: Post-log sinogram (angles, detectors) = (n, N), or a (slices, n, N) stack, of which the mean of the
            central ``slices`` slices is used.
        angles: Scan angles in radians, (n,), any order.
        search: (lowest, highest) centre to consider, as pixel-centre indices in the (N−1)/2 convention; default
            (N−1)/2 ± N/4.  Applies to the half-turn search; a full-turn estimate outside it raises.
        step: Resolution of the fine search in pixels, in (0, 0.5].
        ratio: Radius of the object about the axis as a fraction of the detector half-width N/2, which sets the
            wedge; an object reaching beyond it puts some of its own energy into the metric, a larger value leaves
            less of the plane to measure.
        slices: Central slices averaged for a stack.

    Returns:
        A :class:`CenterEstimate`; ``center`` is a pixel-centre index, (N−1)/2 for a centred axis (tomopy's
        centres are this plus 0.5).

    Raises:
        ShapeError: ``sino`` or ``angles`` has the wrong rank or length.
        DataError: non-finite or constant values, angles in degrees, a scan range short of 180° or with a gap, or
            an optimum at the edge of ``search``.
        ConfigError: ``search``, ``step`` or ``ratio`` out of range.

    References:
        Vo et al., Opt. Express 22(16) (2014) 19078, doi 10.1364/OE.22.019078.
    """
    if not 0 < step <= 0.5:
        raise ConfigError(f"step must lie in (0, 0.5] pixels, got {step!r}")
    if not 0 < ratio <= 1:
        raise ConfigError(f"ratio must lie in (0, 1], got {ratio!r}")
    s, a = _as_sinogram(sino, angles, slices)
    mid = (s.shape[1] - 1) / 2
    try:
        lo, hi = (mid - s.shape[1] / 4, mid + s.shape[1] / 4) if search is None else (float(v) for v in search)
    except (TypeError, ValueError):
        lo = hi = math.nan
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ConfigError(f"search must be (lowest, highest) centre indices with lowest < highest, got {search!r}")
    half, opposite = _scan_halves(s, a)
    if opposite is None:
        offset, score = _vo(half, lo - mid, hi - mid, float(step), float(ratio))
        return CenterEstimate(mid + offset, offset, "vo-180", score)
    est = center_from_pair(half, opposite)
    if not lo <= est.center <= hi:
        raise DataError(f"the full-turn centre {est.center:.2f} lies outside search [{lo:.2f}, {hi:.2f}]; "
                        f"widen search= or {_FIX}")
    return CenterEstimate(est.center, est.offset, "pairs-360", est.score)


def center_from_pair(p0, p180, *, upsample: int = 20, normalization: str | None = None) -> CenterEstimate:
    """Rotation-axis position from two opposite views (θ and θ+π) by upsampled cross-correlation.

    ``p180`` mirrored left-right is ``p0`` shifted by 2·offset; the shift is found to 1/``upsample`` pixel with
    scikit-image's ``phase_cross_correlation`` on the mean-removed views.  Works on raw projections (rows ×
    columns; the row shift is ignored) as well as on single rows or half-turn sinograms; pass flat-field-corrected
    or post-log values.  The plain correlation (``normalization=None``) is the default: on noise-free simulated
    views the phase-normalised one whitens the empty top of the spectrum and errs by up to 0.2 px.

    Args:
        p0: View at θ, (N,) or (rows, N).
        p180: View at θ+π, same shape.
        upsample: Upsampling factor of the correlation peak (resolution 1/upsample px of shift).
        normalization: None (cross-correlation) or ``"phase"`` (phase correlation), as in scikit-image.

    Returns:
        A :class:`CenterEstimate` with ``method="pair"``; ``center`` is a column pixel-centre index in the (N−1)/2
        convention; ``score`` is the correlation coefficient of the registered views.

    References:
        Guizar-Sicairos, Thurman, Fienup, Opt. Lett. 33(2) (2008) 156.
    """
    from skimage.registration import phase_cross_correlation

    a, b = np.asarray(p0, dtype=np.float64), np.asarray(p180, dtype=np.float64)
    if a.shape != b.shape or a.ndim not in (1, 2) or a.shape[-1] < 8:
        raise ShapeError(f"p0 and p180 must be two (N,) or (rows, N) views of one shape with N >= 8, got "
                         f"{np.shape(p0)} and {np.shape(p180)}; pass the views at θ and θ+π")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise DataError("p0 or p180 holds NaN or inf values; clip the counts before -log (e.g. np.maximum(I, 1e-6))")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        raise DataError("p0 or p180 is constant, with no object to align; pass views that show the sample")
    a2, b2 = np.atleast_2d(a), np.atleast_2d(b)[:, ::-1]
    a2, b2 = a2 - a2.mean(), b2 - b2.mean()
    shift = float(phase_cross_correlation(a2, b2, upsample_factor=int(upsample), normalization=normalization)[0][-1])
    n, edge = a.shape[-1], math.ceil(abs(shift))
    u, v = a2[:, edge:n - edge].ravel(), _shifter(b2, shift)(shift)[:, edge:n - edge].ravel()
    score = float(np.corrcoef(u, v)[0, 1]) if u.size > 1 and u.std() > 0 and v.std() > 0 else 0.0
    return CenterEstimate((n - 1) / 2 + shift / 2, shift / 2, "pair", max(0.0, score))
