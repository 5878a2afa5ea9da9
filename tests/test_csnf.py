"""The conditional stochastic normalizing flow: its Markov layers keep their targets, its couplings' log-
determinants are exact, and it recovers both modes of a posterior with separated modes and known weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from invsolve.errors import ConfigError
from invsolve.noise import build_noise
from invsolve.operators import build_operator
from invsolve.samplers.csnf import ConditionalSNF
from invsolve.samplers.exact import energy_distance, exact_posterior
from invsolve.samplers.priors import build_prior

BIMODAL = {"name": "gmm", "dim": 2, "means": [[-1.0, 0.0], [1.0, 0.0]], "weights": [0.3, 0.7], "variance": 0.01}


def _gaussian_csnf(kernel: str, step: float):
    op = build_operator("linear", {"diagonal": [1.0, 0.5]}, (2,))
    nz = build_noise({"name": "gaussian", "sigma": 0.3})
    smp = ConditionalSNF.create({"kernel": kernel, "step_size": step, "mcmc_steps": 1, "hidden": 16, "layers": 2},
                                op, nz)
    smp.vprior = build_prior({"name": "gaussian", "dim": 2})
    return smp, op, nz


@pytest.mark.parametrize("kernel,step", [("mh", 0.8), ("mala", 0.3)])
def test_markov_layers_leave_the_posterior_invariant(kernel, step):
    """Exact posterior draws stay exact posterior draws after 20 Markov steps at λ = 1: mean and variance
    within Monte-Carlo error (working coordinates are the raw ones here: the standardisers are the identity)."""
    smp, op, nz = _gaussian_csnf(kernel, step)
    post = exact_posterior(op, nz.spec(), smp.vprior)
    y = torch.tensor([[0.7, -0.4]])
    g = torch.Generator().manual_seed(0)
    w = post.sample(y, 20000, g)[0].float()
    out = smp.markov(w, y.expand(len(w), 2), 1.0, g, steps=20)[0]
    mean, cov = post.mean(y)[0], post.covariance(y)[0]
    se = (torch.diagonal(cov) / len(w)).sqrt()
    assert torch.all((out.double().mean(0) - mean).abs() < 5 * se)
    assert torch.allclose(out.double().var(0), torch.diagonal(cov), rtol=0.05)
    moved = (out != w).any(1).double().mean()
    assert 0.2 < moved < 1.0  # the chain moves, and rejects some proposals


def test_energy_is_the_annealed_posterior_energy():
    smp, op, nz = _gaussian_csnf("mh", 0.5)
    w = torch.tensor([[0.3, -1.2], [2.0, 0.1]])
    y = torch.tensor([[0.5, 0.2], [0.5, 0.2]])
    exact = 0.5 * (w**2).sum(1) + ((y - w * torch.tensor([1.0, 0.5])) ** 2).sum(1) / (2 * 0.09)
    du = smp.energy(w, y, 1.0)
    assert torch.allclose(du[0] - du[1], exact[0] - exact[1], atol=1e-4)
    assert torch.allclose(smp.energy(w, y, 0.0), 0.5 * (w**2).sum(1))
    half = smp.energy(w, y, 0.5)
    assert torch.allclose(half, 0.5 * smp.energy(w, y, 1.0) + 0.5 * smp.energy(w, y, 0.0), atol=1e-5)


def test_coupling_log_determinant_matches_autograd():
    """The log|det| of the couplings shared with cflow, against the Jacobian's slogdet."""
    smp, _, _ = _gaussian_csnf("mh", 0.5)
    blk = smp.net["model"]["units"][0][0]
    for p in blk.parameters():
        p.data.normal_(0, 0.3)
    x, h = torch.randn(3, 2, dtype=torch.float64), torch.randn(3, 64, dtype=torch.float64)
    blk = blk.double()
    z, ld = blk(x, h)
    for i in range(3):
        jac = torch.autograd.functional.jacobian(lambda v: blk(v[None], h[i:i + 1])[0][0], x[i])
        assert torch.allclose(ld[i], torch.linalg.slogdet(jac)[1], atol=1e-8)
    assert torch.allclose(blk.inverse(z, h), x, atol=1e-10)


