"""EM-DeepGEM (M-step oracle, short EM runs, checkpoints, CLI) and the MCMC baseline."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from invsolve import api
from invsolve.api_metrology import estimate_noise, mcmc_posterior
from invsolve.cli import app
from invsolve.em import EMSettings, mstep_mixed, run_em
from invsolve.errors import ConfigError
from invsolve.operators import build_operator
from invsolve.operators.surrogate import build_mlp
from invsolve.samplers.priors import build_prior

TINY = {"estep_steps": 3, "batch_size": 128, "mstep_samples": 256, "elbo_samples": 256, "posterior_samples": 16,
        "sampler": {"blocks": 2, "hidden": 32, "cond_features": 8}}


@pytest.mark.parametrize("a0,b0,fmax,steps,tol", [(0.03, 0.25, 0.25, 100, 0.03), (0.005, 0.1, 1.5, 1000, 0.04)])
def test_mstep_with_exact_f_converges_to_the_truth(a0, b0, fmax, steps, tol):
    g = torch.Generator().manual_seed(0)
    f = torch.rand((400, 77), generator=g, dtype=torch.float64) * fmax
    r = a0 * torch.randn(f.shape, generator=g, dtype=torch.float64) + b0 * f * torch.randn(
        f.shape, generator=g, dtype=torch.float64)
    a, b = mstep_mixed(r, f, 0.3, 0.3, steps)
    assert abs(a - a0) / a0 < tol and abs(b - b0) / b0 < tol
    a20, b20 = mstep_mixed(r, f, 0.3, 0.3, 20)
    assert abs(a - a0) <= abs(a20 - a0) + 1e-6  # more inner steps never move away


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch.manual_seed(3)
    net = build_mlp([2, 32, 8], "tanh")
    with torch.no_grad():
        net[-1].bias.add_(1.0)  # outputs around 1, so the relative noise matters
    p = tmp_path_factory.mktemp("em") / "tiny.pt"
    torch.save(net.state_dict(), p)
    return {"model": str(p), "widths": [2, 32, 8], "activation": "tanh"}


def _measure(params, n, shape, seed=0, a=0.02, b=0.1):
    x = np.random.default_rng(seed).uniform(-1, 1, (n, shape)).astype(np.float32)
    return api.simulate(x, "surrogate", params, "mixed", {"a": a, "b": b}, seed=seed, device="cpu")


def test_checkpoint_resume_continues_exactly(tiny_model, tmp_path):
    m = _measure(tiny_model, 3, 2)
    op = m.build_operator()
    y = torch.from_numpy(m.measurement)
    prior = build_prior({"name": "uniform", "dim": 2})
    full = run_em(op, y, prior, EMSettings(iterations=4, checkpoint_every=2, **TINY), seed=5)
    ck = tmp_path / "em.ckpt"
    run_em(op, y, prior, EMSettings(iterations=2, checkpoint_every=2, **TINY), seed=5, checkpoint=ck)
    state = torch.load(ck, weights_only=True)
    resumed = run_em(op, y, prior, EMSettings(iterations=4, checkpoint_every=2, **TINY), seed=5, resume=state)
    np.testing.assert_allclose(resumed.a_trace, full.a_trace, rtol=1e-6)
    np.testing.assert_allclose(resumed.b_trace, full.b_trace, rtol=1e-6)
    assert full.samples.shape == (3, 16, 2) and np.isfinite(full.elbo_trace).all()


def test_average_selection_is_the_mean_of_the_trailing_iterates(tiny_model):
    m = _measure(tiny_model, 2, 2)
    op, y = m.build_operator(), torch.from_numpy(m.measurement)
    prior = build_prior({"name": "uniform", "dim": 2})
    last = run_em(op, y, prior, EMSettings(iterations=4, **TINY), seed=2)
    avg = run_em(op, y, prior, EMSettings(iterations=4, select="average", average_fraction=0.5, **TINY), seed=2)
    np.testing.assert_allclose(avg.a_trace, last.a_trace)  # the choice does not change the run
    assert last.a == pytest.approx(last.a_trace[-1]) and last.b == pytest.approx(last.b_trace[-1])
    assert avg.a == pytest.approx(np.mean(last.a_trace[-2:])) and avg.b == pytest.approx(np.mean(last.b_trace[-2:]))


@pytest.mark.parametrize("estep", ["reverse_kl", "cfm"])
def test_other_esteps_run(tiny_model, estep):
    m = _measure(tiny_model, 2, 2)
    est = estimate_noise(m, settings={"iterations": 2, "estep": estep, **{k: v for k, v in TINY.items()
                                                                          if k != "sampler" or estep != "cfm"}},
                         device="cpu")
    assert est.a > 0 and est.b > 0 and est.result.samples.shape == (2, 16, 2)
    assert np.isnan(est.result.elbo_trace).all() == (estep == "cfm")


def test_short_em_on_the_scatterometry_surrogate_reaches_the_known_x_estimate(shared_data, monkeypatch):
    monkeypatch.setenv("INVSOLVE_SHARED_DATA", str(shared_data))
    m = _measure({}, 4, 3, seed=1, a=0.005, b=0.1)
    est = estimate_noise(m, settings={"iterations": 12, "estep_steps": 5, "batch_size": 256, "mstep_samples": 500,
                                      "elbo_every": 6, "posterior_samples": 8}, device="cpu", seed=0)
    # from the start (0.3, 0.3) to the estimate the data allow: the known-x maximum likelihood of these
    # four measurements, (0.00464, 0.1053), itself 7 % and 5 % from the truth
    x = torch.from_numpy(m.ground_truth).double()
    f = m.build_operator()(x.float()).double()
    a_x, b_x = mstep_mixed(torch.from_numpy(m.measurement).double() - f, f, 0.3, 0.3, 3000, tol=1e-10)
    assert abs(a_x - 0.005) / 0.005 < 0.1 and abs(b_x - 0.1) / 0.1 < 0.1
    assert abs(est.a - a_x) / a_x < 0.1 and abs(est.b - b_x) / b_x < 0.05


def test_estimate_noise_cli_writes_and_resumes(tiny_model, tmp_path):
    m = _measure(tiny_model, 3, 2)
    mp = api.save_measurement(m, tmp_path / "m.h5")
    runner = CliRunner()
    em = ["-E", "estep_steps=3", "-E", "batch_size=128", "-E", "mstep_samples=128", "-E", "posterior_samples=8",
          "-E", 'sampler={"blocks": 2, "hidden": 32, "cond_features": 8}', "-E", "checkpoint_every=1"]
    res = runner.invoke(app, ["estimate-noise", "--operator", "surrogate", "--measurements", str(mp), "--output",
                              str(tmp_path / "em.h5"), "--iterations", "2", "--json", "--device", "cpu", *em])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["measurements"] == 3 and out["noise_in_file"] == {"a": 0.02, "b": 0.1}
    from invsolve.io.hdf5 import read_result

    st = read_result(tmp_path / "em.h5")
    assert st.attrs["kind"] == "noise_estimate" and st.datasets["samples"].shape == (3, 8, 2)
    assert len(st.datasets["a_trace"]) == 3 and st.attrs["noise"]["name"] == "mixed"
    res = runner.invoke(app, ["estimate-noise", "-m", str(mp), "--output", str(tmp_path / "em2.h5"), "--iterations",
                              "3", "--resume", "--checkpoint", str(tmp_path / "em.h5.ckpt"), "--json", *em])
    assert res.exit_code == 0, res.output
    assert len(read_result(tmp_path / "em2.h5").datasets["a_trace"]) == 4
    res = runner.invoke(app, ["estimate-noise", "-m", str(mp), "--operator", "gixrf", "--output",
                              str(tmp_path / "x.h5")])
    assert res.exit_code == 1 and "simulated with operator 'surrogate'" in res.output


def test_mcmc_matches_a_linear_gaussian_posterior():
    m = api.simulate(np.array([[0.5, -1.0], [1.0, 0.2]], np.float32), "linear", {"diagonal": [1.0, 0.5]},
                     "gaussian", {"sigma": 0.3}, seed=0, device="cpu")
    post = mcmc_posterior(m, {"name": "gaussian", "std": 1.0}, {"chains": 48, "steps": 200, "burn_in": 150,
                                                                 "thin": 2}, seed=1, device="cpu")
    A, s2 = np.array([1.0, 0.5]), 0.09
    var = 1 / (A**2 / s2 + 1)
    mean = var * A * m.measurement / s2
    np.testing.assert_allclose(post.mean, mean, atol=0.06)
    np.testing.assert_allclose(post.std, np.broadcast_to(np.sqrt(var), mean.shape), rtol=0.2)
    assert 0.4 < post.info["acceptance"] < 0.75
    rw = mcmc_posterior(m, {"name": "gaussian", "std": 1.0}, {"method": "rw", "chains": 48, "steps": 200,
                                                              "burn_in": 150, "thin": 2}, seed=1, device="cpu")
    np.testing.assert_allclose(rw.mean, mean, atol=0.08)
    with pytest.raises(ConfigError, match="no default prior"):
        mcmc_posterior(m, None, {}, device="cpu")


def test_gixrf_measurement_round_trip_and_posterior(tmp_path):
    pytest.importorskip("xraylib")
    params = {"num_angles": 12, "bounds": [[5, 30], [7, 9.5], [0.5, 2.0]]}
    m = api.simulate(np.array([18.0, 8.9, 1.2], np.float32), "gixrf", params, seed=0, device="cpu")
    back = api.load_measurement(api.save_measurement(m, tmp_path / "g.h5"))
    with pytest.warns(RuntimeWarning, match="MCMC chains disagree"):  # far too short to mix, and it says so
        post = mcmc_posterior(back, None, {"chains": 8, "steps": 30, "burn_in": 30, "thin": 2}, seed=0,
                              device="cpu")
    assert post.mean.shape == (1, 3) and np.isfinite(post.std).all()
    assert build_operator("gixrf", params, (3,)).prior_spec()["low"] == [5, 7, 0.5]


def test_importance_mstep_follows_the_known_x_estimate_where_a_rough_flow_does_not(tiny_model):
    x = np.random.default_rng(4).uniform(-1, 1, (6, 2)).astype(np.float32)
    m = api.simulate(x, "surrogate", tiny_model, "mixed", {"a": 0.02, "b": 0.1}, seed=4, device="cpu")
    op, y = m.build_operator(), torch.from_numpy(m.measurement)
    with torch.no_grad():
        f = op(torch.from_numpy(x)).double()
    a_x, b_x = mstep_mixed(y.double() - f, f, 0.3, 0.3, 3000, tol=1e-10)  # the known-x estimate
    prior = build_prior({"name": "uniform", "dim": 2})
    rough = {**TINY, "estep_steps": 1, "mstep_samples": 600, "mstep_iterations": 100}  # the flow barely trains
    plain = run_em(op, y, prior, EMSettings(iterations=25, mstep_importance=0, **rough), seed=0)
    weighted = run_em(op, y, prior, EMSettings(iterations=25, mstep_importance=20, **rough), seed=0)
    # the tiny model's outputs sit near 1, so the data fix the total noise level a² + b²·f², not its split
    f2 = float((f**2).mean())
    total = lambda a, b: (a * a + b * b * f2) ** 0.5  # noqa: E731
    assert abs(total(weighted.a, weighted.b) / total(a_x, b_x) - 1) < 0.1
    assert total(plain.a, plain.b) > 1.5 * total(a_x, b_x)  # the rough flow's width is read as noise
    with pytest.raises(ConfigError, match="mstep_importance needs a flow"):
        run_em(op, y, prior, EMSettings(iterations=1, estep="cfm", mstep_importance=3), seed=0)
