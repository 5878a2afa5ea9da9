"""Calibration diagnostics and conformal recalibration: exact posteriors of a linear-Gaussian mixture problem
(whose samples must pass), deliberately over-confident ones (which must fail, and be repaired), the
conformal order statistic, and the files and command lines."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from invsolve.calibration.conformal import calibrated_quantiles, conformal_scales, residual_scores
from invsolve.calibration.statistics import (contraction, coverage_curve, ecdf_difference, image_statistics,
                                             rank_chi2_pvalues, rank_pvalues, sbc_ranks, tarp, tarp_area, tarp_atc)
from invsolve.errors import ConfigError
from invsolve.samplers.exact import ExactPosterior

A = torch.tensor([[1.0, 0.5], [0.0, 0.3]], dtype=torch.float64)
SIGMA = 0.2
W = torch.tensor([0.3, 0.7], dtype=torch.float64)
M = torch.tensor([[-1.0, 0.0], [1.0, 0.5]], dtype=torch.float64)
V = torch.full((2, 2), 0.2, dtype=torch.float64)


def _pairs(n: int, s: int, seed: int, shrink: float = 1.0):
    """n pairs from the mixture prior, with s exact posterior draws each, optionally shrunk towards their mean
    (an over-confident sampler): truth (n, 2), draws (n, s, 2)."""
    g = torch.Generator().manual_seed(seed)
    k = torch.multinomial(W, n, replacement=True, generator=g)
    x = M[k] + V[k].sqrt() * torch.randn(n, 2, generator=g, dtype=torch.float64)
    y = x @ A.T + SIGMA * torch.randn(n, 2, generator=g, dtype=torch.float64)
    draws = ExactPosterior(W, M, V, A, SIGMA).sample(y, s, g).numpy()
    mu = draws.mean(1, keepdims=True)
    return x.numpy(), mu + shrink * (draws - mu)


def test_exact_posterior_passes_every_diagnostic():
    x, s = _pairs(1000, 200, seed=0)
    assert rank_pvalues(sbc_ranks(s, x), 200).min() > 0.01
    alpha, ecp = tarp(s, x, seed=0)
    assert tarp_area(alpha, ecp) < 0.02 and abs(tarp_atc(alpha, ecp)) < 0.02
    cov = coverage_curve(s, x, (0.5, 0.9))
    sd = np.sqrt(0.25 / 1000), np.sqrt(0.09 / 1000)
    assert np.all(np.abs(cov[0] - 0.5) < 4 * sd[0]) and np.all(np.abs(cov[1] - 0.9) < 4 * sd[1])
    # the data pin x[0] down much more than x[1] (A's second column is small)
    c = contraction(s, x)
    assert c[0] > 0.9 and 0.2 < c[1] < c[0]


def test_over_confident_samples_fail_sbc_tarp_and_coverage():
    x, s = _pairs(1000, 200, seed=1, shrink=0.3)
    assert rank_pvalues(sbc_ranks(s, x), 200).max() < 1e-10
    alpha, ecp = tarp(s, x, seed=0)
    assert tarp_area(alpha, ecp) > 0.08
    assert coverage_curve(s, x, (0.9,)).max() < 0.6
    z, diff, band = ecdf_difference(sbc_ranks(s, x), 200)
    assert diff.shape == (2, 101) and np.any((diff < band[0]) | (diff > band[1]))
    x2, s2 = _pairs(1000, 200, seed=2)
    z, diff, band = ecdf_difference(sbc_ranks(s2, x2), 200)
    assert np.all((diff >= band[0] - 1e-12) & (diff <= band[1] + 1e-12))  # calibrated: inside the band


def test_chi2_rank_test_holds_its_level_where_the_ks_convention_does_not():
    """With many pairs and few draws (N = 2000, S = 20), ranks of exact draws: the χ² test of the discrete
    ranks rejects at about its level, the KS test against the continuous uniform (sbi's) nearly always."""
    rej_chi2 = rej_ks = 0
    for seed in range(20):
        x, s = _pairs(2000, 20, seed=100 + seed)
        r = sbc_ranks(s, x)
        rej_chi2 += int((rank_chi2_pvalues(r, 20) < 0.05).sum())
        rej_ks += int((rank_pvalues(r, 20) < 0.05).sum())
    assert rej_chi2 <= 6 and rej_ks >= 30  # of 40 tests: 2 expected at the 5 % level
    x, s = _pairs(2000, 20, seed=7, shrink=0.7)
    assert rank_chi2_pvalues(sbc_ranks(s, x), 20).max() < 1e-10


def test_ranks_count_draws_strictly_below_and_tarp_by_hand():
    s = np.array([[[0.0], [1.0], [1.0], [2.0]]])
    assert sbc_ranks(s, np.array([[1.0]])).tolist() == [[1]]  # ties are not below
    # one pair, reference 0: draws at distances 1, 2, 3 from it, the truth at 2.5 -> f = 2/3
    s = np.array([[[1.0], [2.0], [3.0]]])
    alpha, ecp = tarp(s, np.array([[2.5]]), seed=0, bins=3, references=np.array([[0.0]]), normalize=False)
    assert alpha.tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1]) and ecp.tolist() == [0, 0, 0, 1]


