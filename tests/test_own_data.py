"""Data invsolve did not write: sinograms written with ASTRA, Data Exchange projections, and their bad forms."""

import json

import astra
import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from invsolve.cli import app
from invsolve.metrics import psnr

from conftest import err_line, phantom

runner = CliRunner()
N, DET, ANGLES = 96, 137, 120


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


def astra_sino(x: np.ndarray, angles: np.ndarray, det: int = DET, axis: float | None = None) -> np.ndarray:
    """ASTRA's own parallel projection; ``axis``: the rotation axis's pixel-centre index on the detector."""
    pg = astra.create_proj_geom("parallel", 1.0, det, angles)
    if axis is not None:  # the origin projects to index (det - 1)/2 - f
        pg = astra.geom_postalignment(pg, (det - 1) / 2 - axis)
    pid = astra.create_projector("linear", pg, astra.create_vol_geom(*x.shape))
    sid, s = astra.create_sino(x, pid)
    astra.data2d.delete(sid)
    astra.projector.delete(pid)
    return s.astype(np.float32)


def recon(path) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return f["reconstruction"][()]


@pytest.fixture(scope="module")
def x():
    return phantom(N)


@pytest.mark.parametrize("method", [["-m", "fbp"], ["-m", "tv", "-M", "iterations=60"]])
def test_astra_sinogram_reconstructs_as_the_simulated_one(tmp_path, x, method):
    ang = np.linspace(0, np.pi, ANGLES, endpoint=False)
    np.save(tmp_path / "sino.npy", astra_sino(x, ang))
    np.save(tmp_path / "x.npy", x)
    res = cli("reconstruct", "--operator", "ct", "-P", "endpoint=false", "--image-size", N, "-N", "sigma=0.05",
              tmp_path / "sino.npy", *method, "-o", tmp_path / "own.h5")
    assert res.exit_code == 0, res.output
    res = cli("simulate", "--operator", "ct", "-P", f"angles={ANGLES}", "-P", "endpoint=false", "-P", f"detectors={DET}",
              "-N", "sigma=1e-7", "-i", tmp_path / "x.npy", "-o", tmp_path / "m.h5")
    assert res.exit_code == 0, res.output
    res = cli("reconstruct", tmp_path / "m.h5", "-N", "sigma=0.05", *method, "-o", tmp_path / "sim.h5")
    assert res.exit_code == 0, res.output
    p_own, p_sim = psnr(x, recon(tmp_path / "own.h5")[0]), psnr(x, recon(tmp_path / "sim.h5")[0])
    assert abs(p_own - p_sim) < 0.05 and p_own > 20  # measured: equal to 1e-4 dB
    with h5py.File(tmp_path / "own.h5", "r") as f:
        info = json.loads(f.attrs["input"])
        op = json.loads(f.attrs["operator"])
    assert info["file"] == str(tmp_path / "sino.npy") and info["layout"] == "sinogram" and len(info["sha256"]) == 64
    assert info["operator_given"] == {"name": "ct", "params": {"endpoint": False}}
    assert op["image_shape"] == [N, N] and op["params"]["detectors"] == DET and op["params"]["angles"] == ANGLES


def test_the_midpoint_convention_is_named_when_the_sinogram_does_not_say(tmp_path, x):
    np.save(tmp_path / "sino.npy", astra_sino(x, np.linspace(0, np.pi, ANGLES, endpoint=False)))
    with pytest.warns(UserWarning, match=r"placed at cell midpoints .* needs -P endpoint=false"):
        res = cli("reconstruct", "--operator", "ct", tmp_path / "sino.npy", "-o", tmp_path / "r.h5")
    assert res.exit_code == 0
    assert recon(tmp_path / "r.h5").shape == (1, DET, DET)  # detectors x detectors without --image-size


def _dxchange(path, x, axis, rng, dose=2e4):
    """Projections (angles, rows, cols) of a 3-row volume with a structured flat, dark current and Poisson noise."""
    theta = np.linspace(0, 180, ANGLES, endpoint=False)
    line = astra_sino(x, np.deg2rad(theta), axis=axis) * 0.02  # attenuation per pixel 0.02 at most
    rows, cols = 3, DET
    flat = dose * (1 + 0.3 * np.sin(np.arange(cols) / 7.0))[None, :] * np.linspace(0.8, 1.2, rows)[:, None]
    dark = 100 + 5 * np.cos(np.arange(cols) / 3.0)[None, :] * np.ones((rows, 1))
    proj = rng.poisson(flat[None] * np.exp(-line)[:, None, :]) + dark[None]
    flats = rng.poisson(np.broadcast_to(flat, (10, rows, cols))) + dark[None]
    darks = rng.normal(dark, 1.0, (5, rows, cols))
    ideal = -np.log(np.maximum(rng.poisson(dose * np.exp(-line)), 1) / dose) / 0.02
    with h5py.File(path, "w") as f:
        f["/exchange/data"] = proj.astype(np.uint16)
        f["/exchange/data_white"] = flats.astype(np.uint16)
        f["/exchange/data_dark"] = darks.astype(np.float32)
        f["/exchange/theta"] = theta
    np.save(path.parent / "theta.npy", theta)
    return ideal.astype(np.float32)


