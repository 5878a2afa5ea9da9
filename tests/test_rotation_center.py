"""Centre-of-rotation estimators on ASTRA sinograms with a known axis position."""

import dataclasses

import astra
import numpy as np
import pytest

from conftest import phantom
from invsolve.errors import ConfigError, DataError, ShapeError
from invsolve.functional.rotation_center import CenterEstimate, center_from_pair, find_center

NDET = 183
MID = (NDET - 1) / 2
HALF = np.linspace(0, np.pi, 180, endpoint=False)
TOL = 0.5  # px, the target accuracy


def asymmetric(n: int = 128) -> np.ndarray:
    """An off-centre phantom without mirror symmetry: a disc, a tilted ellipse and a bar, all right of centre."""
    y, x = np.mgrid[:n, :n] / n
    img = 1.0 * ((x - 0.62) ** 2 + (y - 0.35) ** 2 < 0.04)
    img += 0.6 * (((x - 0.55) + (y - 0.6)) ** 2 / 0.03 + ((x - 0.55) - (y - 0.6)) ** 2 / 0.006 < 1)
    img[int(0.7 * n):int(0.85 * n), int(0.6 * n):int(0.8 * n)] += 0.8
    return img


PHANTOMS = {"shepp": lambda: phantom(128).astype(np.float64), "asymmetric": asymmetric}


def sinogram(img: np.ndarray, angles: np.ndarray, center: float, ndet: int = NDET, projector: str = "linear"):
    """(angles, ndet) sinogram of ``img`` with the rotation axis at detector pixel-centre index ``center``."""
    vg = astra.create_vol_geom(*img.shape)
    pg = astra.geom_postalignment(astra.create_proj_geom("parallel", 1.0, ndet, angles), (ndet - 1) / 2 - center)
    pid = astra.create_projector(projector, pg, vg)
    try:
        sid, sino = astra.create_sino(img, pid)
        astra.data2d.delete(sid)
    finally:
        astra.projector.delete(pid)
    return sino.astype(np.float64)


def poisson(sino: np.ndarray, i0: float = 1e4, mu: float = 0.02, seed: int = 0) -> np.ndarray:
    """Post-log data from Poisson counts with ``i0`` photons per ray (attenuation ``mu`` per unit of sino)."""
    counts = np.random.default_rng(seed).poisson(i0 * np.exp(-mu * sino))
    return -np.log(np.maximum(counts, 1) / i0) / mu


@pytest.fixture(scope="module", params=list(PHANTOMS))
def img(request):
    return PHANTOMS[request.param]()


def test_geometry_convention():
    """A small disc at the origin projects to pixel-centre index (N-1)/2 - f after geom_postalignment(pg, f)
    (the area-weighted ``strip`` projector keeps centroids exact)."""
    y, x = np.mgrid[:65, :65] - 32
    disc = (x**2 + y**2 <= 4).astype(np.float64)
    for n, c in ((NDET, MID + 3.25), (128, 63.5), (128, 60.0)):
        s = sinogram(disc, HALF[::30], c, n, "strip")
        centroid = (s * np.arange(n)).sum(1) / s.sum(1)
        np.testing.assert_allclose(centroid, c, atol=0.02)


@pytest.mark.parametrize("offset", [-5.0, -2.5, 0.0, 3.25, 5.0])
def test_half_turn_offsets(img, offset):
    s = sinogram(img, HALF, MID + offset)
    for data, tol in ((s, 0.13), (poisson(s), TOL)):  # noise-free: the nearest point of the 0.25-px grid
        est = find_center(data, HALF)
        assert est.method == "vo-180"
        assert abs(est.offset - offset) < tol and est.center == pytest.approx(MID + est.offset)
        assert 0 < est.score <= 1


def test_even_detector_count_centres_at_half_pixel(img):
    angles = np.linspace(0, np.pi, 120, endpoint=False)
    est = find_center(sinogram(img, angles, 63.5, 128), angles)
    assert est.center == pytest.approx(63.5, abs=0.25) and est.offset == pytest.approx(0.0, abs=0.25)


@pytest.mark.parametrize("kind", ["inclusive", "descending", "shuffled", "176deg", "200deg"])
def test_angle_sets(kind):
    n = 180
    angles = {
        "inclusive": np.linspace(0, np.pi, n + 1),
        "descending": np.linspace(np.pi, 0, n, endpoint=False),
        "shuffled": np.random.default_rng(1).permutation(HALF),
        "176deg": np.deg2rad(np.arange(0, 176, 1.0)),
        "200deg": np.deg2rad(np.arange(0, 200, 1.0)) + 0.3,
    }[kind]
    est = find_center(sinogram(asymmetric(), angles, MID - 4.5), angles)
    assert abs(est.offset + 4.5) < TOL


