"""The issue's own-data commands: a learned prior on a user's sinogram, config keys, sinogram stacks through
shards and resume, images and vector scans from users' files."""

import json

import h5py
import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from invsolve import api, api_priors
from invsolve.cli import app
from invsolve.metrics import psnr

from conftest import err_line, phantom

runner = CliRunner()


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


def recon(path, name="reconstruction") -> np.ndarray:
    with h5py.File(path, "r") as f:
        return f[name][()]


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """A ct-limited measurement of a 48x48 phantom, saved as a bare sinogram (.npy) and as the invsolve file."""
    d = tmp_path_factory.mktemp("limited")
    m = api.simulate(phantom(48), operator="ct-limited", noise_params={"n0": 100000}, seed=0)
    api.save_measurement(m, d / "m.h5")
    np.save(d / "sino.npy", m.measurement[0])
    return d


def test_a_patch_prior_reconstructs_a_users_sinogram(tmp_path, limited):
    prior, _ = api_priors.train_prior("patchnr", phantom(48), params={"width": 8, "blocks": 1}, steps=20, seed=0,
                                      device="cpu")
    api_priors.save_prior(prior, tmp_path / "p.pt")
    args = ("--prior", "patchnr", "--prior-file", tmp_path / "p.pt", "-M", "iterations=3", "-M", "n_patches=200",
            "-N", "n0=100000")
    res = cli("reconstruct", "--operator", "ct-limited", *args, limited / "sino.npy", "-o", tmp_path / "r.h5")
    assert res.exit_code == 0, res.output
    res = cli("reconstruct", limited / "m.h5", *args, "-o", tmp_path / "same.h5")
    assert res.exit_code == 0, res.output
    # the image size (48) follows from the 69 detectors over the diagonal; the same run as on the invsolve file
    np.testing.assert_array_equal(recon(tmp_path / "r.h5"), recon(tmp_path / "same.h5"))


def test_config_keys_describe_the_data(tmp_path, limited):
    (tmp_path / "c.toml").write_text(f'measurement = "{limited / "sino.npy"}"\noperator = "ct-limited"\n'
                                     'method = "fbp"\n[noise_params]\nn0 = 100000\n[operator_params]\n'
                                     'angle_convention = "odl"\n')
    res = cli("reconstruct", "--config", tmp_path / "c.toml", "-o", tmp_path / "r.h5")
    assert res.exit_code == 0, res.output
    with h5py.File(tmp_path / "r.h5", "r") as f:
        assert json.loads(f.attrs["noise"])["n0"] == 100000
        assert json.loads(f.attrs["input"])["operator_given"]["name"] == "ct-limited"
    (tmp_path / "bad.toml").write_text('operator = "ct"\noperator_param = {}\n')
    assert "unknown key 'operator_param'" in err_line(cli("reconstruct", "--config", tmp_path / "bad.toml",
                                                          limited / "sino.npy", "-o", tmp_path / "x.h5"))


def test_a_sinogram_stack_runs_in_shards_and_resumes(tmp_path):
    x = np.stack([phantom(32), phantom(32)[::-1].copy(), phantom(32).T.copy()])
    m = api.simulate(x, operator="ct", operator_params={"angles": 60, "endpoint": False}, seed=0)
    with h5py.File(tmp_path / "stack.h5", "w") as f:
        f["sinograms"] = m.measurement  # (slices, angles, detectors), as a user's stack
    spec = f"{tmp_path / 'stack.h5'}:/sinograms"
    args = ("--operator", "ct", "-P", "endpoint=false", "--image-size", 32, "-m", "tv", "-M", "iterations=5",
            "--batch-size", 1)
    one = cli("reconstruct", spec, *args, "-o", tmp_path / "one.h5")
    assert one.exit_code == 0, one.output
    for k in ("1/2", "2/2"):
        assert cli("reconstruct", spec, *args, "--shard", k, "-o", tmp_path / "sh.h5").exit_code == 0
    np.testing.assert_array_equal(recon(tmp_path / "one.h5"), recon(tmp_path / "sh.h5"))
    res = cli("reconstruct", spec, *args, "--resume", "-o", tmp_path / "sh.h5", "--json")
    assert json.loads(res.stdout.splitlines()[-1])["skipped"] == 3
    # a range of the stack
    res = cli("reconstruct", spec + "[1:3]", *args, "-o", tmp_path / "part.h5")
    assert res.exit_code == 0, res.output
    np.testing.assert_array_equal(recon(tmp_path / "part.h5"), recon(tmp_path / "one.h5")[1:3])