@pytest.mark.parametrize("offset", [-5.0, 4.5])
def test_data_exchange_projections_with_an_estimated_centre(tmp_path, x, offset):
    axis = (DET - 1) / 2 + offset
    ideal = _dxchange(tmp_path / "proj.h5", x, axis, np.random.default_rng(0))
    p = tmp_path / "proj.h5"
    with pytest.warns(UserWarning, match="rotation axis estimated at detector pixel"):
        res = cli("reconstruct", "--operator", "ct", "-P", "angles_file=" + str(tmp_path / "theta.npy"), "-P",
                  "center=auto", f"{p}:/exchange/data", "--flats", f"{p}:/exchange/data_white", "--darks",
                  f"{p}:/exchange/data_dark", "--image-size", N, "-m", "fbp", "-o", tmp_path / "rec.h5")
    assert res.exit_code == 0, res.output
    with h5py.File(tmp_path / "rec.h5", "r") as f:
        info, op = json.loads(f.attrs["input"]), json.loads(f.attrs["operator"])
        rec = f["reconstruction"][()] / 0.02
    assert info["layout"] == "projections" and info["flats"].endswith("/exchange/data_white")
    assert abs(info["center_estimate"]["center"] - axis) < 0.5 and op["params"]["center"] == pytest.approx(
        info["center_estimate"]["center"])
    assert rec.shape == (3, N, N)
    np.save(tmp_path / "ideal.npy", ideal)
    res = cli("reconstruct", "--operator", "ct", "-P", "endpoint=false", "-P", f"center={axis}", "--image-size", N,
              tmp_path / "ideal.npy", "-m", "fbp", "-o", tmp_path / "ideal.h5")
    assert res.exit_code == 0, res.output
    p_raw, p_ideal = psnr(x, rec[1]), psnr(x, recon(tmp_path / "ideal.h5")[0])
    assert p_raw > p_ideal - 0.3 and p_ideal > 18  # measured within 0.1 dB
    # the Data Exchange file alone: its own flats, darks and theta (degrees), operator ct, one row
    res = cli("reconstruct", p, "-P", f"center={axis}", "--rows", "1:2", "--image-size", N, "-m", "fbp",
              "-o", tmp_path / "row.h5")
    assert res.exit_code == 0, res.output
    np.testing.assert_allclose(recon(tmp_path / "row.h5")[0] / 0.02, rec[1], atol=1e-4 * np.abs(rec).max())


def test_a_plain_projection_stack_with_separate_flats(tmp_path, x):
    _dxchange(tmp_path / "proj.h5", x, (DET - 1) / 2, np.random.default_rng(1))
    with h5py.File(tmp_path / "proj.h5", "r") as f:
        for name in ("data", "data_white", "data_dark"):
            np.save(tmp_path / f"{name}.npy", f[f"/exchange/{name}"][()])
    res = cli("reconstruct", "--operator", "ct", "-P", "endpoint=false", tmp_path / "data.npy", "--flats",
              tmp_path / "data_white.npy", "--darks", tmp_path / "data_dark.npy", "--image-size", N, "-m", "fbp",
              "-o", tmp_path / "r.h5")
    assert res.exit_code == 0, res.output
    assert psnr(x, recon(tmp_path / "r.h5")[1] / 0.02) > 18


def test_an_nxtomo_file_with_image_keys(tmp_path, x):
    """NeXus NXtomo: flats, darks and projections in one frame stack, told apart by image_key."""
    axis = (DET - 1) / 2 + 2.5
    _dxchange(tmp_path / "dx.h5", x, axis, np.random.default_rng(3))
    with h5py.File(tmp_path / "dx.h5", "r") as f:
        proj, flats, darks = (f[f"/exchange/{k}"][()].astype(np.float32) for k in ("data", "data_white", "data_dark"))
        theta = f["/exchange/theta"][()]
    frames = np.concatenate([darks, flats[:5], proj, flats[5:]])
    key = np.r_[np.full(len(darks), 2), np.full(5, 1), np.zeros(len(proj)), np.full(len(flats) - 5, 1)]
    angle = np.r_[np.zeros(len(darks) + 5), np.deg2rad(theta), np.zeros(len(flats) - 5)]
    with h5py.File(tmp_path / "scan.nxs", "w") as f:
        f["entry/definition"] = "NXtomo"
        f["entry/instrument/detector/data"] = frames.astype(np.uint16)
        f["entry/instrument/detector/image_key"] = key.astype(np.int32)
        f["entry/sample/rotation_angle"] = angle
        f["entry/sample/rotation_angle"].attrs["units"] = "rad"
    res = cli("reconstruct", tmp_path / "scan.nxs", "-P", f"center={axis}", "--image-size", N, "-m", "fbp",
              "-o", tmp_path / "nx.h5")
    assert res.exit_code == 0, res.output
    res = cli("reconstruct", f"{tmp_path / 'dx.h5'}", "-P", f"center={axis}", "--image-size", N, "-m", "fbp",
              "-o", tmp_path / "dx_rec.h5")
    assert res.exit_code == 0, res.output
    with h5py.File(tmp_path / "nx.h5", "r") as f:
        info = json.loads(f.attrs["input"])
    assert info["format"] == "NXtomo" and info["layout"] == "projections"
    # the same frames as the Data Exchange file (flats averaged in another order: float rounding only)
    np.testing.assert_allclose(recon(tmp_path / "nx.h5"), recon(tmp_path / "dx_rec.h5"), atol=1e-5)


