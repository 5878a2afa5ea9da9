"""Importance resampling of a vector cflow: the flow's exact density, and posteriors made exact per measurement."""

import math

import numpy as np
import pytest
import torch

from invsolve import api
from invsolve.api_samplers import train_sampler, training_prior
from invsolve.errors import OperatorError
from invsolve.noise import build_noise
from invsolve.samplers import load_sampler
from invsolve.samplers.importance import flow_log_prob, importance_resample, systematic_resample

DIAG, SIGMA = [1.0, 0.5], 0.3


@pytest.fixture(scope="module")
def rough_flow(tmp_path_factory):
    """A deliberately undertrained cflow (150 steps) on a linear-Gaussian problem with a closed-form posterior."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("imp") / "cflow.pt"
    train_sampler("cflow", "linear", {"diagonal": DIAG}, noise_params={"sigma": SIGMA}, prior="gaussian", dim=2,
                  sampler_params={"blocks": 3, "hidden": 32}, steps=150, batch_size=256, val_every=150,
                  output=out, seed=0, device="cpu")
    torch.set_num_threads(n)
    return out


def _exact(y):
    A = torch.tensor(DIAG, dtype=torch.float64)
    var = 1 / (A**2 / SIGMA**2 + 1)
    return var * A * y.double() / SIGMA**2, var.sqrt().expand(len(y), -1)


def test_flow_log_prob_is_a_normalised_density(rough_flow):
    smp = load_sampler(rough_flow, "cpu")
    g = torch.linspace(-5, 5, 301)
    grid = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    y = torch.tensor([[0.8, -0.3]]).expand(len(grid), -1)
    mass = float(flow_log_prob(smp, grid, y).exp().sum()) * float(g[1] - g[0]) ** 2
    assert mass == pytest.approx(1.0, abs=0.01)


def test_importance_resampling_recovers_the_exact_posterior(rough_flow):
    smp = load_sampler(rough_flow, "cpu")
    prior, op = training_prior(smp), smp.operator
    g = torch.Generator().manual_seed(3)
    x = prior.sample(6, g)
    y = smp.noise.sample(op(x), generator=g)
    mean, std = _exact(y)
    plain = smp.sample(y, 4000, torch.Generator().manual_seed(4)).double()
    xs, ess = importance_resample(smp, op, build_noise({"name": "gaussian", "sigma": SIGMA}), prior, y, 4000, 40000,
                                  torch.Generator().manual_seed(4))
    assert xs.shape == (6, 4000, 2) and ess.shape == (6,)
    err_plain = float(((plain.mean(1) - mean) / std).abs().max())
    err_imp = float(((xs.double().mean(1) - mean) / std).abs().max())
    assert err_imp < 0.08 < err_plain  # the rough flow is visibly off; its reweighted proposals are not
    np.testing.assert_allclose(xs.double().std(1), std, rtol=0.08)
    assert bool((ess > 1000).all()) and bool((ess <= 40000).all())


def test_systematic_resampling_follows_the_weights():
    w = torch.tensor([[0.0, 1.0, 3.0, 0.0], [1.0, 1.0, 1.0, 1.0]], dtype=torch.float64)
    idx = systematic_resample(w, 8, torch.Generator().manual_seed(0))
    assert torch.bincount(idx[0], minlength=4).tolist() == [0, 2, 6, 0]
    assert torch.bincount(idx[1], minlength=4).tolist() == [2, 2, 2, 2]


def test_sample_posterior_with_importance(rough_flow, tmp_path):
    m = api.simulate(np.array([[0.5, -1.0], [1.0, 0.2]], np.float32), "linear", {"diagonal": DIAG}, "gaussian",
                     {"sigma": SIGMA}, seed=0, device="cpu")
    post = api.sample_posterior(m, sampler_file=str(rough_flow), num_samples=2000, importance=10, seed=1, device="cpu")
    mean, std = _exact(torch.from_numpy(m.measurement))
    np.testing.assert_allclose(post.summary.mean, mean.numpy(), atol=0.1 * float(std.min()) + 0.02)
    assert len(post.sampler["effective_sample_size"]) == 2 and post.sampler["importance"] == 10
    cfm = tmp_path / "cfm.pt"
    train_sampler("cfm", "linear", {"diagonal": DIAG}, noise_params={"sigma": SIGMA}, prior="gaussian", dim=2,
                  steps=2, batch_size=16, val_every=2, output=cfm, seed=0, device="cpu")
    with pytest.raises(OperatorError, match="needs a cflow or csnf sampler"):
        api.sample_posterior(m, sampler_file=str(cfm), importance=10, device="cpu")
    assert math.isfinite(float(post.summary.std.sum()))


def test_cli_importance_option_writes_the_resampled_posterior(rough_flow, tmp_path):
    from typer.testing import CliRunner

    from invsolve.cli import app
    from invsolve.io.hdf5 import read_result

    m = api.simulate(np.array([[0.5, -1.0]], np.float32), "linear", {"diagonal": DIAG}, "gaussian", {"sigma": SIGMA},
                     seed=0, device="cpu")
    mp = api.save_measurement(m, tmp_path / "m.h5")
    res = CliRunner().invoke(app, ["sample-posterior", str(mp), "--sampler-file", str(rough_flow), "-n", "1000",
                                   "--importance", "10", "--output", str(tmp_path / "p.h5"), "-q", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    mean, _ = _exact(torch.from_numpy(m.measurement))
    got = read_result(tmp_path / "p.h5").datasets["posterior_mean"]
    np.testing.assert_allclose(got, mean.numpy(), atol=0.05)
