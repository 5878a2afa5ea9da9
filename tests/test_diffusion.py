"""Diffusion priors: the noise covariances, exact-score posteriors, training, files and the command line."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from invsolve.cli import app
from invsolve.diffusion.exact import GaussianScore, gaussian_posterior
from invsolve.diffusion.samplers import DIFFUSION_SAMPLERS, Problem, load_all
from invsolve.diffusion.sde import apply_covariance, colored_noise, marginal, spectrum
from invsolve.methods.base import no_track
from invsolve.noise.base import build_noise
from invsolve.operators import build_operator

runner = CliRunner()


@pytest.mark.parametrize("noise", ["white", "laplace", "bessel"])
def test_pixel_variance_converges_across_resolutions(noise):
    # white: exactly 1 per pixel; trace-class: below 1 on coarse grids, rising towards 1 as the grid refines
    var = []
    for n in (16, 32, 64):
        e = torch.zeros(1, n, n, dtype=torch.float64)
        e[0, 0, 0] = 1
        var.append(float(apply_covariance(e, spectrum((n, n), noise, 1.5, 0.354))[0, 0, 0]))  # Q's diagonal
    if noise == "white":
        assert all(abs(v - 1) < 1e-9 for v in var)
    else:
        assert var[0] < var[1] < var[2] < 1.0 and var[2] > 0.7


def test_covariance_powers_compose_and_match_the_noise():
    spec = spectrum((16, 16), "laplace", 1.5, 0.354)
    x = torch.randn(3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    half = apply_covariance(apply_covariance(x, spec, 0.5), spec, 0.5)
    torch.testing.assert_close(half, apply_covariance(x, spec, 1.0))
    torch.testing.assert_close(apply_covariance(apply_covariance(x, spec, 1.0), spec, -1.0), x)
    # the empirical covariance of the noise is Q (one entry checked against Q applied to a unit vector)
    eta = colored_noise((20000, 16, 16), spec, torch.Generator().manual_seed(2), dtype=torch.float64)
    e = torch.zeros(1, 16, 16, dtype=torch.float64)
    e[0, 3, 5] = 1
    q_col = apply_covariance(e, spec)[0]
    emp = (eta * eta[:, 3:4, 5:6]).mean(0)
    assert float((emp - q_col).abs().max()) < 4 * float(q_col[3, 5]) / 20000 ** 0.5 * 3


def test_vp_marginal():
    t = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    m, s = marginal(t, 0.1, 20.0)
    torch.testing.assert_close(m ** 2 + s ** 2, torch.ones(3, dtype=torch.float64))
    assert float(m[0]) == 1.0 and float(m[2]) == pytest.approx(np.exp(-0.25 * 19.9 - 0.05))


def _gaussian_problem(h=8, sigma_n=0.05):
    d = h * h
    ij = torch.stack(torch.meshgrid(torch.arange(h), torch.arange(h), indexing="ij"), -1).reshape(-1, 2).double()
    cov = 0.2 * torch.exp(-((ij[:, None] - ij[None]) ** 2).sum(-1) / (2 * 1.5 ** 2)) + 0.05 * torch.eye(d)
    mu = torch.full((h, h), 0.1, dtype=torch.float64)
    prior = GaussianScore(mu, cov)
    op = build_operator("superres", {"factor": 2}, (h, h))
    gen = torch.Generator().manual_seed(1)
    x = prior.to_image(mu + (torch.linalg.cholesky(cov) @ torch.randn(d, generator=gen, dtype=torch.float64))
                       .reshape(h, h)).float()
    y = op.forward(x[None]) + sigma_n * torch.randn(1, h // 2, h // 2, generator=gen)
    A = torch.stack([op.forward(e.reshape(1, h, h).float()).flatten() for e in torch.eye(d)], 1).double()
    mean, post = gaussian_posterior(prior.to_image(mu).flatten(), cov / 4, A, y.flatten().double(), sigma_n ** 2)
    prob = Problem(prior, y.double(), op, build_noise({"name": "gaussian", "sigma": sigma_n}), (h, h), h)
    return prob, mean, post


def test_exact_score_is_the_conditional_mean_of_the_noise():
    # Monte Carlo: E[η | z_t] regressed from joint draws equals the closed form at one time
    prob, _, _ = _gaussian_problem()
    prior = prob.prior
    gen = torch.Generator().manual_seed(3)
    n, t = 40000, 0.3
    m, s = (float(v) for v in prior.marginal(t))
    L = torch.linalg.cholesky(prior.C)
    x0 = prior.mu.flatten() + torch.randn(n, 64, generator=gen, dtype=torch.float64) @ L.T
    eta = torch.randn(n, 64, generator=gen, dtype=torch.float64)
    z = m * x0 + s * eta
    e = prior.eps(z.reshape(n, 8, 8), t).reshape(n, 64)
    # the residual η − ε̂ is uncorrelated with z_t (the defining property of the conditional mean)
    corr = ((eta - e).T @ (z - z.mean(0))) / n
    assert float(corr.abs().max()) < 0.02


def test_annealed_langevin_with_the_exact_score_samples_the_closed_form_posterior():
    load_all()
    prob, mean, post = _gaussian_problem()
    cls = DIFFUSION_SAMPLERS.get("annealed-langevin")
    n = 1000
    xs = cls(cls.Params(levels=40, final_steps=400)).run(prob, n, torch.Generator().manual_seed(0), no_track)
    xs = xs[0].reshape(n, -1).double()
    se = (post.diagonal() / n).sqrt()
    z = (xs.mean(0) - mean) / se
    assert float(z.abs().max()) < 4.5  # 64 pixels: within Monte-Carlo error
    ratio = xs.var(0) / post.diagonal()
    assert 0.85 < float(ratio.median()) < 1.15 and float(ratio.min()) > 0.75 and float(ratio.max()) < 1.3


def test_diffpir_fits_the_data_and_dps_runs():
    load_all()
    prob, mean, post = _gaussian_problem()
    prior_resid = float((prob.operator.forward(prob.prior.to_image(prob.prior.mu).float()[None])
                         - prob.y.float()).pow(2).mean())
    for name in ("diffpir", "dps"):
        cls = DIFFUSION_SAMPLERS.get(name)
        xs = cls(cls.Params(steps=30)).run(prob, 8, torch.Generator().manual_seed(0), no_track)
        assert xs.shape == (1, 8, 8, 8) and torch.isfinite(xs).all()
        resid = float((prob.operator.forward(xs[0].float()) - prob.y.float()).pow(2).mean())
        if name == "diffpir":  # its proximal steps pull the draws to the data: a third of the prior mean's misfit
            assert resid < prior_resid / 3
        else:  # DPS's normalised step stays near the data's scale (see benchmarks/RESULTS.md)
            assert resid < 2 * prior_resid


def _images():
    from skimage import data

    return (data.camera()[::4, ::4].astype(np.float32) / 255)[None]


def test_training_is_seeded_resumes_exactly_and_records_its_levels(tmp_path):
    from invsolve import api_priors

    ims = _images()
    params = {"window": 32, "levels": "16,32", "width": 8, "modes": 4, "layers": 2, "batch_size": 4}
    a, ha = api_priors.train_prior("diffusion", ims, params=params, steps=12, seed=3, device="cpu")
    b, _ = api_priors.train_prior("diffusion", ims, params=params, steps=12, seed=3, device="cpu")
    for k, v in a.state_dict().items():
        torch.testing.assert_close(v, b.state_dict()[k], rtol=0, atol=0)
    assert ha["level_steps"] == {16: 6, 32: 6} and a.provenance["levels"] == [16, 32]
    ck = tmp_path / "d.ckpt"
    api_priors.train_prior("diffusion", ims, params=params, steps=6, seed=3, device="cpu", checkpoint_every=6,
                           checkpoint_path=ck)
    with pytest.raises(Exception, match="steps"):  # the checkpoint was written for a 6-step schedule
        api_priors.train_prior("diffusion", ims, params=params, steps=12, seed=3, device="cpu", checkpoint_every=6,
                               checkpoint_path=ck, resume=True)
    api_priors.train_prior("diffusion", ims, params=params, steps=12, seed=3, device="cpu", checkpoint_every=6,
                           checkpoint_path=tmp_path / "e.ckpt")
    import shutil

    shutil.copy(tmp_path / "e.ckpt", tmp_path / "f.ckpt")  # the checkpoint after step 12 resumes to itself
    c, _ = api_priors.train_prior("diffusion", ims, params=params, steps=12, seed=3, device="cpu",
                                  checkpoint_every=6, checkpoint_path=tmp_path / "f.ckpt", resume=True)
    for k, v in a.state_dict().items():
        torch.testing.assert_close(v, c.state_dict()[k], rtol=0, atol=0)


def test_the_fno_runs_at_other_resolutions_and_sizes():
    from invsolve.priors.diffusion import DiffusionConfig, DiffusionPrior

    pr = DiffusionPrior(DiffusionConfig(window=16, width=8, modes=4, layers=2)).freeze()
    for shape, win in (((16, 16), 16), ((32, 32), 32), ((24, 40), 16)):
        e = pr.eps(torch.zeros(2, *shape), 0.5, win)
        assert e.shape == (2, *shape) and torch.isfinite(e).all()
    # a constant image gives a constant output at every resolution (the operator acts on frequencies)
    a = pr.eps(torch.full((1, 16, 16), 0.3), 0.5, 16)
    b = pr.eps(torch.full((1, 32, 32), 0.3), 0.5, 32)
    assert abs(float(a.mean()) - float(b.mean())) < 1e-3


def test_command_line_train_sample_and_posterior(tmp_path):
    np.save(tmp_path / "im.npy", _images())
    np.save(tmp_path / "x.npy", _images()[:, 8:40, 8:40])
    d = tmp_path / "d.pt"
    res = runner.invoke(app, ["train-prior", "--prior", "diffusion", "-i", str(tmp_path / "im.npy"), "-P", "window=32",
                              "-P", "width=8", "-P", "modes=4", "-P", "layers=2", "--steps", "4", "-o", str(d),
                              "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.splitlines()[-1])["levels"] == [32]
    res = runner.invoke(app, ["sample-prior", str(d), "--size", "24", "-n", "3", "--steps", "4",
                              "-o", str(tmp_path / "s.h5")])
    assert res.exit_code == 0, res.output
    import h5py

    with h5py.File(tmp_path / "s.h5") as f:
        assert f["samples"].shape == (3, 24, 24) and f.attrs["kind"] == "prior_samples"
    from invsolve.figures import figure_for

    fig = figure_for(str(tmp_path / "s.h5"))  # `invsolve show`: every sample on one range, with a colorbar
    labels = [ax.get_label() for ax in fig.axes]
    assert [lb for lb in labels if lb.startswith("sample_")] == ["sample_0", "sample_1", "sample_2"]
    assert "3 samples of the diffusion prior" in fig.texts[0].get_text() + "".join(
        sf._suptitle.get_text() for sf in fig.subfigs if sf._suptitle is not None)
    res = runner.invoke(app, ["evaluate", str(tmp_path / "s.h5"), "--reference", str(tmp_path / "im.npy"), "--train",
                              str(tmp_path / "im.npy"), "--json"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout.splitlines()[0])
    assert row["samples"] == 3 and row["energy_distance"] > 0 and 1 <= row["vendi"] <= 3
    assert row["tnovd"] >= row["tnovd_quality"] >= 0 and row["features"] == "downsampled16"
    res = runner.invoke(app, ["evaluate", str(tmp_path / "s.h5")])
    assert res.exit_code == 1 and "give --reference" in res.output
    with h5py.File(tmp_path / "plain.h5", "w") as f:  # a plain HDF5 stack is still evaluated as images
        f["x"] = _images()[:, :32, :32]
    res = runner.invoke(app, ["evaluate", str(tmp_path / "plain.h5"), "--reference", str(tmp_path / "x.npy"),
                              "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout.splitlines()[0])["psnr"] > 5, res.output
    fig = figure_for(str(d))  # the prior file: its denoising loss, not a patch NLL
    ax = [a for a in fig.axes if a.get_label() == "training_curves"][0]
    assert ax.get_title() == "diffusion prior: denoising loss" and "predicted noise" in ax.get_ylabel()
    res = runner.invoke(app, ["simulate", "-i", str(tmp_path / "x.npy"), "--operator", "superres", "-o",
                              str(tmp_path / "m.h5"), "-q"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["sample-posterior", str(tmp_path / "m.h5"), "--prior", "diffusion", "--prior-file",
                              str(d), "--sampler", "diffpir", "-S", "steps=4", "-S", "prox_steps=2", "-n", "2",
                              "-o", str(tmp_path / "p.h5"), "--json"])
    assert res.exit_code == 0, res.output
    from invsolve import api

    est = api.load_estimate(str(tmp_path / "p.h5"))
    assert est.images.shape == (1, 32, 32) and np.isfinite(est.images).all()
    # a diffusion prior is refused by reconstruct and by Langevin, each with the way to sample it
    res = runner.invoke(app, ["reconstruct", str(tmp_path / "m.h5"), "--prior-file", str(d), "-o",
                              str(tmp_path / "r.h5")])
    assert res.exit_code == 1 and "sample-posterior --prior diffusion" in res.output
    res = runner.invoke(app, ["sample-posterior", str(tmp_path / "m.h5"), "--prior-file", str(d), "-o",
                              str(tmp_path / "q.h5")])
    assert res.exit_code == 1 and "--sampler diffpir" in res.output
    res = runner.invoke(app, ["sample-posterior", str(tmp_path / "m.h5"), "--prior", "diffusion", "--prior-file",
                              str(d), "--sampler", "dps", "-S", "zeta=-1", "-o", str(tmp_path / "q.h5")])
    assert res.exit_code == 1 and "zeta" in res.output
    res = runner.invoke(app, ["train-prior", "--prior", "diffusion", "-i", str(tmp_path / "im.npy"), "-P",
                              "smoothness=0.9", "-o", str(tmp_path / "e.pt")])
    assert res.exit_code == 1 and "trace-class" in res.output


@pytest.mark.slow
def test_a_trained_score_matches_the_exact_gaussian_score():
    # a Gaussian "data set" on 16×16 (a Bessel covariance plus a white floor): the network trained on 4000 of its
    # draws predicts the noise within 10 % (relative L2) of the exact conditional mean, over times in [T_MIN, 1]
    from invsolve.diffusion.sde import T_MIN
    from invsolve.diffusion.training import train
    from invsolve.priors.diffusion import DiffusionConfig, DiffusionPrior, DiffusionTraining

    h, d = 16, 256
    q = apply_covariance(torch.eye(d, dtype=torch.float64).reshape(d, h, h), spectrum((h, h), "bessel", 2.0, 0.2))
    cov = 0.5 * q.reshape(d, d) + 0.02 * torch.eye(d, dtype=torch.float64)
    chol = torch.linalg.cholesky(cov)
    gen = torch.Generator().manual_seed(1)
    draws = (torch.randn(4000, d, generator=gen, dtype=torch.float64) @ chol.T).reshape(-1, h, h)
    cfg = DiffusionConfig(window=h, width=16, modes=8, layers=3, noise="white")
    prior, _ = train(DiffusionPrior, ((draws + 1) / 2).float(), None, cfg, DiffusionTraining(batch_size=64, lr=2e-3), steps=1200)
    exact = GaussianScore(torch.zeros(h, h, dtype=torch.float64), cov, window=h)
    gt = torch.Generator().manual_seed(5)
    x0 = (torch.randn(512, d, generator=gt, dtype=torch.float64) @ chol.T).reshape(-1, h, h)
    t = T_MIN + (1 - T_MIN) * torch.rand(512, generator=gt, dtype=torch.float64)
    m, s = exact.marginal(t)
    zt = m[:, None, None] * x0 + s[:, None, None] * torch.randn(512, h, h, generator=gt, dtype=torch.float64)
    with torch.no_grad():
        e_hat = prior.eps(zt.float(), t.float(), h).double()
    e_ex = torch.cat([exact.eps(zt[i:i + 1], float(t[i])) for i in range(512)])
    assert float((e_hat - e_ex).norm() / e_ex.norm()) < 0.1