def _bad(tmp_path, *args):
    out = tmp_path / "out.h5"
    line = err_line(cli("reconstruct", *args, "-o", out))
    assert not out.exists() and not list(tmp_path.glob(".*tmp*"))
    return line


def test_bad_own_data_gets_one_line_and_no_output(tmp_path, x):
    ang = np.linspace(0, np.pi, ANGLES, endpoint=False)
    np.save(tmp_path / "sino.npy", astra_sino(x, ang))
    np.save(tmp_path / "vol.npy", np.zeros((2, 3, 4, 5), np.float32))
    assert "expected a sinogram (angles, detectors)" in _bad(tmp_path, "--operator", "ct", tmp_path / "vol.npy")
    assert "holds 120 projections (angles), and -P angles gives 90" in _bad(
        tmp_path, "--operator", "ct", "-P", "angles=90", tmp_path / "sino.npy")
    assert "exceed 2π" in _bad(tmp_path, "--operator", "ct", "-P", f"angles={np.rad2deg(ang).tolist()}", "-P",
                               "angle_unit=rad", tmp_path / "sino.npy")
    assert "off the detector" in _bad(tmp_path, "--operator", "ct", "-P", "center_offset=80", tmp_path / "sino.npy")
    assert "is not an invsolve file: describe the measurement with --operator" in _bad(tmp_path, tmp_path / "sino.npy")
    assert "unknown operator 'cct'" in _bad(tmp_path, "--operator", "cct", tmp_path / "sino.npy")
    p = tmp_path / "proj.h5"
    _dxchange(p, x, (DET - 1) / 2, np.random.default_rng(2))
    with h5py.File(tmp_path / "flat_small.h5", "w") as f:
        f["f"] = np.ones((3, 3, DET - 1))
        f["zero"] = np.zeros((3, 3, DET))
    assert "the flats have shape (3, 3, 136)" in _bad(tmp_path, f"{p}:/exchange/data", "--flats",
                                                      f"{tmp_path / 'flat_small.h5'}:/f")
    assert "flat field is at or below the dark field" in _bad(tmp_path, f"{p}:/exchange/data", "--flats",
                                                              f"{tmp_path / 'flat_small.h5'}:/zero")
    assert "no dataset '/exchange/nope'" in _bad(tmp_path, f"{p}:/exchange/nope", "--operator", "ct")
    assert "raw projections are (angles, rows, columns)" in _bad(tmp_path, f"{p}:/exchange/theta", "--flats",
                                                                 f"{p}:/exchange/data_white")


def test_flags_that_contradict_an_invsolve_file_are_refused(tmp_path, phantom_png):
    assert cli("simulate", "--operator", "ct", "-i", phantom_png, "-o", tmp_path / "m.h5").exit_code == 0
    assert "stores its measurement's operator 'ct'; --operator superres contradicts it" in _bad(
        tmp_path, tmp_path / "m.h5", "--operator", "superres")
    assert "-P angles=90 contradicts it" in _bad(tmp_path, tmp_path / "m.h5", "-P", "angles=90")
    assert "--flats applies to raw data only" in _bad(tmp_path, tmp_path / "m.h5", "--flats", tmp_path / "m.h5")
    # its stored measurement is raw data too, when named as a dataset
    res = cli("reconstruct", f"{tmp_path / 'm.h5'}:/measurement", "--operator", "ct", "--image-size", 64, "-m", "fbp",
              "-o", tmp_path / "again.h5")
    assert res.exit_code == 0, res.output
    assert cli("reconstruct", tmp_path / "m.h5", "-m", "fbp", "-o", tmp_path / "same.h5").exit_code == 0
    np.testing.assert_allclose(recon(tmp_path / "again.h5"), recon(tmp_path / "same.h5"), atol=1e-5)
