"""LoDoPaB-CT: the ``ct-lowdose`` geometry against ODL's ``parallel_beam_geometry``, and LoDoPaB-layout files
through ``reconstruct`` and ``evaluate``.

ODL is not a dependency; its geometry is written out here from its documented formulas (``odl.tomo``
``parallel_beam_geometry`` and ``Parallel2dGeometry``, as LoDoPaB-CT's ``create_dataset.py`` calls them for
362² on [−0.13, 0.13]² m with 1000 angles).
"""

import json
import math

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from invsolve import api
from invsolve.results import save_measurement
from invsolve.cli import app
from invsolve.sources.inputs import array_digest
from invsolve.operators import build_operator

N_IMG, N_ANGLES = 362, 1000
HALF = 0.13  # half the side of ODL's volume [-0.13, 0.13]^2, metres
H = 2 * HALF / N_IMG  # pixel size, 7.1823e-4 m
FBP = ["--method", "fbp", "-M", "filter=hann", "-M", "frequency_scaling=0.641025641025641"]

runner = CliRunner()


def odl_parallel_beam_geometry():
    """LoDoPaB's geometry by ODL's formulas: (angles φ_k, detector pixel centres s_j in metres, pitch w)."""
    rho = math.hypot(HALF, HALF)  # max corner norm of the volume, 0.13·√2
    n_det = 2 * math.ceil(rho / H) + 1  # 2·⌈ρΩ/π⌉ + 1 with Ω = π/h
    w = 2 * rho / n_det  # uniform_partition(−ρ, ρ, n_det)
    s = -rho + (np.arange(n_det) + 0.5) * w
    phi = (np.arange(N_ANGLES) + 0.5) * math.pi / N_ANGLES  # uniform_partition(0, π, 1000): cell midpoints
    return phi, s, w


@pytest.fixture(scope="module")
def lowdose():
    return build_operator("ct-lowdose", {}, (N_IMG, N_IMG))


def test_odl_formulas_give_lodopabs_numbers():
    phi, s, w = odl_parallel_beam_geometry()
    assert len(s) == 513 and s[256] == pytest.approx(0.0, abs=1e-15)
    assert w / H == pytest.approx(0.997944, abs=1e-6)
    assert phi[0] == pytest.approx(0.0015708, abs=1e-7) and phi[-1] == pytest.approx(3.1400219, abs=1e-7)


def test_lowdose_detector_and_limited_angles(lowdose):
    phi, s, w = odl_parallel_beam_geometry()
    assert lowdose.range_shape == (N_ANGLES, len(s))
    assert lowdose.detector_spacing == pytest.approx(math.sqrt(2) * N_IMG / 513, rel=1e-12)
    assert lowdose.detector_spacing * lowdose.pixel_size == pytest.approx(w, rel=1e-12)
    assert lowdose.pixel_size == pytest.approx(H, rel=1e-12)
    np.testing.assert_allclose(lowdose.angles_rad, phi, rtol=0, atol=1e-14)
    limited = build_operator("ct-limited", {}, (N_IMG, N_IMG))
    assert limited.range_shape == (800, 513) and limited.detector_spacing == lowdose.detector_spacing
    # 18 + (k + ½)·0.18 against (k + 100 + ½)·0.18 degrees: equal up to rounding (measured 2.8e-14 degrees)
    np.testing.assert_allclose(limited.angles_deg, lowdose.angles_deg[100:900], rtol=0, atol=1e-12)


