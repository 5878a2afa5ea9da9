"""The `linear` vector operator: matrix sources, exact adjoint, vector simulation."""

import json

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from invsolve import api
from invsolve.cli import app
from invsolve.errors import ConfigError, ShapeError
from invsolve.operators import build_operator

runner = CliRunner()


@pytest.fixture
def matrix(tmp_path):
    m = np.random.default_rng(0).normal(size=(3, 5))
    np.save(tmp_path / "M.npy", m)
    with h5py.File(tmp_path / "M.h5", "w") as f:
        f["A"] = m
    return m


def test_matrix_from_npy_and_h5_matches_dense(tmp_path, matrix):
    x = torch.randn(4, 5, dtype=torch.float64)
    for spec in (tmp_path / "M.npy", f"{tmp_path / 'M.h5'}:/A"):
        op = build_operator("linear", {"matrix_file": str(spec)}, (5,))
        assert op.domain_shape == (5,) and op.range_shape == (3,)
        np.testing.assert_allclose(op(x).numpy(), x.numpy() @ matrix.T.astype(np.float32), rtol=1e-5, atol=1e-6)
        assert op.arrays()["matrix"].shape == (3, 5)


def test_adjoint_is_exact_transpose(tmp_path, matrix):
    op = build_operator("linear", {"matrix_file": str(tmp_path / "M.npy")}, (5,))
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn((6, 5), generator=g, dtype=torch.float64), torch.randn((6, 3), generator=g, dtype=torch.float64)
    lhs, rhs = (op(x) * y).sum(), (x * op.adjoint(y)).sum()
    assert abs(float(lhs - rhs)) < 1e-5 * abs(float(lhs))
    torch.testing.assert_close(op.T(y), y @ op.matrix.double())


def test_diagonal_and_errors(tmp_path):
    op = build_operator("linear", {"diagonal": [0.1, 0.05]}, (2,))
    torch.testing.assert_close(op(torch.tensor([1.0, 2.0])), torch.tensor([0.1, 0.1]))
    assert op.arrays() == {}
    with pytest.raises(ConfigError, match="needs a matrix"):
        build_operator("linear", {}, (2,))
    with pytest.raises(ConfigError, match="not both"):
        build_operator("linear", {"diagonal": [1.0], "matrix_file": "m.npy"}, (1,))
    with pytest.raises(ConfigError, match="needs 3 columns"):
        build_operator("linear", {"diagonal": [1.0, 2.0]}, (3,))
    with pytest.raises(ConfigError, match="acts on vectors"):
        build_operator("linear", {"diagonal": [1.0]}, (8, 8))
    np.save(tmp_path / "v.npy", np.ones(4))
    with pytest.raises(ShapeError, match="2-D matrix"):
        build_operator("linear", {"matrix_file": str(tmp_path / "v.npy")}, (4,))


def test_simulate_vectors_api_and_cli(tmp_path, matrix):
    x = np.random.default_rng(1).uniform(-1, 1, size=(7, 5)).astype(np.float32)
    m = api.simulate(x, "linear", {"diagonal": [1.0] * 5}, noise_params={"sigma": 0.01}, seed=0)
    assert m.measurement.shape == (7, 5) and np.abs(m.measurement - x).max() < 0.1
    assert api.simulate(x[0], "linear", {"diagonal": [1.0] * 5}).measurement.shape == (1, 5)
    with pytest.raises(ShapeError, match=r"\(N, d\) vectors"):
        api.simulate(np.zeros((2, 3, 5)), "linear", {"diagonal": [1.0] * 5})
    np.save(tmp_path / "params.npy", x)
    out = tmp_path / "m.h5"
    res = runner.invoke(app, ["simulate", "--operator", "linear", "-P", f"matrix_file={tmp_path / 'M.npy'}",
                              "--input", str(tmp_path / "params.npy"), "--output", str(out), "--seed", "1", "--json"])
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["measurement_shape"] == [3]
    (tmp_path / "M.npy").unlink()  # the measurement carries the matrix itself
    loaded = api.load_measurement(out)
    assert loaded.measurement.shape == (7, 3) and loaded.ground_truth.shape == (7, 5)
    op = loaded.build_operator()
    np.testing.assert_allclose(op.dense(), matrix, rtol=1e-6)