def test_conformal_order_statistic_and_intervals():
    scores = np.arange(1.0, 10.0)[:, None]  # n = 9
    q = conformal_scales(scores, (0.5, 0.9), pooled=False)
    assert q[:, 0].tolist() == [5.0, 9.0]  # the ⌈(n + 1) m⌉-th smallest: 5th and 9th
    assert np.isinf(conformal_scales(scores, (0.95,), pooled=False)).all()  # 9 pairs cannot give 95 %
    mean, std = np.zeros((1, 2)), np.array([[1.0, 2.0]])
    qq = calibrated_quantiles(mean, std, (0.05, 0.5, 0.95), (0.9,), np.array([[3.0, 1.0]]))
    assert qq[0].tolist() == [[-3.0, -2.0], [0.0, 0.0], [3.0, 2.0]]
    with pytest.raises(ConfigError, match="mass 0.5"):
        calibrated_quantiles(mean, std, (0.25,), (0.9,), np.array([[3.0, 1.0]]))
    with pytest.raises(ConfigError, match="too few pairs"):
        calibrated_quantiles(mean, std, (0.95,), (0.9,), np.array([[np.inf, 1.0]]))


def test_conformal_repairs_an_over_confident_sampler_on_fresh_pairs():
    x, s = _pairs(2000, 100, seed=3, shrink=0.3)
    masses = (0.5, 0.9)
    q = conformal_scales(residual_scores(s.mean(1), s.std(1, ddof=1), x), masses, pooled=False)
    xf, sf = _pairs(4000, 100, seed=4, shrink=0.3)
    qq = calibrated_quantiles(sf.mean(1), sf.std(1, ddof=1), (0.05, 0.25, 0.75, 0.95), masses, q)
    raw = coverage_curve(sf, xf, (0.9,))[0]
    cal90 = ((xf >= qq[:, 0]) & (xf <= qq[:, 3])).mean(0)
    cal50 = ((xf >= qq[:, 1]) & (xf <= qq[:, 2])).mean(0)
    assert raw.max() < 0.6
    # Monte-Carlo error: calibration (n = 2000) and test (4000) together about 0.008 at 0.9
    assert np.all(np.abs(cal90 - 0.9) < 0.02) and np.all(np.abs(cal50 - 0.5) < 0.03)


def test_image_statistics_are_unit_projections_and_pixels():
    T, names = image_statistics((6, 5), 3, 4, seed=0)
    assert T.shape == (7, 30) and np.allclose(np.linalg.norm(T, axis=1), 1)
    assert names[0] == "projection 0" and names[3].startswith("pixel (")
    assert np.array_equal(T, image_statistics((6, 5), 3, 4, seed=0)[0])