def test_point_sources_project_where_odl_puts_them(lowdose):
    """Blobs off the centre land at ODL's s = x·cos φ + y·sin φ (x along array axis 0, y along axis 1).

    A transposed volume, ASTRA's θ used as φ, linspace angles (no half step) or detectors of pitch h instead
    of spanning the diagonal each move some centroid by 0.1 to 340 detector pixels (measured); the
    ``ct-lowdose`` centroids agree with ODL's s to 0.0035 pixels.
    """
    phi, s, w = odl_parallel_beam_geometry()
    sigma = 2.0  # pixels: narrow enough to be point-like, wide enough that the line kernel conserves mass
    where = [(60, 300), (300, 90), (140, 200)]  # (axis 0, axis 1) pixel indices, all off the centre
    i, j = np.meshgrid(np.arange(N_IMG), np.arange(N_IMG), indexing="ij")
    blobs = np.stack([np.exp(-((i - a) ** 2 + (j - b) ** 2) / (2 * sigma**2)) for a, b in where]).astype(np.float32)
    with torch.no_grad():
        sino = lowdose(torch.from_numpy(blobs)).double().numpy()
    assert sino.shape == (len(where), N_ANGLES, len(s))
    for (a, b), blob, p in zip(where, blobs, sino):
        x, y = -HALF + (a + 0.5) * H, -HALF + (b + 0.5) * H  # ODL's cell centres, metres
        predicted = x * np.cos(phi) + y * np.sin(phi)
        centroid = (p * s).sum(axis=1) / p.sum(axis=1)
        err = np.abs(centroid - predicted) / w
        assert err.max() < 0.02, (a, b, err.max())  # measured 0.0035 detector pixels
        for k in (0, 250, 500, 750, 999):
            assert centroid[k] == pytest.approx(predicted[k], abs=0.02 * w)
        # line integrals are in metres: summed over the detector (pitch in image pixels) they give mass × h
        mass = p.sum(axis=1) * lowdose.detector_spacing / (float(blob.sum(dtype=np.float64)) * H)
        np.testing.assert_allclose(mass, 1.0, rtol=0, atol=2e-3)  # measured within 8e-4 at every angle


def _phantoms() -> np.ndarray:
    from skimage.data import camera, shepp_logan_phantom
    from skimage.transform import resize

    a = resize(shepp_logan_phantom(), (N_IMG, N_IMG), anti_aliasing=True)
    # scaled to water-like values (LoDoPaB's μ/μ_max of water is 0.246): at full contrast (mean 0.5) the 0.26 m
    # rays through it would keep N0·exp(−0.5·μ_max·0.26) ≈ 0.1 of 4096 photons, and FBP gives 14 dB
    b = 0.25 * resize(camera() / 255.0, (N_IMG, N_IMG), anti_aliasing=True)
    return np.clip(np.stack([a, b]), 0, 1).astype(np.float32)


def _evaluate(result, reference) -> dict:
    res = runner.invoke(app, ["evaluate", str(result), "--reference", reference, "--json"])
    assert res.exit_code == 0, res.output + res.stderr
    return json.loads(res.stdout.splitlines()[0])


def test_lodopab_layout_files_round_trip_through_the_cli(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    gt = _phantoms()
    m = api.simulate(gt, operator="ct-lowdose", seed=0)
    obs = np.asarray(m.measurement, dtype=np.float32)
    assert obs.shape == (2, N_ANGLES, 513)
    # LoDoPaB's layout: one dataset 'data' per file, float32, h5py's automatic chunks, no other attributes
    with h5py.File("ground_truth_test_000.hdf5", "w") as f:
        f.create_dataset("data", data=gt, chunks=True)
    with h5py.File("observation_test_000.hdf5", "w") as f:
        f.create_dataset("data", data=obs, chunks=True)

    res = runner.invoke(app, ["reconstruct", "--operator", "ct-lowdose", *FBP, "observation_test_000.hdf5:/data",
                              "-o", "fbp.h5"])
    assert res.exit_code == 0, res.output + res.stderr
    with h5py.File("fbp.h5", "r") as f:
        assert f["reconstruction"].shape == (2, N_IMG, N_IMG)  # 362² inferred from the 513 detectors
        assert json.loads(f.attrs["operator"])["image_shape"] == [N_IMG, N_IMG]
        ident = json.loads(f.attrs["input"])
    assert ident["file"] == "observation_test_000.hdf5" and ident["dataset"] == "/data"
    assert ident["shape"] == [2, N_ANGLES, 513] and ident["layout"] == "sinogram"
    assert ident["sha256"] == array_digest(obs)
    foreign = _evaluate("fbp.h5", "ground_truth_test_000.hdf5:/data")
    assert foreign["n"] == 2 and foreign["psnr"] > 31.5  # measured 32.41 (per slice 26.86, 37.96), SSIM 0.926

    # the same numbers as an invsolve measurement file give the same reconstruction
    save_measurement(m, "m.h5")
    res = runner.invoke(app, ["reconstruct", "m.h5", *FBP, "-o", "fbp_invsolve.h5"])
    assert res.exit_code == 0, res.output + res.stderr
    own = _evaluate("fbp_invsolve.h5", "ground_truth_test_000.hdf5:/data")
    assert own["psnr"] == pytest.approx(foreign["psnr"], abs=1e-3)
    np.testing.assert_allclose(own["psnr_per_slice"], foreign["psnr_per_slice"], rtol=0, atol=1e-3)
    assert own["ssim"] == pytest.approx(foreign["ssim"], abs=1e-6)
