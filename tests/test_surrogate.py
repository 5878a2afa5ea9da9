"""The ``surrogate`` operator: learned forward models from state dicts or TorchScript."""

import warnings

import numpy as np
import pytest
import torch

from invsolve import api
from invsolve.errors import DataError, ShapeError
from invsolve.operators import build_operator
from invsolve.operators.surrogate import build_mlp

F0 = [0.0400, 0.0356, 0.0257, 0.0366, 0.0637, 0.0602, 0.0429, 0.1604, 0.5766, 1.1990, 0.7986, 1.4589, 0.9278,
      0.4478, 0.1945, 0.0862, 0.0604, 0.0943, 0.1145, 0.0754, 0.0205, 0.0014, 0.0027]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A 2 -> 5 MLP saved as a state dict with a prefix and as TorchScript."""
    torch.manual_seed(0)
    net = build_mlp([2, 16, 5], "tanh")
    d = tmp_path_factory.mktemp("surrogate")
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, d / "sd.pt")
    with warnings.catch_warnings():  # torch deprecates writing TorchScript; users' existing files still load
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(net), str(d / "ts.pt"))
    return net, d


def test_scatterometry_model_matches_reference_values(shared_data, monkeypatch):
    monkeypatch.setenv("INVSOLVE_SHARED_DATA", str(shared_data))
    op = build_operator("surrogate", {}, (3,))
    assert op.range_shape == (23,) and not op.linear
    np.testing.assert_allclose(op(torch.zeros(3)).numpy(), F0, atol=6e-5)
    x = torch.rand((2000, 3), generator=torch.Generator().manual_seed(0)) * 2 - 1
    y = op(x)
    assert 0.2 < float(y.mean()) < 0.36 and float(y.max()) < 2.1
    assert op.prior_spec() == {"name": "uniform", "dim": 3, "low": -1.0, "high": 1.0}


def test_state_dict_and_torchscript_agree(small):
    net, d = small
    x = torch.randn(4, 2)
    want = net(x).detach()
    sd = build_operator("surrogate", {"model": str(d / "sd.pt"), "widths": [2, 16, 5], "activation": "tanh"}, (2,))
    ts = build_operator("surrogate", {"model": str(d / "ts.pt")}, (2,))
    torch.testing.assert_close(sd(x), want)
    torch.testing.assert_close(ts(x), want)
    assert "torchscript" in ts.arrays() and "state.0.weight" in sd.arrays()
    assert not sd.linear and not hasattr(sd, "adjoint")  # nonlinear: no adjoint at all


def test_measurement_rebuilds_without_the_model_file(small, tmp_path):
    net, d = small
    for name, extra in (("sd.pt", {"widths": [2, 16, 5], "activation": "tanh"}), ("ts.pt", {})):
        src = tmp_path / name
        src.write_bytes((d / name).read_bytes())
        params = {"model": str(src), **extra}
        m = api.simulate(np.zeros((3, 2), np.float32), "surrogate", params, "mixed", {"a": 0.01, "b": 0.1}, seed=1)
        path = api.save_measurement(m, tmp_path / f"m_{name}.h5")
        src.unlink()
        back = api.load_measurement(path)
        op = back.build_operator()
        torch.testing.assert_close(op(torch.zeros(1, 2)), net(torch.zeros(1, 2)).detach())


def test_bad_files_raise_one_line_data_errors(small, tmp_path):
    _, d = small
    with pytest.raises(DataError, match="not found"):
        build_operator("surrogate", {"model": str(tmp_path / "nope.pt")}, (3,))
    with pytest.raises(DataError, match="does not match the surrogate architecture"):
        build_operator("surrogate", {"model": str(d / "sd.pt"), "widths": [2, 8, 5]}, (2,))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(DataError, match="neither a state dict nor a TorchScript archive"):
        build_operator("surrogate", {"model": str(junk)}, (3,))
    pickled = tmp_path / "pickled.pt"
    torch.save({"weights": object()}, pickled)  # pickled code is refused by weights_only loading
    with pytest.raises(DataError):
        build_operator("surrogate", {"model": str(pickled), "format": "state_dict"}, (3,))
    with pytest.raises(ShapeError, match="does not accept inputs"):
        build_operator("surrogate", {"model": str(d / "sd.pt"), "widths": [2, 16, 5], "activation": "tanh"}, (3,))