def test_agrees_with_sbi():
    sbi_sbc = pytest.importorskip("sbi.diagnostics.sbc")
    sbi_tarp = pytest.importorskip("sbi.diagnostics.tarp")
    x, s = _pairs(300, 100, seed=5, shrink=0.7)
    xt, st = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(s, dtype=torch.float32).permute(1, 0, 2)
    theirs = sbi_sbc._run_sbc(xt, xt, st, "marginals", show_progress_bar=False).numpy()
    ours = sbc_ranks(s.astype(np.float32), x.astype(np.float32))
    assert np.array_equal(ours, theirs)
    assert rank_pvalues(ours, 100) == pytest.approx(sbi_sbc.check_uniformity_frequentist(
        torch.as_tensor(theirs), 100).numpy(), rel=1e-5)
    refs = sbi_tarp.get_tarp_references(xt)
    # 7 bins: no edge j/7 falls on a possible f = k/100, where float32 and float64 edges may bin it apart
    ecp, alpha = sbi_tarp._run_tarp(st, xt, refs, num_bins=7, z_score_theta=True)
    a, e = tarp(s.astype(np.float32), x.astype(np.float32), 0, bins=7, references=refs.numpy())
    if alpha[0] == 0 and alpha[-1] == 1:  # sbi's grid is [min f, max f]: the same grid only then
        assert e == pytest.approx(ecp.numpy(), abs=1e-6) and a == pytest.approx(alpha.numpy(), abs=1e-6)
    else:
        pytest.fail(f"the draws left sbi's TARP grid at [{alpha[0]}, {alpha[-1]}]; choose pairs whose f reach 0 and 1")


# -- files and command lines ------------------------------------------------------------------------------
VEC = ["--operator", "linear", "-P", "diagonal=[1.0, 0.5, 0.2]", "--noise", "gaussian", "-N", "sigma=0.2",
       "--prior", "gaussian", "--dim", "3"]


@pytest.fixture(scope="module")
def brief_flow(tmp_path_factory):
    """An mmd-flow trained for 40 steps: far too narrow (its 90 % intervals cover about half)."""
    from typer.testing import CliRunner

    from invsolve.cli import app

    out = tmp_path_factory.mktemp("cal") / "flow.pt"
    res = CliRunner().invoke(app, ["train-sampler", "--sampler", "mmd-flow", *VEC, "--steps", "40", "--val-every",
                                   "20", "--output", str(out), "-q"])
    assert res.exit_code == 0, res.output
    return out


def _run(*args):
    from typer.testing import CliRunner

    from invsolve.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "250"})


def test_cli_calibrates_a_brief_flow_to_nominal_coverage(tmp_path, brief_flow):
    from invsolve import api, api_calibrate

    cal = tmp_path / "cal.h5"
    res = _run("calibrate", "--pairs", 1000, "--sampler-file", brief_flow, "-n", 100, "-o", cal, "--json")
    assert res.exit_code == 0, res.output
    rec = json.loads(res.stdout)
    assert len(rec["sbc_pvalues"]) == 3 and len(rec["tarp_ecp"]) == len(rec["tarp_alpha"]) == 101
    assert rec["masses"][-1] == 0.99 and len(rec["coverage_per_mass"]) == 20
    assert rec["sbc_pvalue"] < 1e-6 and rec["coverage_90"] < 0.7 and abs(rec["calibrated_coverage_90"] - 0.9) < 0.03
    fresh = tmp_path / "fresh.h5"
    api.save_measurement(api_calibrate.simulate_pairs(str(brief_flow), 1000, seed=99), fresh)
    post = tmp_path / "post.h5"
    res = _run("sample-posterior", fresh, "--sampler-file", brief_flow, "-n", 100, "--calibration", cal, "-o", post,
               "-q")
    assert res.exit_code == 0, res.output
    ev = json.loads(_run("evaluate", post, "--json").stdout.splitlines()[-1])
    assert ev["coverage_90"] < 0.7
    assert abs(ev["calibrated_coverage_90"] - 0.9) < 0.03 and abs(ev["calibrated_coverage_50"] - 0.5) < 0.04
    table = _run("evaluate", post).stdout
    assert "90% interval coverage, calibrated" in table
    # the file round-trips and says what it calibrated
    from invsolve.calibration.files import load_calibration

    c = load_calibration(cal)
    assert c.sampler["name"] == "mmd-flow" and c.pairs == 1000 and c.ranks.shape == (1000, 3)
    assert c.model_digests["file"] == api_calibrate.file_digest(str(brief_flow))


def test_simulated_pairs_pass_sbc_under_the_exact_posterior(brief_flow):
    """The pairs' noise is independent of their x (a noise stream seeded like x's would repeat x's normal
    draws, and no sampler could pass SBC on such pairs)."""
    from invsolve.api_calibrate import simulate_pairs
    from invsolve.samplers import load_sampler
    from invsolve.samplers.exact import exact_posterior
    from invsolve.samplers.priors import build_prior

    smp = load_sampler(brief_flow, "cpu")
    post = exact_posterior(smp.operator, smp.noise_spec, build_prior({"name": "gaussian", "dim": 3}))
    m = simulate_pairs(str(brief_flow), 2000, seed=4)
    s = post.sample(torch.as_tensor(m.measurement, dtype=torch.float64), 100, torch.Generator().manual_seed(0))
    x = m.ground_truth.astype(np.float64)
    assert rank_pvalues(sbc_ranks(s.numpy(), x), 100).min() > 0.01
    assert np.all(np.abs(coverage_curve(s.numpy(), x, (0.5,))[0] - 0.5) < 0.035)


