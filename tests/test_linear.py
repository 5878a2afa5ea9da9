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