def test_reconstruct_vectors_default_tikhonov_and_image_methods_refused(tmp_path):
    x = np.array([[0.5, -0.2, 0.8]], dtype=np.float32)
    m = api.simulate(x, "linear", {"diagonal": [1.0, 2.0, 3.0]}, noise_params={"sigma": 1e-4}, seed=0)
    r = api.reconstruct(m)  # the default for a linear vector problem: Tikhonov with L = identity
    assert r.method["name"] == "tikhonov" and r.images.shape == (1, 3)
    # alpha 1e-2 relative to ||A||² = 9: x_i d_i² / (d_i² + 0.09)
    d2 = np.array([1.0, 4.0, 9.0])
    np.testing.assert_allclose(r.images[0], x[0] * d2 / (d2 + 0.09), atol=1e-3)
    path = tmp_path / "v.h5"
    api.save_measurement(m, path)
    for args, text in ((["-m", "tv"], "method 'tv' needs an image operator, but the measurement uses 'linear' "
                        "(a 3-parameter vector); methods for it: tikhonov"),
                       (["-m", "tikhonov", "-M", "reg=gradient"], "use -M reg=identity"),
                       (["--prior", "patchnr", "--prior-file", str(tmp_path / "none.pt")], "method 'map' needs an "
                        "image operator")):
        res = runner.invoke(app, ["reconstruct", str(path), "-o", str(tmp_path / "r.h5"), *args])
        assert res.exit_code == 1 and text in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    res = runner.invoke(app, ["sample-posterior", str(path), "--prior", "patchnr", "--prior-file", "x.pt",
                              "-o", str(tmp_path / "p.h5")])
    assert res.exit_code == 1 and "use --sampler mcmc for parameter vectors" in res.stderr, res.stderr
    assert not (tmp_path / "r.h5").exists() and not (tmp_path / "p.h5").exists()


def test_reconstruct_nonlinear_vectors_points_to_sample_posterior(tmp_path):
    m = api.simulate(np.array([[20.0, 8.9, 1.0]], dtype=np.float32), "gixrf", {}, seed=0)
    path = tmp_path / "g.h5"
    api.save_measurement(m, path)
    for args in ([], ["-m", "tikhonov"]):
        res = runner.invoke(app, ["reconstruct", str(path), "-o", str(tmp_path / "r.h5"), *args])
        assert res.exit_code == 1 and "invsolve sample-posterior --sampler mcmc" in res.stderr, res.stderr


def test_evaluate_parameter_vectors_rmse_and_relative_error(tmp_path):
    x = np.array([[0.5, -0.2, 0.8], [0.1, 0.4, -0.6]], dtype=np.float32)
    m = api.simulate(x, "linear", {"diagonal": [1.0, 2.0, 3.0]}, noise_params={"sigma": 0.05}, seed=3)
    r = api.reconstruct(m, "tikhonov", {"alpha": 1e-6})
    path = tmp_path / "r.h5"
    api.save_reconstruction(r, path)
    err = r.images.astype(np.float64) - x
    res = runner.invoke(app, ["evaluate", str(path), "--json"])
    assert res.exit_code == 0, res.stderr
    row, mean = map(json.loads, res.stdout.splitlines())
    assert mean["rmse_per_parameter"] == pytest.approx(row["rmse_per_parameter"], rel=1e-12)
    np.testing.assert_allclose(row["rmse_per_parameter"], np.sqrt((err**2).mean(0)), rtol=1e-5)
    np.testing.assert_allclose(row["relative_error_per_parameter"], (np.abs(err) / np.abs(x)).mean(0), rtol=1e-5)
    assert row["n"] == 2 and "psnr" not in row
    np.save(tmp_path / "img.npy", np.zeros((8, 8), np.float32))
    res = runner.invoke(app, ["evaluate", str(path), str(tmp_path / "img.npy")])
    assert res.exit_code == 1 and "not both" in res.stderr