def test_cli_refusals(tmp_path, brief_flow):
    from invsolve import api, api_calibrate

    cal = tmp_path / "cal.h5"
    assert _run("calibrate", "--pairs", 50, "--sampler-file", brief_flow, "-n", 20, "-o", cal, "-q").exit_code == 0
    res = _run("calibrate", "--pairs", 50, "--sampler-file", brief_flow, "-o", cal)
    assert res.exit_code == 1 and "--overwrite" in res.stderr
    m = api_calibrate.simulate_pairs(str(brief_flow), 5, seed=1)
    m.ground_truth = None
    api.save_measurement(m, tmp_path / "nogt.h5")
    res = _run("calibrate", tmp_path / "nogt.h5", "--sampler-file", brief_flow, "-o", tmp_path / "c2.h5")
    assert res.exit_code == 1 and "ground truth" in res.stderr and "Traceback" not in res.stderr
    res = _run("calibrate", tmp_path / "nogt.h5", "--pairs", 10, "--sampler-file", brief_flow, "-o", tmp_path / "c3.h5")
    assert res.exit_code == 1 and "not both" in res.stderr
    res = _run("calibrate", "--pairs", 10, "--sampler", "mcmc", "-o", tmp_path / "c4.h5")
    assert res.exit_code == 1 and "invsolve simulate" in res.stderr
    # 50 pairs hold no 99 % interval; another sampler file is refused by its digest
    fresh = tmp_path / "fresh.h5"
    api.save_measurement(api_calibrate.simulate_pairs(str(brief_flow), 4, seed=2), fresh)
    res = _run("sample-posterior", fresh, "--sampler-file", brief_flow, "--quantile", 0.005, "--quantile", 0.995,
               "--calibration", cal, "-o", tmp_path / "p.h5")
    assert res.exit_code == 1 and "too few pairs" in res.stderr
    other = tmp_path / "other.pt"
    other.write_bytes(brief_flow.read_bytes())
    with open(other, "ab") as f:
        f.write(b"\0")  # same weights, different bytes: not the file calibrated
    res = _run("sample-posterior", fresh, "--sampler-file", other, "--calibration", cal, "-o", tmp_path / "p2.h5")
    assert res.exit_code == 1 and ("another file" in res.stderr or "damaged" in res.stderr or "SHA" in res.stderr)
    res = _run("sample-posterior", fresh, "--sampler-file", brief_flow, "--calibration", tmp_path / "none.h5",
               "-o", tmp_path / "p3.h5")
    assert res.exit_code == 1 and "not found" in res.stderr


def test_show_draws_a_calibration_file(tmp_path, brief_flow):
    from invsolve.figures.dispatch import figure_for

    cal = tmp_path / "cal.h5"
    assert _run("calibrate", "--pairs", 120, "--sampler-file", brief_flow, "-n", 50, "-o", cal, "-q").exit_code == 0
    fig = figure_for(cal)
    axes = {a.get_label(): a for a in fig.get_axes()}
    assert {"sbc_ecdf", "tarp", "coverage"} <= set(axes)
    assert all(axes[k].get_title() and axes[k].get_xlabel() and axes[k].get_ylabel() for k in ("sbc_ecdf", "tarp"))
    assert "calibration of the mmd-flow sampler on 120 pairs" in fig.texts[0].get_text() or any(
        "calibration of the mmd-flow sampler" in t.get_text() for f in [fig, *fig.subfigs] for t in f.texts)
    res = _run("show", cal, "-o", tmp_path / "cal.png")
    assert res.exit_code == 0 and (tmp_path / "cal.png").stat().st_size > 10_000