def test_csnf_refuses_images():
    op = build_operator("superres", {"factor": 4}, (16, 16))
    with pytest.raises(ConfigError, match="vector problems"):
        ConditionalSNF.create({}, op, build_noise({"name": "gaussian", "sigma": 0.1}))


def test_csnf_recovers_separated_modes_with_their_weights(tmp_path):
    """y observes only the second coordinate, so the posterior keeps the prior's two modes at x₁ = ±1 (20
    standard deviations apart) with their weights 0.3 and 0.7."""
    from invsolve.api_samplers import train_sampler
    from invsolve.samplers import load_sampler

    out = tmp_path / "csnf.pt"
    params = {k: v for k, v in BIMODAL.items() if k not in ("name", "dim")}
    train_sampler("csnf", "linear", {"diagonal": [0.0, 1.0]}, "gaussian", {"sigma": 0.1}, prior="gmm", dim=2,
                  prior_params=params, steps=60, val_every=30, output=out, seed=0, device="cpu")
    smp = load_sampler(out, "cpu")
    assert smp.vprior.spec()["weights"] == [0.3, 0.7]
    post = exact_posterior(smp.operator, smp.noise_spec, smp.vprior)
    g = torch.Generator().manual_seed(5)
    x = smp.vprior.sample(20, g)
    y = smp.noise.sample(smp.operator(x), generator=g)
    e1, e2 = post.sample(y, 1000, g), post.sample(y, 1000, g)
    xs = smp.sample(y, 1000, torch.Generator().manual_seed(1)).double()
    weights = (xs[..., 0] > 0).double().mean(1)
    assert torch.all((weights - 0.7).abs() < 0.1)
    ratio = float(energy_distance(xs, e1).mean() / energy_distance(e2, e1).mean())
    assert ratio < 2.0
    again = smp.sample(y, 1000, torch.Generator().manual_seed(1)).double()
    assert torch.equal(xs, again)  # seeded


def test_csnf_sampling_settings_and_calibration(tmp_path):
    """-S final_steps changes the sampling only; calibrate takes a csnf file like any trained sampler."""
    import json

    from typer.testing import CliRunner

    from invsolve.cli import app

    run = lambda *a: CliRunner().invoke(app, [str(v) for v in a])  # noqa: E731
    vec = ["--operator", "linear", "-P", "diagonal=[1.0, 0.5]", "--noise", "gaussian", "-N", "sigma=0.2",
           "--prior", "gaussian", "--dim", "2"]
    out = tmp_path / "c.pt"
    res = run("train-sampler", "--sampler", "csnf", *vec, "-S", "hidden=16", "--steps", 20, "--val-every", 10,
              "-o", out, "-q")
    assert res.exit_code == 0, res.output
    res = run("calibrate", "--pairs", 60, "--sampler-file", out, "-n", 40, "-S", "final_steps=5", "-o",
              tmp_path / "cal.h5", "--json")
    assert res.exit_code == 0, res.output
    rec = json.loads(res.stdout)
    assert rec["sampler"] == "csnf" and math.isfinite(rec["sbc_pvalue"]) and rec["pairs"] == 60
    res = run("calibrate", "--pairs", 60, "--sampler-file", out, "-S", "layers=2", "-o", tmp_path / "c2.h5")
    assert res.exit_code == 1 and "final_steps, step_size" in res.stderr
    assert np.isfinite(rec["contraction"])