@pytest.mark.parametrize("offset", [-5.0, 2.75])
def test_full_turn(img, offset):
    angles = np.linspace(0, 2 * np.pi, 240, endpoint=False)
    est = find_center(poisson(sinogram(img, angles, MID + offset)), angles)
    assert est.method == "pairs-360" and abs(est.offset - offset) < TOL and est.score > 0.9


def test_stack_uses_central_slices():
    s = sinogram(asymmetric(), HALF, MID + 1.75)
    stack = np.stack([np.zeros_like(s), s, 1.1 * s, 0.9 * s, np.full_like(s, 7.0)])
    est, ref = find_center(stack, HALF, slices=3), find_center(s, HALF)
    assert (est.center, est.method) == (ref.center, ref.method) and abs(est.offset - 1.75) < TOL


def test_pair_on_rows_and_projections():
    angles = np.array([0.4, 0.4 + np.pi])
    slices = [phantom(128), asymmetric(), asymmetric()[::-1].copy(), phantom(128).T.copy()]
    for offset in (-6.0, -2.5, 0.0, 3.25):
        views = np.stack([sinogram(np.asarray(z, np.float64), angles, MID + offset) for z in slices], axis=1)
        p0, p180 = poisson(views)  # (rows, cols) projections at θ and θ + π
        for est in (center_from_pair(p0, p180), center_from_pair(p0[1], p180[1]),
                    center_from_pair(p0, p180, normalization="phase")):
            assert est.method == "pair" and abs(est.offset - offset) < TOL and est.score > 0.9


def test_estimate_is_a_frozen_value():
    est = CenterEstimate(91.0, 0.0, "vo-180", 0.9)
    with pytest.raises(dataclasses.FrozenInstanceError):
        est.center = 1.0


S = sinogram(asymmetric(), HALF, MID)


@pytest.mark.parametrize("call, error, text", [
    (lambda: find_center(S[0], HALF), ShapeError, "sino must be (angles, detectors)"),
    (lambda: find_center(S, HALF[:-1]), ShapeError, "angles must be 1-D with one value per sinogram row (180)"),
    (lambda: find_center(np.where(S > 5, np.nan, S), HALF), DataError, "sino holds NaN or inf values; clip"),
    (lambda: find_center(S, np.full(180, np.inf)), DataError, "angles hold NaN or inf"),
    (lambda: find_center(np.ones_like(S), HALF), DataError, "sino is constant"),
    (lambda: center_from_pair(S[0], np.zeros_like(S[1])), DataError, "p0 or p180 is constant"),
    (lambda: find_center(S, np.zeros(180)), DataError, "angles repeat one value"),
    (lambda: find_center(S, np.rad2deg(HALF)), DataError, "looks like degrees; pass np.deg2rad(angles)"),
    (lambda: find_center(S, HALF * 0.9), DataError,
     "angles cover 162.0°, too short of 180° for a centre estimate; give the centre with -P center=..."),
    (lambda: find_center(S, np.r_[HALF[:60], HALF[60:] + 0.2] * (np.pi - 0.2) / np.pi), DataError, "gap"),
    (lambda: find_center(S, HALF, search=(100, 120)), DataError, "edge of the search range"),
    (lambda: find_center(S, HALF, search=(120, 100)), ConfigError, "search must be (lowest, highest)"),
    (lambda: find_center(S, HALF, search=(90,)), ConfigError, "search must be"),
    (lambda: find_center(S, HALF, step=0.0), ConfigError, "step must lie in (0, 0.5]"),
    (lambda: find_center(S, HALF, ratio=2.0), ConfigError, "ratio must lie in (0, 1]"),
    (lambda: center_from_pair(S[0], S[1, :-1]), ShapeError, "p0 and p180 must be two (N,) or (rows, N) views"),
    (lambda: center_from_pair(S[0], np.full_like(S[1], np.inf)), DataError, "p0 or p180 holds NaN or inf"),
])
def test_bad_inputs(call, error, text):
    with pytest.raises(error) as info:
        call()
    msg = str(info.value)
    assert text in msg and "\n" not in msg