def test_image_sampler_calibration_pools_pixels(tmp_path):
    """An image sampler: SBC on 3 projections and 4 pixels, coverage and conformal scales pooled over pixels,
    and calibrated quantile maps of the image shape."""
    from skimage import data

    from invsolve import api, api_calibrate
    from invsolve.api_samplers import train_sampler
    from invsolve.calibration.files import load_calibration, save_calibration

    img = tmp_path / "cam.npy"
    np.save(img, (data.camera()[::8, ::8] / 255.0).astype(np.float32)[None])
    out = tmp_path / "s.pt"
    train_sampler("cfm", "superres", {"factor": 2}, images=[str(img)], crop=16, steps=10, val_every=5,
                  sampler_params={"hidden": 16}, output=out, seed=0, device="cpu")
    pairs = api_calibrate.simulate_pairs(str(out), 24, images=[str(img)], seed=1, device="cpu")
    assert pairs.ground_truth.shape == (24, 16, 16)
    cal = api_calibrate.calibrate(pairs, sampler_file=str(out), num_samples=8, projections=3, pixels=4,
                                  masses=(0.5, 0.9), device="cpu")
    assert len(cal.statistics) == 7 and cal.ranks.shape == (24, 7) and cal.ranks.max() <= 8
    assert cal.coverage.shape == (2, 1) and cal.scales.shape == (2, 1) and np.all(np.isfinite(cal.scales))
    path = save_calibration(cal, tmp_path / "cal.h5")
    assert load_calibration(path).statistics == cal.statistics
    post = api.sample_posterior(pairs, sampler_file=str(out), num_samples=8, levels=(0.05, 0.5, 0.95),
                                calibration=str(path), device="cpu")
    q = post.summary.calibrated_quantiles
    assert q.shape == (24, 3, 16, 16) and np.all(q[:, 0] <= q[:, 2]) and np.allclose(q[:, 1], post.summary.mean)
    with pytest.raises(ConfigError, match="images="):
        api_calibrate.simulate_pairs(str(out), 4, seed=1)


@pytest.mark.filterwarnings("ignore:Langevin chains have not mixed")
def test_conformal_repairs_langevin_with_a_too_small_step(tmp_path):
    """Langevin chains whose step is far too small barely leave their start: their intervals are too narrow.
    calibrate's conformal scales, fitted on one set of pairs, bring the pixel coverage of fresh pairs from
    the same crops to 0.9 (pooled pixels: correlation within an image widens the tolerance)."""
    from skimage import data

    from invsolve import api
    from invsolve.api_calibrate import calibrate
    from invsolve.api_priors import save_prior, train_prior
    from invsolve.calibration.files import save_calibration

    img = (data.camera()[::4, ::4] / 255.0).astype(np.float32)  # 128²
    prior, _ = train_prior("wpp", img, None, {"patch_size": 4, "n_reference": 200}, seed=0, device="cpu")
    pf = save_prior(prior, tmp_path / "wpp.pt")
    rng = np.random.default_rng(0)

    def crops(n):
        r, c = rng.integers(0, 112, n), rng.integers(0, 112, n)
        return np.stack([img[i:i + 16, j:j + 16] for i, j in zip(r, c)])

    kw = dict(operator="inpaint", operator_params={"fraction": 0.5, "mask_seed": 1}, noise="gaussian",
              noise_params={"sigma": 0.05}, device="cpu")
    pairs, fresh = api.simulate(crops(60), seed=1, **kw), api.simulate(crops(60), seed=2, **kw)
    langevin = dict(sampler="langevin", prior="wpp", prior_file=str(pf), chains=2, device="cpu",
                    sampler_params={"steps": 25, "burn_in": 5, "thin": 2, "step_size": 1e-7, "n_patches": 64})
    cal = calibrate(pairs, masses=(0.5, 0.9), **langevin)
    assert cal.summary()["coverage_90"] < 0.5  # over-confident
    path = save_calibration(cal, tmp_path / "cal.h5")
    post = api.sample_posterior(fresh, levels=(0.05, 0.95), calibration=str(path), seed=3, **langevin)
    from invsolve.posterior import interval_coverage

    s = post.summary
    raw = interval_coverage(fresh.ground_truth, s.quantiles, s.levels, 0.9)
    calibrated = interval_coverage(fresh.ground_truth, s.calibrated_quantiles, s.levels, 0.9)
    print(f"raw {raw:.3f}, calibrated {calibrated:.3f}")
    assert raw < 0.5 and abs(calibrated - 0.9) < 0.05