def test_a_tiff_sinogram_stack_and_a_micrograph(tmp_path):
    x = np.stack([phantom(32)] * 3)
    m = api.simulate(x, operator="ct", operator_params={"angles": 45}, seed=0)
    tifffile.imwrite(tmp_path / "sino.tif", m.measurement, photometric="minisblack")
    res = cli("reconstruct", "--operator", "ct", "-P", "angles=45", "--image-size", 32, "-m", "fbp",
              tmp_path / "sino.tif", "-o", tmp_path / "r.h5")
    assert res.exit_code == 0, res.output
    assert recon(tmp_path / "r.h5").shape == (3, 32, 32)
    # a low-resolution micrograph (8-bit PNG): superres infers the high-resolution size from the kernel grid
    from skimage import io

    lr = api.simulate(phantom(64), operator="superres", seed=0).measurement[0]
    io.imsave(tmp_path / "lr.png", (np.clip(lr, 0, 1) * 255).round().astype(np.uint8), check_contrast=False)
    res = cli("reconstruct", "--operator", "superres", tmp_path / "lr.png", "-o", tmp_path / "sr.h5")
    assert res.exit_code == 0, res.output
    assert recon(tmp_path / "sr.h5").shape == (1, 64, 64) and psnr(phantom(64), recon(tmp_path / "sr.h5")[0]) > 18


GIXRF = {"angles": np.linspace(0.1, 1.0, 12).tolist(), "bounds": [[5, 40], [5, 12], [0.5, 2]]}


def _gixrf_scan(tmp_path, rows=None):
    """A Ni-Ka scan over 12 angles written as a lab would: angle, intensity and its standard deviation per row
    (full precision, so the file holds exactly the simulated numbers); also the invsolve file of the same data."""
    m = api.simulate(np.array([[20.0, 8.9, 1.0]], np.float32), operator="gixrf", operator_params=GIXRF,
                     noise="gaussian", noise_params={"sigma": [0.01] * 12}, seed=0)
    api.save_measurement(m, tmp_path / "m.h5", overwrite=True)
    lines = ["angle_deg,Ni-Ka,Ni-Ka_std"] + [f"{a!r},{float(v)!r},0.01" for a, v in zip(GIXRF["angles"],
                                                                                         m.measurement[0])]
    if rows is not None:
        lines = rows(lines)
    (tmp_path / "scan.csv").write_text("\n".join(lines) + "\n")


def test_a_gixrf_scan_from_csv_through_mcmc(tmp_path):
    _gixrf_scan(tmp_path)
    mc = ("--sampler", "mcmc", "-S", "steps=300", "-S", "burn_in=100", "-S", "chains=4")
    with pytest.warns(RuntimeWarning, match="MCMC chains disagree"):  # short chains, and it says so
        res = cli("sample-posterior", "--operator", "gixrf", "-P", "bounds=[[5,40],[5,12],[0.5,2]]",
                  tmp_path / "scan.csv", *mc, "-o", tmp_path / "post.h5")
        assert res.exit_code == 0, res.output
        assert cli("sample-posterior", tmp_path / "m.h5", *mc, "-o", tmp_path / "same.h5").exit_code == 0
    with h5py.File(tmp_path / "post.h5", "r") as f:
        noise, op = json.loads(f.attrs["noise"]), json.loads(f.attrs["operator"])
        info = json.loads(f.attrs["input"])
    assert noise == {"name": "gaussian", "sigma": [0.01] * 12}  # the std column as per-point sigma
    assert op["params"]["angles"] == GIXRF["angles"]  # the grid column
    assert info["layout"] == "vectors" and info["file"].endswith("scan.csv")
    np.testing.assert_array_equal(recon(tmp_path / "post.h5", "posterior_mean"),
                                  recon(tmp_path / "same.h5", "posterior_mean"))


def test_a_ragged_csv_is_one_line(tmp_path):
    _gixrf_scan(tmp_path, rows=lambda lines: lines[:5] + [lines[5] + ",7"] + lines[6:])
    line = err_line(cli("sample-posterior", "--operator", "gixrf", "-P", "bounds=[[5,40],[5,12],[0.5,2]]",
                        tmp_path / "scan.csv", "--sampler", "mcmc", "-o", tmp_path / "post.h5"))
    assert "line 6" in line and not (tmp_path / "post.h5").exists()