@pytest.mark.parametrize("kernel,step", [("mh", 0.8), ("mala", 0.3)])
def test_path_weights_are_unbiased_for_the_evidence(kernel, step):
    """E_q[p(x, y) / q(path)] = p(y): the mean importance weight of an untrained csnf's draws matches the
    closed-form evidence of a linear-Gaussian problem, y ~ N(0, A Aᵀ + σ² I) (within 3 %)."""
    smp, op, nz = _gaussian_csnf(kernel, step)
    for p in smp.net["model"].parameters():
        p.data.normal_(0, 0.05)  # couplings away from the identity, so their log-determinants count
    y = torch.tensor([[0.7, -0.4]])
    xs, log_q = smp.proposals(y, 40000, torch.Generator().manual_seed(0))
    flat = xs.reshape(-1, 2)
    log_w = -nz.nll(y.expand(len(flat), 2), op(flat)) + smp.vprior.log_prob(flat) - log_q
    A = torch.diag(torch.tensor([1.0, 0.5], dtype=torch.float64))
    cov = A @ A.T + 0.09 * torch.eye(2, dtype=torch.float64)
    exact = torch.distributions.MultivariateNormal(torch.zeros(2, dtype=torch.float64), cov).log_prob(y[0].double())
    assert float(torch.logsumexp(log_w.double(), 0) - math.log(len(log_w))) == pytest.approx(float(exact), abs=0.03)


def test_importance_resampling_of_csnf_draws(tmp_path):
    """--importance takes a csnf file: the kept draws match the exact posterior mean within Monte-Carlo error."""
    from invsolve.samplers.importance import importance_resample

    smp, op, nz = _gaussian_csnf("mh", 0.8)
    post = exact_posterior(op, nz.spec(), smp.vprior)
    y = torch.tensor([[0.7, -0.4], [-1.0, 0.3]])
    xs, ess = importance_resample(smp, op, nz, smp.vprior, y, 2000, 20000, torch.Generator().manual_seed(1))
    assert xs.shape == (2, 2000, 2) and torch.all(ess > 100)
    se = (torch.diagonal(post.covariance(y), dim1=1, dim2=2) / 400).sqrt()  # resampled draws repeat: ESS-ish
    assert torch.all((xs.double().mean(1) - post.mean(y)).abs() < 4 * se)


def test_box_prior_draws_stay_in_the_box_and_weights_stay_unbiased():
    """A uniform prior: csnf works in logit coordinates, so every draw lies in the box, and its path weights
    (with the box map's log-Jacobian) still average to the evidence, here
    p(y) = Π_j [Φ((a_j − y_j)/σ) − Φ((−a_j − y_j)/σ)] / (2 a_j) for A = diag(a) on [−1, 1]²."""
    from scipy.stats import norm

    op = build_operator("linear", {"diagonal": [1.0, 0.5]}, (2,))
    nz = build_noise({"name": "gaussian", "sigma": 0.3})
    smp = ConditionalSNF.create({"step_size": 0.8, "mcmc_steps": 2, "hidden": 16, "layers": 2}, op, nz)
    smp.vprior = build_prior({"name": "uniform", "dim": 2})
    smp.net["xstd"].scale.fill_(1.8)  # the logit-uniform's spread, as training fits it: weights of moderate variance
    for p in smp.net["model"].parameters():
        p.data.normal_(0, 0.05)
    y = torch.tensor([[0.7, -0.4]])
    xs, log_q = smp.proposals(y, 40000, torch.Generator().manual_seed(0))
    flat = xs.reshape(-1, 2)
    assert float(flat.abs().max()) <= 1.0
    log_w = -nz.nll(y.expand(len(flat), 2), op(flat)) + smp.vprior.log_prob(flat) - log_q
    a, yy = np.array([1.0, 0.5]), y[0].numpy()
    exact = np.log((norm.cdf((a - yy) / 0.3) - norm.cdf((-a - yy) / 0.3)) / (2 * a)).sum()
    assert float(torch.logsumexp(log_w.double(), 0) - math.log(len(log_w))) == pytest.approx(exact, abs=0.03)
